"""Model.stream computes audio features incrementally (edgekit.features.audio_stream);
its results are those of the whole window recomputed for every hop."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.runtime import load
from edgekit.runtime.postprocess import PosteriorSmoother, softmax
from edgekit.runtime.sources import Item

pytestmark = pytest.mark.tf  # the bundle is made by the converter


@pytest.mark.parametrize(("hop_ms", "chunk"), [(20, 137), (250, 4000), (70, 1600)])
def test_stream_results_equal_a_full_recompute_of_each_window(runtime_bundles, hop_ms, chunk):
    """For each window: the model on the window's features computed from scratch
    (`Preprocessor`), through a posterior smoother fed as the stream feeds its own."""
    model = load(runtime_bundles.kws)
    rate = 16000
    audio = (0.1 * np.random.default_rng(hop_ms).standard_normal(int(1.7 * rate))).astype(np.float32)
    items = [Item(audio[i : i + chunk], (i + len(audio[i : i + chunk])) / rate, "a") for i in range(0, len(audio), chunk)]
    results = list(model.stream(items, hop_ms=hop_ms))
    hop = rate * hop_ms // 1000
    assert len(results) == (len(audio) - rate) // hop + 1
    smoother = PosteriorSmoother(model.postprocess_spec, model.labels)
    for k, result in enumerate(results):
        end = rate + k * hop
        scores = model.backend.run([model.preprocessor(audio[end - rate : end])])[0].reshape(-1).astype(np.float64)
        if model.postprocess_spec.apply_softmax:
            scores = softmax(scores)
        want = smoother.update(result.timestamp * 1000.0, scores)
        assert result.timestamp == pytest.approx(end / rate)
        assert [c.label for c in result.top_k] == [c.label for c in want["top_k"]]
        assert [c.score for c in result.top_k] == pytest.approx([c.score for c in want["top_k"]], rel=1e-5, abs=1e-7)
        assert (result.keyword, result.detected) == (want["keyword"], want["detected"])
