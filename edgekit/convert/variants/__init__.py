"""The variant registry: how each bundle variant is produced from the source model, keyed
by the name ``--variants`` takes.

    from edgekit.convert.variants import VARIANTS, ConversionOptions
    for name, kind in VARIANTS.items():              # what the command line offers
        print(name, kind.format, kind.description)
    forms = VARIANTS["tflite-int8"].forms(ConversionOptions())

One file per variant (`tflite_fp32`, `tflite_fp16`, `tflite_dynamic`, `tflite_int8`,
`tflite_int16x8`, `onnx_fp32`, `onnx_int8`), each defining its `VARIANT`. TFLite variants
come from the TFLite converter on the source's SavedModel export (shared in `tflite`);
ONNX variants from tf2onnx on the same SavedModel (shared in `onnx`) and
`onnxruntime.quantization`. The shared types (`VariantKind`, `Form`,
`ConversionOptions`, `ConversionError`) live in `base`. TensorFlow, tf2onnx and
onnxruntime are imported only when a variant is built.

A quantized variant lists the forms it can take, best first (``tflite-int8``: full
integer, then int8 with float fallback ops, then dynamic range). `edgekit convert`
keeps the first form that converts and runs, and says so when it is not the first.

Adding a variant: a module beside these with a `VariantKind` named ``VARIANT`` (shared
types come from `edgekit.convert.variants.base`), and one line in `VARIANTS`.
"""

from __future__ import annotations

from edgekit.convert.variants import (
    onnx_fp32,
    onnx_int8,
    tflite_dynamic,
    tflite_fp16,
    tflite_fp32,
    tflite_int8,
    tflite_int16x8,
)
from edgekit.convert.variants.base import (
    ConversionError,
    ConversionOptions,
    Form,
    Int8IO,
    OnnxInt8Mode,
    VariantKind,
    conversion_error,
    op_reason,
    ops_in_error,
    quiet_converter,
)
from edgekit.convert.variants.tflite import (
    configure_int8,
    representative,
    tflite_converter,
    tflite_float_ops,
)
from edgekit.convert.variants.tflite_int8 import tflite_int8_selective
from edgekit.errors import InputError

# --variants NAME -> variant, in the order ``all`` produces them and errors list them
VARIANTS: dict[str, VariantKind] = {
    v.name: v
    for v in (
        tflite_fp32.VARIANT,
        tflite_fp16.VARIANT,
        tflite_dynamic.VARIANT,
        tflite_int8.VARIANT,
        tflite_int16x8.VARIANT,
        onnx_fp32.VARIANT,
        onnx_int8.VARIANT,
    )
}
DEFAULT_VARIANTS = ("tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32", "onnx-int8")

__all__ = ["DEFAULT_VARIANTS", "VARIANTS", "ConversionError", "ConversionOptions", "Form", "Int8IO", "OnnxInt8Mode",
           "VariantKind", "configure_int8", "conversion_error", "op_reason", "ops_in_error", "parse_variants",
           "quiet_converter", "representative", "tflite_converter", "tflite_float_ops", "tflite_int8_selective"]


def parse_variants(text: str | None) -> tuple[str, ...]:
    """Parse ``--variants`` (comma list; ``all`` for every variant; default when None).

    Raises:
        InputError: unknown names, listing the valid ones.
    """
    if text is None:
        return DEFAULT_VARIANTS
    names = [n.strip() for n in text.split(",") if n.strip()]
    if names == ["all"]:
        return tuple(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise InputError(f"unrecognized variant(s) {unknown or names}",
                         expected=f"a comma list of {list(VARIANTS)} (or all)", found=text)
    return tuple(dict.fromkeys(names))
