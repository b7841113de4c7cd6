"""``tflite-fp32``: the TFLite converter's float32 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import ConversionOptions, VariantKind, single
from edgekit.convert.variants.tflite import convert, tflite_converter
from edgekit.progress import Progress, no_progress


def fp32_bytes(source: Any) -> bytes:
    """The float32 model, converted once per source (auto-fallback's int16 tries start from it too)."""
    return source.cached("tflite-fp32", lambda: convert(tflite_converter(source), "tflite-fp32"))


def build(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
          _progress: Progress = no_progress) -> bytes:
    return fp32_bytes(source)


VARIANT = VariantKind("tflite-fp32", "tflite", "fp32", False, "TFLite, float32",
                      single("fp32", "float32", build))
