"""``tflite-fp16``: float16 weights (float32 arithmetic where the runtime has no float16 kernels)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import ConversionOptions, VariantKind, single
from edgekit.convert.variants.tflite import convert, tflite_converter
from edgekit.progress import Progress, no_progress


def build(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
          _progress: Progress = no_progress) -> bytes:
    import tensorflow as tf

    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return convert(converter, "tflite-fp16")


VARIANT = VariantKind("tflite-fp16", "tflite", "fp16", False, "TFLite, float16 weights",
                      single("fp16", "float16 weights", build))
