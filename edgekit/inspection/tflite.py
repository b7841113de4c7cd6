"""Describe a TFLite flatbuffer, read from bytes through the verifying loader."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.inspection.macs import tflite_op_macs
from edgekit.inspection.report import ModelInfo
from edgekit.runtime.backends import tflite_interpreter_class
from edgekit.spec import DType, Quantization, TensorSpec

TFLITE_MAGIC = b"TFL3"


def looks_like_tflite(data: bytes) -> bool:
    return len(data) >= 8 and data[4:8] == TFLITE_MAGIC


def _tensor_spec(detail: dict[str, Any]) -> TensorSpec:
    shape = detail.get("shape_signature")
    if shape is None or len(shape) == 0 and len(detail["shape"]) != 0:
        shape = detail["shape"]
    qp = detail.get("quantization_parameters") or {}
    scales = np.asarray(qp.get("scales", []), dtype=np.float64)
    zps = np.asarray(qp.get("zero_points", []), dtype=np.int64)
    quant = None
    if scales.size and np.any(scales != 0):
        quant = Quantization(
            scale=tuple(float(s) for s in scales),
            zero_point=tuple(int(z) for z in zps) if zps.size == scales.size else (0,) * scales.size,
            axis=int(qp.get("quantized_dimension", 0)),
        )
    return TensorSpec(name=str(detail["name"]), shape=tuple(int(d) for d in shape),
                      dtype=DType.parse(np.dtype(detail["dtype"]).name), quantization=quant)


def describe_tflite(data: bytes) -> ModelInfo:
    """Describe TFLite model bytes.

    Raises:
        InputError: the bytes are not a TFLite model or the verifier refuses them.
        MissingDependencyError: no TFLite interpreter is installed.
    """
    if not data:
        raise InputError("TFLite model", expected="a non-empty file", found="0 bytes")
    if not looks_like_tflite(data):
        raise InputError("TFLite model", expected='a flatbuffer with the "TFL3" identifier',
                         found=f"first bytes {data[:8].hex()}", hint="the file is not a .tflite model or is corrupt")
    interpreter_class, package = tflite_interpreter_class()
    try:
        # model_content= runs the flatbuffer verifier; model_path= would skip it.
        interpreter = interpreter_class(model_content=bytes(data))
        input_details = interpreter.get_input_details()
        output_details = interpreter.get_output_details()
        tensor_details = interpreter.get_tensor_details()
        ops = interpreter._get_ops_details()  # noqa: SLF001 - the only op listing the API offers
        signatures = interpreter.get_signature_list() if hasattr(interpreter, "get_signature_list") else {}
    except (ValueError, RuntimeError, UnicodeDecodeError, IndexError, KeyError, TypeError, OverflowError) as exc:
        raise InputError("TFLite model", expected="a model the flatbuffer verifier accepts",
                         found=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else 'refused'}",
                         hint="the file is truncated or corrupt; re-export it") from exc

    shapes: dict[int, tuple[int, ...]] = {}
    for d in tensor_details:
        shapes[int(d["index"])] = tuple(int(x) for x in d["shape"])
    produced: set[int] = set()
    consumed: set[int] = set()
    op_counts: collections.Counter[str] = collections.Counter()
    macs_by_op: collections.Counter[str] = collections.Counter()
    uncounted: set[str] = set()
    for op in ops:
        name = str(op["op_name"])
        op_counts[name] += 1
        ins = [int(i) for i in op["inputs"]]
        outs = [int(i) for i in op["outputs"]]
        produced.update(outs)
        consumed.update(i for i in ins if i >= 0)
        try:
            macs = tflite_op_macs(name, [shapes.get(i) if i >= 0 else None for i in ins],
                                  [shapes.get(i) for i in outs])
        except (IndexError, ValueError, TypeError):  # shapes the operator cannot have (a damaged file)
            macs = None
            uncounted.add(name)
        if macs is not None:
            macs_by_op[name] += macs
        elif name in {"CONV_3D", "TRANSPOSE_CONV", "BATCH_MATMUL", "UNIDIRECTIONAL_SEQUENCE_LSTM",
                      "BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN"}:
            uncounted.add(name)

    graph_inputs = {int(d["index"]) for d in input_details}
    constants = consumed - produced - graph_inputs
    parameters = sum(int(np.prod(shapes[i])) for i in constants if i in shapes)
    notes = []
    if uncounted:
        notes.append(f"MACs exclude {sorted(uncounted)} (shapes not available)")
    by_dtype = collections.Counter(
        np.dtype(d["dtype"]).name for d in tensor_details if int(d["index"]) in constants)
    details: dict[str, Any] = {
        "interpreter": package,
        "signatures": sorted(signatures) if signatures else [],
        "weight_dtypes": dict(sorted(by_dtype.items())),
        "tensors": len(tensor_details),
    }
    return ModelInfo(
        format="tflite",
        inputs=tuple(_tensor_spec(d) for d in input_details),
        outputs=tuple(_tensor_spec(d) for d in output_details),
        operators=dict(op_counts),
        parameters=parameters,
        macs=int(sum(macs_by_op.values())),
        macs_by_op=dict(macs_by_op),
        notes=tuple(notes),
        details=details,
    )
