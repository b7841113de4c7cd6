"""Picking the variant and backend for this machine, and saying truthfully why.

Order: variants whose format can run here, by what the manifest says about their fidelity,
then the order of `prefer` (a device profile's preference) if given, else TFLite before
ONNX and the smallest precision first (int8, mixed int8, int8 with float ops, dynamic int8,
int16x8, int16x8 with float ops, fp16, fp32). By fidelity, best first:

1. validated on real data, with a drop that does not exceed the budget beyond noise (the
   gate's rule, `edgekit.stats`: only when the lower end of the drop's 95% confidence
   interval is above the budget);
2. no drop measured on real data (no basis for the task, or validated on random inputs
   only), and not calibrated on random inputs;
3. calibrated on random inputs (``convert --allow-random-calibration``): its fidelity on
   real data is unknown, however good its figures on random inputs look;
4. a drop that exceeds the budget beyond noise.

The budget is `max_drop_pts`, else the one the bundle was gated with, else 1 point. The
reason names the variant, why it came first, the evidence (samples, drop with its
interval and resolution) and every smaller variant passed over with why. Everything can
be forced.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgekit._optional import extra_install
from edgekit.bundle import Manifest, Variant
from edgekit.errors import InputError, MissingDependencyError
from edgekit.runtime.backends import BACKEND_NAMES, installed_backends
from edgekit.stats import Drop, drop_from_metrics

PRECISION_ORDER = ("int8", "int8-mixed", "int8-float-ops", "dynamic-int8", "int16x8", "int16x8-float-ops", "fp16", "fp32")
FORMAT_ORDER = ("tflite", "onnx")
# Static quantization: scales calibrated on the calibration data (dynamic range, fp16 and
# fp32 need none).
CALIBRATED_PRECISIONS = frozenset({"int8", "int8-mixed", "int8-float-ops", "int16x8", "int16x8-float-ops"})
DEFAULT_BUDGET_PTS = 1.0

VALIDATED, UNMEASURED, RANDOM_CALIBRATION, EXCEEDS = range(4)  # fidelity tiers, best first
# What a drop is, and its unit, by its basis (convert's drop_basis); others: a drop in points.
BASIS_WORDS = {
    "top1_agreement": ("disagreement with the float model", " points"),
    "detection_agreement": ("disagreement with the float model's detections", " points"),
    "rmse_increase_pct": ("RMSE increase over the float model's", "%"),
    "output_rmse_pct": ("output RMSE against the float model's", "% of its outputs' spread"),
}


@dataclasses.dataclass(frozen=True)
class Choice:
    variant: Variant
    package: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the manifest says about one variant's fidelity.

    Attributes:
        drop: its recorded drop against the float model (None: none recorded).
        samples: how many validation samples it was measured on.
        random_data: calibrated and validated on random inputs, not real data.
        identical: its outputs equal the reference model's (it is the source model).
        budget: the drop budget it is judged against.
    """

    variant: Variant
    drop: Drop | None
    samples: int | None
    random_data: bool
    identical: bool
    budget: float

    @property
    def float_precision(self) -> bool:
        return self.variant.precision == "fp32"

    @property
    def tier(self) -> int:
        if self.random_data:
            calibrated = self.variant.precision in CALIBRATED_PRECISIONS and not self.identical
            return RANDOM_CALIBRATION if calibrated else UNMEASURED
        if self.drop is None:
            return UNMEASURED
        return EXCEEDS if self.drop.exceeds(self.budget) else VALIDATED

    def words(self) -> tuple[str, str]:
        """What the drop is and its unit, by its basis."""
        return BASIS_WORDS.get(self.variant.metrics.get("drop_basis"), ("drop", " points"))

    def evidence(self) -> str:
        """Why this variant can be trusted (or not), in words."""
        basis = self.variant.metrics.get("drop_basis")
        on = f"{self.samples} samples" if self.samples else "its validation samples"
        if self.random_data:
            if self.tier == RANDOM_CALIBRATION:
                return ("calibrated and validated on RANDOM inputs (convert --allow-random-calibration): its "
                        "fidelity on real data is unknown; convert with --data to measure it")
            return f"validated on random inputs only ({on}), not on real data"
        if self.identical:
            return f"the source model itself (outputs identical on {on})"
        if self.float_precision:
            error = self.variant.metrics.get("max_abs_error")
            return (f"float32 like the source model, nothing quantized; outputs within "
                    f"{error:.1e} of the source's on {on}" if isinstance(error, (int, float)) else
                    "float32 like the source model, nothing quantized")
        if self.drop is None:
            return f"no drop measured ({'no gate basis for this task' if basis is None else 'none recorded'})"
        what, unit = self.words()
        return f"validated on {on}, {what} {self.drop.describe(unit)}"

    def why_not(self) -> str:
        """Why this variant was passed over."""
        if self.tier == EXCEEDS:
            what, unit = self.words()
            return (f"its {what} {self.drop.describe(unit)} exceeds the budget of {self.budget:g}{unit} "  # type: ignore[union-attr]
                    "beyond noise")
        if self.tier == RANDOM_CALIBRATION:
            return "calibrated on RANDOM inputs (--allow-random-calibration), its fidelity on real data is unknown"
        return self.evidence()


