"""Picking the variant and backend for this machine.

Order: variants whose format can run here; among them, the order of `prefer` (a device
profile's preference) if given, else TFLite before ONNX and the smallest precision
first (int8, mixed int8, int8 with float ops, dynamic int8, int16x8,
int16x8 with float ops, fp16, fp32); a variant whose recorded
fidelity drop exceeds `max_drop_pts` goes to the back. Everything can be forced.
"""

from __future__ import annotations

import dataclasses

from edgekit.bundle import Manifest, Variant
from edgekit.errors import InputError, MissingDependencyError
from edgekit.runtime.backends import BACKEND_NAMES, installed_backends

PRECISION_ORDER = ("int8", "int8-mixed", "int8-float-ops", "dynamic-int8", "int16x8", "int16x8-float-ops", "fp16", "fp32")
FORMAT_ORDER = ("tflite", "onnx")


@dataclasses.dataclass(frozen=True)
class Choice:
    variant: Variant
    package: str
    reason: str


def choose(manifest: Manifest, variant: str | None = None, backend: str | None = None,
           prefer: tuple[str, ...] = (), max_drop_pts: float = 1.0) -> Choice:
    """The variant and interpreter package to run.

    Raises:
        InputError: an unknown variant or backend name (listing the valid ones).
        MissingDependencyError: nothing in the bundle can run with what is installed.
    """
    installed = installed_backends()
    forced_format = forced_package = None
    if backend is not None:
        if backend not in BACKEND_NAMES:
            raise InputError(f"unrecognized backend {backend!r}", expected=f"one of {sorted(BACKEND_NAMES)}",
                             found=repr(backend))
        forced_format, forced_package = BACKEND_NAMES[backend]
    if variant is not None:
        chosen = manifest.variant(variant)  # raises with the list of variants
        if forced_format and chosen.format != forced_format:
            raise InputError(f"variant {variant!r} with backend {backend!r}",
                             expected=f"a {forced_format} variant for that backend", found=f"a {chosen.format} variant")
        package = forced_package or installed.get(chosen.format)
        if package is None:
            raise _missing(chosen.format)
        return Choice(chosen, package, f"{variant} (forced)")

    runnable = [v for v in manifest.variants
                if (forced_format is None or v.format == forced_format) and installed.get(v.format)]
    if not runnable:
        formats = sorted({v.format for v in manifest.variants})
        raise _missing(forced_format or formats[0], formats)

    def drop(v: Variant) -> float | None:
        value = v.metrics.get("drop_pts")
        return float(value) if isinstance(value, (int, float)) else None

    def key(v: Variant) -> tuple:
        too_lossy = (drop(v) or 0.0) > max_drop_pts
        if prefer:
            rank = prefer.index(v.name) if v.name in prefer else len(prefer)
            return (too_lossy, rank)
        precision = PRECISION_ORDER.index(v.precision) if v.precision in PRECISION_ORDER else len(PRECISION_ORDER)
        return (too_lossy, FORMAT_ORDER.index(v.format) if v.format in FORMAT_ORDER else 9, precision)

    chosen = sorted(runnable, key=key)[0]
    package = forced_package or installed[chosen.format]
    d = drop(chosen)
    reason = (f"{chosen.name}: {'device preference' if prefer else 'smallest precision that runs here'}"
              + (f", fidelity drop {d:.2f} points" if d is not None else "") + f", via {package}")
    return Choice(chosen, package, reason)


def _missing(fmt: str, formats: list[str] | None = None) -> MissingDependencyError:
    extra = {"tflite": "litert", "onnx": "onnx"}.get(fmt, "all")
    return MissingDependencyError(
        f"running this bundle's {', '.join(formats or [fmt])} variants",
        expected=f"an interpreter for {fmt}", found="none installed",
        hint=f'install one with: pip install "edgekit[{extra}]"')
