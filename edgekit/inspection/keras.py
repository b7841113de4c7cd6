"""Describe Keras `.keras` and `.h5` files without executing code they carry.

The configuration is read as plain data first (JSON inside the zip, or the HDF5
``model_config`` attribute) and scanned for code: Lambda layers, serialized Python
functions, and objects from modules outside Keras (module injection). A file that
carries code is described from its configuration only. A clean file is loaded with
Keras 3 ``safe_mode=True`` for exact shapes, parameters and MACs; when Keras 3 refuses
the file (Keras 2 configs with keys it no longer accepts), the configuration-only
description is used and the reason is noted.
"""

from __future__ import annotations

import collections
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit._optional import available, extra_install, require
from edgekit.bundle.archive import ZIP_MEMBER_ERRORS
from edgekit.errors import InputError
from edgekit.inspection.report import ModelInfo
from edgekit.spec import DType, TensorSpec

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_MAX_CONFIG_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------------------
# reading the configuration as data


def read_keras_config(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return (model config, metadata) of a `.keras` or `.h5` file without Keras.

    Raises:
        InputError: the file is not a readable Keras model file.
    """
    if path.suffix.lower() == ".keras":
        return _read_keras_zip(path)
    with path.open("rb") as handle:
        data_head = handle.read(8)
    if data_head != HDF5_MAGIC:
        raise InputError(f"Keras file {path.name}", expected="an HDF5 file", found=f"first bytes {data_head.hex()}",
                         hint="the file is not an .h5 model or is corrupt")
    return _read_h5(path)


def _read_keras_zip(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise InputError(f"Keras file {path.name}", expected="a zip with config.json",
                                 found=f"members {sorted(names)[:5]}", hint="the file is not a Keras 3 .keras model")
            info = archive.getinfo("config.json")
            if info.file_size > _MAX_CONFIG_BYTES:
                raise InputError(f"Keras file {path.name}", expected="a config.json under 64 MiB",
                                 found=f"{info.file_size} bytes")
            config = json.loads(archive.read("config.json").decode("utf-8"))
            metadata = {}
            if "metadata.json" in names:
                metadata = json.loads(archive.read("metadata.json").decode("utf-8"))
    except (*ZIP_MEMBER_ERRORS, RecursionError) as exc:
        raise InputError(f"Keras file {path.name}", expected="a complete .keras archive with a JSON config",
                         found=f"{type(exc).__name__}: {exc}", hint="the file is truncated or corrupt") from exc
    if not isinstance(config, dict):
        raise InputError(f"Keras file {path.name}", expected="a JSON object in config.json", found=type(config).__name__)
    return config, metadata if isinstance(metadata, dict) else {}


# Reads the attributes in a child process: libhdf5 can hang or crash on a malformed file
# (fuzzing found one that never returns from reading an attribute).
_H5_ATTRS = """
import json, sys
try:
    import h5py
    with h5py.File(sys.argv[1], "r") as handle:
        text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)
        raw = handle.attrs.get("model_config")
        reply = {"model_config": None if raw is None else text(raw),
                 "metadata": {k: text(handle.attrs[k]) for k in ("keras_version", "backend") if k in handle.attrs}}
except Exception as exc:
    reply = {"error": f"{type(exc).__name__}: {exc}"}
