"""Soak: `edgekit run` on looping sources for tens of thousands of results, its resident
memory (RSS) sampled from outside, and it must stay flat after a warm-up.

Each soak is a real `edgekit run` process, as on a device: no TensorFlow in it (checked in
its memory maps) and nothing of the test process's own allocations in the figures. The
sensor soak publishes every result to a real mosquitto broker at QoS 1, and a subscriber
counts what arrives.

`EDGEKIT_SOAK_PREDICTIONS` sets the image soaks' and the MQTT soak's length (default
50,000 and 100,000; the audio soak runs half, at least 20,000); `make soak` runs
1,000,000 of each and prints the figures (``pytest -s``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.support.brokers import Subscriber
from tests.support.env import REPO, need_module

pytestmark = [pytest.mark.slow, pytest.mark.tf]  # the bundles are made by the converter

PREDICTIONS = int(os.environ.get("EDGEKIT_SOAK_PREDICTIONS", "50000"))
PUBLISHED = max(100_000, PREDICTIONS)
STREAMED = max(20_000, PREDICTIONS // 2)
WARMUP = 2000
EVERY_S = 0.2  # RSS sampling period
ROWS_PER_S = 30_000  # the MQTT soak's sensor: 3,000 windows (results) per second
LIMIT_MB = 6.0  # growth allowed over the second half of a run (a leak of 120 bytes per result at 100k)


@dataclasses.dataclass
class Soak:
    """RSS readings (bytes) of the `edgekit run` process at result counts after the warm-up."""

    what: str
    results: int  # all of them, counted after the process ended
    counts: list[int]
    rss: list[int]
    seconds: float
    stderr: str

    @property
    def growth_mb(self) -> float:
        return (self.rss[-1] - self.rss[0]) / 2**20

    @property
    def second_half_growth_mb(self) -> float:
        """Peak RSS over the second half of the readings against the reading in the middle."""
        middle = len(self.rss) // 2
        return (max(self.rss[middle:]) - self.rss[middle]) / 2**20

    def kb_per_10k(self, start: int = 0) -> float:
        """Least-squares slope of RSS over the readings from `start` on."""
        slope = np.polyfit(np.asarray(self.counts[start:], float), np.asarray(self.rss[start:], float), 1)[0]
        return float(slope) * 10_000 / 1024

    def report(self) -> str:
        return (f"soak {self.what}: {self.results} results in {self.seconds:.1f} s; RSS "
                f"{self.rss[0] / 2**20:.1f} MB after {self.counts[0]}, {self.rss[-1] / 2**20:.1f} MB at the end "
                f"({self.growth_mb:+.2f} MB; {self.second_half_growth_mb:+.2f} MB over the second half); slope "
                f"{self.kb_per_10k():+.2f} KB per 10k results ({self.kb_per_10k(len(self.rss) // 2):+.2f} over "
                f"the second half); {len(self.rss)} readings")


def soak(what: str, args: list[str], total: int, tmp_path: Path, delivered: Callable[[], int] | None = None) -> Soak:
    """Run ``edgekit run ARGS --limit TOTAL``, counting its results (its stdout lines, or
    `delivered` when it publishes elsewhere) and reading its RSS every `EVERY_S` seconds
    once `WARMUP` results are out."""
    import psutil

    stderr_path = tmp_path / f"{what.replace(' ', '-')}.stderr"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    lines = [0]
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", *args, "--limit", str(total)], cwd=REPO,
                                env=env, stdout=subprocess.PIPE if delivered is None else subprocess.DEVNULL,
                                stderr=stderr, text=True)
    try:
        if delivered is None:
            def count_lines() -> None:
                for _ in proc.stdout:
                    lines[0] += 1

            reader = threading.Thread(target=count_lines, daemon=True)
            reader.start()
        count = (lambda: lines[0]) if delivered is None else delivered
        process = psutil.Process(proc.pid)
        counts: list[int] = []
        rss: list[int] = []
        tensorflow_mapped = False
        started = time.perf_counter()
        while proc.poll() is None:
            done = count()
            if done >= WARMUP:
                try:
                    reading = process.memory_info().rss
                    if not counts:
                        tensorflow_mapped = any("tensorflow" in m.path for m in process.memory_maps())
                except psutil.NoSuchProcess:
                    break
                if not reading:  # exited, not yet reaped
                    break
                if not counts or done > counts[-1]:
                    counts.append(done)
                    rss.append(reading)
            time.sleep(EVERY_S)
        proc.wait(timeout=120)
        seconds = time.perf_counter() - started
        if delivered is None:
            reader.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr_text = stderr_path.read_text()
    assert proc.returncode == 0, f"{what}: edgekit run exited with {proc.returncode}: {stderr_text[-2000:]}"
    assert not tensorflow_mapped, f"{what}: the runtime process loaded TensorFlow"
    assert len(rss) >= 10, f"{what}: only {len(rss)} RSS readings after the warm-up; run longer"
    figures = Soak(what, count(), counts, rss, seconds, stderr_text)
    print(figures.report())
    return figures


def assert_flat(result: Soak) -> None:
    assert result.second_half_growth_mb < LIMIT_MB, (
        f"{result.what}: RSS grew by {result.second_half_growth_mb:.2f} MB over the second half "
        f"(limit {LIMIT_MB} MB): {[round(r / 2**20, 2) for r in result.rss]}")


@pytest.fixture(scope="module")
def camera_frames(runtime_bundles, tmp_path_factory) -> Path:
    """Real images at the model's size and at camera sizes (resized by the preprocessor),
    as PNG and JPEG files."""
    import cv2

    folder = tmp_path_factory.mktemp("frames")
    files = sorted(runtime_bundles.shapes_images.rglob("*.png"))[:4]
    for number, (path, size) in enumerate(zip(files, [(64, 48), (160, 120), (33, 17), (320, 240)], strict=True)):
        image = cv2.imread(str(path))
        cv2.imwrite(str(folder / f"{number}-model.png"), image)
        cv2.imwrite(str(folder / f"{number}-camera.jpg"), cv2.resize(image, size, interpolation=cv2.INTER_NEAREST))
    return folder


@pytest.mark.parametrize("variant", ["tflite-int8", "onnx-fp32"])
def test_image_stream_memory_is_flat(runtime_bundles, camera_frames, variant, tmp_path):
    need_module("psutil", 'pip install "edgekit-ml[dev]"')
    result = soak(f"images {variant}", [str(runtime_bundles.shapes), "--variant", variant,
                                        "--source", f"images:{camera_frames}?loop=1"], PREDICTIONS, tmp_path)
    assert result.results == PREDICTIONS
    assert_flat(result)


def test_audio_stream_memory_is_flat(runtime_bundles, tmp_path):
    """The sliding window's buffer must not grow with the stream."""
    need_module("psutil", 'pip install "edgekit-ml[dev]"')
    from edgekit.features.audio import write_wav

    wav = tmp_path / "noise.wav"
    write_wav(wav, 0.1 * np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32), 16000)
    result = soak("audio", [str(runtime_bundles.kws), "--source", f"wav:{wav}?loop=1", "--hop-ms", "250"],
                  STREAMED, tmp_path)
    assert result.results == STREAMED
    assert_flat(result)


