"""Image normalization and layout, from an `ImagePreprocess` spec (numpy only)."""

from __future__ import annotations

import numpy as np

from edgekit.errors import InputError
from edgekit.spec import ImagePreprocess


def normalize(images: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """Scale, standardize and lay out images that already have the spec's size.

    Args:
        images: ``(N, H, W, C)`` or ``(H, W, C)`` pixels in the spec's colour order.
        spec: the bundle's image preprocessing spec.

    Returns:
        float32 ``(pixel * scale - mean) / std`` in the spec's layout, batched.

    Raises:
        InputError: the images do not have the spec's height, width and channels.
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    expected = (spec.height, spec.width, spec.channels)
    if array.ndim != 4 or array.shape[1:] != expected:
        raise InputError("images", expected=f"shape (N, {spec.height}, {spec.width}, {spec.channels})",
                         found=f"shape {array.shape}")
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    out = (array.astype(np.float32) * np.float32(spec.scale) - mean) / std
    if spec.layout == "nchw":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out, dtype=np.float32)
