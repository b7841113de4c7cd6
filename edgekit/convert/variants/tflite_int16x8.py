"""``tflite-int16x8``: int16 activations, int8 weights (calibrated); then the same with
float fallback ops for the ops that have no int16x8 kernel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import ConversionOptions, Form, VariantKind
from edgekit.convert.variants.tflite import convert, representative, tflite_converter
from edgekit.progress import Progress, no_progress


def _int16x8(source: Any, calib: np.ndarray | None, progress: Progress, float_ops: bool) -> bytes:
    import tensorflow as tf

    assert calib is not None
    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calib, progress, "calibrating tflite-int16x8")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if float_ops:
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    return convert(converter, "tflite-int16x8 with float ops" if float_ops else "tflite-int16x8", "int16x8")


def build_int16x8(source: Any, calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                  progress: Progress = no_progress) -> bytes:
    return _int16x8(source, calib, progress, float_ops=False)


def build_float_ops(source: Any, calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                    progress: Progress = no_progress) -> bytes:
    """int16x8 kernels where they exist, float kernels for the ops that have none."""
    return _int16x8(source, calib, progress, float_ops=True)


def forms(_options: ConversionOptions) -> tuple[Form, ...]:
    return (Form("int16x8", "int16 activations, int8 weights", build_int16x8),
            Form("int16x8-float-ops", "int16x8 with float fallback ops", build_float_ops))


VARIANT = VariantKind("tflite-int16x8", "tflite", "int16x8", True, "TFLite, int16 activations, int8 weights", forms)
