"""What the ONNX variants share: the tf2onnx export of the source's SavedModel signature,
made once per source and opset, with reproducible names.

TensorFlow, tf2onnx and onnx are imported inside the functions that use them.
"""

from __future__ import annotations

from typing import Any

from edgekit._optional import require
from edgekit.convert.variants.base import (
    ConversionError,
    conversion_error,
    op_reason,
    quiet_converter,
)


def onnx_fp32_bytes(source: Any, opset: int) -> bytes:
    """ONNX export of the source's SavedModel signature through tf2onnx."""
    import tensorflow as tf

    tf2onnx = require("tf2onnx", "exporting ONNX")
    signature = source.signature
    input_name = source.signature_input
    spec = tf.TensorSpec((None, *source.input_shape), tf.as_dtype(source.input_dtype.value), name="input")

    @tf.function(input_signature=[spec])
    def serve(x: Any) -> Any:
        return signature(**{input_name: x})

    try:
        with quiet_converter():
            proto, _ = tf2onnx.convert.from_function(serve, input_signature=[spec], opset=opset)
    except Exception as exc:
        raise conversion_error("onnx-fp32", exc) from exc
    unknown = unknown_onnx_ops(proto)
    if unknown:  # tf2onnx logs "Unsupported ops" and leaves the TensorFlow op in the graph
        raise ConversionError(f"onnx-fp32: {op_reason(unknown, 'Unsupported ops', 'fp32')}", unknown)
    return canonical_onnx(proto).SerializeToString()


def unknown_onnx_ops(model: Any) -> tuple[str, ...]:
    """Op types in the default ONNX domain that ONNX does not define (tf2onnx leaves a
    TensorFlow op it cannot convert in the graph under its own name)."""
    import onnx

    return tuple(dict.fromkeys(node.op_type for node in model.graph.node
                               if node.domain in ("", "ai.onnx") and not onnx.defs.has(node.op_type)))


def canonical_onnx(model: Any) -> Any:
    """Rename intermediate tensors and nodes in graph order.

    tf2onnx picks unique names from a counter that Python's per-process hash seed
    perturbs, so the same model exported twice differs in names only; canonical names
    make the exported bytes reproducible. Graph inputs and outputs keep their names.
    Models with subgraphs (Loop, If, Scan) are left as they are.
    """
    graph = model.graph
    if any(attr.type in (attr.GRAPH, attr.GRAPHS) for node in graph.node for attr in node.attribute):
        return model
    keep = {v.name for v in graph.input} | {v.name for v in graph.output} | {""}
    mapping: dict[str, str] = {}

    def rename(old: str) -> str:
        if old in keep:
            return old
        if old not in mapping:
            # The trailing "_" matters: onnxruntime.quantization names a copy of an
            # initializer NAME + digits ("t47" -> "t478"), which would collide with another
            # tensor; "t47_" + digits never looks like one of these names.
            mapping[old] = f"t{len(mapping)}_"
        return mapping[old]

    for index, node in enumerate(graph.node):
        node.input[:] = [rename(name) for name in node.input]
        node.output[:] = [rename(name) for name in node.output]
        node.name = f"{node.op_type}_{index}"
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for info in graph.value_info:
        info.name = rename(info.name)
    ordered = sorted(graph.initializer, key=lambda t: int(t.name[1:-1]) if t.name[1:-1].isdigit() else -1)
    copies = [type(t)() for t in ordered]
    for copy, tensor in zip(copies, ordered, strict=True):
        copy.CopyFrom(tensor)
    del graph.initializer[:]
    graph.initializer.extend(copies)
    return model


def onnx_export(source: Any, opset: int) -> bytes:
    """onnx-fp32 bytes, exported once per source and opset (a failure too: onnx-int8 needs it)."""
    def make() -> bytes | ConversionError:
        try:
            return onnx_fp32_bytes(source, opset)
        except ConversionError as exc:
            return exc

    result = source.cached(f"onnx-fp32-opset{opset}", make)
    if isinstance(result, ConversionError):
        raise ConversionError(str(result), result.ops)
    return result
