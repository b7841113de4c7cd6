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
    to even), saturated. (`Quantizer` does it with the parameters looked up once.)"""
    return Quantizer(spec)(values)


try:  # the ufunc np.clip ends in, without np.clip's Python checks (1.4 us of a 490-value quantize)
    from numpy._core.umath import clip as _clip
except ImportError:  # numpy 1.x
    try:
        from numpy.core.umath import clip as _clip
    except ImportError:
        _clip = np.clip


class Quantizer:
    """`quantize` for one tensor, its parameters looked up once (the hot path of a model:
    `quantize` finds them per call, about 1 us). Bit for bit the same values.

    Args:
        spec: the tensor (an input of a model).
    """

    __slots__ = ("dtype", "identity", "_scale", "_zero", "_low", "_high", "_quantization")

    def __init__(self, spec: TensorSpec) -> None:
        self.dtype = np.dtype(spec.dtype.value)
        self.identity = spec.quantization is None or self.dtype.kind == "f"  # a cast, or nothing
        self._quantization = spec.quantization
        self._scale: np.ndarray | None = None
        self._zero: np.ndarray | None = None
        if not self.identity:
            assert spec.quantization is not None
            self._low, self._high = _limits(self.dtype)
            if not spec.quantization.per_channel:
                self._scale, self._zero = _params(spec.quantization, 0, np.float32)

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if self.identity:
            return np.asarray(values, dtype=self.dtype)
        x = values if type(values) is np.ndarray and values.dtype == np.float32 else np.asarray(values, np.float32)
        if self._scale is not None:
            scale, zero = self._scale, self._zero
        else:  # per-axis: broadcast along the quantized dimension of this rank
            assert self._quantization is not None
            scale, zero = _params(self._quantization, x.ndim, np.float32)
        q = np.divide(x, scale)  # a new array: the caller's values stay as they are
        np.rint(q, out=q)
        q += zero
        _clip(q, self._low, self._high, out=q)  # saturate (NaN stays NaN, as np.clip leaves it)
        return q.astype(self.dtype)


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor's values as float32: scale * (q - zero_point)."""
    if spec.quantization is None:
        return np.asarray(values, dtype=np.float32)
    scale, zero = _params(spec.quantization, np.ndim(values), np.float64)
    return (scale * (np.asarray(values, np.float64) - zero)).astype(np.float32)
