"""MQTT sink against a real mosquitto broker on loopback."""

from __future__ import annotations

import threading
import time

import pytest

from edgekit.runtime.results import Latency, Result
from edgekit.runtime.sinks import open_sink

pytestmark = pytest.mark.system


class Subscriber:
    def __init__(self, port: int, topic: str) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[str] = []
        self.ready = threading.Event()
        # a persistent session: QoS 1 messages published while it reconnects are kept for it
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sub-{topic.replace('/', '-')}",
                                  clean_session=False)

        def on_connect(client, _userdata, _flags, _reason, _props=None):
            client.subscribe(topic, qos=1)

        self.client.on_connect = on_connect
        self.client.on_subscribe = lambda *_a: self.ready.set()
        self.client.on_message = lambda _c, _u, message: self.messages.append(message.payload.decode())
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.ready.wait(10)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def result(i: int) -> Result:
    return Result(kind="classification", latency=Latency(0.1, 0.2, 0.1), variant="tflite-int8", timestamp=1000.0 + i,
                  sequence=i, label="yes", index=1, score=0.9)


def test_results_are_published_in_order(mosquitto):
    sub = Subscriber(mosquitto.port, "edgekit/results")
    sink = open_sink(f"mqtt://127.0.0.1:{mosquitto.port}/edgekit/results?qos=1")
    assert sink.connected.wait(10)
    for i in range(50):
        sink.write(result(i))
    sink.close()
    messages = sub.wait_for(50)
    sub.close()
    import json

    assert [json.loads(m)["sequence"] for m in messages] == list(range(50))
    assert sink.stats()["dropped"] == 0 and sink.stats()["delivered"] == 50


def test_broker_away_never_blocks_and_buffered_results_are_delivered(mosquitto):
    import json

    sub = Subscriber(mosquitto.port, "edgekit/buffered")
    sink = open_sink(f"mqtt://127.0.0.1:{mosquitto.port}/edgekit/buffered?qos=1&buffer=5")
    assert sink.connected.wait(10)
    sink.write(result(0))
    assert len(sub.wait_for(1)) == 1

    mosquitto.stop()
    deadline = time.monotonic() + 10
    while sink.connected.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sink.connected.is_set()
    slowest = 0.0
    for i in range(1, 21):  # inference goes on while the broker is away
        start = time.perf_counter()
        sink.write(result(i))
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 0.5, "write blocked while the broker was away"
    stats = sink.stats()
    assert stats["buffered"] == 5 and stats["dropped"] == 15

    mosquitto.start()  # same port
    messages = sub.wait_for(6, timeout=30)
    sink.close()
    sub.close()
    sequences = [json.loads(m)["sequence"] for m in messages]
    assert sequences == [0, 16, 17, 18, 19, 20], (sink.stats(), sub.client.is_connected())  # newest five, in order
    assert sink.stats()["reconnects"] == 1


def test_bad_mqtt_specs_are_input_errors():
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="mqtt://HOST"):
        open_sink("mqtt://127.0.0.1:1883")
    with pytest.raises(InputError, match="qos 0, 1 or 2"):
        open_sink("mqtt://127.0.0.1:1883/t?qos=5")


@pytest.mark.tf
def test_edgekit_run_publishes_to_mqtt(mosquitto, runtime_bundles, tmp_path):
    import json

    from conftest import run_cli

    sub = Subscriber(mosquitto.port, "edgekit/imu")
    csv = tmp_path / "imu.csv"
    csv.write_text("ax,ay,az\n" + "".join(f"{i * 0.01},0,1\n" for i in range(60)))
    result = run_cli("run", str(runtime_bundles.sensor), "--source", f"csv:{csv}",
                     "--sink", f"mqtt://127.0.0.1:{mosquitto.port}/edgekit/imu?qos=1")
    assert result.code == 0, result.stderr
    messages = sub.wait_for(5)
    sub.close()
    assert [json.loads(m)["sequence"] for m in messages] == [0, 1, 2, 3, 4]
    assert all(json.loads(m)["label"] in ("idle", "walk") for m in messages)
