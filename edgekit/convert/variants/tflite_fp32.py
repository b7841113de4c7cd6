"""``tflite-fp32``: the TFLite converter's float32 model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import ConversionOptions, VariantKind, single
from edgekit.convert.variants.tflite import convert, tflite_converter
from edgekit.progress import Progress, no_progress


def build(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
          _progress: Progress = no_progress) -> bytes:
    return convert(tflite_converter(source), "tflite-fp32")


VARIANT = VariantKind("tflite-fp32", "tflite", "fp32", False, "TFLite, float32",
                      single("fp32", "float32", build))
