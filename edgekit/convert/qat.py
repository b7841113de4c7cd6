"""Converting a quantization-aware-trained model (a SavedModel whose graph carries FakeQuant
ops, as `edgekit qat` writes it).

TFLite: the converter reads the FakeQuant ops as the quantization parameters of every
tensor they cover (the ``tflite-int8`` variant's ordinary full-integer settings; its
calibration only reaches tensors without one), so it needs nothing here.

ONNX: tf2onnx turns each activation FakeQuant into a QuantizeLinear/DequantizeLinear pair
with the learnt scale and zero point, but folds the weights' FakeQuant into float
constants (already on the int8 grid). `qdq_model` stores those weights as int8 with a
DequantizeLinear (per output channel for Conv, as they were trained; per tensor for
MatMul), so the ``onnx-int8`` variant of a QAT model is that QDQ model (int8 size), not a
second, calibrated quantization of it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FAKE_QUANT_OPS = frozenset({"FakeQuantWithMinMaxVars", "FakeQuantWithMinMaxVarsPerChannel",
                            "FakeQuantWithMinMaxArgs"})


def is_qat_graph(signature: Any) -> bool:
    """Whether a SavedModel signature's graph (its function library included) has FakeQuant ops."""
    if signature is None:
        return False
    graph_def = signature.graph.as_graph_def()
    if any(node.op in FAKE_QUANT_OPS for node in graph_def.node):
        return True
    return any(node.op in FAKE_QUANT_OPS for function in graph_def.library.function for node in function.node_def)


def is_qat_source(source: Any) -> bool:
    """Whether the model being converted is a QAT model (cached on the source)."""
    signature = getattr(source, "signature", None)
    cached = getattr(source, "cached", None)
    if cached is None:
        return is_qat_graph(signature)
    return bool(cached("qat-graph", lambda: is_qat_graph(signature)))


def _grid_scale(weights: np.ndarray, axis: int | None) -> np.ndarray:
    """The symmetric int8 scale (max|w| / 127) per channel along `axis`, or per tensor."""
    if axis is None:
        bound = np.max(np.abs(weights))
    else:
        moved = np.moveaxis(weights, axis, 0).reshape(weights.shape[axis], -1)
        bound = np.max(np.abs(moved), axis=1)
    return np.maximum(np.asarray(bound, np.float64), 1e-12) / 127.0


def qdq_model(model: Any) -> tuple[Any, list[str]]:
    """`model` (tf2onnx's export of a QAT SavedModel) with its Conv and MatMul float weights
    stored as int8 plus a DequantizeLinear. Returns the model and the weights converted.

    A weight whose values are not on an int8 grid (a model that was not trained with
    fake-quantized weights) is left in float: re-quantizing it would change the model.
    """
    import onnx

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    converted: list[str] = []
    readers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    new_nodes = []
    for node in graph.node:
        dequantize = None
        if node.op_type in ("Conv", "MatMul") and len(node.input) > 1 and node.input[1] in initializers \
                and readers.get(node.input[1]) == 1:
            dequantize = _int8_weight(graph, initializers[node.input[1]], 0 if node.op_type == "Conv" else None)
        if dequantize is not None:
            new_nodes.append(dequantize)
            converted.append(node.input[1])
        new_nodes.append(node)
    del graph.node[:]
    graph.node.extend(new_nodes)
    onnx.checker.check_model(model)
    return model, converted


def _int8_weight(graph: Any, init: Any, axis: int | None) -> Any:
    """Replace the float initializer `init` by int8 values, a scale and a zero point, and
    return the DequantizeLinear node that makes the float tensor again (None: not on a grid)."""
    from onnx import helper, numpy_helper

    weights = numpy_helper.to_array(init).astype(np.float64)
    scale = _grid_scale(weights, axis)
    broadcast = scale.reshape([-1] + [1] * (weights.ndim - 1)) if axis == 0 else scale
    q = np.round(weights / broadcast)
    if np.max(np.abs(q * broadcast - weights)) > 1e-4 * max(float(np.max(np.abs(weights))), 1e-12):
        return None
    q_name, s_name, z_name = f"{init.name}_int8", f"{init.name}_scale", f"{init.name}_zero_point"
    graph.initializer.append(numpy_helper.from_array(np.clip(q, -127, 127).astype(np.int8), q_name))
    graph.initializer.append(numpy_helper.from_array(np.asarray(scale, np.float32), s_name))
    graph.initializer.append(numpy_helper.from_array(np.zeros(scale.shape if axis == 0 else (), np.int8), z_name))
    graph.initializer.remove(init)
    return helper.make_node("DequantizeLinear", [q_name, s_name, z_name], [init.name], name=f"{init.name}_dequantize",
                            **({"axis": 0} if axis == 0 else {}))


def onnx_int8_bytes(source: Any, opset: int) -> bytes:
    """The ``onnx-int8`` variant of a QAT model: the tf2onnx export with its learnt Q/DQ
    pairs and int8 weights.

    Raises:
        ConversionError: the export failed, or it holds no QuantizeLinear (nothing learnt to keep).
    """
    import onnx

    from edgekit.convert.variants.base import conversion_error
    from edgekit.convert.variants.onnx import onnx_export

    exported = onnx_export(source, opset)
    model = onnx.load_from_string(exported)
    if not any(node.op_type == "QuantizeLinear" for node in model.graph.node):
        raise conversion_error("onnx-int8 of a QAT model", ValueError(
            "tf2onnx kept no QuantizeLinear from the FakeQuant ops"), "int8")
    model, _converted = qdq_model(model)
    return model.SerializeToString()
