"""MQTT sink against a real mosquitto broker on loopback (plain, with passwords, with TLS)."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgekit.errors import InputError
from edgekit.runtime.sinks import open_sink
from tests.support.brokers import Certificates, Mosquitto, Subscriber, make_certificates, result
from tests.support.env import need_program

pytestmark = pytest.mark.system

USER = "edge"
PASSWORD = "s3cret:@/?"  # characters that must be percent-encoded in a spec


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


@pytest.mark.parametrize("qos", [0, 1])
def test_a_publisher_faster_than_the_broker_stays_bounded(mosquitto, qos):
    """paho's own queue has no bound: at most `buffer` messages may wait in it, the rest
    wait in the sink's buffer, and what does not fit is dropped and counted (found by the
    MQTT soak, where paho's queue grew by 140 MB)."""
    sink = open_sink(f"mqtt://127.0.0.1:{mosquitto.port}/edgekit/flood?qos={qos}&buffer=50")
    assert sink.connected.wait(10)
    waiting = 0
    for i in range(20_000):
        sink.write(result(i))
        stats = sink.stats()
        waiting = max(waiting, stats["published"] - stats["delivered"])
        assert stats["buffered"] <= 50
    sink.close(timeout=30)
    stats = sink.stats()
    assert waiting <= 51, waiting  # paho's thread may count a delivery just before write does
    assert stats["published"] + stats["dropped"] == 20_000 and stats["delivered"] == stats["published"], stats
    if qos:
        assert stats["dropped"] > 0, stats  # acknowledged messages cannot keep up with a tight loop


def test_bad_mqtt_specs_are_input_errors():
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="mqtt://HOST"):
        open_sink("mqtt://127.0.0.1:1883")
    with pytest.raises(InputError, match="qos 0, 1 or 2"):
        open_sink("mqtt://127.0.0.1:1883/t?qos=5")


@pytest.mark.tf
def test_edgekit_run_publishes_to_mqtt(mosquitto, runtime_bundles, tmp_path):
    import json

    from tests.support.cli import run_cli

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


# Brokers that want a password or speak TLS -------------------------------------------


def start_broker(root: Path, **options) -> Iterator[Mosquitto]:
    broker = Mosquitto(need_program("mosquitto", "apt-get install mosquitto"), root, **options)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A second CA, which did not sign the broker's certificate."""
    return make_certificates(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture
def auth_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    yield from start_broker(tmp_path, passwords={USER: PASSWORD})


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Certificates) -> Iterator[Mosquitto]:
    yield from start_broker(tmp_path, tls=pki)


@pytest.fixture
def client_cert_broker(tmp_path: Path, pki: Certificates) -> Iterator[Mosquitto]:
    yield from start_broker(tmp_path, tls=pki, require_certificate=True)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts how MqttSink's connection attempts end: answered, failed, or closed unanswered."""
    from edgekit.runtime.sinks.mqtt import MqttSink

    count = [0]

    def counting(name: str):
        method = getattr(MqttSink, name)

        def wrapper(self, *args):
            if name != "_on_disconnect" or not self._answered:
                count[0] += 1
            return method(self, *args)

        return wrapper

    # Patched on the class, so that even the first attempt, made as the sink starts, is counted.
    for name in ("_on_connect", "_on_connect_fail", "_on_disconnect"):
        monkeypatch.setattr(MqttSink, name, counting(name))
    return count


def mqtt_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "edgekit.mqtt" and r.levelno == logging.WARNING]


def deliver_five(spec: str, sub: Subscriber) -> None:
    sink = open_sink(spec)
    assert sink.connected.wait(10), sink.stats()
    for i in range(5):
        sink.write(result(i))
    sink.close()
    messages = sub.wait_for(5)
    sub.close()
    assert [json.loads(m)["sequence"] for m in messages] == [0, 1, 2, 3, 4]
    assert sink.stats()["delivered"] == 5 and sink.dropped == 0


def refused_without_blocking(spec: str, caplog: pytest.LogCaptureFixture, attempts: list[int]) -> str:
    """Opens a sink that the broker will not accept and checks that writes return at once,
    that every result is counted as dropped, and that one warning (returned) is logged over
    several attempts."""
    caplog.set_level(logging.INFO, logger="edgekit.mqtt")
    sink = open_sink(spec)
    slowest = 0.0
    for i in range(20):
        start = time.perf_counter()
        sink.write(result(i))
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 0.5, "write blocked while the broker refused the sink"
    assert wait_until(lambda: attempts[0] >= 2), "paho did not retry"  # retries back off from 1 s
    assert not sink.connected.is_set()
    assert sink.stats() == {"published": 0, "delivered": 0, "buffered": 5, "dropped": 15, "reconnects": 0}
    sink.close()  # returns at once: retrying would not change the broker's mind
    assert sink.dropped == 20
    warnings = mqtt_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "\n" not in warnings[0]
    return warnings[0]


def test_user_and_password_from_the_spec_are_accepted(auth_broker):
    sub = Subscriber(auth_broker.port, "edgekit/auth", user=USER, password=PASSWORD)
    password = urllib.parse.quote(PASSWORD, safe="")
    deliver_five(f"mqtt://{USER}:{password}@127.0.0.1:{auth_broker.port}/edgekit/auth?qos=1", sub)


@pytest.mark.parametrize("credentials", [f"{USER}:wrong@", ""], ids=["wrong-password", "no-credentials"])
def test_refused_credentials_never_block_and_are_logged_once(auth_broker, caplog, attempts, credentials):
    spec = f"mqtt://{credentials}127.0.0.1:{auth_broker.port}/edgekit/refused?qos=1&buffer=5"
    warning = refused_without_blocking(spec, caplog, attempts)
    assert warning.startswith(f"mqtt: broker 127.0.0.1:{auth_broker.port} refused the connection: Not authorized; "
                              "check the user name and password in the sink spec")
    assert "wrong" not in warning


