"""What every variant plugin shares: `VariantKind` and `Form`, `ConversionOptions` and
the fixed choices of its options (`Int8IO`, `OnnxInt8Mode`), `ConversionError` and the
reading of converters' error messages, and `quiet_converter`.

Imports nothing heavy: TensorFlow, tf2onnx and onnxruntime are imported inside the
functions that use them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import re
import warnings
from collections.abc import Callable, Iterator

from edgekit._native import native_stderr_captured
from edgekit.convert.options import Int8IO, OnnxInt8Mode


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


@dataclasses.dataclass(frozen=True)
class ConversionOptions:
    """Converter settings shared by all variants.

    Attributes:
        int8_io: input/output type of ``tflite-int8``: an `Int8IO` value (``int8`` or
            ``uint8``; plain strings are fine).
        opset: ONNX opset of the ONNX variants.
        onnx_int8: an `OnnxInt8Mode` value: ``static`` (QDQ, calibrated) or ``dynamic``
            quantization for ``onnx-int8`` (plain strings are fine).
        per_channel: per-channel weight quantization for ``tflite-int8`` and ``onnx-int8``.
        float_nodes: TFLite tensor names kept in float in ``tflite-int8`` (auto-fallback).
    """

    int8_io: str = Int8IO.INT8.value
    opset: int = 17
    onnx_int8: str = OnnxInt8Mode.STATIC.value
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


def single(precision: str, description: str, build: Callable[..., bytes]) -> Callable[..., tuple[Form, ...]]:
    """The `VariantKind.forms` of a variant with one form, whatever the options."""
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
