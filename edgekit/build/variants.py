"""The variant registry: how each bundle variant is produced from the source model.

Adding a variant is one builder function and one registry line. TFLite variants come
from the TFLite converter on the source's SavedModel export; ONNX variants from tf2onnx
on the same SavedModel and `onnxruntime.quantization`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._native import native_stderr_captured
from edgekit._optional import require
from edgekit.datasets.loaders import Progress, no_progress
from edgekit.errors import InputError


class ConversionError(Exception):
    """A converter could not produce a variant (reported per variant, never a crash)."""


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """Converter settings shared by all variants.

    Attributes:
        int8_io: input/output type of ``tflite-int8``: ``int8`` or ``uint8``.
        opset: ONNX opset of the ONNX variants.
        onnx_int8: ``static`` (QDQ, calibrated) or ``dynamic`` quantization for ``onnx-int8``.
        per_channel: per-channel weight quantization for ``tflite-int8`` and ``onnx-int8``.
        float_nodes: TFLite tensor names kept in float in ``tflite-int8`` (auto-fallback).
    """

    int8_io: str = "int8"
    opset: int = 17
    onnx_int8: str = "static"
    per_channel: bool = True
    float_nodes: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class VariantKind:
    name: str
    format: str
    precision: str
    calibrated: bool
    description: str
    build: Callable[..., bytes]  # (source, calibration, options, workdir, progress) -> model bytes


@contextlib.contextmanager
def quiet_converter() -> Iterator[None]:
    """Converters print to stdout and warn loudly; keep both off the user's stdout."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with native_stderr_captured(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            logger.setLevel(level)


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


def _convert(converter: Any, what: str) -> bytes:
    try:
        with quiet_converter():
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError and friends with long logs
        raise ConversionError(f"{what}: {_first_error_line(exc)}") from exc


def _first_error_line(exc: BaseException) -> str:
    text = str(exc)
    for line in text.splitlines():
        line = line.strip()
        if "error:" in line and ("op" in line or "not supported" in line or "failed" in line):
            return line[line.index("error:") :][:400]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:400]


def configure_int8(converter: Any, calibration: np.ndarray, options: ConversionOptions,
                   progress: Progress = no_progress, label: str = "calibrating") -> Any:
    """Full-integer quantization settings (int8 kernels, int8/uint8 I/O)."""
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calibration, progress, label)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = {"int8": tf.int8, "uint8": tf.uint8}[options.int8_io]
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if not options.per_channel:
        # Per-tensor weights: smaller files (per-channel parameters cost ~12 bytes per
        # channel), at an accuracy cost the fidelity report measures.
        converter._experimental_disable_per_channel = True  # noqa: SLF001 - no public switch
    return converter


def _tflite_fp32(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                 _progress: Progress = no_progress) -> bytes:
    return _convert(tflite_converter(source), "tflite-fp32")


def _tflite_fp16(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                 _progress: Progress = no_progress) -> bytes:
    import tensorflow as tf

    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return _convert(converter, "tflite-fp16")


def _tflite_dynamic(source: Any, _calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                    _progress: Progress = no_progress) -> bytes:
    import tensorflow as tf

    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return _convert(converter, "tflite-dynamic")


def _tflite_int8(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
                 progress: Progress = no_progress) -> bytes:
    assert calib is not None
    if options.float_nodes:
        return tflite_int8_selective(source, calib, options, options.float_nodes)
    return _convert(configure_int8(tflite_converter(source), calib, options, progress, "calibrating tflite-int8"),
                    "tflite-int8")


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
        raise ConversionError(f"tflite-int8 with float fallback: {_first_error_line(exc)}") from exc


def _tflite_int16x8(source: Any, calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                    progress: Progress = no_progress) -> bytes:
    import tensorflow as tf

    assert calib is not None
    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calib, progress, "calibrating tflite-int16x8")
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    return _convert(converter, "tflite-int16x8")


def onnx_fp32_bytes(source: Any, opset: int) -> bytes:
    """ONNX export of the source's SavedModel signature through tf2onnx."""
    import tensorflow as tf

    tf2onnx = require("tf2onnx", "exporting ONNX")
    signature = source.signature
    input_name = source.signature_input
    spec = tf.TensorSpec((None, *source.input_shape), tf.as_dtype(source.input_dtype.value), name="input")

    @tf.function(input_signature=[spec])
    def serve(x: Any) -> Any:
        return signature(**{input_name: x})

    try:
        with quiet_converter():
            proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=opset)
    except Exception as exc:
        raise ConversionError(f"onnx-fp32: {_first_error_line(exc)}") from exc
    return canonical_onnx(proto).SerializeToString()


