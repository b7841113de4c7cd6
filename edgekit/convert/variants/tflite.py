"""What the TFLite variants share: the TFLite converter on the source's SavedModel export,
its quantization settings, and a look at which ops of a quantized model stayed in float.

TensorFlow is imported inside the functions that use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from edgekit._native import native_stderr_captured
from edgekit.convert.variants.base import (
    ConversionOptions,
    Int8IO,
    conversion_error,
    quiet_converter,
)
from edgekit.progress import Progress, no_progress


def representative(calibration: np.ndarray, progress: Progress = no_progress,
                   label: str = "calibrating") -> Callable[[], Iterator[list[np.ndarray]]]:
    """A TFLite representative dataset over the calibration split, one sample at a time, in order."""
    def generate() -> Iterator[list[np.ndarray]]:
        for i in progress(range(len(calibration)), label, len(calibration)):
            yield [calibration[i : i + 1].astype(np.float32)]
    return generate


def tflite_converter(source: Any) -> Any:
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(str(source.saved_model_dir))


def convert(converter: Any, what: str, precision: str = "") -> bytes:
    """Run a configured converter quietly; its failure becomes a `ConversionError` for `what`."""
    try:
        with quiet_converter():
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError and friends with long logs
        raise conversion_error(what, exc, precision) from exc


def configure_int8(converter: Any, calibration: np.ndarray, options: ConversionOptions,
                   progress: Progress = no_progress, label: str = "calibrating") -> Any:
    """Full-integer quantization settings (int8 kernels, int8/uint8 I/O)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration, progress, label)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = {Int8IO.INT8: tf.int8, Int8IO.UINT8: tf.uint8}[Int8IO(options.int8_io)]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if not options.per_channel:
        # Per-tensor weights: smaller files (per-channel parameters cost ~12 bytes per
        # channel), at an accuracy cost the fidelity report measures.
        converter._experimental_disable_per_channel = True  # noqa: SLF001 - no public switch
    return converter


def dynamic_range(source: Any, what: str) -> bytes:
    """Dynamic-range quantization: int8 weights, float activations (no calibration)."""
    import tensorflow as tf

    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return convert(converter, what)


def details_interpreter(data: bytes) -> Any:
    """An interpreter of the .tflite `data` for reading its tensor and op details (not run,
    not allocated), its native log lines captured."""
    from edgekit.runtime.backends import tflite_interpreter_class

    interpreter_class, _package = tflite_interpreter_class()
    with native_stderr_captured():
        return interpreter_class(model_content=bytes(data))


# TFLite ops that move between float and integer, or stand for a delegated subgraph.
_BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "DELEGATE"})


def tflite_float_ops(data: bytes) -> tuple[str, ...]:
    """Builtin ops of a quantized TFLite model that read or write float tensors (sorted, unique).

    The TFLite converter keeps an op without an integer kernel (SIN, FLOOR, ...) in
    float even when asked for integer-only ops, with (de)quantize ops around it (and
    sometimes a neighbour, such as a CONCATENATION of its output), so a "full integer"
    model can carry float kernels; this finds them.
    """
    interpreter = details_interpreter(data)
    tensors = {int(t["index"]): np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    floats = {np.dtype(np.float32), np.dtype(np.float16)}
    found = set()
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the only op listing the API offers
        name = str(op["op_name"])
        touched = [*op["inputs"], *op["outputs"]]
        if name not in _BOUNDARY_OPS and any(tensors.get(int(i)) in floats for i in touched if int(i) >= 0):
            found.add(name)
    return tuple(sorted(found))