def test_tls_with_the_brokers_ca_delivers(tls_broker, pki):
    sub = Subscriber(tls_broker.port, "edgekit/tls", tls=pki)
    deliver_five(f"mqtts://127.0.0.1:{tls_broker.port}/edgekit/tls?qos=1&ca={pki.ca}", sub)


def test_tls_with_another_ca_is_refused_with_a_clear_warning(tls_broker, other_pki, caplog, attempts):
    spec = f"mqtts://127.0.0.1:{tls_broker.port}/edgekit/untrusted?qos=1&buffer=5&ca={other_pki.ca}"
    warning = refused_without_blocking(spec, caplog, attempts)
    assert warning.startswith(f"mqtt: cannot verify the TLS certificate of broker 127.0.0.1:{tls_broker.port}: ")
    assert "certificate" in warning.split(": ", 2)[2] and "ca=FILE" in warning


def test_tls_to_a_plain_listener_is_refused_with_a_clear_warning(mosquitto, pki, caplog, attempts):
    spec = f"mqtts://127.0.0.1:{mosquitto.port}/edgekit/not-tls?qos=1&buffer=5&ca={pki.ca}"
    warning = refused_without_blocking(spec, caplog, attempts)
    assert warning.startswith(f"mqtt: broker 127.0.0.1:{mosquitto.port} closed the connection during the TLS "
                              "handshake; check that its listener speaks TLS")


def test_tls_insecure_skips_verification(tls_broker, pki, other_pki):
    sub = Subscriber(tls_broker.port, "edgekit/insecure", tls=pki)
    deliver_five(f"mqtts://127.0.0.1:{tls_broker.port}/edgekit/insecure?qos=1&ca={other_pki.ca}&insecure=1", sub)


def test_client_certificate_is_presented(client_cert_broker, pki):
    sub = Subscriber(client_cert_broker.port, "edgekit/client-cert", tls=pki)
    deliver_five(f"mqtts://127.0.0.1:{client_cert_broker.port}/edgekit/client-cert?qos=1&ca={pki.ca}"
                 f"&cert={pki.client_cert}&key={pki.client_key}", sub)


def test_missing_client_certificate_is_refused_with_a_clear_warning(client_cert_broker, pki, caplog,
                                                                  attempts):
    spec = f"mqtts://127.0.0.1:{client_cert_broker.port}/edgekit/no-cert?qos=1&buffer=5&ca={pki.ca}"
    warning = refused_without_blocking(spec, caplog, attempts)
    assert warning.startswith(f"mqtt: broker 127.0.0.1:{client_cert_broker.port} closed the connection before "
                              "answering it; ")
    assert "cert= and key=" in warning


def test_bad_tls_and_option_specs_are_one_line_input_errors(tmp_path, pki):
    openssl = need_program("openssl", "apt-get install openssl")
    import subprocess

    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run([openssl, "pkey", "-in", str(pki.client_key), "-aes256", "-passout", "pass:x", "-out",
                    str(encrypted)], check=True, capture_output=True)
    base = "mqtts://127.0.0.1:8883/t"
    cases = {
        f"{base}?ca={tmp_path}/missing.pem": f"expected a PEM file in ca=, found no file {tmp_path}/missing.pem; ",
        f"{base}?ca=": "expected a PEM file in ca=, found ca= with no path",
        f"{base}?cert={tmp_path}": f"expected a PEM file in cert=, found a directory {tmp_path}",
        f"{base}?ca={junk}": "expected PEM CA certificates in ca=, found no certificate or crl found",
        f"{base}?cert={junk}": "found not PEM data OpenSSL can read",
        f"{base}?cert={pki.client_cert}&key={pki.server_key}": "found key values mismatch",
        f"{base}?key={pki.client_key}": "expected a client certificate in cert= with key=, found key= alone",
        f"{base}?cert={pki.client_cert}&key={encrypted}": "found one that needs a password",
        f"{base}?insecure=yes": "expected insecure=0 or insecure=1, found insecure=yes",
        f"mqtt://127.0.0.1/t?ca={pki.ca}": "expected TLS options only with mqtts://, found ca= with mqtt://",
        "mqtt://127.0.0.1/t?qso=1": "found qso",
    }
    for spec, message in cases.items():
        with pytest.raises(InputError) as caught:
            open_sink(spec)
        assert message in str(caught.value), (spec, str(caught.value))
        assert "\n" not in str(caught.value)
    # the password stays out of error messages
    with pytest.raises(InputError, match=r"'mqtt://edge:\*\*\*@127.0.0.1/t\?qos=7'") as caught:
        open_sink("mqtt://edge:hunter2@127.0.0.1/t?qos=7")
    assert "hunter2" not in str(caught.value)


@pytest.mark.tf
def test_edgekit_run_with_refused_credentials_prints_one_warning(auth_broker, runtime_bundles, tmp_path):
    from tests.support.cli import run_cli

    csv = tmp_path / "imu.csv"
    csv.write_text("ax,ay,az\n" + "".join(f"{i * 0.01},0,1\n" for i in range(60)))
    result = run_cli("run", str(runtime_bundles.sensor), "--source", f"csv:{csv}",
                     "--sink", f"mqtt://{USER}:wrong@127.0.0.1:{auth_broker.port}/edgekit/imu?qos=1")
    assert result.code == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("mqtt: ")]
    assert lines == [f"mqtt: broker 127.0.0.1:{auth_broker.port} refused the connection: Not authorized; check the "
                     "user name and password in the sink spec (retrying; meanwhile the newest 1000 results are kept)"]
