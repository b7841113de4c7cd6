"""Fault scenarios on real processes: an MJPEG camera server killed or frozen and restarted
under ``edgekit run``, an MQTT broker stopped or hung and restarted. Used by
``tests/e2e/test_faults.py`` and by ``tools/fault_figures.py`` (several runs, min/median/max)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.support.brokers import Mosquitto
from tests.support.env import REPO, free_port

MJPEG_SERVER = Path(__file__).with_name("mjpeg.py")


ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


MQTT_BACKOFF_MAX = 8.0  # the sink's reconnect delay doubles from 1 s up to this (edgekit/runtime/sinks/mqtt.py)


@dataclasses.dataclass(frozen=True)
class FaultBundles:
    image: Path  # 16x16 RGB classifier, tflite-fp32
    sensor: Path  # 20-row windows of 3 channels, stride 10: one result per 10 rows
    wide: Path  # a Keras model of about 300k weights (bundles of a few MB), not converted


def build_bundles(root: Path) -> FaultBundles:
    """Random-weight models converted by the real converter (needs TensorFlow); the faults
    are about plumbing, not accuracy."""
    import contextlib

    import keras

    from edgekit.convert.run import ConvertConfig, convert

    root.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(9)

    def save(model, name: str) -> Path:
        path = root / f"{name}.keras"
        with contextlib.redirect_stdout(sys.stderr):
            model.save(path)
        return path

    inputs = keras.Input((16, 16, 3))
    hidden = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    image = save(keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(hidden))), "image")
    (root / "image.preprocess.yaml").write_text(
        "preprocess: {kind: image, height: 16, width: 16, scale: 0.00392156862745098}\nlabels: [a, b, c]\n")
    inputs = keras.Input((20, 3))
    sensor = save(keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs))),
                  "imu")
    (root / "imu.preprocess.yaml").write_text(
        "preprocess: {kind: sensor, channels: [ax, ay, az], window: 20, stride: 10, mean: [0, 0, 1], "
        "std: [1, 1, 1]}\nlabels: [idle, walk]\n")
    for model in (image, sensor):
        convert(ConvertConfig(model=model, output=model.with_suffix(".edgekit"), variants=("tflite-fp32",),
                              allow_random_calibration=True), log=lambda _line: None)
    inputs = keras.Input((64,))
    hidden = keras.layers.Dense(512, activation="relu")(keras.layers.Dense(512, activation="relu")(inputs))
    wide = save(keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(hidden)), "wide")
    return FaultBundles(image.with_suffix(".edgekit"), sensor.with_suffix(".edgekit"), wide)


class EdgekitRun:
    """``python -m edgekit run ARGS`` in a process of its own: result lines from its stdout
    and its stderr lines, each with the time it arrived (``time.time()``)."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", *args], cwd=REPO, env=ENV,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.results: list[tuple[float, dict]] = []
        self.stderr: list[tuple[float, str]] = []
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, results: bool) -> None:
        for line in stream:
            if results:
                self.results.append((time.time(), json.loads(line)))
            else:
                self.stderr.append((time.time(), line.rstrip("\n")))

    def wait_for(self, condition: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition() and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.01)
        return condition()

    def finish(self, timeout: float) -> int:
        """Wait for the process to end (killing it after `timeout`) and its output to be read."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(timeout=10)
        return self.proc.returncode

    @property
    def stderr_text(self) -> str:
        return "\n".join(line for _, line in self.stderr)

    def summary(self) -> dict[str, float]:
        """The figures of the summary line `edgekit run` prints on stderr at the end."""
        text = self.stderr_text
        found = re.search(r"(\d+) results in ([\d.]+) s", text)
        assert found, f"no summary line on stderr: {text[-2000:]}"
        reconnects = re.search(r"reconnects (\d+)", text)
        undelivered = re.search(r"(\d+) results not delivered by the sink", text)
        return {"results": int(found.group(1)), "seconds": float(found.group(2)),
                "reconnects": int(reconnects.group(1)) if reconnects else 0,
                "sink_dropped": int(undelivered.group(1)) if undelivered else 0}

    def first_line_after(self, moment: float, pattern: str) -> float | None:
        """When the first stderr line matching `pattern` arrived after `moment`."""
        return next((when for when, line in self.stderr if when >= moment and re.search(pattern, line)), None)


class MjpegProcess:
    """tests/support/mjpeg.py's server in a process of its own, so that it can be SIGKILLed or
    frozen (SIGSTOP) as a crashed or hung camera would be."""

    def __init__(self, port: int, fps: float = 30.0) -> None:
        self.port, self.fps = port, fps
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it; returns the time (``time.time()``) from which it accepts connections."""
        self.proc = subprocess.Popen([sys.executable, str(MJPEG_SERVER), str(self.port), str(self.fps)], cwd=REPO,
                                     env=ENV, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # printed once the socket listens
        if line.strip() != "listening":
            raise RuntimeError(f"the MJPEG server did not start on port {self.port}")
        return time.time()

    def signal(self, number: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(number)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc.stdout.close()
            self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"


@dataclasses.dataclass
class CameraFault:
    how: str  # "kill": SIGKILL (the connection drops); "freeze": SIGSTOP (it stalls), then SIGKILL
    timeout: float  # the source's watchdog, ?timeout=
    backoff_max: float
    outage: float  # fault -> restart, seconds
    detected_s: float  # fault -> the source's "stalled or disconnected" warning
    recovery_s: float  # server accepting connections again -> first result captured after that
    reconnects: int  # from the run's summary
    results_before: int
    results_after: int
    returncode: int
    stderr: str

    def report(self) -> str:
        return (f"camera server {self.how}: detected after {self.detected_s:.2f} s (timeout {self.timeout:g} s), "
                f"results again {self.recovery_s:.2f} s after the restart (bound: timeout + backoff_max = "
                f"{self.timeout + self.backoff_max:g} s); {self.reconnects} reconnect attempt(s)")


def camera_fault(bundle: Path, how: str = "kill", *, timeout: float = 2.0, backoff_max: float = 1.0,
                 outage: float = 3.0, before: int = 10, after: int = 15, fps: float = 30.0) -> CameraFault:
    """`edgekit run` on an MJPEG stream whose server is killed (or frozen, then killed) after
    `before` results and restarted on the same port `outage` seconds later; the run stops
    at ``--limit before + after + 5`` results."""
    server = MjpegProcess(free_port(), fps=fps)
    server.start()
    limit = before + after + 5  # a few frames may still arrive from the socket after the fault
    run = EdgekitRun([str(bundle), "--source", f"{server.url}?timeout={timeout:g}&backoff_max={backoff_max:g}",
                      "--limit", str(limit)])
    try:
        assert run.wait_for(lambda: len(run.results) >= before, 60), f"no results: {run.stderr_text[-2000:]}"
        fault = time.time()
        if how == "kill":
            server.kill()
        elif how == "freeze":
            server.signal(signal.SIGSTOP)  # the TCP connection stays open and silent
        else:
            raise ValueError(how)
        time.sleep(outage)
        server.kill()  # a frozen server is killed too: a watchdog restarts it
        restarted = server.start()
        run.wait_for(lambda: len(run.results) >= limit, 60)
        returncode = run.finish(timeout=30)
    finally:
        server.kill()
        run.finish(timeout=0)
    fresh = [(arrived, result) for arrived, result in run.results if result["timestamp"] >= restarted]
    assert fresh, f"no results after the server came back: {run.stderr_text[-2000:]}"
    detected = run.first_line_after(fault, "stalled or disconnected")
    assert detected is not None, f"the source did not notice the fault: {run.stderr_text[-2000:]}"
    return CameraFault(how=how, timeout=timeout, backoff_max=backoff_max, outage=outage, detected_s=detected - fault,
                       recovery_s=fresh[0][0] - restarted, reconnects=int(run.summary()["reconnects"]),
                       results_before=sum(1 for arrived, _ in run.results if arrived < fault),
                       results_after=len(fresh), returncode=returncode, stderr=run.stderr_text)


@dataclasses.dataclass
class BrokerFault:
    how: str  # "stop": SIGTERM; "hang": SIGSTOP for a second (messages pile up in flight), then SIGKILL
    buffer: int
    outage: float  # fault -> restart, seconds
    total: int  # results the run made (its --limit)
    expected_seconds: float  # the paced source's own duration
    seconds: float  # the run's, from its summary line
    sink_dropped: int  # "N results not delivered by the sink"
    delivered: list[int]  # sequence numbers the subscriber saw, first arrivals, in arrival order
    duplicates: list[int]  # sequence numbers it saw again (QoS 1 redelivery)
    last_before_restart: int  # newest sequence number seen before the restart
    detected_s: float  # fault -> the sink's "lost the connection" warning (a hung broker: at its death)
    max_gap_s: float  # largest gap between consecutive results' timestamps (all delivered only)
    recovery_s: float  # broker accepting connections again -> first new result at the subscriber
    returncode: int
    stderr: str

    def report(self) -> str:
        return (f"broker {self.how} (buffer={self.buffer}): {len(self.delivered)} of {self.total} results delivered, "
                f"{self.sink_dropped} counted as not delivered, {len(self.duplicates)} redelivered; run "
                f"{self.seconds:.2f} s for {self.expected_seconds:.2f} s of input; first new result "
                f"{self.recovery_s:.2f} s after the restart (sink backoff at most {MQTT_BACKOFF_MAX:g} s)")


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/sbin:/usr/local/sbin")


def broker_fault(bundle: Path, root: Path, binary: str, how: str = "stop", *, buffer: int = 1000,
                 rate: float = 1000.0, total: int = 800, before: int = 100, outage: float = 2.5) -> BrokerFault:
    """`edgekit run` on a paced, looping sensor CSV (one result per 10 rows) publishing at
    QoS 1 to a real mosquitto, which is stopped after `before` results arrived and started
    again on the same port `outage` seconds later. A persistent-session subscriber (which
    reconnects within 0.2 s) counts what arrives."""
    from tests.support.brokers import Subscriber

    root.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(binary, root)
    broker.start()
    csv = root / "imu.csv"
    csv.write_text("ax,ay,az\n" + "".join(f"{0.1 * i:.2f},{-0.05 * i:.2f},1.0\n" for i in range(97)))
    topic = f"edgekit/faults/{how}-{buffer}"
    subscriber = Subscriber(broker.port, topic)
    subscriber.client.reconnect_delay_set(0.1, 0.2)
    arrivals: list[tuple[float, dict]] = []
    subscriber.client.on_message = lambda _c, _u, message: arrivals.append((time.time(), json.loads(message.payload)))
    run = EdgekitRun([str(bundle), "--source", f"csv:{csv}?loop=1&rate={rate:g}", "--sink",
                      f"mqtt://127.0.0.1:{broker.port}/{topic}?qos=1&buffer={buffer}", "--limit", str(total)])
    try:
        assert run.wait_for(lambda: len(arrivals) >= before, 60), f"nothing published: {run.stderr_text[-2000:]}"
        fault = time.time()
        if how == "hang":
            broker.proc.send_signal(signal.SIGSTOP)  # accepts nothing, acknowledges nothing
            time.sleep(1.0)
            broker.proc.kill()  # a watchdog kills it: what it had not read is lost with it
            broker.proc.wait(timeout=10)
            broker.proc = None
            time.sleep(max(0.0, outage - 1.0))
        elif how == "stop":
            broker.stop()
            time.sleep(outage)
        else:
            raise ValueError(how)
        broker.start()  # same port, same persistence file
        restarted = time.time()
        returncode = run.finish(timeout=60)
        summary = run.summary()
        expected = total - summary["sink_dropped"]
        deadline = time.monotonic() + 30
        while len({result["sequence"] for _, result in arrivals}) < expected and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # late redeliveries
    finally:
        run.finish(timeout=0)
        subscriber.close()
        if broker.proc is not None:
            broker.proc.send_signal(signal.SIGCONT)  # a stopped process would not handle SIGTERM
        broker.stop()
    delivered: list[int] = []
    seen: set[int] = set()
    duplicates: list[int] = []
    for _, result in arrivals:
        sequence = result["sequence"]
        if sequence in seen:
            duplicates.append(sequence)
        else:
            seen.add(sequence)
            delivered.append(sequence)
    last_before = max((r["sequence"] for arrived, r in arrivals if arrived < restarted), default=-1)
    fresh = [arrived for arrived, r in arrivals if arrived >= restarted and r["sequence"] > last_before]
    assert fresh, f"nothing new arrived after the restart: {run.stderr_text[-2000:]}"
    detected = run.first_line_after(fault, "lost the connection to broker")
    assert detected is not None, f"the sink did not notice the fault: {run.stderr_text[-2000:]}"
    stamps = sorted(r["timestamp"] for _, r in arrivals)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    return BrokerFault(how=how, buffer=buffer, outage=outage, total=total, expected_seconds=(20 + (total - 1) * 10) / rate,
                       seconds=summary["seconds"], sink_dropped=int(summary["sink_dropped"]), delivered=delivered,
                       duplicates=duplicates, last_before_restart=last_before, detected_s=detected - fault,
                       max_gap_s=max(gaps) if summary["sink_dropped"] == 0 else float("nan"),
                       recovery_s=fresh[0] - restarted, returncode=returncode, stderr=run.stderr_text)
