"""The fixed choices of `edgekit convert`, with their help.

Light on purpose: the command line reads them to build its options; the variants use them."""

from __future__ import annotations

from edgekit.choices import Choice


class Int8IO(Choice):
    """The values of ``edgekit convert --int8-io``: the input/output type of ``tflite-int8``."""

    INT8 = "int8", "int8 input and output"
    UINT8 = "uint8", "uint8 input and output"


class OnnxInt8Mode(Choice):
    """The values of ``edgekit convert --onnx-int8``: how ``onnx-int8`` is quantized."""

    STATIC = "static", "static QDQ (calibrated)"
    DYNAMIC = "dynamic", "dynamic quantization"


class FallbackPrecision(Choice):
    """The values of ``edgekit convert --fallback-precision``: what --auto-fallback keeps its
    layers at, tried in the order given."""

    FLOAT = "float", "float layers: fast on CPUs (XNNPACK), float weights make the file grow"
    INT16 = "int16", ("16-bit activations, int8 weights: about int8's size, but TFLite's int16 kernels are "
                      "reference kernels, several times slower on CPUs")


DEFAULT_FALLBACK_PRECISIONS = (FallbackPrecision.FLOAT.value, FallbackPrecision.INT16.value)
