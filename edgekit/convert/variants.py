"""The variant registry: how each bundle variant is produced from the source model.

Adding a variant is one builder function and one registry line. TFLite variants come
from the TFLite converter on the source's SavedModel export; ONNX variants from tf2onnx
on the same SavedModel and `onnxruntime.quantization`.

A quantized variant lists the forms it can take, best first (``tflite-int8``: full
integer, then int8 with float fallback ops, then dynamic range). `edgekit convert`
keeps the first form that converts and runs, and says so when it is not the first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
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
    """A converter could not produce a variant (reported per variant, never a crash).

    Attributes:
        ops: the operators the converter named as the cause (TFLite builtin names such
            as ``SIN``, TensorFlow op names such as ``Atan``, ONNX op types), in the
            order the message names them; empty when it named none.
    """

    def __init__(self, message: str, ops: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.ops = tuple(ops)


# Where converters name the operator they could not handle. Each pattern's first group is
# an op name, or (the "lists") a comma-separated list of op names.
_OP_PATTERNS = (
    re.compile(r"not yet supported for op: '(\w+)'"),  # TFLite quantizer: no int8/int16 kernel
    re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op"),  # no TFLite builtin
    re.compile(r"failed to legalize operation '(?:tf|tfl)\.(\w+)'"),  # e.g. tf.TensorListReserve
    re.compile(r"'tfl\.(\w+)' op "),  # an MLIR verifier error on a TFLite op
    re.compile(r"No Op registered for (\w+)"),  # ONNX Runtime: an op it does not know
    re.compile(r"op type (\w+) .*not supported", re.IGNORECASE),  # onnxruntime.quantization
)
_OP_LISTS = (
    re.compile(r"TF Select ops: ([\w, ]+)"),
    re.compile(r"Custom ops: ([\w, ]+)"),
    re.compile(r"Unsupported ops: Counter\(\{([^}]*)\}\)"),  # tf2onnx
)


def ops_in_error(text: str) -> tuple[str, ...]:
    """The operator names a converter's error message blames, first mention first."""
    found: list[tuple[int, str]] = []
    for pattern in _OP_PATTERNS:
        found += [(m.start(), m.group(1)) for m in pattern.finditer(text)]
    for pattern in _OP_LISTS:
        for m in pattern.finditer(text):
            names = re.findall(r"'?(\w+)'?(?::\s*\d+)?", m.group(1))
            found += [(m.start(), name) for name in names]
    ordered = [name for _pos, name in sorted(found, key=lambda item: item[0])]
    return tuple(dict.fromkeys(ordered))


def op_reason(ops: tuple[str, ...], text: str, precision: str) -> str | None:
    """A plain sentence for the ops a converter refused, or None when it named none."""
    if not ops:
        return None
    names = ", ".join(ops)
    plural = "ops" if len(ops) > 1 else "op"
    if "not yet supported for op" in text:
        bits = "int16x8" if "16x8" in text else "int8"
        return f"{plural} {names} {'have' if len(ops) > 1 else 'has'} no {bits} kernel"
    if "TensorListReserve" in ops or "TensorListSetItem" in ops:
        return (f"{plural} {names} cannot be lowered to TFLite builtins (a recurrent layer without unroll=True "
                "compiles to a TensorFlow loop)")
    if "TF Select ops" in text or "neither a custom op nor a flex op" in text or "Custom ops" in text:
        return f"{plural} {names} {'are' if len(ops) > 1 else 'is'} not a TFLite builtin (it would need TF Select)"
    if "No Op registered" in text or "Unsupported ops" in text:
        return f"{plural} {names} {'are' if len(ops) > 1 else 'is'} not supported in ONNX by tf2onnx/ONNX Runtime"
    return f"the converter failed on {plural} {names} ({precision})"


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


