"""Quantize inputs and dequantize outputs with a tensor's scale and zero-point."""

from __future__ import annotations

import numpy as np

from edgekit.spec import TensorSpec


def _params(spec: TensorSpec, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    q = spec.quantization
    assert q is not None
    scale = np.asarray(q.scale, np.float64)
    zero = np.asarray(q.zero_point, np.float64)
    if scale.size > 1:  # per-axis: broadcast along the quantized dimension
        shape = [1] * ndim
        shape[q.axis] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return scale, zero


def quantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Real values to the tensor's dtype: round(x / scale) + zero_point, saturated."""
    dtype = np.dtype(spec.dtype.value)
    if spec.quantization is None or dtype.kind == "f":
        return np.asarray(values, dtype=dtype)
    scale, zero = _params(spec, np.ndim(values))
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(values, np.float64) / scale) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor's values as float32: scale * (q - zero_point)."""
    if spec.quantization is None:
        return np.asarray(values, dtype=np.float32)
    scale, zero = _params(spec, np.ndim(values))
    return (scale * (np.asarray(values, np.float64) - zero)).astype(np.float32)
