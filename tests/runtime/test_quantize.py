"""Input quantization in float32, and the lean image path: a table of the 256 pixel values,
normalized and quantized once, gives the same model input as normalizing and quantizing
every pixel; a uint8 input whose quantization is the identity takes the pixels as they are."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.runtime.preprocess import Preprocessor
from edgekit.runtime.tensors import dequantize, quantize
from edgekit.spec import ImagePreprocess, Quantization, TensorSpec


def _tensor(dtype: str, scale=(0.5,), zero=(0,), axis: int = 0, shape=(1, 4)) -> TensorSpec:
    return TensorSpec("x", shape, dtype, Quantization(tuple(scale), tuple(zero), axis=axis))


def test_quantize_rounds_half_to_even_and_saturates():
    x = np.array([[-300.0, -0.25, 0.25, 0.75]], np.float32)  # / 0.5: -600, -0.5, 0.5, 1.5
    q = quantize(x, _tensor("int8", zero=(3,)))
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, [[-128, 3, 3, 5]])
    np.testing.assert_array_equal(quantize(np.array([[1e6, -1.0, 0.0, 127.6]]), _tensor("uint8", (1.0,))),
                                  [[255, 0, 0, 128]])


def test_quantize_divides_in_float32_and_leaves_its_input_alone():
    x = np.random.default_rng(0).standard_normal((1, 4)).astype(np.float32)
    kept = x.copy()
    spec = _tensor("int8", (0.0123,), (-5,))
    want = np.clip(np.rint(x / np.float32(0.0123)) + np.float32(-5), -128, 127).astype(np.int8)
    np.testing.assert_array_equal(quantize(x, spec), want)
    np.testing.assert_array_equal(x, kept)


def test_quantize_per_axis_and_float_passthrough():
    spec = _tensor("int8", (1.0, 0.5), (0, 10), axis=1, shape=(1, 2, 3))
    x = np.ones((1, 2, 3), np.float32)
    np.testing.assert_array_equal(quantize(x, spec), [[[1, 1, 1], [12, 12, 12]]])
    np.testing.assert_array_equal(dequantize(quantize(x, spec), spec), x)
    floats = np.zeros((1, 4), np.float32)
    assert quantize(floats, TensorSpec("x", (1, 4), "float32")) is floats


FRAME = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)

CASES = {
    "int8-vww": (ImagePreprocess(height=12, width=12, scale=2 / 255, mean=(1.0, 1.0, 1.0), std=(1.0, 1.0, 1.0)),
                 _tensor("int8", (0.0078125,), (-1,), shape=(1, 12, 12, 3))),
    "int8-imagenet-nchw": (ImagePreprocess(height=12, width=12, layout="nchw", mean=(0.485, 0.456, 0.406),
                                           std=(0.229, 0.224, 0.225)),
                           _tensor("int8", (0.0187,), (-14,), shape=(1, 3, 12, 12))),
    "int8-per-channel": (ImagePreprocess(height=12, width=12, mean=(0.1, 0.2, 0.3)),
                         _tensor("int8", (0.01, 0.02, 0.03), (0, 1, 2), axis=3, shape=(1, 12, 12, 3))),
    "uint8-gray": (ImagePreprocess(height=12, width=12, channels=1, color_order="gray"),
                   _tensor("uint8", (1 / 255,), (0,), shape=(1, 12, 12, 1))),
    "float32": (ImagePreprocess(height=12, width=12), TensorSpec("x", (1, 12, 12, 3), "float32")),
}


@pytest.mark.parametrize("case", CASES)
def test_lean_image_path_equals_features_then_quantize(case):
    spec, tensor = CASES[case]
    front = Preprocessor(spec, tensor)
    features = front.features(FRAME)
    want = quantize(features, tensor)
    got, got_features = front.tensor_and_features(FRAME)
    assert got.dtype == want.dtype and got.shape == want.shape == tuple(tensor.shape)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_features, features)
    np.testing.assert_array_equal(front(FRAME), want)


def test_identity_uint8_input_takes_the_pixels_as_they_are():
    spec = ImagePreprocess(height=30, width=40, scale=1.0)
    front = Preprocessor(spec, _tensor("uint8", (1.0,), (0,), shape=(1, 30, 40, 3)))
    tensor, features = front.tensor_and_features(FRAME, features=False)
    assert features is None and tensor.dtype == np.uint8
    assert np.shares_memory(tensor, FRAME)  # the frame's own pixels: no copy, no float round trip
    np.testing.assert_array_equal(tensor[0], FRAME)
    shifted = Preprocessor(spec, _tensor("uint8", (1.0,), (1,), shape=(1, 30, 40, 3)))  # zero point 1: not the identity
    assert not np.shares_memory(shifted(FRAME), FRAME)
    np.testing.assert_array_equal(shifted(FRAME)[0], np.minimum(FRAME.astype(np.int64) + 1, 255))


def test_lean_path_refuses_what_features_refuses():
    spec, tensor = CASES["int8-vww"]
    front = Preprocessor(spec, tensor)
    with pytest.raises(ValueError, match="numeric"):
        front.tensor_and_features(np.array([["a"]]))
