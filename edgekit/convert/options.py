"""The fixed choices of `edgekit convert`, with their help.

Light on purpose: the command line reads them to build its options; the variants use them."""

from __future__ import annotations

import enum


class Int8IO(str, enum.Enum):
    """The values of ``edgekit convert --int8-io``: the input/output type of ``tflite-int8``."""

    INT8 = "int8"
    UINT8 = "uint8"

    @property
    def help(self) -> str:
        """One line for ``--int8-io``'s help."""
        return _INT8_IO_HELP[self]


_INT8_IO_HELP = {
    Int8IO.INT8: "int8 input and output",
    Int8IO.UINT8: "uint8 input and output",
}


class OnnxInt8Mode(str, enum.Enum):
    """The values of ``edgekit convert --onnx-int8``: how ``onnx-int8`` is quantized."""

    STATIC = "static"
    DYNAMIC = "dynamic"

    @property
    def help(self) -> str:
        """One line for ``--onnx-int8``'s help."""
        return _ONNX_INT8_HELP[self]


_ONNX_INT8_HELP = {
    OnnxInt8Mode.STATIC: "static QDQ (calibrated)",
    OnnxInt8Mode.DYNAMIC: "dynamic quantization",
}
