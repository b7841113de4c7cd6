"""Inference backends: LiteRT (ai-edge-litert, tflite-runtime, tf.lite) and ONNX Runtime.

A backend owns one interpreter or session. Calls are serialized with a lock, so one
interpreter is never used by two threads at once; for parallel inference open one
backend per thread.

Model bytes are probed before this process parses them: the flatbuffer verifier and
ONNX Runtime's checks do not stop every malformed model, and a model that crashes the
interpreter (a segmentation fault while it is built or its tensors are allocated, found
by fuzzing) would take the calling process with it. `probe_model` loads the bytes once,
and runs them once on zeros, in a child process; a crash there becomes an `InputError`.
Bytes that passed are remembered by hash (``~/.cache/edgekit/probed``), so a device pays
for the child process once per model, not at every start.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
import signal
import subprocess
import sys
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
    # What the interpreter raises when a model that loaded cannot run (a node fails to
    # prepare or invoke, an input the file's graph refuses); turned into `InputError`.
    _run_failures: tuple[type[BaseException], ...] = (RuntimeError, ValueError)

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run one inference; serialized per backend.

        Raises:
            ValueError: the number of input arrays differs from the model's inputs.
            InputError: the interpreter failed to run the model (a corrupt or
                inconsistent model file; a bundle whose manifest does not describe it).
        """
        if len(inputs) != self.input_count:
            raise ValueError(f"{self.name}: expected {self.input_count} input array(s), got {len(inputs)}")
        with self._lock:
            try:
                return self._run(inputs)
            except self._run_failures as exc:
                shapes = ", ".join(f"{tuple(a.shape)} {a.dtype}" for a in inputs) or "none"
                raise InputError(f"{self.name}: running the model", expected="a model the interpreter can run on "
                                 f"inputs {shapes}", found=_first_line(exc),
                                 hint="the model file is corrupt, or the bundle's manifest does not describe it; "
                                 "rebuild it with edgekit convert") from exc

    @abc.abstractmethod
    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """One invocation, called with the backend's lock held."""


class TFLiteBackend(Backend):
    """TFLite through the verifying loader; resizes the batch dimension on demand."""

    def __init__(self, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None, probe: bool = True) -> None:
        super().__init__()
        interpreter_class, self.package = tflite_interpreter_class(package)
        self.name = f"tflite ({self.package})"
        if probe:
            probe_model("tflite", data, self.package)
        try:
            self.interpreter = interpreter_class(model_content=bytes(data), num_threads=threads)
            self.interpreter.allocate_tensors()
            # Tensor names and shapes come from the file: a name that is not UTF-8 fails here.
            details = self.interpreter.get_output_details()
            names = [str(d["name"]) for d in details]
            self._order = list(range(len(names)))
            self._refresh()
        except _TFLITE_LOAD_FAILURES as exc:
            raise InputError("TFLite model", expected="a model the interpreter accepts", found=_first_line(exc),
                             hint="the file is truncated or corrupt; re-export it") from exc
        self._order = output_order("TFLite model", names, outputs)
        self._out = [int(self.outputs[k]["index"]) for k in self._order]

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


# What the LiteRT Python wrapper raises on model bytes it refuses (the verifier's and the
# allocator's RuntimeError/ValueError, and the decoding of tensor names and details).
_TFLITE_LOAD_FAILURES = (ValueError, RuntimeError, UnicodeDecodeError, IndexError, KeyError, TypeError, OverflowError)


