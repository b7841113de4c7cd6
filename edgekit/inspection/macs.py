"""Multiply-accumulate estimates for the common operators, per format.

Shapes are concrete (batch 1). The batch dimension is left out of output counts.
Each function returns None when the operator is not one we count.
"""

from __future__ import annotations

from collections.abc import Sequence


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= max(int(v), 1)
    return out


def tflite_op_macs(op: str, inputs: list[Sequence[int] | None], outputs: list[Sequence[int] | None]) -> int | None:
    """MACs of one TFLite builtin operator given its tensor shapes."""
    out = outputs[0] if outputs else None
    w = inputs[1] if len(inputs) > 1 else None
    if out is None:
        return None
    if op in ("CONV_2D", "CONV_3D") and w is not None:
        return _prod(out[1:]) * _prod(w[1:])  # weights [O, kh, kw, I/g]
    if op == "DEPTHWISE_CONV_2D" and w is not None:
        return _prod(out[1:]) * _prod(w[1:-1])  # weights [1, kh, kw, C*M]
    if op == "FULLY_CONNECTED" and w is not None:
        return _prod(out[1:]) * int(w[-1])  # weights [O, I]
    if op == "TRANSPOSE_CONV" and len(inputs) > 2 and inputs[1] is not None and inputs[2] is not None:
        wt, x = inputs[1], inputs[2]  # [output_shape, weights [O, kh, kw, I], input]
        return _prod(x[1:]) * _prod(wt[:-1])
    if op == "BATCH_MATMUL" and inputs and inputs[0] is not None:
        return _prod(out[1:]) * int(inputs[0][-1])
    if op in ("UNIDIRECTIONAL_SEQUENCE_LSTM", "LSTM") and inputs and inputs[0] is not None:
        x = inputs[0]
        hidden = int(out[-1])
        steps = _prod(x[1:-1]) if len(x) > 2 else 1
        return steps * 4 * hidden * (int(x[-1]) + hidden)
    return None


def onnx_op_macs(op: str, inputs: list[Sequence[int] | None], outputs: list[Sequence[int] | None],
                 attrs: dict) -> int | None:
    """MACs of one ONNX node given its tensor shapes."""
    out = outputs[0] if outputs else None
    if out is None:
        return None
    w = inputs[1] if len(inputs) > 1 else None
    if op == "Conv" and w is not None:
        return _prod(out[1:]) * _prod(w[1:])  # W [M, C/g, kh, kw]
    if op == "ConvTranspose" and w is not None and inputs[0] is not None:
        return _prod(inputs[0][1:]) * _prod(w[1:])  # W [C, M/g, kh, kw]
    if op == "Gemm" and w is not None:
        k = int(w[1] if attrs.get("transB") else w[0])
        return _prod(out[1:]) * k
    if op == "MatMul" and inputs and inputs[0] is not None:
        return _prod(out[1:]) * int(inputs[0][-1])
    if op in ("LSTM", "GRU") and w is not None and inputs[0] is not None:
        gates = 4 if op == "LSTM" else 3
        hidden = int(attrs.get("hidden_size") or (w[1] // gates))
        steps = int(inputs[0][0])  # X [seq, batch, input]
        return steps * gates * hidden * (int(inputs[0][-1]) + hidden)
    return None


def tf_op_macs(op: str, inputs: list[Sequence[int] | None], outputs: list[Sequence[int] | None]) -> int | None:
    """MACs of one TensorFlow graph op given its tensor shapes."""
    out = outputs[0] if outputs else None
    w = inputs[1] if len(inputs) > 1 else None
    if out is None:
        return None
    if op == "Conv2D" and w is not None:
        return _prod(out[1:]) * _prod(w[:-1])  # filter [kh, kw, I, O]
    if op == "DepthwiseConv2dNative" and w is not None:
        return _prod(out[1:]) * _prod(w[:2])  # filter [kh, kw, C, M]
    if op == "Conv2DBackpropInput" and len(inputs) > 2 and inputs[2] is not None and w is not None:
        return _prod(inputs[2][1:]) * _prod(w[:3])  # filter [kh, kw, O, I], input grad [N, H, W, I]
    if op == "MatMul" and inputs and inputs[0] is not None:
        return _prod(out[1:]) * int(inputs[0][-1])
    if op in ("BatchMatMulV2", "BatchMatMulV3", "BatchMatMul") and inputs and inputs[0] is not None:
        return _prod(out[1:]) * int(inputs[0][-1])
    return None
