"""Inference backends: LiteRT (ai-edge-litert, tflite-runtime, tf.lite) and ONNX Runtime.

A backend owns one interpreter or session. Calls are serialized with a lock, so one
interpreter is never used by two threads at once; for parallel inference open one
backend per thread.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._optional import require
from edgekit.errors import InputError, MissingDependencyError

TFLITE_PACKAGES = ("ai-edge-litert", "tflite-runtime", "tensorflow")
_TFLITE_MODULES = {"ai-edge-litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}


def tflite_interpreter_class(package: str | None = None) -> tuple[Any, str]:
    """The best available TFLite interpreter class and the name of its package.

    Order: ai-edge-litert, tflite-runtime (which fails with numpy 2), then tf.lite as
    a last resort (only when TensorFlow is installed anyway). `package` forces one.

    Raises:
        MissingDependencyError: none of them (or not the forced one) imports.
    """
    errors = []
    for name in (package,) if package else TFLITE_PACKAGES:
        try:
            if name == "tensorflow":
                import tensorflow as tf  # noqa: PLC0415 - last resort, only if already installed

                return tf.lite.Interpreter, "tensorflow"
            if name not in _TFLITE_MODULES:
                raise ImportError(f"unknown TFLite package {name!r}; expected one of {list(TFLITE_PACKAGES)}")
            mod = __import__(_TFLITE_MODULES[name], fromlist=["Interpreter"])
            return mod.Interpreter, name
        except (ImportError, AttributeError) as exc:  # includes numpy-ABI failures
            errors.append(f"{name}: {exc}")
    raise MissingDependencyError(
        "running .tflite models needs a TFLite interpreter",
        expected="ai-edge-litert, tflite-runtime or tensorflow",
        found="none importable (" + "; ".join(errors) + ")",
        hint='install it with: pip install "edgekit[litert]"',
    )


def output_order(what: str, available: Sequence[str], wanted: Sequence[str] | None) -> list[int]:
    """Positions in `available` (the model file's output names, in its order) of the
    `wanted` names (the manifest's order); the file's own order when `wanted` is None.

    Raises:
        InputError: a wanted name is missing or the counts differ.
    """
    if wanted is None or list(wanted) == list(available):
        return list(range(len(available)))
    positions = {name: i for i, name in enumerate(available)}
    if len(wanted) != len(available) or len(set(wanted)) != len(wanted) or any(n not in positions for n in wanted):
        raise InputError(f"{what} outputs", expected=f"the outputs the manifest lists, {list(wanted)}",
                         found=f"{list(available)}", hint="the bundle's manifest does not describe this model file")
    return [positions[name] for name in wanted]


class Backend(abc.ABC):
    """One loaded model. `run` takes input arrays in model order and returns outputs in
    the order given when it was opened (the manifest's), else in the file's order."""

    name: str = "backend"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    input_count: int = 0

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; serialized per backend.

        Raises:
            ValueError: the number of input arrays differs from the model's inputs.
        """
        if len(inputs) != self.input_count:
            raise ValueError(f"{self.name}: expected {self.input_count} input array(s), got {len(inputs)}")
        with self._lock:
            return self._run(inputs)

    @abc.abstractmethod
    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One invocation, called with the backend's lock held."""


class TFLiteBackend(Backend):
    """TFLite through the verifying loader; resizes the batch dimension on demand."""

    def __init__(self, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None) -> None:
        super().__init__()
        interpreter_class, self.package = tflite_interpreter_class(package)
        self.name = f"tflite ({self.package})"
        try:
            self.interpreter = interpreter_class(model_content=bytes(data), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InputError("TFLite model", expected="a model the interpreter accepts", found=str(exc)) from exc
        details = self.interpreter.get_output_details()
        self._order = output_order("TFLite model", [str(d["name"]) for d in details], outputs)
        self._refresh()

    def _refresh(self) -> None:
        """Cache what the hot path needs: indices, shapes and dtypes of the tensors."""
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        self.input_count = len(self.inputs)
        self._in = [(int(d["index"]), tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"])) for d in self.inputs]
        self._out = [int(self.outputs[k]["index"]) for k in self._order]

    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        it = self.interpreter
        if len(inputs) == 1:  # the common case, without the per-input loops (hot path)
            index, shape, dtype = self._in[0]
            array = inputs[0]
            if array.shape == shape:
                if array.dtype != dtype or not array.flags.c_contiguous:
                    array = np.ascontiguousarray(array, dtype=dtype)
                it.set_tensor(index, array)
                it.invoke()
                return [it.get_tensor(i) for i in self._out]  # get_tensor returns a copy
        if any(shape != array.shape for (_i, shape, _d), array in zip(self._in, inputs, strict=True)):
            for (index, shape, _d), array in zip(self._in, inputs, strict=True):
                if shape != array.shape:
                    it.resize_tensor_input(index, array.shape, strict=False)
            it.allocate_tensors()
            self._refresh()
        for (index, _shape, dtype), array in zip(self._in, inputs, strict=True):
            if array.dtype != dtype or not array.flags.c_contiguous:
                array = np.ascontiguousarray(array, dtype=dtype)
            it.set_tensor(index, array)
        it.invoke()
        return [it.get_tensor(index) for index in self._out]  # get_tensor returns a copy


class OnnxBackend(Backend):
    """ONNX Runtime on the CPU execution provider.

    External data (see `onnxdata`): refused in bytes from a bundle (`folder` None); for a
    bare file, read by edgekit from inside `folder` and given to ONNX Runtime in memory.
    """

    def __init__(self, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None, folder: Path | None = None) -> None:
        super().__init__()
        from edgekit.runtime.onnxdata import external_files

        external = external_files(data, folder, "ONNX model")  # before any native parser sees the bytes
        ort = require("onnxruntime", "running .onnx models")
        self.package = "onnxruntime"
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if external:
            if not hasattr(options, "add_external_initializers_from_files_in_memory"):
                raise InputError("ONNX model with external data", expected="onnxruntime 1.18 or newer",
                                 found=f"onnxruntime {ort.__version__}", hint='pip install -U "onnxruntime>=1.18"')
            options.add_external_initializers_from_files_in_memory(
                list(external), list(external.values()), [len(b) for b in external.values()])
        try:
            self.session = ort.InferenceSession(bytes(data), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise InputError("ONNX model", expected="a model ONNX Runtime accepts", found=str(exc)) from exc
        self.name = f"onnxruntime {ort.__version__}"
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_count = len(self.input_names)
        names = [o.name for o in self.session.get_outputs()]
        order = output_order("ONNX model", names, outputs)
        self.output_names = [names[k] for k in order]
        self._fetch = None if order == list(range(len(names))) else self.output_names  # None: all, file order

    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(self._fetch, dict(zip(self.input_names, inputs, strict=True))))


BACKENDS: dict[str, Callable[..., Backend]] = {
    "tflite": TFLiteBackend,
    "onnx": OnnxBackend,
}


def open_backend(fmt: str, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None, folder: Path | None = None) -> Backend:
    """Open verified model bytes of format `fmt` (``tflite`` or ``onnx``), optionally with
    a forced interpreter package (see `TFLITE_PACKAGES`).

    Args:
        outputs: output tensor names in the order `run` returns them (a variant's
            manifest outputs); default: the model file's order.
        folder: the folder of a bare model file, where ONNX external data may live; None
            for bytes from a bundle.

    Raises:
        InputError: unknown format, bytes the interpreter refuses, or `outputs` names
            that are not the model's.
        UnsafeModelError: ONNX external data in a bundle, or leaving `folder`.
    """
    try:
        factory = BACKENDS[fmt]
    except KeyError:
        raise InputError(f"unrecognized model format={fmt!r}", expected=f"one of {sorted(BACKENDS)}",
                         found=repr(fmt)) from None
    if fmt == "onnx":
        return OnnxBackend(data, threads=threads, package=package, outputs=outputs, folder=folder)
    return factory(data, threads=threads, package=package, outputs=outputs)


BACKEND_NAMES = {"litert": ("tflite", "ai-edge-litert"), "tflite-runtime": ("tflite", "tflite-runtime"),
                 "tf-lite": ("tflite", "tensorflow"), "onnxruntime": ("onnx", None)}


def installed_backends() -> dict[str, str | None]:
    """Which model formats can run here, and with which package (None: cannot)."""
    import importlib.util

    found: dict[str, str | None] = {"tflite": None, "onnx": None}
    for name in ("ai-edge-litert", "tflite-runtime"):
        module = _TFLITE_MODULES[name].split(".")[0]
        if importlib.util.find_spec(module) is not None:
            found["tflite"] = name
            break
    if found["tflite"] is None and importlib.util.find_spec("tensorflow") is not None:
        found["tflite"] = "tensorflow"
    if importlib.util.find_spec("onnxruntime") is not None:
        found["onnx"] = "onnxruntime"
    return found