def canonical_onnx(model: Any) -> Any:
    """Rename intermediate tensors and nodes in graph order.

    tf2onnx picks unique names from a counter that Python's per-process hash seed
    perturbs, so the same model exported twice differs in names only; canonical names
    make the exported bytes reproducible. Graph inputs and outputs keep their names.
    Models with subgraphs (Loop, If, Scan) are left as they are.
    """
    graph = model.graph
    if any(attr.type in (attr.GRAPH, attr.GRAPHS) for node in graph.node for attr in node.attribute):
        return model
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    mapping: dict[str, str] = {}

    def rename(old: str) -> str:
        if old in keep:
            return old
        if old not in mapping:
            mapping[old] = f"t{len(mapping)}"
        return mapping[old]

    for index, node in enumerate(graph.node):
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
        node.name = f"{node.op_type}_{index}"
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for info in graph.value_info:
        info.name = rename(info.name)
    ordered = sorted(graph.initializer, key=lambda t: int(t.name[1:]) if t.name[1:].isdigit() else -1)
    copies = [type(t)() for t in ordered]
    for copy, tensor in zip(copies, ordered, strict=True):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    return model


def _onnx_fp32(source: Any, _calib: np.ndarray | None, options: ConversionOptions, _work: Path,
               _progress: Progress = no_progress) -> bytes:
    return source.cached(f"onnx-fp32-opset{options.opset}", lambda: onnx_fp32_bytes(source, options.opset))


class _Reader:
    """onnxruntime CalibrationDataReader over the calibration split, one sample at a time."""

    def __init__(self, name: str, calibration: np.ndarray, progress: Progress) -> None:
        self.name, self.calibration, self.progress = name, calibration, progress
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        index = next(self._order, None)
        if index is None:
            return None
        return {self.name: self.calibration[index : index + 1].astype(np.float32)}

    def rewind(self) -> None:
        self._order = iter(self.progress(range(len(self.calibration)), "calibrating onnx-int8", len(self.calibration)))


def _onnx_int8(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
               progress: Progress = no_progress) -> bytes:
    quantization = require("onnxruntime.quantization", "quantizing ONNX models")
    fp32 = source.cached(f"onnx-fp32-opset{options.opset}", lambda: onnx_fp32_bytes(source, options.opset))
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        try:
            with quiet_converter():
                try:
                    quantization.shape_inference.quant_pre_process(str(src), str(pre))
                except ImportError:  # sympy missing: skip symbolic shape inference
                    quantization.shape_inference.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                if options.onnx_int8 == "dynamic":
                    quantization.quantize_dynamic(str(pre), str(out), weight_type=quantization.QuantType.QInt8,
                                                  per_channel=options.per_channel)
                else:
                    assert calib is not None
                    import onnx

                    input_name = onnx.load(str(pre)).graph.input[0].name
                    quantization.quantize_static(
                        str(pre), str(out), _Reader(input_name, calib, progress),
                        quant_format=quantization.QuantFormat.QDQ,
                        activation_type=quantization.QuantType.QInt8,
                        weight_type=quantization.QuantType.QInt8,
                        per_channel=options.per_channel,
                        calibrate_method=quantization.CalibrationMethod.MinMax,
                    )
        except Exception as exc:
            raise ConversionError(f"onnx-int8: {_first_error_line(exc)}") from exc
        return out.read_bytes()


VARIANTS: dict[str, VariantKind] = {
    v.name: v
    for v in (
        VariantKind("tflite-fp32", "tflite", "fp32", False, "TFLite, float32", _tflite_fp32),
        VariantKind("tflite-fp16", "tflite", "fp16", False, "TFLite, float16 weights", _tflite_fp16),
        VariantKind("tflite-dynamic", "tflite", "dynamic-int8", False, "TFLite, dynamic-range int8 weights",
                    _tflite_dynamic),
        VariantKind("tflite-int8", "tflite", "int8", True, "TFLite, full integer int8 (calibrated)", _tflite_int8),
        VariantKind("tflite-int16x8", "tflite", "int16x8", True, "TFLite, int16 activations, int8 weights",
                    _tflite_int16x8),
        VariantKind("onnx-fp32", "onnx", "fp32", False, "ONNX, float32 (tf2onnx)", _onnx_fp32),
        VariantKind("onnx-int8", "onnx", "int8", True, "ONNX, int8 (onnxruntime.quantization)", _onnx_int8),
    )
}
DEFAULT_VARIANTS = ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8")


def parse_variants(text: str | None) -> tuple[str, ...]:
    """Parse ``--variants`` (comma list; ``all`` for every variant; default when None).

    Raises:
        InputError: unknown names, listing the valid ones.
    """
    if text is None:
        return DEFAULT_VARIANTS
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return tuple(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise InputError(f"unrecognized variant(s) {unknown or names}",
                         expected=f"a comma list of {list(VARIANTS)} (or all)", found=text)
    return tuple(dict.fromkeys(names))

