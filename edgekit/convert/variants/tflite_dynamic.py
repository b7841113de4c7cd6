"""``tflite-dynamic``: dynamic-range quantization (int8 weights, float activations; no calibration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import ConversionOptions, VariantKind, single
from edgekit.convert.variants.tflite import dynamic_range
from edgekit.progress import Progress, no_progress


def build(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
          _progress: Progress = no_progress) -> bytes:
    return dynamic_range(source, "tflite-dynamic")


VARIANT = VariantKind("tflite-dynamic", "tflite", "dynamic-int8", False, "TFLite, dynamic-range int8 weights",
                      single("dynamic-int8", "dynamic range (int8 weights, float activations)", build))