def evidence(manifest: Manifest, variant: Variant, budget: float) -> Evidence:
    """What `manifest` records about `variant`'s fidelity."""
    metrics: Any = variant.metrics or {}
    samples = metrics.get("samples")
    return Evidence(variant=variant, drop=drop_from_metrics(metrics),
                    samples=int(samples) if isinstance(samples, int) and not isinstance(samples, bool) else None,
                    random_data=bool((manifest.metrics or {}).get("fidelity_on_random_data")),
                    identical=metrics.get("identical") is True, budget=budget)


def budget_of(manifest: Manifest, max_drop_pts: float | None = None) -> float:
    """The drop budget: `max_drop_pts`, else the bundle's own gate, else 1 point."""
    if max_drop_pts is not None:
        return float(max_drop_pts)
    recorded = (manifest.metrics or {}).get("max_accuracy_drop_pts")
    if isinstance(recorded, (int, float)) and not isinstance(recorded, bool):
        return float(recorded)
    return DEFAULT_BUDGET_PTS


def choose(manifest: Manifest, variant: str | None = None, backend: str | None = None,
           prefer: tuple[str, ...] = (), max_drop_pts: float | None = None) -> Choice:
    """The variant and interpreter package to run.

    Args:
        max_drop_pts: the drop budget (None: the one the bundle was gated with, else 1).

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
    budget = budget_of(manifest, max_drop_pts)
    if variant is not None:
        chosen = manifest.variant(variant)  # raises with the list of variants
        if forced_format and chosen.format != forced_format:
            raise InputError(f"variant {variant!r} with backend {backend!r}",
                             expected=f"a {forced_format} variant for that backend", found=f"a {chosen.format} variant")
        package = forced_package or installed.get(chosen.format)
        if package is None:
            raise _missing(chosen.format)
        return Choice(chosen, package, f"{variant} (forced); {evidence(manifest, chosen, budget).evidence()}")

    runnable = [v for v in manifest.variants
                if (forced_format is None or v.format == forced_format) and installed.get(v.format)]
    if not runnable:
        formats = sorted({v.format for v in manifest.variants})
        if forced_format is not None:
            if forced_format not in formats:
                raise InputError(f"--backend {backend}", expected=f"a bundle with a {forced_format} variant",
                                 found=f"{', '.join(formats)} variants only",
                                 hint="leave --backend out, or convert the model with that variant")
            extra = {"tflite": "litert", "onnx": "onnx"}.get(forced_format, "all")
            raise MissingDependencyError(f"--backend {backend}", expected=f"{forced_package or backend} installed (it runs this "
                                         f"bundle's {forced_format} variants)", found="it is not installed",
                                         hint=f"install it with: {extra_install(extra)}, or leave --backend out")
        raise _missing(formats[0], formats)

    def preference(v: Variant) -> tuple:
        if prefer:
            return (prefer.index(v.name) if v.name in prefer else len(prefer),)
        precision = PRECISION_ORDER.index(v.precision) if v.precision in PRECISION_ORDER else len(PRECISION_ORDER)
        return (FORMAT_ORDER.index(v.format) if v.format in FORMAT_ORDER else 9, precision)

    facts = {v.name: evidence(manifest, v, budget) for v in runnable}
    ranked = sorted(runnable, key=lambda v: (facts[v.name].tier, preference(v)))
    chosen = ranked[0]
    fact = facts[chosen.name]
    package = forced_package or installed[chosen.format]
    passed = [v for v in runnable if preference(v) < preference(chosen)]  # in a worse tier, so passed over
    reason = f"{chosen.name}: {'device preference' if prefer else 'smallest precision that runs here'}"
    if passed:
        reason += f" after passing over {', '.join(v.name for v in passed)}"
    reason += f"; {fact.evidence()}"
    if fact.tier == EXCEEDS:
        reason += f"; WARNING: it exceeds the budget of {budget:g}{fact.words()[1]} beyond noise, and nothing better runs here"
    elif fact.tier == RANDOM_CALIBRATION:
        reason += "; WARNING: nothing that runs here was calibrated on real data"
    for v in passed:
        reason += f"; passed over {v.name}: {facts[v.name].why_not()}"
    return Choice(chosen, package, reason + f"; via {package}")


def _missing(fmt: str, formats: list[str] | None = None) -> MissingDependencyError:
    extra = {"tflite": "litert", "onnx": "onnx"}.get(fmt, "all")
    return MissingDependencyError(
        f"running this bundle's {', '.join(formats or [fmt])} variants",
        expected=f"an interpreter for {fmt}", found="none installed",
        hint=f"install one with: {extra_install(extra)}")
