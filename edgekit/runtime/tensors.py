"""Quantize inputs and dequantize outputs with a tensor's scale and zero-point.

Quantization runs in float32, as TFLite's own quantize kernel divides: float64 doubled the
memory traffic of the front end's last step for nothing (the features are float32 and the
scales are float32 in the model file)."""

from __future__ import annotations

import functools

import numpy as np

from edgekit.spec import Quantization, TensorSpec


@functools.lru_cache(maxsize=64)
def _params(q: Quantization, ndim: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """The scale and zero point as arrays of `dtype` that broadcast against an `ndim` tensor
    (per-axis: along the quantized dimension); cached, read-only."""
    scale = np.asarray(q.scale, dtype)
    zero = np.asarray(q.zero_point, dtype)
    if scale.size > 1:  # per-axis: broadcast along the quantized dimension
        shape = [1] * ndim
        shape[q.axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    else:
        scale, zero = scale.reshape(()), zero.reshape(())
    scale.setflags(write=False)
    zero.setflags(write=False)
    return scale, zero


@functools.lru_cache(maxsize=16)
def _limits(dtype: np.dtype) -> tuple[np.float32, np.float32]:
    info = np.iinfo(dtype)
    return np.float32(info.min), np.float32(info.max)


def quantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Real values to the tensor's dtype: round(x / scale) + zero_point in float32 (halves
    to even), saturated."""
    dtype = np.dtype(spec.dtype.value)
    if spec.quantization is None or dtype.kind == "f":
        return np.asarray(values, dtype=dtype)
    x = np.asarray(values, np.float32)
    scale, zero = _params(spec.quantization, x.ndim, np.float32)
    low, high = _limits(dtype)
    q = np.divide(x, scale)  # a new array: the caller's values stay as they are
    np.rint(q, out=q)
    q += zero
    np.maximum(q, low, out=q)  # the ufuncs: np.clip's checks cost more than the clipping on small tensors
    np.minimum(q, high, out=q)
    return q.astype(dtype)


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor's values as float32: scale * (q - zero_point)."""
    if spec.quantization is None:
        return np.asarray(values, dtype=np.float32)
    scale, zero = _params(spec.quantization, np.ndim(values), np.float64)
    return (scale * (np.asarray(values, np.float64) - zero)).astype(np.float32)
