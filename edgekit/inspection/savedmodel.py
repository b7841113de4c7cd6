"""Describe a TensorFlow SavedModel directory (needs TensorFlow)."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

from edgekit._optional import require
from edgekit.errors import InputError
from edgekit.inspection.macs import tf_op_macs
from edgekit.inspection.report import ModelInfo
from edgekit.spec import DType, TensorSpec

_BORING_OPS = {"Const", "Identity", "NoOp", "Placeholder", "IdentityN"}


def _spec(name: str, tensor_spec: Any) -> TensorSpec:
    shape = tensor_spec.shape
    dims = tuple(-1 if d is None else int(d) for d in shape.as_list()) if shape.rank is not None else ()
    return TensorSpec(name=name, shape=dims, dtype=DType.parse(tensor_spec.dtype.name))


def describe_savedmodel(path: Path) -> ModelInfo:
    """Describe the serving signature of a SavedModel directory.

    Raises:
        InputError: no saved_model.pb, unreadable, or no signatures.
        MissingDependencyError: TensorFlow is not installed.
    """
    pb = path / "saved_model.pb"
    if not pb.is_file():
        raise InputError(f"SavedModel {path}", expected="a directory with saved_model.pb", found="no saved_model.pb")
    if pb.stat().st_size == 0:
        raise InputError(f"SavedModel {path}", expected="a non-empty saved_model.pb", found="0 bytes")
    tf = require("tensorflow", "reading SavedModel directories")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises many types for corrupt protos and missing variables
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise InputError(f"SavedModel {path}", expected="a loadable SavedModel", found=f"{type(exc).__name__}: {first}",
                         hint="the directory is incomplete or corrupt; re-export it") from exc
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if not signatures:
        raise InputError(f"SavedModel {path}", expected="at least one signature (e.g. serving_default)",
                         found="none", hint="export with model.export(path) or tf.saved_model.save(..., signatures=...)")
    key = "serving_default" if "serving_default" in signatures else sorted(signatures)[0]
    fn = signatures[key]
    _args, kwargs = fn.structured_input_signature
    inputs = tuple(_spec(name, spec) for name, spec in sorted(kwargs.items()))
    outputs = tuple(_spec(name, spec) for name, spec in sorted(fn.structured_outputs.items()))
    parameters = sum(int(v.shape.num_elements() or 0) for v in fn.variables) if fn.variables else 0

    notes = []
    counts: collections.Counter[str] = collections.Counter()
    macs_by_op: collections.Counter[str] = collections.Counter()
    try:
        from tensorflow.python.framework.convert_to_constants import (  # noqa: PLC0415
            convert_variables_to_constants_v2,
        )

        frozen = convert_variables_to_constants_v2(fn)
        if not parameters:
            parameters = sum(
                int(t.num_elements() or 0)
                for op in frozen.graph.get_operations() if op.type == "Const"
                for t in [op.outputs[0].shape] if t.rank and t.rank > 0
            )
        for op in frozen.graph.get_operations():
            if op.type in _BORING_OPS:
                continue
            counts[op.type] += 1
            shapes_in = [_concrete(t.shape) for t in op.inputs]
            shapes_out = [_concrete(t.shape) for t in op.outputs]
            macs = tf_op_macs(op.type, shapes_in, shapes_out)
            if macs is not None:
                macs_by_op[op.type] += macs
    except Exception as exc:  # freezing fails on some exotic graphs; the I/O description stays valid
        notes.append(f"operator counts unavailable ({type(exc).__name__}: {str(exc)[:200]})")
    return ModelInfo(
        format="savedmodel",
        inputs=inputs,
        outputs=outputs,
        operators=dict(counts),
        parameters=parameters,
        macs=int(sum(macs_by_op.values())) if counts else None,
        macs_by_op=dict(macs_by_op),
        notes=tuple(notes),
        details={"signature": key, "signatures": sorted(signatures)},
    )


def _concrete(shape: Any) -> tuple[int, ...] | None:
    if shape.rank is None:
        return None
    return tuple(1 if d is None else int(d) for d in shape.as_list())
