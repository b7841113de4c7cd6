"""Describe an ONNX model from bytes (the onnx package, or onnxruntime for I/O only)."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from edgekit._optional import available, require
from edgekit.errors import InputError
from edgekit.inspection.macs import onnx_op_macs
from edgekit.inspection.report import ModelInfo
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


def describe_onnx(data: bytes) -> ModelInfo:
    """Describe ONNX model bytes.

    Raises:
        InputError: not parseable as ONNX, or refused by onnx.checker.
        MissingDependencyError: neither onnx nor onnxruntime is installed.
    """
    if not data:
        raise InputError("ONNX model", expected="a non-empty file", found="0 bytes")
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
    external = [t.name for t in graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
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
        notes=('operator counts, parameters and MACs need the onnx package: pip install "edgekit[onnx]"',),
        details={"producer": session.get_modelmeta().producer_name},
    )
