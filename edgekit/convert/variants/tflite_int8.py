"""``tflite-int8``: full integer int8 (calibrated), with its forms best first: full integer,
then int8 with float fallback ops (float input and output), then dynamic range.

With ``float_nodes`` (a given selection of tensors) it is one form: int8 with the named
tensors' ops kept in float. `calibrated_int8` and `requantize` are what auto-fallback
(`edgekit.convert.fallback`) builds its float tries from: one calibration, then one
re-quantization per try.
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


def float_ops_converter(source: Any, calib: np.ndarray, options: ConversionOptions,
                        progress: Progress = no_progress, label: str = "calibrating") -> Any:
    """The TFLite converter set for int8 kernels where they exist, float kernels for the other ops."""
    import tensorflow as tf

    converter = configure_int8(tflite_converter(source), calib, options, progress, label)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def build_float_ops(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
                    progress: Progress = no_progress) -> bytes:
    """int8 kernels where they exist, float kernels for the other ops, float input and output."""
    import tensorflow as tf

    assert calib is not None
    converter = float_ops_converter(source, calib, options, progress, "calibrating tflite-int8")
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    return convert(converter, "tflite-int8 with float ops", "int8")


def build_dynamic_range(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                        _progress: Progress = no_progress) -> bytes:
    return dynamic_range(source, "tflite-int8 as dynamic range")


def calibrated_int8(source: Any, calib: np.ndarray, options: ConversionOptions) -> bytes:
    """The converter's calibrated model (float ops with the calibration statistics), from
    which `requantize` makes int8 models without calibrating again."""
    converter = float_ops_converter(source, calib, options)
    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # noqa: SLF001 - what the quantization debugger does
    return convert(converter, "tflite-int8 with float fallback", "int8")


def requantize(calibrated: bytes, options: ConversionOptions, float_nodes: tuple[str, ...]) -> bytes:
    """int8 from a calibrated model, with the named tensors' ops kept in float (float input
    and output). Not through the quantization debugger: its debug model has nothing to
    verify when every layer is in float, and it fails with "Please check if the quantized
    model is in debug mode"."""
    from tensorflow.lite.python import convert as tflite_convert

    try:
        with quiet_converter():
            return bytes(tflite_convert.mlir_quantize(calibrated, disable_per_channel=not options.per_channel,
                                                      fully_quantize=False, denylisted_nodes=list(float_nodes)))
    except Exception as exc:  # the converter raises its own types with long logs
        raise conversion_error("tflite-int8 with float fallback", exc, "int8") from exc


def tflite_int8_selective(source: Any, calib: np.ndarray, options: ConversionOptions,
                          float_nodes: tuple[str, ...]) -> bytes:
    """tflite-int8 with the named tensors' ops kept in float."""
    return requantize(calibrated_int8(source, calib, options), options, float_nodes)


def forms(options: ConversionOptions) -> tuple[Form, ...]:
    if options.float_nodes:  # a given selection: nothing to substitute
        return (Form("int8-mixed", "int8 with the named tensors in float", build_int8),)
    return (Form("int8", "full integer int8", build_int8),
            Form("int8-float-ops", "int8 with float fallback ops (float input and output)", build_float_ops),
            Form("dynamic-int8", "dynamic range (int8 weights, float activations)", build_dynamic_range))


VARIANT = VariantKind("tflite-int8", "tflite", "int8", True, "TFLite, full integer int8 (calibrated)", forms)
