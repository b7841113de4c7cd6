"""``tflite-int8``: full integer int8 (calibrated), with its forms best first: full integer,
then int8 with float fallback ops (float input and output), then dynamic range.

With ``float_nodes`` (auto-fallback's selection) it is one form: int8 with the named
tensors' ops kept in float.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit.convert.variants.base import (
    ConversionOptions,
    Form,
    VariantKind,
    conversion_error,
    quiet_converter,
)
from edgekit.convert.variants.tflite import (
    configure_int8,
    convert,
    dynamic_range,
    representative,
    tflite_converter,
)
from edgekit.progress import Progress, no_progress


def build_int8(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
               progress: Progress = no_progress) -> bytes:
    assert calib is not None
    if options.float_nodes:
        return tflite_int8_selective(source, calib, options, options.float_nodes)
    return convert(configure_int8(tflite_converter(source), calib, options, progress, "calibrating tflite-int8"),
                   "tflite-int8", "int8")


def build_float_ops(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
                    progress: Progress = no_progress) -> bytes:
    """int8 kernels where they exist, float kernels for the other ops, float input and output."""
    import tensorflow as tf

    assert calib is not None
    converter = configure_int8(tflite_converter(source), calib, options, progress, "calibrating tflite-int8")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    return convert(converter, "tflite-int8 with float ops", "int8")


def build_dynamic_range(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                        _progress: Progress = no_progress) -> bytes:
    return dynamic_range(source, "tflite-int8 as dynamic range")


def tflite_int8_selective(source: Any, calib: np.ndarray, options: ConversionOptions,
                          float_nodes: tuple[str, ...]) -> bytes:
    """tflite-int8 with the named tensors' ops kept in float (quantization debugger)."""
    import tensorflow as tf

    converter = configure_int8(tflite_converter(source), calib, options)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    debug_options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(float_nodes))
    try:
        with quiet_converter():
            debugger = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=representative(calib[: min(len(calib), 32)]),
                debug_options=debug_options)
            return bytes(debugger.get_nondebug_quantized_model())
    except Exception as exc:
        raise conversion_error("tflite-int8 with float fallback", exc, "int8") from exc


def forms(options: ConversionOptions) -> tuple[Form, ...]:
    if options.float_nodes:  # auto-fallback's own selection: nothing to substitute
        return (Form("int8-mixed", "int8 with the named tensors in float", build_int8),)
    return (Form("int8", "full integer int8", build_int8),
            Form("int8-float-ops", "int8 with float fallback ops (float input and output)", build_float_ops),
            Form("dynamic-int8", "dynamic range (int8 weights, float activations)", build_dynamic_range))


VARIANT = VariantKind("tflite-int8", "tflite", "int8", True, "TFLite, full integer int8 (calibrated)", forms)