def test_sensor_stream_to_mqtt_memory_is_flat(runtime_bundles, mosquitto, tmp_path):
    """At least 100,000 results published at QoS 1 to a real broker: all delivered, in
    order, with flat memory. The buffer absorbs a busy machine's hiccups; were the broker
    slower than the sensor for long, the results it drops would fail this test."""
    need_module("psutil", 'pip install "edgekit-ml[dev]"')
    csv = tmp_path / "imu.csv"
    csv.write_text("ax,ay,az\n" + "".join(f"{0.1 * i:.2f},{-0.05 * i:.2f},1.0\n" for i in range(97)))
    subscriber = Subscriber(mosquitto.port, "edgekit/soak")
    received = [0, -1]  # count, and the last sequence number (checking order)
    out_of_order = []

    def on_message(_client, _userdata, message) -> None:
        sequence = json.loads(message.payload)["sequence"]
        if sequence != received[1] + 1:
            out_of_order.append((received[1], sequence))
        received[0] += 1
        received[1] = sequence

    subscriber.client.on_message = on_message
    try:
        result = soak("sensor to MQTT", [str(runtime_bundles.sensor), "--source", f"csv:{csv}?loop=1&rate={ROWS_PER_S}", "--sink",
                                         f"mqtt://127.0.0.1:{mosquitto.port}/edgekit/soak?qos=1&buffer=20000"],
                      PUBLISHED, tmp_path, delivered=lambda: received[0])
        deadline = time.monotonic() + 30
        while received[0] < PUBLISHED and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        subscriber.close()
    assert "not delivered" not in result.stderr, result.stderr
    assert received[0] == PUBLISHED and not out_of_order[:1], (received, out_of_order[:5])
    assert_flat(result)
