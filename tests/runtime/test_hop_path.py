"""The per-hop path of a stream gives the values of the plain computations it replaces:
the posterior smoother's rows of one array against a list of (time, scores) averaged each
time, `Quantizer` against `quantize`, the table of an 8-bit output against `dequantize`."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from edgekit.runtime.model import _ScoreReader
from edgekit.runtime.postprocess import PosteriorSmoother, ranked, softmax
from edgekit.runtime.tensors import Quantizer, dequantize, quantize
from edgekit.spec import PostprocessKind, PostprocessSpec, Quantization, TensorSpec


class _ListSmoother:
    """The smoother as it was before its rows became one array (the reference)."""

    def __init__(self, spec: PostprocessSpec, labels: tuple[str, ...]) -> None:
        self.spec, self.labels = spec, labels
        self.window: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self.last = -float("inf")
        self.background = {i for i, name in enumerate(labels) if name in spec.background_labels}

    def update(self, time_ms: float, scores: np.ndarray) -> dict:
        self.window.append((time_ms, scores))
        while self.window and self.window[0][0] < time_ms - self.spec.smoothing_ms:
            self.window.popleft()
        smoothed = np.mean([s for _, s in self.window], axis=0)
        fields = ranked(smoothed, self.spec, self.labels)
        fields["detected"] = False
        keywords = [int(i) for i in np.argsort(-smoothed, kind="stable") if int(i) not in self.background]
        if not keywords:
            return fields
        best = keywords[0]
        fields["keyword"] = self.labels[best] if best < len(self.labels) else str(best)
        fields["keyword_score"] = float(smoothed[best])
        threshold = self.spec.score_threshold if self.spec.score_threshold is not None else 0.5
        if fields["keyword_score"] >= threshold and time_ms - self.last >= self.spec.suppression_ms:
            fields["detected"] = True
            self.last = time_ms
        return fields


@pytest.mark.parametrize("labels", [("_silence_", "_unknown_", "yes", "no", "up"), ("_silence_", "_unknown_"),
                                    ("a", "_silence_", "b")])
def test_smoother_decides_as_the_list_of_scores_did(labels):
    """Random hops (0 to 300 ms, times equal and late included), scores with ties (rounded
    to 0.1), hundreds of updates (the rows array is compacted many times): equal fields."""
    spec = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, top_k=3, smoothing_ms=200, suppression_ms=300,
                           background_labels=("_silence_", "_unknown_"), score_threshold=0.4)
    rng = np.random.default_rng(len(labels))
    ours, reference = PosteriorSmoother(spec, labels), _ListSmoother(spec, labels)
    t = 0.0
    for k in range(600):
        t += float(rng.choice([0.0, 7.0, 20.0, 250.0, 300.0]))
        scores = rng.random(len(labels))
        if k % 2:
            scores = np.round(scores, 1)
        assert ours.update(t, scores.copy()) == reference.update(t, scores.copy()), k


def test_smoother_starts_again_when_the_number_of_classes_changes():
    spec = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, smoothing_ms=1000)
    smoother = PosteriorSmoother(spec, ())
    smoother.update(0.0, np.array([0.9, 0.1]))
    fields = smoother.update(20.0, np.array([0.1, 0.2, 0.7]))
    assert fields["index"] == 2 and fields["score"] == pytest.approx(0.7)


@pytest.mark.parametrize("quantization", [Quantization((0.0123,), (-5,)), Quantization((0.5, 0.25, 0.01), (0, 3, -7), 3)])
@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "float32"])
@pytest.mark.parametrize("shape", [(1, 49, 10, 3), (1, 40, 40, 3)])  # a keyword window, an image
def test_quantizer_equals_the_plain_formula(quantization, dtype, shape):
    """`Quantizer` (and `quantize`, which makes one) against round(x / scale) + zero_point
    in float32, halves to even, saturated, written plainly per channel."""
    spec = TensorSpec("x", shape, dtype, quantization)
    x = (np.random.default_rng(1).standard_normal(shape) * 300).astype(np.float32)
    x.flat[:5] = [0.5 * 0.0123, 1.5 * 0.0123, -2.5 * 0.0123, 1e9, -1e9]  # halves to even, saturation
    if np.dtype(dtype).kind == "f":
        want = x.astype(dtype)
    else:
        info = np.iinfo(dtype)
        channels = len(quantization.scale)
        scale = np.float32(quantization.scale[0]) if channels == 1 else np.asarray(quantization.scale, np.float32)
        zero = np.float32(quantization.zero_point[0]) if channels == 1 else np.asarray(quantization.zero_point,
                                                                                          np.float32)
        want = np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(dtype)  # the last axis is axis 3
    for values in (x, x.astype(np.float64)):
        got = Quantizer(spec)(values)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(quantize(values, spec), want)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("apply_softmax", [False, True])
def test_score_table_equals_dequantize(dtype, apply_softmax):
    spec = TensorSpec("y", (1, 256), dtype, Quantization((0.00390625 * 1.7,), (-128 if dtype == "int8" else 3,)))
    raw = np.arange(256, dtype=np.uint8).view(dtype)[None]
    reader = _ScoreReader(spec, apply_softmax, raw=False)
    assert reader.table is not None
    want = dequantize(raw, spec).reshape(-1).astype(np.float64)
    np.testing.assert_array_equal(reader(raw), softmax(want) if apply_softmax else want)


@pytest.mark.tf  # the bundle is made by the converter
@pytest.mark.parametrize("variant", ["tflite-int8", "onnx-int8", "tflite-fp32"])
def test_predict_classification_fields_equal_postprocess_of_the_dequantized_outputs(runtime_bundles, variant):
    """`Model._result` reads the class scores from the raw output (a table for 8-bit ones):
    the fields `postprocess` gives on the dequantized outputs, exactly."""
    from edgekit.runtime import load
    from edgekit.runtime.postprocess import postprocess

    model = load(runtime_bundles.shapes, variant=variant)
    x = np.random.default_rng(3).random(model._input_shape).astype(np.float32)
    raw = model.backend.run([model._quantize(x)])
    want = postprocess(x, model._dequantized(raw), model.postprocess_spec, model.labels)
    result = model._result(x, raw, 0.0, 0.0, 0.0, 1.0, 0, None)
    assert (result.label, result.index, result.score, result.top_k) == (want["label"], want["index"], want["score"],
                                                                         want["top_k"])
    assert model.predict_tensor(x).top_k == want["top_k"]