sys.stdout.write(json.dumps(reply))
"""
H5_TIMEOUT_S = 10.0  # attributes only: a healthy file answers in well under a second


def _read_h5(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import subprocess
    import sys

    require("h5py", "reading .h5 Keras files")
    what = f"Keras file {path.name}"
    try:
        proc = subprocess.run([sys.executable, "-c", _H5_ATTRS, str(path)], capture_output=True, text=True,
                              timeout=H5_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InputError(what, expected="a readable HDF5 model file",
                         found=f"the HDF5 reader did not answer within {H5_TIMEOUT_S:.0f} s",
                         hint="the file is corrupt or hostile") from exc
    try:
        reply = json.loads(proc.stdout) if proc.returncode == 0 else None
    except ValueError:
        reply = None
    if not isinstance(reply, dict):
        found = f"the HDF5 reader died (exit {proc.returncode})" if proc.returncode else "no answer from the HDF5 reader"
        raise InputError(what, expected="a readable HDF5 model file", found=found, hint="the file is corrupt or hostile")
    if "error" in reply:
        raise InputError(what, expected="a readable HDF5 model file", found=str(reply["error"]),
                         hint="the file is truncated or corrupt")
    raw = reply.get("model_config")
    metadata = reply.get("metadata") or {}
    if raw is None:
        raise InputError(f"Keras file {path.name}", expected="a model_config attribute (a full model saved with model.save)",
                         found="weights only", hint="save the whole model, not just its weights")
    try:
        config = json.loads(_text(raw))
    except (ValueError, RecursionError) as exc:
        raise InputError(f"Keras file {path.name}", expected="a JSON model_config", found=str(exc)) from exc
    if not isinstance(config, dict):
        raise InputError(f"Keras file {path.name}", expected="a JSON object as model_config", found=type(config).__name__)
    return config, metadata


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ---------------------------------------------------------------------------
# scanning for code


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


# The Keras namespaces a model's config may name: modeling APIs. Anything else a config
# names is code to import: another package, or a Keras utility with side effects
# (``keras.utils.get_file`` writes files, ``keras.config.enable_unsafe_deserialization``
# turns safe mode off: CVE-2025-1550 and its successors), refused even where the
# installed Keras would refuse it too (older Keras 3 releases did not).
MODELING = frozenset({"layers", "initializers", "regularizers", "constraints", "activations", "losses", "metrics",
                      "optimizers", "models", "ops", "dtype_policies", "random", "quantizers", "engine"})


def _modeling(module: str) -> bool:
    """``keras``, ``keras.layers...`` or ``keras.src.layers...`` for a modeling namespace."""
    parts = module.split(".")
    if parts[0] != "keras":
        return False
    if len(parts) == 1:
        return True
    namespace = parts[2] if parts[1] == "src" and len(parts) > 2 else parts[1]
    return namespace in MODELING


def find_code(config: dict[str, Any]) -> list[str]:
    """Places in a Keras config that would execute or import code when loaded.

    Returns:
        Human-readable findings, e.g. ``"Lambda layer 'scale'"``; empty when clean.
    """
    findings: list[str] = []
    for _path, node in _walk(config):
        class_name = node.get("class_name")
        cfg = node.get("config") if isinstance(node.get("config"), dict) else {}
        name = cfg.get("name") if isinstance(cfg, dict) else None
        if class_name == "Lambda":
            findings.append(f"Lambda layer {name!r}" if name else "Lambda layer")
        elif class_name == "__lambda__":
            continue  # reported with its Lambda layer
        module = node.get("module")
        if isinstance(module, str) and not _modeling(module):
            what = node.get("config") if class_name == "function" and isinstance(node.get("config"), str) else class_name
            findings.append(f"object {what!r} from module {module!r}")
        if class_name == "__lambda__" or node.get("function_type") == "lambda":
            if not any(f.startswith("Lambda") for f in findings):
                findings.append("serialized Python function")
    return sorted(set(findings))


# ---------------------------------------------------------------------------
# configuration-only description


def _layer_configs(config: dict[str, Any]) -> Iterator[dict[str, Any]]:
    inner = config.get("config")
    if not isinstance(inner, dict):
        return
    layers = inner.get("layers")
    if not isinstance(layers, list):
        return
    for layer in layers:
        if isinstance(layer, dict):
            yield layer
            if isinstance(layer.get("config"), dict) and isinstance(layer["config"].get("layers"), list):
                yield from _layer_configs(layer)


def _shape_from(value: Any) -> tuple[int, ...] | None:
    if isinstance(value, dict) and value.get("class_name") == "__tuple__":
        value = value.get("config", {}).get("value")
    if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, int) for v in value):
        return tuple(-1 if v is None else int(v) for v in value)
    return None


def _config_inputs(config: dict[str, Any]) -> tuple[TensorSpec, ...]:
    specs = []
    for layer in _layer_configs(config):
        cfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        shape = None
        if layer.get("class_name") == "InputLayer":
            shape = _shape_from(cfg.get("batch_shape") or cfg.get("batch_input_shape"))
        elif not specs and "batch_input_shape" in cfg:  # Keras 2 Sequential: first layer carries it
            shape = _shape_from(cfg.get("batch_input_shape"))
        if shape is None:
            continue
        dtype = cfg.get("dtype")
        if isinstance(dtype, dict):
            dtype = (dtype.get("config") or {}).get("name", "float32")
        try:
            dt = DType.parse(dtype or "float32")
        except InputError:
            dt = DType.FLOAT32
        specs.append(TensorSpec(str(cfg.get("name", "input")), shape, dt))
        if config.get("class_name") == "Sequential":
            break
    return tuple(specs)


def _weights_count(path: Path) -> int | None:
    if not available("h5py"):
        return None
    import h5py

    def count(group: Any) -> int:
        total = 0
        def visit(_name: str, obj: Any) -> None:
            nonlocal total
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu" and obj.ndim > 0:
                total += int(obj.size)
        group.visititems(visit)
        return total

    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as archive:
                if "model.weights.h5" not in archive.namelist():
                    return None
                with h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as handle:
                    return count(handle)
        with h5py.File(path, "r") as handle:
            return count(handle["model_weights"]) if "model_weights" in handle else count(handle)
    except (*ZIP_MEMBER_ERRORS, KeyError, OverflowError):  # OverflowError: h5py on a huge size in the weights
        return None


def describe_keras_config(path: Path, config: dict[str, Any], metadata: dict[str, Any],
                          code: list[str], reason: str) -> ModelInfo:
    """Describe a Keras file from its configuration alone (nothing is executed)."""
    layers = collections.Counter(str(layer.get("class_name", "?")) for layer in _layer_configs(config))
    notes = [reason, "output shapes and MACs need the model to be loaded"]
    if code:
        notes.insert(0, "carries code: " + ", ".join(code))
    return ModelInfo(
        format="keras" if path.suffix.lower() == ".keras" else "h5",
        inputs=_config_inputs(config),
        outputs=(),
        operators=dict(layers),
        parameters=_weights_count(path),
        macs=None,
        contains_code=bool(code),
        notes=tuple(notes),
        details={"described_from": "config", "keras_version": metadata.get("keras_version", "unknown"),
                 "model_class": config.get("class_name")},
    )


# ---------------------------------------------------------------------------
# full description through Keras safe_mode


def _layer_macs(layer: Any) -> int | None:
    cls = type(layer).__name__
    try:
        out = tuple(int(d or 1) for d in layer.output.shape)
        inp = tuple(int(d or 1) for d in layer.input.shape)
    except (AttributeError, ValueError, TypeError):
        return None

    def prod(xs: tuple[int, ...] | list[int]) -> int:
        p = 1
        for x in xs:
            p *= int(x)
        return p

    kernel = getattr(layer, "kernel", None)
    kshape = tuple(int(d) for d in kernel.shape) if kernel is not None else None
    if cls in ("Conv1D", "Conv2D", "Conv3D") and kshape:
        return prod(out[1:]) * prod(kshape[:-1])
    if cls in ("DepthwiseConv1D", "DepthwiseConv2D") and kshape:
        return prod(out[1:]) * prod(kshape[:-2])
    if cls in ("SeparableConv1D", "SeparableConv2D"):
        dk = tuple(int(d) for d in layer.depthwise_kernel.shape)
        pk = tuple(int(d) for d in layer.pointwise_kernel.shape)
        spatial = prod(out[1:-1])
        return spatial * prod(dk) + spatial * prod(pk)
    if cls in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose") and kshape:
        return prod(inp[1:]) * prod(kshape[:-1])
    if cls == "Dense" and kshape:
        return prod(out[1:]) * kshape[0]
    if cls in ("LSTM", "GRU", "SimpleRNN"):
        gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[cls]
        units = int(layer.units)
        steps = inp[1] if len(inp) > 2 else 1
        return steps * gates * units * (inp[-1] + units)
    return None


def keras_macs(model: Any) -> int:
    """Multiply-accumulates of one inference of a built Keras model (the layers counted by `_layer_macs`)."""
    return int(sum(m for layer in _flatten(model) if (m := _layer_macs(layer)) is not None))


def _flatten(model: Any) -> list[Any]:
    layers = []
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "layers") and layer.layers:
            layers.extend(_flatten(layer))
        else:
            layers.append(layer)
    return layers


def _keras_tensor_spec(tensor: Any, fallback: str) -> TensorSpec:
    dtype = getattr(tensor, "dtype", "float32")
    dtype = getattr(dtype, "name", dtype)
    return TensorSpec(
        name=str(getattr(tensor, "name", None) or fallback),
        shape=tuple(-1 if d is None else int(d) for d in tensor.shape),
        dtype=DType.parse(str(dtype)),
    )


def keras_load_error(exc: BaseException) -> str:
    """The informative part of a Keras deserialization error, on one line."""
    text = " ".join(str(exc).split())
    marker = "Exception encountered:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def describe_keras(path: Path) -> ModelInfo:
    """Describe a `.keras` or `.h5` file; never executes code it carries.

    Raises:
        InputError: unreadable or corrupt file.
        MissingDependencyError: h5py (for .h5) is missing.
    """
    if path.stat().st_size == 0:
        raise InputError(f"Keras file {path.name}", expected="a non-empty file", found="0 bytes")
    config, metadata = read_keras_config(path)
    code = find_code(config)
    if code:
        return describe_keras_config(path, config, metadata, code, "described from its config; its code was not executed")
    if not available("keras"):
        return describe_keras_config(path, config, metadata, [], f"Keras is not installed ({extra_install('train')}); described from its config")
    keras = require("keras", "loading Keras models")
    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises TypeError/ValueError/KeyError for configs it rejects
        return describe_keras_config(path, config, metadata, [],
                                     f"Keras 3 refused to load it ({keras_load_error(exc)}); described from its config")

    layers = _flatten(model)
    counts = collections.Counter(type(layer).__name__ for layer in layers)
    macs_by_op: collections.Counter[str] = collections.Counter()
    skipped = set()
    for layer in layers:
        macs = _layer_macs(layer)
        if macs is not None:
            macs_by_op[type(layer).__name__] += macs
        elif layer.weights and type(layer).__name__ not in ("BatchNormalization", "LayerNormalization", "Embedding", "Normalization"):
            skipped.add(type(layer).__name__)
    notes = [f"MACs exclude {sorted(skipped)}"] if skipped else []
    try:
        inputs = tuple(_keras_tensor_spec(t, f"input_{i}") for i, t in enumerate(model.inputs))
        outputs = tuple(_keras_tensor_spec(t, f"output_{i}") for i, t in enumerate(model.outputs))
    except (AttributeError, TypeError, ValueError):
        inputs, outputs = _config_inputs(config), ()
        notes.append("the model has no static inputs/outputs (subclassed model)")
    return ModelInfo(
        format="keras" if path.suffix.lower() == ".keras" else "h5",
        inputs=inputs,
        outputs=outputs,
        operators=dict(counts),
        parameters=int(model.count_params()),
        macs=int(sum(macs_by_op.values())),
        macs_by_op=dict(macs_by_op),
        notes=tuple(notes),
        details={
            "described_from": "keras (safe_mode)",
            "keras_version": metadata.get("keras_version", "unknown"),
            "model_class": type(model).__name__,
            "layers": len(layers),
        },
    )
