"""Loading the model a user brings: Keras 3 `.keras`, Keras 2 `.h5`, SavedModel directories.

Models are never executed before their configuration has been checked for code
(`edgekit.inspection.keras.find_code`): a Lambda layer or an object from outside Keras
is refused (exit 3) unless the user passes ``--trust-model-code``. Keras 2 `.h5` files
whose layer configurations Keras 3 rejects are adapted (keys Keras 3 no longer accepts,
when they hold their neutral value, are dropped) and every adaptation is reported.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect as pyinspect
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import sha256_file
from edgekit.convert.outputs import signature_order
from edgekit.errors import InputError, UnsafeModelError
from edgekit.inspection import detect_kind
from edgekit.inspection.keras import find_code, keras_load_error, read_keras_config
from edgekit.keras_env import import_keras, stdout_to_stderr
from edgekit.spec import DType, TensorSpec

# Keys Keras 2 wrote that Keras 3 rejects, with the value that makes dropping them a no-op.
NEUTRAL_KEYS: dict[str, Any] = {"groups": 1, "time_major": False}
_LAYER_BASE_KEYS = {"input_dim", "input_shape", "batch_input_shape", "batch_size", "batch_shape"}


@dataclasses.dataclass(frozen=True)
class LoadConfig:
    """How to load the source model.

    Attributes:
        path: `.keras`, `.h5` or a SavedModel directory.
        trust_model_code: allow models that carry code (Lambda layers, custom modules).
        input_shape: input shape without the batch dimension, for models whose inputs
            are not fully defined.
        export: also export the SavedModel the converters read (`edgekit prune` needs
            only the Keras model).
    """

    path: Path
    trust_model_code: bool = False
    input_shape: tuple[int, ...] | None = None
    export: bool = True


def source_kind(path: Path) -> str:
    """``keras`` (.keras/.h5) or ``savedmodel``; anything else is refused with a clear line
    (`edgekit.convert.run.convert` sends a .tflite or .onnx to `edgekit.convert.foreign`
    before it asks).

    Raises:
        InputError: missing path, unsupported type, or a bundle instead of a model.
    """
    kind = detect_kind(path)
    if kind == "bundle":
        raise InputError(f"{path}", expected="a model to convert (.keras, .h5, SavedModel, or an exported .tflite "
                         "or .onnx)", found="an edgekit bundle", hint="it is converted already: run, bench or "
                         "inspect it as it is")
    if kind not in ("keras", "savedmodel"):  # .tflite/.onnx are packed by edgekit.convert.foreign instead
        raise InputError(f"{path}", expected="a .keras, .h5 or SavedModel model to convert",
                         found=f"a {kind} file", hint="pack an exported .tflite or .onnx with edgekit convert "
                         "MODEL --preprocess SPEC.yaml -o OUT.edgekit")
    return kind


def work_dir(kind: str) -> Path:
    """A private working folder ``edgekit-KIND-PID-XXXX`` in the temp directory, after
    removing those of dead processes (a killed convert cannot clean up after itself)."""
    from edgekit.bundle.atomic import pid_alive

    root = Path(tempfile.gettempdir())
    try:
        leftovers = list(root.glob(f"edgekit-{kind}-*-*"))
    except OSError:
        leftovers = []
    for folder in leftovers:
        pid = folder.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"edgekit-{kind}-{os.getpid()}-"))


class SourceModel:
    """The float reference model, plus a SavedModel export of it for the converters.

    Use as a context manager; the temporary SavedModel is removed on exit.
    """

    def __init__(self, config: LoadConfig) -> None:
        self.config = config
        self.path = config.path
        self.kind = source_kind(config.path)
        self.format = "savedmodel" if self.kind == "savedmodel" else ("h5" if config.path.suffix.lower() in (".h5", ".hdf5") else "keras")
        self.sha256 = sha256_file(config.path) if config.path.is_file() else _dir_sha256(config.path)
        self.adaptations: list[str] = []
        self._tmp = work_dir("convert")
        self.keras_model: Any = None
        self._cache: dict[str, Any] = {}
        self.signature: Any = None
        self.signature_input: str | None = None
        try:
            self._load()
        except BaseException:
            self.close()
            raise

    # -- context management ------------------------------------------------------

    def __enter__(self) -> SourceModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    # -- loading ------------------------------------------------------------------

    def _load(self) -> None:
        if self.kind == "keras":
            config = self._check_code()  # before TensorFlow is even imported
        keras = import_keras()
        import tensorflow as tf

        if self.kind == "keras":
            self.keras_model = self._load_keras(keras, config)
            inputs = list(self.keras_model.inputs or [])
            if len(inputs) != 1:
                raise InputError(f"model {self.path.name}", expected="exactly one input", found=f"{len(inputs)} inputs",
                                 hint="multi-input models are not supported by edgekit convert yet")
            shape = tuple(inputs[0].shape)
            dtype = str(getattr(inputs[0].dtype, "name", inputs[0].dtype))
        else:
            shape, dtype = self._savedmodel_input(tf)
        self.input_shape = self._resolve_shape(shape)
        self.input_dtype = DType.parse(dtype)
        if not self.config.export:
            return
        self.saved_model_dir = self._tmp / "saved_model"
        spec = tf.TensorSpec((None, *self.input_shape), tf.as_dtype(self.input_dtype.value), name="input")
        try:
            if self.keras_model is not None:
                with stdout_to_stderr():
                    self.keras_model.export(str(self.saved_model_dir), format="tf_saved_model",
                                            input_signature=[spec], verbose=False)
            else:
                self._export_signature(tf, spec)
        except (tf.errors.OutOfRangeError, tf.errors.ResourceExhaustedError, OSError) as exc:
            # TensorFlow reports a full disk (ENOSPC) or a file size limit (EFBIG) this way
            text = getattr(exc, "message", None) or getattr(exc, "strerror", None) or str(exc)
            raise InputError(f"temporary export in {self._tmp.parent}", expected="room for the model's temporary "
                             "SavedModel", found=str(text).strip().splitlines()[0] if str(text).strip() else
                             type(exc).__name__, hint="free disk space, or set TMPDIR to a disk with room") from exc
        loaded = tf.saved_model.load(str(self.saved_model_dir))
        self._loaded = loaded  # keeps the variables the signature function captures alive
        self.signature = loaded.signatures["serving_default"]
        _args, kwargs = self.signature.structured_input_signature
        self.signature_input = next(iter(kwargs))
        outputs = self.signature.structured_outputs
        # The model's own output order (Keras: list order, or sorted dict keys), which
        # every variant and the manifest follow; not string order (output_10 < output_2).
        self.output_names = signature_order(list(outputs))
        self.inputs = (TensorSpec("input", (-1, *self.input_shape), self.input_dtype),)
        self.outputs = tuple(
            TensorSpec(name, tuple(-1 if d is None else int(d) for d in outputs[name].shape.as_list()),
                       DType.parse(outputs[name].dtype.name))
            for name in self.output_names
        )
        if self.keras_model is not None:
            self._check_keras_order()

    def _check_keras_order(self) -> None:
        """The signature order must be the Keras model's order (shapes are the witness)."""
        tensors = list(getattr(self.keras_model, "outputs", None) or [])
        if not tensors:  # a subclassed model does not say; the signature order stands
            return
        keras_shapes = [tuple(-1 if d is None else int(d) for d in t.shape) for t in tensors]
        ours = [spec.shape for spec in self.outputs]
        if len(keras_shapes) != len(ours) or any(
                len(k) != len(o) or any(a != b and -1 not in (a, b) for a, b in zip(k, o, strict=True))
                for k, o in zip(keras_shapes, ours, strict=True)):
            raise InputError(f"model {self.path.name} outputs", expected=f"the exported outputs in the Keras order "
                             f"{keras_shapes}", found=f"{ours} (signature keys {self.output_names})",
                             hint="return a list of outputs from the model instead of a nested structure")

    def _check_code(self) -> dict[str, Any]:
        config, _metadata = read_keras_config(self.path)
        code = find_code(config)
        if code and not self.config.trust_model_code:
            raise UnsafeModelError(
                f"model {self.path.name} carries code ({', '.join(code)})",
                expected="a model without Lambda layers or objects from outside Keras",
                found="code that loading would execute",
                hint="pass --trust-model-code only if you trust whoever made this file",
            )
        return config

    def _load_keras(self, keras: Any, config: dict[str, Any]) -> Any:
        safe_mode = not self.config.trust_model_code
        if not safe_mode:
            keras.config.enable_unsafe_deserialization()
        try:
            with stdout_to_stderr():
                return keras.saving.load_model(str(self.path), compile=False, safe_mode=safe_mode)
        except Exception as exc:  # Keras raises assorted types for configs it rejects
            first_error = exc
        if self.format != "h5":
            raise InputError(f"Keras model {self.path.name}", expected="a model Keras 3 can load",
                             found=keras_load_error(first_error), hint="re-save it with Keras 3") from first_error
        adapted, changes = adapt_keras2_config(config, keras)
        if not changes:
            raise InputError(f"Keras model {self.path.name}", expected="a model Keras 3 can load",
                             found=keras_load_error(first_error),
                             hint="no known Keras 2 incompatibility found to adapt") from first_error
        copy = self._tmp / self.path.name
        shutil.copyfile(self.path, copy)
        import h5py

        with h5py.File(copy, "r+") as handle:
            handle.attrs["model_config"] = json.dumps(adapted)
        try:
            with stdout_to_stderr():
                model = keras.saving.load_model(str(copy), compile=False, safe_mode=safe_mode)
        except Exception as exc:
            raise InputError(f"Keras model {self.path.name}", expected="a model Keras 3 can load after adaptation",
                             found=keras_load_error(exc), hint=f"adaptations tried: {'; '.join(changes)}") from exc
        self.adaptations.extend(changes)
        return model

    def _savedmodel_input(self, tf: Any) -> tuple[tuple[Any, ...], str]:
        try:
            loaded = tf.saved_model.load(str(self.path))
        except Exception as exc:  # corrupt protos, missing variables
            first = " ".join(str(exc).split())[:300]
            raise InputError(f"SavedModel {self.path}", expected="a loadable SavedModel", found=first,
                             hint="the directory is incomplete or corrupt; re-export it") from exc
        signatures = dict(getattr(loaded, "signatures", {}) or {})
        if not signatures:
            raise InputError(f"SavedModel {self.path}", expected="a serving signature", found="none")
        key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
        fn = signatures[key]
        _args, kwargs = fn.structured_input_signature
        if len(kwargs) != 1:
            raise InputError(f"SavedModel {self.path}", expected="exactly one input", found=f"{len(kwargs)} inputs")
        self._source_fn = fn
        self._source_loaded = loaded
        self._source_input = next(iter(kwargs))
        spec = kwargs[self._source_input]
        return tuple(spec.shape.as_list()), spec.dtype.name

    def _export_signature(self, tf: Any, spec: Any) -> None:
        fn, name = self._source_fn, self._source_input

        @tf.function(input_signature=[spec])
        def serve(x: Any) -> Any:
            return fn(**{name: x})

        module = tf.Module()
        module.source = self._source_loaded
        tf.saved_model.save(module, str(self.saved_model_dir), signatures={"serving_default": serve})

    def _resolve_shape(self, shape: tuple[Any, ...]) -> tuple[int, ...]:
        body = tuple(shape[1:])
        if self.config.input_shape is not None:
            given = tuple(self.config.input_shape)
            if len(given) != len(body) or any(b is not None and b != g for b, g in zip(body, given, strict=True)):
                raise InputError("--input-shape", expected=f"a shape compatible with the model input {_fmt(body)}",
                                 found=_fmt(given))
            return given
        if any(d is None for d in body):
            raise InputError(f"model {self.path.name} input", expected="a fixed shape (apart from the batch)",
                             found=f"shape {_fmt((None, *body))}",
                             hint="pass --input-shape, e.g. --input-shape " + ",".join("49" if d is None else str(d) for d in body))
        return tuple(int(d) for d in body)

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        """Memoize an expensive derived artifact (e.g. the ONNX export shared by two variants)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    # -- inference ----------------------------------------------------------------

    def predict(self, x: np.ndarray, batch_size: int = 64) -> list[np.ndarray]:
        """Float reference outputs for a batch of model inputs (one array per output)."""
        import tensorflow as tf

        chunks: list[list[np.ndarray]] = []
        for start in range(0, len(x), batch_size):
            batch = tf.constant(x[start : start + batch_size])
            result = self.signature(**{self.signature_input: batch})
            chunks.append([np.asarray(result[name]) for name in self.output_names])
        return [np.concatenate([c[i] for c in chunks]) for i in range(len(self.output_names))]


def _fmt(shape: tuple[Any, ...]) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _dir_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode() + b"\0")
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def _accepted_keys(cls: type, keras: Any) -> set[str] | None:
    """Constructor keyword names a Keras 3 layer class accepts (None: it takes **kwargs freely)."""
    names: set[str] = set(_LAYER_BASE_KEYS)
    for klass in cls.__mro__:
        if not isinstance(klass, type) or not issubclass(klass, keras.layers.Layer):
            continue
        with contextlib.suppress(TypeError, ValueError):
            for param in pyinspect.signature(klass.__init__).parameters.values():
                if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD) and param.name != "self":
                    names.add(param.name)
        if klass is keras.layers.Layer:
            break
    return names


def adapt_keras2_config(config: dict[str, Any], keras: Any) -> tuple[dict[str, Any], list[str]]:
    """Drop keys Keras 3 rejects from Keras 2 layer configs, when they hold a neutral value.

    Returns:
        ``(adapted config, human-readable changes)``.

    Raises:
        InputError: a rejected key holds a value that changes the layer's meaning.
    """
    adapted = json.loads(json.dumps(config))
    changes: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            class_name = node.get("class_name")
            cfg = node.get("config")
            cls = getattr(keras.layers, class_name, None) if isinstance(class_name, str) else None
            if isinstance(cls, type) and isinstance(cfg, dict) and "layers" not in cfg:
                accepted = _accepted_keys(cls, keras)
                for key in sorted(set(cfg) - accepted):
                    value = cfg[key]
                    neutral = key in NEUTRAL_KEYS and value == NEUTRAL_KEYS[key]
                    if neutral or value is None:
                        del cfg[key]
                        changes.append(f"{class_name} '{cfg.get('name', '?')}': dropped {key}={json.dumps(value)} (not a Keras 3 argument)")
                    else:
                        raise InputError(
                            f"Keras 2 layer {class_name} '{cfg.get('name', '?')}'",
                            expected=f"arguments Keras 3 accepts, or {key} at its neutral value",
                            found=f"{key}={json.dumps(value)}",
                            hint="this layer cannot be adapted without changing what it computes",
                        )
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(adapted)
    return adapted, changes
