"""A model edgekit did not make: a ``.tflite`` or ``.onnx`` someone else exported.

`ForeignModel` stands where `edgekit.convert.source.SourceModel` stands for a trained
model: it is the reference every variant is measured against, and it is itself the
bundle's first variant, packed byte for byte. It is verified before anything runs it:
the TFLite flatbuffer verifier (``model_content=``) or ``onnx.checker``, in a child
process (`edgekit.inspection.isolate`), then an interpreter session opened on the bytes.
What it is (its variant name and precision) is read from its tensors and operators.

    with ForeignModel(ForeignConfig(Path("kws.tflite"))) as model:
        model.variant_name        # "tflite-fp32"
        model.predict(x)          # float outputs through the runtime backend
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import sha256_bytes
from edgekit.errors import InputError
from edgekit.inspection import detect_kind
from edgekit.inspection.isolate import describe_isolated
from edgekit.inspection.report import ModelInfo
from edgekit.spec import DType

FOREIGN_KINDS = ("tflite", "onnx")
_INTEGER_IO = (DType.INT8, DType.UINT8, DType.INT16)
# ONNX operators that only a quantized graph holds.
_ONNX_QUANTIZED_OPS = frozenset({"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger",
                                 "MatMulInteger", "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul",
                                 "QLinearAveragePool", "QLinearGlobalAveragePool", "QLinearSigmoid",
                                 "QLinearLeakyRelu", "QLinearConcat", "QLinearSoftmax"})


def is_foreign(path: Path) -> bool:
    """Whether `path` is a model file edgekit packs as it is (``.tflite``/``.onnx``)."""
    return path.is_file() and path.suffix.lower() in (".tflite", ".onnx")


@dataclasses.dataclass(frozen=True)
class ForeignConfig:
    """How to open the given model.

    Attributes:
        path: the ``.tflite`` or ``.onnx`` file.
        input_shape: input shape without the batch, for inputs with undefined dimensions.
        timeout_s: how long the verifier may take before it is killed.
    """

    path: Path
    input_shape: tuple[int, ...] | None = None
    timeout_s: float = 600.0


def identify(fmt: str, info: ModelInfo, data: bytes) -> tuple[str, str]:
    """The variant name and precision of a model, from its tensors and operators.

    TFLite: a quantized integer input is ``tflite-int8``; float input with QUANTIZE ops is
    int8 with float I/O (``tflite-int8``, precision ``int8`` or ``int8-float-ops`` when
    some kernels read float tensors); float16 weights ``tflite-fp16``; int8 weights with
    float activations ``tflite-dynamic``; else ``tflite-fp32``. ONNX: quantized operators
    make ``onnx-int8`` (``dynamic-int8`` with DynamicQuantizeLinear), a float16 input
    ``onnx-fp16``, else ``onnx-fp32``.
    """
    ops = set(info.operators)
    first = info.inputs[0]
    if fmt == "onnx":
        if ops & _ONNX_QUANTIZED_OPS:
            return "onnx-int8", "dynamic-int8" if "DynamicQuantizeLinear" in ops else "int8"
        if first.dtype is DType.FLOAT16:
            return "onnx-fp16", "fp16"
        return "onnx-fp32", "fp32"
    weights = dict(info.details.get("weight_dtypes") or {})
    if (first.dtype in _INTEGER_IO and first.quantization is not None) or "QUANTIZE" in ops:
        if first.dtype is DType.INT16:
            return "tflite-int16x8", "int16x8"
        from edgekit.convert.variants import tflite_float_ops

        return "tflite-int8", "int8-float-ops" if tflite_float_ops(data) else "int8"
    if weights.get("float16"):
        return "tflite-fp16", "fp16"
    if weights.get("int8"):
        return "tflite-dynamic", "dynamic-int8"
    return "tflite-fp32", "fp32"


class ForeignModel:
    """A verified foreign model: its bytes, tensors, what it is, and a way to run it.

    Quacks like `SourceModel` where `edgekit.convert.run` needs it (``format``,
    ``sha256``, ``adaptations``, ``input_shape``, ``inputs``, ``outputs``, ``predict``,
    ``cached``); use it as a context manager.

    Attributes:
        data: the model bytes, as given (they become the bundle's first variant).
        info: what the verifier read from it (`edgekit.inspection`).
        variant_name / precision: what it is (see `identify`).
    """

    foreign = True

    def __init__(self, config: ForeignConfig) -> None:
        self.config = config
        self.path = config.path
        kind = detect_kind(config.path)
        if kind not in FOREIGN_KINDS:
            raise InputError(f"{config.path}", expected="a .tflite or .onnx model", found=f"a {kind} file")
        self.format = self.kind = kind
        self.data = config.path.read_bytes()
        self.sha256 = sha256_bytes(self.data)
        self.adaptations: list[str] = []
        if kind == "onnx":
            self.data = self._inline_external_data(self.data)
        self._cache: dict[str, Any] = {}
        self._backend: Any = None
        # The verifier runs in a child process: a hostile file crashes that, not convert.
        # Bytes, not a path: a bundle's ONNX variant must carry its weights.
        self.info = describe_isolated(kind, data=self.data, label=str(config.path), timeout=config.timeout_s)
        if len(self.info.inputs) != 1:
            raise InputError(f"model {self.path.name}", expected="exactly one input",
                             found=f"{len(self.info.inputs)} inputs ({', '.join(t.name for t in self.info.inputs)})",
                             hint="edgekit bundles run single-input models")
        if not self.info.outputs:
            raise InputError(f"model {self.path.name}", expected="at least one output", found="none")
        self.input_shape = self._resolve_shape(self.info.inputs[0].shape)
        spec = self.info.inputs[0]
        self.input_dtype = spec.dtype
        self.inputs = (spec,)
        self.outputs = tuple(self.info.outputs)
        self.variant_name, self.precision = identify(kind, self.info, self.data)
        self._open()

    # -- context management ------------------------------------------------------

    def __enter__(self) -> ForeignModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._backend = None

    # -- loading ------------------------------------------------------------------

    def _inline_external_data(self, data: bytes) -> bytes:
        """An ONNX model whose weights sit in files next to it, with the weights inside (a
        bundle carries its weights); read as the runtime reads them, so a reference that
        leaves the model's folder is refused (UnsafeModelError, exit 3)."""
        from edgekit.runtime.onnxdata import external_files

        files = external_files(data, self.path.parent, f"ONNX model {self.path}")
        if not files:
            return data
        from edgekit._optional import require
        from edgekit.inspection.onnx import inline_external_data

        onnx = require("onnx", "packing an ONNX model with external data")
        try:
            model = onnx.load_model_from_string(data)
            count = inline_external_data(onnx, model, files)
            inlined = model.SerializeToString()
        except (ValueError, OSError) as exc:  # protobuf's 2 GiB limit, a malformed reference
            raise InputError(f"ONNX model {self.path.name}", expected="weights that fit inside one model file (2 GiB)",
                             found=f"{type(exc).__name__}: {exc}"[:300]) from exc
        self.adaptations.append(f"the external data of {count} tensor(s) ({', '.join(sorted(files))}) put inside "
                                "the model: a bundle carries its weights")
        return inlined

    def _resolve_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        if not shape:
            raise InputError(f"model {self.path.name} input", expected="a tensor with a batch dimension",
                             found="a scalar input")
        if shape[0] not in (-1, 1):
            raise InputError(f"model {self.path.name} input", expected="a batch dimension of 1 or undefined",
                             found=f"shape {list(shape)}")
        body = tuple(shape[1:])
        given = self.config.input_shape
        if given is not None:
            if len(given) != len(body) or any(b >= 0 and b != g for b, g in zip(body, given, strict=True)):
                raise InputError("--input-shape", expected=f"a shape compatible with the model input {list(body)}",
                                 found=str(list(given)))
            return tuple(given)
        if any(d < 0 for d in body):
            raise InputError(f"model {self.path.name} input", expected="a fixed shape (apart from the batch)",
                             found=f"shape {list(shape)}",
                             hint="pass --input-shape, e.g. --input-shape " + ",".join("49" if d < 0 else str(d) for d in body))
        return body

    def _open(self) -> None:
        """Open an interpreter on the bytes: the verifier passed, now the runtime must load it."""
        from edgekit._native import native_stderr_captured
        from edgekit.runtime import open_backend

        try:
            with native_stderr_captured():
                self._backend = open_backend(self.format, self.data, threads=1,
                                             outputs=[spec.name for spec in self.outputs])
        except InputError:
            raise
        except Exception as exc:  # noqa: BLE001 - interpreters raise their own types on bad models
            raise InputError(f"model {self.path.name}", expected=f"a model the {self.format} runtime can load",
                             found=f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                             hint="the file is corrupt or uses operators this runtime lacks") from exc

    # -- what convert needs ----------------------------------------------------------

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """Memoize a derived artifact. The ONNX export a float ONNX model would need is the
        model itself, so `edgekit.convert.variants.onnx_int8` quantizes the given bytes."""
        if key.startswith("onnx-fp32-opset") and self.variant_name == "onnx-fp32":
            return self.data
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def predict(self, x: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
        """Float outputs of the given model (one array per output), one sample at a time
        through the runtime backend, inputs quantized and outputs dequantized by its specs."""
        from edgekit.convert.fidelity import run_variant

        del batch_size  # a foreign model may have a fixed batch of 1
        return run_variant(self.format, self.data, self.inputs, self.outputs, x, label=f"running {self.path.name}")


def describe_source(model: ForeignModel) -> dict[str, Any]:
    """The provenance record of a foreign model (``provenance.source`` in the manifest)."""
    details = model.info.details
    return {"path": model.path.name, "sha256": model.sha256, "format": model.format, "foreign": True,
            "size_bytes": len(model.data), "identified_as": model.variant_name, "precision": model.precision,
            "producer": details.get("producer"), "opset": details.get("opset"),
            "signatures": details.get("signatures")}
