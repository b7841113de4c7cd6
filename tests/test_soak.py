"""Soak: tens of thousands of predictions and stream results in one process, and resident
memory (RSS) must stay flat after a warm-up.

`EDGEKIT_SOAK_PREDICTIONS` sets the number of predictions (default 50,000; each stream
gives a tenth of it, at least 5,000 results); `make soak` runs 1,000,000 and prints the figures (``pytest -s``).
"""

from __future__ import annotations

import dataclasses
import gc
import itertools
import os
import time
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from conftest import need_module

from edgekit.runtime import Result, load
from edgekit.runtime.sources import Item

pytestmark = [pytest.mark.slow, pytest.mark.tf]  # the bundles are made by the converter

PREDICTIONS = int(os.environ.get("EDGEKIT_SOAK_PREDICTIONS", "50000"))
STREAMED = max(5000, PREDICTIONS // 10)
WARMUP = 2000
SAMPLES = 25  # RSS readings after the warm-up
LIMIT_MB = 5.0


@dataclasses.dataclass
class Soak:
    """RSS readings (bytes) at result counts, the first one right after the warm-up."""

    what: str
    counts: list[int]
    rss: list[int]
    seconds: float
    last: Result

    @property
    def growth_mb(self) -> float:
        return (self.rss[-1] - self.rss[0]) / 2**20

    @property
    def peak_growth_mb(self) -> float:
        return (max(self.rss) - self.rss[0]) / 2**20

    def kb_per_10k(self, start: int = 0) -> float:
        """Least-squares slope of RSS over the readings from `start` on."""
        slope = np.polyfit(np.asarray(self.counts[start:], float), np.asarray(self.rss[start:], float), 1)[0]
        return float(slope) * 10_000 / 1024

    def report(self) -> str:
        return (f"soak {self.what}: {self.counts[-1]} inferences in {self.seconds:.1f} s; "
                f"RSS {self.rss[0] / 2**20:.1f} MB at warm-up ({WARMUP}), {self.rss[-1] / 2**20:.1f} MB at end "
                f"({self.growth_mb:+.2f} MB, peak {self.peak_growth_mb:+.2f} MB); "
                f"slope {self.kb_per_10k():+.2f} KB per 10k inferences "
                f"({self.kb_per_10k(len(self.rss) // 2):+.2f} over the second half)")


def soak(what: str, results: Iterable[Result], total: int) -> Soak:
    """Consume `total` results, reading RSS after the warm-up (and a gc) and then every
    `total / SAMPLES` results; the last reading follows a final gc."""
    import psutil

    process = psutil.Process()
    every = max(1, (total - WARMUP) // SAMPLES)
    counts: list[int] = []
    rss: list[int] = []
    last: Result | None = None
    count = 0
    started = time.perf_counter()
    for result in results:
        last = result
        count += 1
        if count == WARMUP or (count > WARMUP and (count - WARMUP) % every == 0):
            if count == WARMUP or count == total:
                gc.collect()
            counts.append(count)
            rss.append(process.memory_info().rss)
        if count == total:
            break
    seconds = time.perf_counter() - started
    assert count == total, f"{what}: the source ended after {count} of {total} results"
    assert last is not None
    if counts[-1] != total:
        gc.collect()
        counts.append(total)
        rss.append(process.memory_info().rss)
    figures = Soak(what, counts, rss, seconds, last)
    print(figures.report())
    return figures


def assert_flat(result: Soak) -> None:
    assert result.peak_growth_mb < LIMIT_MB, (
        f"{result.what}: RSS grew by {result.peak_growth_mb:.2f} MB after the warm-up "
        f"(limit {LIMIT_MB} MB): {[round(r / 2**20, 2) for r in result.rss]}")


def image_inputs(folder) -> list[object]:
    """Real images as RGB arrays at the model size and at camera sizes (resized by the
    preprocessor), plus encoded PNG bytes (decoded by it)."""
    import cv2

    files = sorted(folder.rglob("*.png"))[:4]
    rgb = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    larger = [cv2.resize(image, size, interpolation=cv2.INTER_NEAREST) for image, size in
              zip(rgb, [(64, 48), (160, 120), (33, 17), (320, 240)], strict=True)]
    return [*rgb, *larger, files[0].read_bytes()]


@pytest.mark.parametrize("variant", ["tflite-int8", "onnx-fp32"])
def test_predict_memory_is_flat(runtime_bundles, variant):
    need_module("psutil", 'pip install "edgekit[dev]"')
    model = load(runtime_bundles.shapes, variant=variant)
    inputs = image_inputs(runtime_bundles.shapes_images)
    results = (model.predict(raw) for raw in itertools.cycle(inputs))
    result = soak(f"predict {variant}", results, PREDICTIONS)
    assert result.last.label in model.labels
    assert_flat(result)


def looping(items: list[object]) -> Iterator[Item]:
    """An endless in-memory source: the same items over and over, freshly stamped."""
    for sequence, payload in enumerate(itertools.cycle(items)):
        yield Item(payload, time.time(), f"item {sequence}")


def test_image_stream_memory_is_flat(runtime_bundles):
    need_module("psutil", 'pip install "edgekit[dev]"')
    model = load(runtime_bundles.shapes)
    frames = [x for x in image_inputs(runtime_bundles.shapes_images) if isinstance(x, np.ndarray)]
    result = soak("stream images", model.stream(looping(frames)), STREAMED)
    assert result.last.sequence == STREAMED - 1
    assert_flat(result)


def test_audio_stream_memory_is_flat(runtime_bundles):
    """The sliding window's buffer must not grow with the stream."""
    need_module("psutil", 'pip install "edgekit[dev]"')
    model = load(runtime_bundles.kws)
    rng = np.random.default_rng(0)
    chunks = [(0.1 * rng.standard_normal(1600)).astype(np.float32) for _ in range(7)]  # 100 ms each
    result = soak("stream audio", model.stream(looping(chunks), hop_ms=250), STREAMED)
    assert result.last.sequence == STREAMED - 1
    assert_flat(result)


def test_sensor_stream_memory_is_flat(runtime_bundles):
    need_module("psutil", 'pip install "edgekit[dev]"')
    model = load(runtime_bundles.sensor)
    rows = [{"ax": 0.1 * i, "ay": -0.05 * i, "az": 1.0} for i in range(13)]
    result = soak("stream sensor", model.stream(looping(rows)), STREAMED)
    assert result.last.sequence == STREAMED - 1
    assert_flat(result)