@contextlib.contextmanager
def quiet_converter() -> Iterator[None]:
    """Converters print to stdout and warn loudly; keep both off the user's stdout."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with native_stderr_captured(replay_on_error=False), contextlib.redirect_stdout(io.StringIO()), \
            warnings.catch_warnings():
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


def _convert(converter: Any, what: str, precision: str = "") -> bytes:
    try:
        with quiet_converter():
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError and friends with long logs
        raise conversion_error(what, exc, precision) from exc


def conversion_error(what: str, exc: BaseException, precision: str = "") -> ConversionError:
    """A ConversionError naming the ops the converter blamed (else its first error line)."""
    text = str(exc)
    ops = ops_in_error(text)
    reason = op_reason(ops, text, precision) or _first_error_line(exc)
    return ConversionError(f"{what}: {reason}", ops)


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
                    _progress: Progress = no_progress, what: str = "tflite-dynamic") -> bytes:
    import tensorflow as tf

    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return _convert(converter, what)


def _tflite_int8_dynamic(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
                         progress: Progress = no_progress) -> bytes:
    return _tflite_dynamic(source, calib, options, work, progress, what="tflite-int8 as dynamic range")


def _tflite_int8(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
                 progress: Progress = no_progress) -> bytes:
    assert calib is not None
    if options.float_nodes:
        return tflite_int8_selective(source, calib, options, options.float_nodes)
    return _convert(configure_int8(tflite_converter(source), calib, options, progress, "calibrating tflite-int8"),
                    "tflite-int8", "int8")


def _tflite_int8_float_ops(source: Any, calib: np.ndarray | None, options: ConversionOptions, _work: Path,
                           progress: Progress = no_progress) -> bytes:
    """int8 kernels where they exist, float kernels for the other ops, float input and output."""
    import tensorflow as tf

    assert calib is not None
    converter = configure_int8(tflite_converter(source), calib, options, progress, "calibrating tflite-int8")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    return _convert(converter, "tflite-int8 with float ops", "int8")


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


def _int16x8(source: Any, calib: np.ndarray | None, progress: Progress, float_ops: bool) -> bytes:
    import tensorflow as tf

    assert calib is not None
    converter = tflite_converter(source)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative(calib, progress, "calibrating tflite-int16x8")
    converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    if float_ops:
        converter.target_spec.supported_ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    return _convert(converter, "tflite-int16x8 with float ops" if float_ops else "tflite-int16x8", "int16x8")


def _tflite_int16x8(source: Any, calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                    progress: Progress = no_progress) -> bytes:
    return _int16x8(source, calib, progress, float_ops=False)


def _tflite_int16x8_float_ops(source: Any, calib: np.ndarray | None, _options: ConversionOptions, _work: Path,
                              progress: Progress = no_progress) -> bytes:
    """int16x8 kernels where they exist, float kernels for the ops that have none."""
    return _int16x8(source, calib, progress, float_ops=True)


# TFLite ops that move between float and integer, or stand for a delegated subgraph.
_BOUNDARY_OPS = frozenset({"QUANTIZE", "DEQUANTIZE", "DELEGATE"})


def tflite_float_ops(data: bytes) -> tuple[str, ...]:
    """Builtin ops of a quantized TFLite model that read or write float tensors (sorted, unique).

    The TFLite converter keeps an op without an integer kernel (SIN, FLOOR, ...) in
    float even when asked for integer-only ops, with (de)quantize ops around it (and
    sometimes a neighbour, such as a CONCATENATION of its output), so a "full integer"
    model can carry float kernels; this finds them.
    """
    from edgekit.runtime.backends import tflite_interpreter_class

    interpreter_class, _package = tflite_interpreter_class()
    with native_stderr_captured():
        interpreter = interpreter_class(model_content=bytes(data))
    tensors = {int(t["index"]): np.dtype(t["dtype"]) for t in interpreter.get_tensor_details()}
    floats = {np.dtype(np.float32), np.dtype(np.float16)}
    found = set()
    for op in interpreter._get_ops_details():  # noqa: SLF001 - the only op listing the API offers
        name = str(op["op_name"])
        touched = [*op["inputs"], *op["outputs"]]
        if name not in _BOUNDARY_OPS and any(tensors.get(int(i)) in floats for i in touched if int(i) >= 0):
            found.add(name)
    return tuple(sorted(found))


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
        raise conversion_error("onnx-fp32", exc) from exc
    unknown = unknown_onnx_ops(proto)
    if unknown:  # tf2onnx logs "Unsupported ops" and leaves the TensorFlow op in the graph
        raise ConversionError(f"onnx-fp32: {op_reason(unknown, 'Unsupported ops', 'fp32')}", unknown)
    return canonical_onnx(proto).SerializeToString()


def unknown_onnx_ops(model: Any) -> tuple[str, ...]:
    """Op types in the default ONNX domain that ONNX does not define (tf2onnx leaves a
    TensorFlow op it cannot convert in the graph under its own name)."""
    import onnx

    return tuple(dict.fromkeys(node.op_type for node in model.graph.node
                               if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type)))


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
            # The trailing "_" matters: onnxruntime.quantization names a copy of an
            # initializer NAME + digits ("t47" -> "t478"), which would collide with another
            # tensor; "t47_" + digits never looks like one of these names.
            mapping[old] = f"t{len(mapping)}_"
        return mapping[old]

    for index, node in enumerate(graph.node):
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
        node.name = f"{node.op_type}_{index}"
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for info in graph.value_info:
        info.name = rename(info.name)
    ordered = sorted(graph.initializer, key=lambda t: int(t.name[1:-1]) if t.name[1:-1].isdigit() else -1)
    copies = [type(t)() for t in ordered]
    for copy, tensor in zip(copies, ordered, strict=True):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    return model


def _onnx_export(source: Any, opset: int) -> bytes:
    """onnx-fp32 bytes, exported once per source and opset (a failure too: onnx-int8 needs it)."""
    def make() -> bytes | ConversionError:
        try:
            return onnx_fp32_bytes(source, opset)
        except ConversionError as exc:
            return exc

    result = source.cached(f"onnx-fp32-opset{opset}", make)
    if isinstance(result, ConversionError):
        raise ConversionError(str(result), result.ops)
    return result


def _onnx_fp32(source: Any, _calib: np.ndarray | None, options: ConversionOptions, _work: Path,
               _progress: Progress = no_progress) -> bytes:
    return _onnx_export(source, options.opset)


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


def _onnx_quantize(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
                   progress: Progress, mode: str) -> bytes:
    """onnx-fp32 quantized by onnxruntime.quantization: ``static`` QDQ (calibrated) or ``dynamic``."""
    quantization = require("onnxruntime.quantization", "quantizing ONNX models")
    fp32 = _onnx_export(source, options.opset)
    what = "onnx-int8" if mode == "static" else "onnx-int8 (dynamic)"
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        src, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        try:
            # chdir: when symbolic shape inference gives up, onnxruntime saves its partial
            # model as sym_shape_infer_temp.onnx (plus a .data file) in the working directory.
            with quiet_converter(), contextlib.chdir(tmp):
                try:
                    quantization.shape_inference.quant_pre_process(str(src), str(pre))
                except Exception:  # noqa: BLE001 - sympy missing, or symbolic shape inference gave up
                    # (a Transformer's reshapes with a dynamic batch: "Incomplete symbolic shape
                    # inference"); ONNX's own shape inference is enough for quantization.
                    quantization.shape_inference.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
                if mode == "dynamic":
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
            raise conversion_error(what, exc, "int8") from exc
        return out.read_bytes()


def _onnx_int8(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
               progress: Progress = no_progress) -> bytes:
    return _onnx_quantize(source, calib, options, work, progress, "static")


def _onnx_int8_dynamic(source: Any, calib: np.ndarray | None, options: ConversionOptions, work: Path,
                       progress: Progress = no_progress) -> bytes:
    return _onnx_quantize(source, calib, options, work, progress, "dynamic")


@dataclasses.dataclass(frozen=True)
class Form:
    """One way of producing a variant.

    Attributes:
        precision: what the produced file is (the manifest's ``precision``): ``int8``
            full integer; ``int8-float-ops`` int8 kernels plus float kernels for ops
            without one (float input and output); ``dynamic-int8`` int8 weights with
            float activations; ``int16x8-float-ops`` likewise for int16x8.
        description: for the report, e.g. "int8 with float fallback ops (float I/O)".
        build: ``(source, calibration, options, workdir, progress) -> model bytes``.
    """

    precision: str
    description: str
    build: Callable[..., bytes]


def _forms_int8(options: ConversionOptions) -> tuple[Form, ...]:
    if options.float_nodes:  # auto-fallback's own selection: nothing to substitute
        return (Form("int8-mixed", "int8 with the named tensors in float", _tflite_int8),)
    return (Form("int8", "full integer int8", _tflite_int8),
            Form("int8-float-ops", "int8 with float fallback ops (float input and output)", _tflite_int8_float_ops),
            Form("dynamic-int8", "dynamic range (int8 weights, float activations)", _tflite_int8_dynamic))


def _forms_onnx_int8(options: ConversionOptions) -> tuple[Form, ...]:
    dynamic = Form("dynamic-int8", "dynamic quantization (int8 weights, activations quantized at run time)",
                   _onnx_int8_dynamic)
    if options.onnx_int8 == "dynamic":
        return (dynamic,)
    return (Form("int8", "static QDQ int8 (calibrated)", _onnx_int8), dynamic)


def _single(precision: str, description: str, build: Callable[..., bytes]) -> Callable[..., tuple[Form, ...]]:
    form = (Form(precision, description, build),)
    return lambda _options: form


@dataclasses.dataclass(frozen=True)
class VariantKind:
    """A bundle variant: its nominal precision and the forms it may take, best first.

    Attributes:
        forms: ``options -> forms``; `edgekit convert` keeps the first form that converts
            and runs, and reports any other as a substitute.
    """

    name: str
    format: str
    precision: str
    calibrated: bool
    description: str
    forms: Callable[[ConversionOptions], tuple[Form, ...]]


VARIANTS: dict[str, VariantKind] = {
    v.name: v
    for v in (
        VariantKind("tflite-fp32", "tflite", "fp32", False, "TFLite, float32",
                    _single("fp32", "float32", _tflite_fp32)),
        VariantKind("tflite-fp16", "tflite", "fp16", False, "TFLite, float16 weights",
                    _single("fp16", "float16 weights", _tflite_fp16)),
        VariantKind("tflite-dynamic", "tflite", "dynamic-int8", False, "TFLite, dynamic-range int8 weights",
                    _single("dynamic-int8", "dynamic range (int8 weights, float activations)", _tflite_dynamic)),
        VariantKind("tflite-int8", "tflite", "int8", True, "TFLite, full integer int8 (calibrated)", _forms_int8),
        VariantKind("tflite-int16x8", "tflite", "int16x8", True, "TFLite, int16 activations, int8 weights",
                    lambda _options: (Form("int16x8", "int16 activations, int8 weights", _tflite_int16x8),
                                      Form("int16x8-float-ops", "int16x8 with float fallback ops",
                                           _tflite_int16x8_float_ops))),
        VariantKind("onnx-fp32", "onnx", "fp32", False, "ONNX, float32 (tf2onnx)",
                    _single("fp32", "float32", _onnx_fp32)),
        VariantKind("onnx-int8", "onnx", "int8", True, "ONNX, int8 (onnxruntime.quantization)", _forms_onnx_int8),
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

