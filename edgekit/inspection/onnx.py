"""Describe an ONNX model from bytes (the onnx package, or onnxruntime for I/O only)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import numpy as np

from edgekit._optional import available, extra_install, require
from edgekit.errors import InputError
from edgekit.inspection.macs import onnx_op_macs
from edgekit.inspection.report import ModelInfo
from edgekit.runtime.onnxdata import external_files
from edgekit.spec import DType, TensorSpec

_ELEM_TYPES = {1: "float32", 2: "uint8", 3: "int8", 5: "int16", 6: "int32", 7: "int64", 9: "bool", 10: "float16"}


def _dims(type_proto: Any) -> tuple[int, ...] | None:
    if not type_proto.HasField("tensor_type") or not type_proto.tensor_type.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else -1 for d in type_proto.tensor_type.shape.dim)


def _spec(value_info: Any) -> TensorSpec:
    elem = value_info.type.tensor_type.elem_type
    dtype = _ELEM_TYPES.get(elem)
    if dtype is None:
        raise InputError(f"ONNX tensor {value_info.name!r}", expected=f"an element type in {sorted(set(_ELEM_TYPES.values()))}",
                         found=f"ONNX element type {elem}")
    return TensorSpec(name=value_info.name, shape=_dims(value_info.type) or (), dtype=DType(dtype))


def _tensors(graph: Any) -> Any:
    """Every tensor of a graph: initializers, node attributes, subgraphs (recursively)."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def inline_external_data(onnx: Any, model: Any, files: dict[str, bytes]) -> int:
    """Put the external data edgekit read (`onnxdata.external_files`) into the tensors, so
    that onnx.checker sees a self-contained model (and convert packs one); returns how
    many tensors had some."""
    count = 0
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {entry.key: entry.value for entry in tensor.external_data}
        try:
            offset = int(info.get("offset") or 0)
            length = int(info["length"]) if info.get("length") else None
        except ValueError as exc:
            raise InputError(f"ONNX tensor {tensor.name!r}", expected="an integer offset and length of its "
                             "external data", found=str(exc)) from exc
        blob = files.get(info.get("location", ""), b"")
        tensor.raw_data = blob[offset:] if length is None else blob[offset : offset + length]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        count += 1
    return count


def describe_onnx(data: bytes, folder: Path | None = None) -> ModelInfo:
    """Describe ONNX model bytes.

    Args:
        folder: the folder of a bare ``.onnx`` file, where its external data may live
            (read as the runtime reads it, see `edgekit.runtime.onnxdata`); None for bytes
            from a bundle, which must carry their weights.

    Raises:
        InputError: not parseable as ONNX, or refused by onnx.checker.
        UnsafeModelError: external data in a bundle's bytes, or outside `folder`.
        MissingDependencyError: neither onnx nor onnxruntime is installed.
    """
    if not data:
        raise InputError("ONNX model", expected="a non-empty file", found="0 bytes")
    files = external_files(data, folder, "ONNX model")  # checks every reference before a native parser runs
    if not available("onnx"):
        return _describe_with_runtime(data)
    onnx = require("onnx", "reading .onnx files")
    try:
        model = onnx.load_model_from_string(bytes(data))
    except Exception as exc:  # protobuf raises DecodeError and assorted others
        raise InputError("ONNX model", expected="a valid ONNX protobuf",
                         found=f"{type(exc).__name__}: {exc}", hint="the file is truncated or corrupt; re-export it") from exc
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise InputError("ONNX model", expected="a graph with at least one node", found="an empty graph",
                         hint="the file is truncated or not an ONNX model")
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    inline_external_data(onnx, model, files)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError("ONNX model", expected="a model onnx.checker accepts", found=first,
                         hint="the file is corrupt or was written by a broken exporter") from exc

    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = tuple(_spec(v) for v in graph.input if v.name not in initializers)
    outputs = tuple(_spec(v) for v in graph.output)
    parameters = sum(int(np.prod(t.dims)) if len(t.dims) else 1 for t in graph.initializer)
    notes: list[str] = []
    if external:
        notes.append(f"{len(external)} initializer(s) stored as external data")

    shapes: dict[str, tuple[int, ...] | None] = {name: tuple(int(d) for d in t.dims) for name, t in initializers.items()}
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
        for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
            dims = _dims(vi.type)
            if dims is not None:
                shapes.setdefault(vi.name, tuple(1 if d < 0 else d for d in dims))
    except Exception as exc:
        notes.append(f"shape inference failed ({type(exc).__name__}); MACs may be incomplete")

    op_counts: collections.Counter[str] = collections.Counter()
    macs_by_op: collections.Counter[str] = collections.Counter()
    for node in graph.node:
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
        op_counts[op] += 1
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute
                 if a.type in (onnx.AttributeProto.INT, onnx.AttributeProto.FLOAT)}
        try:
            macs = onnx_op_macs(op, [shapes.get(i) for i in node.input], [shapes.get(o) for o in node.output], attrs)
        except (IndexError, ValueError, TypeError, ZeroDivisionError):  # shapes the operator cannot have
            macs = None
            notes.append(f"MACs exclude a {op} node whose tensor shapes do not fit the operator")
        if macs is not None:
            macs_by_op[op] += macs
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
    return ModelInfo(
        format="onnx",
        inputs=inputs,
        outputs=outputs,
        operators=dict(op_counts),
        parameters=parameters,
        macs=int(sum(macs_by_op.values())),
        macs_by_op=dict(macs_by_op),
        notes=tuple(notes),
        details={
            "opset": opsets.get("ai.onnx"),
            "opsets": opsets,
            "ir_version": int(model.ir_version),
            "producer": f"{model.producer_name} {model.producer_version}".strip(),
        },
    )


def _describe_with_runtime(data: bytes) -> ModelInfo:
    ort = require("onnxruntime", "reading .onnx files")
    try:
        session = ort.InferenceSession(bytes(data), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InputError("ONNX model", expected="a model ONNX Runtime can load", found=f"{type(exc).__name__}: {exc}",
                         hint="the file is truncated or corrupt; re-export it") from exc

    def spec(arg: Any) -> TensorSpec:
        dtype = str(arg.type).removeprefix("tensor(").removesuffix(")")
        dtype = {"float": "float32", "double": "float32", "float16": "float16"}.get(dtype, dtype)
        return TensorSpec(arg.name, tuple(d if isinstance(d, int) else -1 for d in arg.shape), DType.parse(dtype))

    return ModelInfo(
        format="onnx",
        inputs=tuple(spec(a) for a in session.get_inputs()),
        outputs=tuple(spec(a) for a in session.get_outputs()),
        operators={},
        parameters=None,
        macs=None,
        notes=(f"operator counts, parameters and MACs need the onnx package: {extra_install('onnx')}",),
        details={"producer": session.get_modelmeta().producer_name},
    )
