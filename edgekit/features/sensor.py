"""Sensor windows from a `SensorPreprocess` spec (numpy only)."""

from __future__ import annotations

import numpy as np

from edgekit.errors import InputError, ShapeError
from edgekit.spec import SensorPreprocess


def normalize(windows: np.ndarray, spec: SensorPreprocess) -> np.ndarray:
    """Per-channel normalization of ``(N, window, channels)`` or ``(window, channels)``."""
    array = np.asarray(windows, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[1:] != (spec.window, len(spec.channels)):
        raise ShapeError("sensor windows", expected=f"shape (N, {spec.window}, {len(spec.channels)})",
                         found=f"shape {array.shape}")
    if spec.mean:
        array = array - np.asarray(spec.mean, np.float32)
    if spec.std:
        array = array / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(array, dtype=np.float32)


def windows(stream: np.ndarray, spec: SensorPreprocess) -> np.ndarray:
    """Cut a ``(samples, channels)`` recording into windows of `window` every `stride`."""
    stream = np.asarray(stream, dtype=np.float32)
    if stream.ndim != 2 or stream.shape[1] != len(spec.channels):
        raise InputError("sensor recording", expected=f"shape (samples, {len(spec.channels)})",
                         found=f"shape {stream.shape}")
    if stream.shape[0] < spec.window:
        return np.empty((0, spec.window, len(spec.channels)), np.float32)
    starts = np.arange(0, stream.shape[0] - spec.window + 1, spec.stride)
    return stream[starts[:, None] + np.arange(spec.window)[None, :]]