def _first_line(exc: BaseException) -> str:
    """An interpreter's message on one line (they often span several), with its type."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class OnnxBackend(Backend):
    """ONNX Runtime on the CPU execution provider.

    External data (see `onnxdata`): refused in bytes from a bundle (`folder` None); for a
    bare file, read by edgekit from inside `folder` and given to ONNX Runtime in memory.
    """

    def __init__(self, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None, folder: Path | None = None, probe: bool = True) -> None:
        super().__init__()
        from edgekit.runtime.onnxdata import external_files

        external = external_files(data, folder, "ONNX model")  # before any native parser sees the bytes
        ort = require("onnxruntime", "running .onnx models")
        self.package = "onnxruntime"
        if probe:
            probe_model("onnx", data, self.package, folder)
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
            raise InputError("ONNX model", expected="a model ONNX Runtime accepts", found=_first_line(exc)) from exc
        self.name = f"onnxruntime {ort.__version__}"
        try:  # names come from the file: one that is not UTF-8 fails here
            self.input_names = [i.name for i in self.session.get_inputs()]
            names = [o.name for o in self.session.get_outputs()]
        except UnicodeDecodeError as exc:
            raise InputError("ONNX model", expected="UTF-8 tensor names", found=_first_line(exc),
                             hint="the file is corrupt; re-export it") from exc
        self.input_count = len(self.input_names)
        order = output_order("ONNX model", names, outputs)
        self.output_names = [names[k] for k in order]
        self._fetch = None if order == list(range(len(names))) else self.output_names  # None: all, file order
        self._run_failures = (Exception,)  # onnxruntime raises its own types (InvalidArgument, Fail, ...)

    def _run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(self._fetch, dict(zip(self.input_names, inputs, strict=True))))


BACKENDS: dict[str, Callable[..., Backend]] = {
    "tflite": TFLiteBackend,
    "onnx": OnnxBackend,
}


def open_backend(fmt: str, data: bytes, threads: int | None = None, package: str | None = None,
                 outputs: Sequence[str] | None = None, folder: Path | None = None, probe: bool = True) -> Backend:
    """Open verified model bytes of format `fmt` (``tflite`` or ``onnx``), optionally with
    a forced interpreter package (see `TFLITE_PACKAGES`).

    Args:
        outputs: output tensor names in the order `run` returns them (a variant's
            manifest outputs); default: the model file's order.
        folder: the folder of a bare model file, where ONNX external data may live; None
            for bytes from a bundle.
        probe: load the bytes in a child process first (`probe_model`); False only for
            bytes known to be safe (the probe's own child process).

    Raises:
        InputError: unknown format, bytes the interpreter refuses or crashes on, or
            `outputs` names that are not the model's.
        UnsafeModelError: ONNX external data in a bundle, or leaving `folder`.
    """
    try:
        factory = BACKENDS[fmt]
    except KeyError:
        raise InputError(f"unrecognized model format={fmt!r}", expected=f"one of {sorted(BACKENDS)}",
                         found=repr(fmt)) from None
    if fmt == "onnx":
        return OnnxBackend(data, threads=threads, package=package, outputs=outputs, folder=folder, probe=probe)
    return factory(data, threads=threads, package=package, outputs=outputs, probe=probe)


# ---------------------------------------------------------------------------
# probing untrusted model bytes in a child process

PROBE_TIMEOUT_S = 300.0
PROBE_MAX_ELEMENTS = 1 << 24  # inputs larger than this are loaded but not run by the probe
_PROBE_VERSION = "1"  # part of the cache key: bump when the probe does more


def _probe_key(fmt: str, data: bytes, package: str) -> str:
    from importlib import metadata

    version = "?"
    for dist in (package, "tensorflow-cpu"):  # the package names are their distributions' names
        try:
            version = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    digest = hashlib.sha256(f"{_PROBE_VERSION}:{fmt}:{package}:{version}:".encode())
    digest.update(data)
    return digest.hexdigest()


def _probe_cache() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "edgekit" / "probed"


def probe_model(fmt: str, data: bytes, package: str, folder: Path | None = None,
                timeout: float | None = None) -> None:
    """Load `data` once and run it once on zeros in a child process, unless these bytes
    passed before with this interpreter version.

    Raises:
        InputError: the interpreter crashed or hung on the bytes (contained in the child),
            or refused them (the child's own error, e.g. the verifier's).
    """
    timeout = PROBE_TIMEOUT_S if timeout is None else timeout
    key = _probe_key(fmt, data, package)
    marker = _probe_cache() / key
    if marker.exists():
        return
    what = "TFLite model" if fmt == "tflite" else "ONNX model"
    code = "import sys; from edgekit.runtime.backends import _probe_main; sys.exit(_probe_main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, fmt, package, str(folder) if folder is not None else ""]
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    package_root = str(Path(__file__).resolve().parents[2])  # so a source checkout works without an install
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.run(argv, input=bytes(data), capture_output=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(what, expected=f"the interpreter to load it within {timeout:g} s",
                         found="it hung and was killed (in a child process)",
                         hint="the file is corrupt or malicious; do not deploy it") from exc
    except OSError:
        return  # no child processes here (embedded interpreters): load without the probe
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        raise InputError(what, expected="the interpreter to load it and run it once without crashing",
                         found=f"it crashed with {name} (contained in a child process)",
                         hint="the file is corrupt or malicious; do not deploy it")
    reply = None
    for line in reversed(proc.stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            try:
                reply = json.loads(line)
            except ValueError:
                reply = None
            break
    if not isinstance(reply, dict) or not ("ok" in reply or "error" in reply):
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise InputError(what, expected="the interpreter to load it in a child process",
                         found=f"exit code {proc.returncode}: {tail[0][:300]}")
    if "error" in reply:
        from edgekit.errors import EdgekitError

        raise EdgekitError.from_dict(reply["error"])
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass  # a read-only home: probe again next time


def _zeros(specs: list[tuple[tuple[int, ...], Any]]) -> list[np.ndarray] | None:
    arrays = []
    for shape, dtype in specs:
        shape = tuple(max(1, int(d)) for d in shape)
        if int(np.prod(shape, dtype=np.float64)) > PROBE_MAX_ELEMENTS:
            return None
        arrays.append(np.zeros(shape, dtype))
    return arrays


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
               "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
               "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def _probe_main(argv: list[str]) -> int:
    """The probe's child: model bytes on stdin, one JSON line on stdout."""
    from edgekit.errors import EdgekitError

    fmt, package, folder = argv[0], argv[1], argv[2] if len(argv) > 2 else ""
    reply_fd = os.dup(1)
    os.dup2(2, 1)  # interpreters print; keep the reply channel clean
    sys.stdout = sys.stderr
    data = sys.stdin.buffer.read()
    try:
        backend = open_backend(fmt, data, threads=1, package=package if fmt == "tflite" else None,
                               folder=Path(folder) if folder else None, probe=False)
        if isinstance(backend, TFLiteBackend):
            specs = [(tuple(d["shape"]), np.dtype(d["dtype"])) for d in backend.inputs]
        else:
            specs = [(tuple(d if isinstance(d, int) else 1 for d in i.shape), _ORT_DTYPES.get(i.type, np.float32))
                     for i in backend.session.get_inputs()]
        inputs = _zeros(specs)
        if inputs is not None:
            try:
                backend.run(inputs)
            except EdgekitError:
                pass  # a model that loads but refuses zeros: `run` reports that when it happens
        reply: dict[str, Any] = {"ok": True}
    except EdgekitError as exc:
        reply = {"error": exc.to_dict()}
    except Exception as exc:  # noqa: BLE001 - anything else the interpreter raised is bad input
        reply = {"error": InputError("model", expected="a model the interpreter accepts",
                                     found=_first_line(exc)).to_dict()}
    with os.fdopen(reply_fd, "w") as out:
        out.write(json.dumps(reply) + "\n")
    return 0


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
