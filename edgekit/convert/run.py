"""`edgekit convert`: a trained model to a verified bundle of TFLite and ONNX variants.

Pipeline: load the source (code refused unless trusted, Keras 2 files adapted) -> load
data through the bundle's preprocessing spec -> deterministic calibration/validation
split -> build each variant -> run each through the runtime backends and measure it
against the float model -> apply the accuracy gate (optionally keeping the worst
layers in float) -> write the bundle atomically.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import Manifest, Variant, VariantFormat, make_provenance, write_bundle
from edgekit.contract import Contract, read_contract, sidecar_path
from edgekit.convert.fallback import (
    ForeignTfliteInt8Route,
    OnnxInt8Route,
    SearchLimits,
    TfliteInt8Route,
    one_line,
    search,
)
from edgekit.convert.fidelity import (
    Reference,
    detect_task,
    fidelity,
    run_variant,
)
from edgekit.convert.foreign import ForeignConfig, ForeignModel, describe_source, is_foreign
from edgekit.convert.options import (
    DEFAULT_FALLBACK_PRECISIONS,
    FallbackPrecision,
    Int8IO,
    OnnxInt8Mode,
)
from edgekit.convert.outputs import align_outputs
from edgekit.convert.selfcheck import ProducedVariant, build_self_check
from edgekit.convert.source import LoadConfig, SourceModel, source_kind, work_dir
from edgekit.convert.variants import (
    DEFAULT_VARIANTS,
    VARIANTS,
    ConversionError,
    ConversionOptions,
    VariantKind,
    ops_in_error,
    tflite_float_ops,
)
from edgekit.convert.variants.foreign import as_given, derivations
from edgekit.datasets.loaders import (
    Progress,
    Samples,
    load_samples,
    no_progress,
    random_samples,
    read_labels_file,
    split,
)
from edgekit.errors import InputError
from edgekit.inspection.isolate import describe_in_process
from edgekit.inspection.report import human_bytes
from edgekit.spec import (
    ImagePreprocess,
    NoPreprocess,
    PostprocessKind,
    PostprocessSpec,
)
from edgekit.stats import RULE, drop_from_metrics
from edgekit.tasks import Task, task_kind
from edgekit.tasks.regression import regression_errors

WARN_DROP_PTS = 1.0  # without a gate, a quantized variant losing more than this beyond noise is called out


@dataclasses.dataclass(frozen=True)
class ConvertConfig:
    """Options of `edgekit convert` (see the README for each flag)."""

    model: Path
    output: Path
    # None: the defaults, DEFAULT_VARIANTS for a trained model; for a given .tflite/.onnx
    # the model itself, plus every variant derived from it when there is --data.
    variants: tuple[str, ...] | None = None
    data: Path | None = None
    labels: Path | None = None
    preprocess: Path | None = None
    max_accuracy_drop: float | None = None
    auto_fallback: bool = False
    # what --auto-fallback keeps its layers at, in the order tried (FallbackPrecision values)
    fallback_precisions: tuple[str, ...] = DEFAULT_FALLBACK_PRECISIONS
    allow_random_calibration: bool = False
    trust_model_code: bool = False
    input_shape: tuple[int, ...] | None = None
    options: ConversionOptions = ConversionOptions()
    calibration_samples: int = 200
    validation_samples: int = 1000
    # Calibration data of its own (train --export: the validation split), so that every
    # sample of `data`, up to validation_samples, validates; None: `data` is split.
    calibration_data: Path | None = None
    seed: int = 0
    name: str | None = None
    command: str | None = None


@dataclasses.dataclass
class VariantResult:
    """One variant: what was produced and measured, or why it was not.

    Attributes:
        precision: what the produced file really is (see `edgekit.convert.variants.Form`).
        substitute: set when the variant is not the form its name promises (full-integer
            int8 that fell back to float ops or dynamic range; static ONNX int8 that
            became dynamic): ``requested``, ``produced``, ``form``, ``reason``, ``ops``,
            ``float_ops`` (TFLite) and ``tried`` (the forms that failed first, and why).
        ops: when not produced, the operators the converters blamed.
        still_possible: when not produced, the variants of this run that were produced.
    """

    name: str
    format: str
    precision: str
    data: bytes | None = None
    inputs: tuple = ()
    outputs: tuple = ()
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    gate: str = "none"  # pass | fail | none (no gate, float precision or no drop basis)
    fallback: dict[str, Any] | None = None
    substitute: dict[str, Any] | None = None
    ops: tuple[str, ...] = ()
    still_possible: list[str] | None = None

    def to_dict(self, fp32_size: int | None) -> dict[str, Any]:
        size = len(self.data) if self.data is not None else None
        return {
            "name": self.name,
            "format": self.format,
            "precision": self.precision,
            "size_bytes": size,
            "ratio_to_fp32": (size / fp32_size) if size and fp32_size else None,
            "seconds": round(self.seconds, 3),
            "metrics": self.metrics,
            "gate": self.gate,
            "fallback": self.fallback,
            "substitute": self.substitute,
            "error": self.error,
        }


@dataclasses.dataclass
class ConvertReport:
    """Everything `edgekit convert` measured and decided (the ``--json`` document)."""

    config: ConvertConfig
    source: dict[str, Any]
    data: dict[str, Any]
    reference: dict[str, Any]
    variants: list[VariantResult]
    warnings: list[str]
    gate_passed: bool = True
    bundle: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def fp32_size(self) -> int | None:
        for name in ("tflite-fp32", "onnx-fp32"):
            for v in self.variants:
                if v.name == name and v.data is not None:
                    return len(v.data)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "data": self.data,
            "reference": self.reference,
            "variants": [v.to_dict(self._fp32_for(v)) for v in self.variants],
            "failed": [{"name": v.name, "reason": v.error, "op": v.ops[0] if v.ops else None, "ops": list(v.ops),
                        "still_possible": v.still_possible or []} for v in self.variants if v.error],
            "gate": {"max_accuracy_drop_pts": self.config.max_accuracy_drop, "auto_fallback": self.config.auto_fallback,
                     "passed": self.gate_passed, "rule": RULE,
                     "failed_variants": [v.name for v in self.variants if v.gate == "fail"]},
            "warnings": self.warnings,
            "bundle": self.bundle,
            "seconds": round(self.seconds, 3),
        }

    def _fp32_for(self, variant: VariantResult) -> int | None:
        for v in self.variants:
            if v.format == variant.format and v.precision == "fp32" and v.data is not None:
                return len(v.data)
        return self.fp32_size

    def render(self) -> str:
        lines = []
        src = self.source
        lines.append(f"source: {src['path']} ({src['format']}, input {src['input_shape']}, task {self.reference['task']})")
        for change in src["adaptations"]:
            lines.append(f"  adapted: {change}")
        d = self.data
        calibrated_from = d.get("calibration_source") or d["source"]
        lines.append(f"data: {d['source']}: " + (f"{d['calibration_samples']} calibration" if calibrated_from == d["source"]
                     else f"{d['calibration_samples']} calibration (from {calibrated_from})")
                     + f" / {d['validation_samples']} validation samples"
                     + (f", {len(d['skipped'])} unreadable file(s) skipped" if d["skipped"] else ""))
        ref = self.reference
        task = task_kind(ref["task"])
        if ref.get("metric") == "rmse":
            lines.append(f"float reference: rmse {_num(ref['value'], 4, 'g')}, mae {_num(ref.get('mae'), 4, 'g')} "
                         "against the targets")
        elif ref.get("metric"):
            lines.append(f"float reference: {ref['metric']} {_pct(ref['value'])}")
        # Regression shows RMSE against the targets where the others show their metric.
        # drop: the figure the gate judges; 95% CI: its noise; 1 smp: what one sample is worth
        header = (f"{'variant':<15} {'size':>10} {'x fp32':>7} {'agree':>7} {task.metric_title:>8} {'drop':>6} "
                  f"{'95% CI':>12} {'1 smp':>5} {'max|err|':>9} {'mean|err|':>9} {'SNR dB':>7} {'time':>6}  gate")
        lines.append(header)
        for v in self.variants:
            row = v.to_dict(self._fp32_for(v))
            if v.error:
                lines.append(f"{v.name:<15} {'-':>10}  FAILED: {v.error}")
                continue
            m = v.metrics
            agreement = m.get("top1_agreement", m.get("detection_agreement"))  # with the float model
            value, style = task.metric_column(m)
            metric = _num(value, 4, "g") if style == "g" else _pct(value)
            snr = "exact" if m.get("identical") else (f"{m['snr_db']:.1f}" if m.get("snr_db") is not None else "-")
            lines.append(
                f"{v.name:<15} {human_bytes(row['size_bytes']):>10} {_num(row['ratio_to_fp32'], 2):>7} "
                f"{_pct(agreement):>7} {metric:>8} {_num(m.get('drop_pts'), 2):>6} {_interval(m.get('drop_ci95')):>12} "
                f"{_num(m.get('drop_resolution_pts'), 2):>5} {m['max_abs_error']:>9.2e} {m['mean_abs_error']:>9.2e} {snr:>7} {v.seconds:>5.1f}s  {v.gate}")
            if v.substitute:
                sub = v.substitute
                lines.append(f"{'':<15} is {sub['produced']}, not {sub['requested']}: {sub['reason']}")
            if v.fallback:
                lines.extend(_fallback_lines(v.fallback))
        bases = sorted({v.metrics.get("drop_basis") or "" for v in self.variants if v.data is not None} - {""})
        if task.explain_drop or any(b in task.drop_bases for b in bases):
            lines.append("drop: " + ("; ".join(task.drop_bases.get(b, b) for b in bases) if bases else
                                     "no gate basis for this task; judge by SNR and the errors"))
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        if self.config.max_accuracy_drop is not None:
            failed = [v.name for v in self.variants if v.gate == "fail"]
            lines.append(f"gate --max-accuracy-drop {self.config.max_accuracy_drop:g}: "
                         + ("passed" if not failed else f"FAILED for {', '.join(failed)}") + f"; a variant {RULE}")
        elif any(v.metrics.get("drop_ci95") for v in self.variants):
            lines.append("drop: with its 95% confidence interval and what 1 sample (smp) is worth; a gate "
                         f"(--max-accuracy-drop) {RULE}")
        if self.bundle:
            lines.append(f"bundle: {self.bundle['path']} ({len(self.bundle['variants'])} variants, "
                         f"{human_bytes(self.bundle['size_bytes'])}, verified)")
            check = self.bundle.get("self_check")
            if check:
                lines.append(f"self-check: {len(check['samples'])} {check['source']} sample(s) and every variant's "
                             f"expected outputs in selfcheck/ ({human_bytes(check['size_bytes'])}); on the device: "
                             f"edgekit verify {self.bundle['path']} --run")
        else:
            lines.append("bundle: not written")
        return "\n".join(lines)


def _fallback_lines(fb: dict[str, Any]) -> list[str]:
    """The auto-fallback search under its variant's row: every try, then the outcome."""
    pad = " " * 15
    lines = []
    candidates = fb.get("candidates") or []
    if candidates:
        lines.append(f"{pad} auto-fallback: the {len(candidates)} worst of {fb.get('layers_ranked', len(candidates))} "
                     f"layers by the debugger's error, chosen by the drop they remove (greedy, each set measured); "
                     f"drop before {_num(fb.get('drop_before_pts'), 2)} points, "
                     f"{human_bytes(fb.get('size_before_bytes'))}")
    for number, trial in enumerate(fb.get("tries") or [], 1):
        added = _short(trial["layers"][-1]) if trial["layers"] else "-"
        head = (f"{pad}   try {number:>2}: {len(trial['layers'])} in {trial['remedy']:<5} "
                f"(+{added})")
        if trial.get("error"):
            lines.append(f"{head}: failed: {trial['error']}")
            continue
        size = human_bytes(trial["size_bytes"]) if trial.get("size_bytes") is not None else "-"
        if trial.get("larger_than_float"):
            lines.append(f"{head}: {size}, larger than the float model: not measured, not kept")
            continue
        lines.append(f"{head}: {size}, drop {_num(trial.get('drop_pts'), 2)} ({_interval(trial.get('drop_ci95'))})"
                     + ("  passes" if trial.get("passed") else ""))
    if fb.get("succeeded"):
        layers = fb["int16_layers"] or fb["float_layers"]
        where = "with int16 activations" if fb["int16_layers"] else "in float"
        lines.append(f"{pad} auto-fallback kept {len(layers)} layer(s) {where}: {', '.join(map(_short, layers))}; "
                     f"size {_signed_bytes(fb['size_cost_bytes'])} vs all-int8; {len(fb.get('tries') or [])} "
                     f"tries, {fb['seconds']:.1f}s")
    else:
        lines.append(f"{pad} auto-fallback failed: {fb.get('reason')}" + (f"; {len(fb.get('tries') or [])} tries, "
                     f"{fb['seconds']:.1f}s" if fb.get("tries") else ""))
    return lines


def _short(layer: str) -> str:
    """A layer's name without the converter's fused aliases ("op a;b;c" -> "op a")."""
    return layer.split(";", 1)[0]


# What the drop column means, where it is not points of accuracy (said under the table).
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _interval(ci: Any) -> str:
    return "-" if not ci or ci[0] is None else f"{ci[0]:.1f}..{ci[1]:.1f}"


def _num(value: float | None, digits: int, style: str = "f") -> str:
    return "-" if value is None else f"{value:.{digits}{style}}"


def _signed_bytes(n: int) -> str:
    return ("+" if n >= 0 else "-") + human_bytes(abs(n))


def _classes(source: SourceModel, postprocess: PostprocessSpec | None = None) -> int | None:
    """How many classes the model tells apart (None: its outputs do not say).

    Raises:
        ShapeError: a detection spec whose format does not fit the model's outputs.
    """
    if postprocess is not None and postprocess.kind is PostprocessKind.DETECTION:
        from edgekit.runtime.postprocess import detection_classes

        return detection_classes(postprocess, [o.shape for o in source.outputs])
    shape = source.outputs[0].shape
    return shape[-1] if len(shape) >= 2 and shape[-1] > 0 else None


def convert(config: ConvertConfig, progress: Progress = no_progress,
            log: Callable[[str], None] = lambda _m: None) -> ConvertReport:
    """Run the conversion pipeline; writes the bundle unless a gate failed.

    Returns:
        The report; ``report.gate_passed`` is False (and no bundle is written) when a
        quantized variant loses more than ``max_accuracy_drop`` points.

    Raises:
        InputError: bad model, data, labels, spec or options (exit 1).
        UnsafeModelError: the model carries code and was not trusted (exit 3).
    """
    started = time.perf_counter()
    foreign = is_foreign(config.model)
    if not foreign:
        config = dataclasses.replace(config, variants=DEFAULT_VARIANTS if config.variants is None else config.variants)
    _check_options(config)
    if not foreign:
        source_kind(config.model)
    contract, no_front_end = _read_front_end(config)
    if not config.output.parent.is_dir():
        raise InputError(f"output {config.output}", expected="an existing directory", found="no such directory")
    _check_calibration(config, VARIANTS)  # derived variants are calibrated where their namesakes are

    warnings: list[str] = []
    log(f"loading {config.model}" + (" (verifying it)" if foreign else ""))
    with _open_source(config, foreign) as source:
        if no_front_end:
            on_purpose = ("add a preprocess section with kind: none to it" if contract.path is not None
                          else "pass --preprocess none")
            warnings.append(f"{no_front_end}: the bundle takes raw input tensors ({list(source.input_shape)} "
                            f"{source.inputs[0].dtype.value}, no preprocessing), so it cannot run on audio, images "
                            f"or sensor rows; describe {config.model.name}'s front end with --preprocess FILE.yaml "
                            f"(or a preset), or {on_purpose} if the model takes ready tensors")
        kinds = _variant_kinds(config, source)
        if foreign:
            config = dataclasses.replace(config, variants=tuple(kinds))
            _check_calibration(config, kinds)
        samples, random_data = _load_data(config, contract, source, progress, warnings)
        task = detect_task(source.input_shape, source.outputs, contract.postprocess)
        if task.detects:
            _check_detection(config, contract, source)
        elif len(source.outputs) > 1 and contract.postprocess is None:
            warnings.append(f"the model has {len(source.outputs)} outputs and no postprocess spec, so it is treated as "
                            f"{task} on its first output; for a detector, add a postprocess section (kind: detection, "
                            "detection_format: ssd|yolo|yolov8) to the --preprocess YAML")
        class_names = _labels(config, contract, samples, source, task)
        _check_targets(samples, source, task, warnings)
        calibration, validation = _calibration_and_validation(config, contract, source, samples, progress)
        log(f"data: {len(calibration)} calibration / {len(validation)} validation samples from {samples.source}")
        ref_outputs = source.predict(validation.x)
        if isinstance(source, ForeignModel) and task.class_labels and config.labels is None and not contract.labels:
            hint = label_order_hint(ref_outputs[0], validation.labels, class_names)
            if hint:
                warnings.append(hint)
        targets = validation.targets if task.targets else None
        metric_name, metric_value = task.metric(ref_outputs, validation.x, validation.labels, class_names, targets)
        image = contract.preprocess if isinstance(contract.preprocess, ImagePreprocess) else None
        reference = Reference(task, ref_outputs, metric_name, metric_value,
                              postprocess=contract.postprocess if task.detects else None,
                              input_size=(image.height, image.width) if image else None, targets=targets,
                              mae=regression_errors(ref_outputs[0], targets)[1] if targets is not None else None)

        results = []
        work = work_dir("variants")
        try:
            for name in config.variants:
                results.append(_build_and_measure(name, source, calibration, validation, reference, class_names,
                                                  config, work, progress, log, kinds))
            _apply_gate(results, source, calibration, validation, reference, class_names, config, progress, log,
                        work)
        finally:
            shutil.rmtree(work, ignore_errors=True)

        report = ConvertReport(
            config=config,
            source={"path": str(config.model), "format": source.format, "sha256": source.sha256,
                    "input_shape": list(source.input_shape), "adaptations": list(source.adaptations),
                    **({"foreign": True, "identified_as": source.variant_name, "precision": source.precision}
                       if foreign else {})},
            data={"source": samples.source, "calibration_source": calibration.source, "random": random_data,
                  "samples": len(samples),
                  "calibration_samples": len(calibration), "validation_samples": len(validation),
                  "labels": samples.labels is not None and not task.targets,
                  "targets": reference.targets is not None, "skipped": list(samples.skipped)},
            reference=reference.to_dict(),
            variants=results,
            warnings=warnings,
        )
        produced = [v for v in results if v.data is not None]
        for v in results:
            if v.error and produced:
                v.still_possible = [p.name for p in produced]
                v.error = f"{v.error}; still possible: {', '.join(v.still_possible)}"
            if v.error:
                warnings.append(f"{v.name} was not produced: {v.error}")
            drop = v.metrics.get("drop_pts") if v.data is not None else None
            if (config.max_accuracy_drop is None and v.precision != "fp32" and drop is not None
                    and drop_from_metrics(v.metrics).exceeds(WARN_DROP_PTS)):  # type: ignore[union-attr]
                warnings.append(f"{v.name} {task.drop_words(drop, v.metrics['drop_basis'])}; gate with "
                                "--max-accuracy-drop" + (", repair with --auto-fallback" if v.name in FALLBACK_VARIANTS
                                                         else ""))
        ungated = [v.name for v in produced if v.gate == "none" and v.precision != "fp32"]
        if config.max_accuracy_drop is not None and ungated:
            warnings.append(f"--max-accuracy-drop does not apply to {', '.join(ungated)}: a {task.name} model has no drop "
                            "basis (no labels or targets to compare with); judge them by SNR and the errors")
        report.gate_passed = not any(v.gate == "fail" for v in results)
        if not produced:
            raise InputError(f"converting {config.model.name}", expected="at least one variant",
                             found="every variant failed: " + "; ".join(v.error if (v.error or "").startswith(v.name) else f"{v.name}: {v.error}" for v in results))
        if report.gate_passed:
            report.bundle = _write(config, report, source, contract, class_names, task, produced, reference)
    report.seconds = time.perf_counter() - started
    return report


def gate_hint(report: ConvertReport) -> str:
    """What to do after a failed gate, without suggesting a flag that was given: the
    auto-fallback when it was not asked for, else what it found."""
    config = report.config
    failed = [v for v in report.variants if v.gate == "fail"]
    parts = []
    repairable = [v.name for v in failed if v.name in FALLBACK_VARIANTS]
    if repairable and not config.auto_fallback:
        parts.append(f"keep the sensitive layers of {', '.join(repairable)} at a higher precision with --auto-fallback")
    for v in failed:
        if v.fallback and not v.fallback.get("succeeded"):
            parts.append(f"{v.name}'s auto-fallback found no set within the gate ({v.fallback.get('reason')})")
    parts.append(f"leave {', '.join(v.name for v in failed) or 'the variant'} out with --variants")
    parts.append(f"or accept a larger drop than {config.max_accuracy_drop:g}" if config.max_accuracy_drop is not None
                 else "or accept a larger drop")
    return "; ".join(parts[:-1]) + ", " + parts[-1] if len(parts) > 1 else parts[0]


def gate_error(report: ConvertReport, context: str, hint: str | None = None) -> Any:
    """The exit-4 error for variants that failed the gate, in the unit of their drop
    (points of accuracy or AUC; % of the float RMSE for regression), each with its 95%
    confidence interval: a variant fails only when the interval's lower end is above the
    budget (`edgekit.stats.RULE`)."""
    from edgekit.errors import GateError

    failed = [v for v in report.variants if v.gate == "fail"]
    limit = report.config.max_accuracy_drop

    def unit(v: VariantResult) -> str:
        return "% RMSE increase" if v.metrics.get("drop_basis") == "rmse_increase_pct" else " points"

    def found(v: VariantResult) -> str:
        drop = drop_from_metrics(v.metrics)
        return f"{v.name} {drop.describe(unit(v)) if drop else 'no drop'}"

    units = {unit(v) for v in failed} or {" points"}
    return GateError(f"accuracy gate failed for {', '.join(v.name for v in failed)}{context}",
                     expected=f"a drop of at most {limit:g}{units.pop() if len(units) == 1 else ' (points or % RMSE)'} "
                     "beyond noise (the lower end of its 95% confidence interval)",
                     found="; ".join(found(v) for v in failed), hint=gate_hint(report) if hint is None else hint)


def _check_options(config: ConvertConfig) -> None:
    """Refuse option values and combinations before anything is loaded.

    Raises:
        InputError: an unknown variant, --auto-fallback without --max-accuracy-drop, an out
            of range drop, an unknown --int8-io or --onnx-int8.
    """
    if config.variants is not None:
        unknown = [n for n in config.variants if n not in VARIANTS]
        if unknown or not config.variants:
            raise InputError(f"unrecognized variant(s) {unknown}", expected=f"names from {list(VARIANTS)}",
                             found=str(list(config.variants)))
    if config.auto_fallback and config.max_accuracy_drop is None:
        raise InputError("--auto-fallback", expected="--max-accuracy-drop PTS (the target it falls back to)",
                         found="no --max-accuracy-drop")
    if config.max_accuracy_drop is not None and not (0 <= config.max_accuracy_drop <= 100):
        raise InputError("--max-accuracy-drop", expected="points between 0 and 100", found=str(config.max_accuracy_drop))
    known = {choice.value for choice in FallbackPrecision}
    if not config.fallback_precisions or set(config.fallback_precisions) - known \
            or len(set(config.fallback_precisions)) != len(config.fallback_precisions):
        raise InputError("--fallback-precision", expected=f"a comma list of {', '.join(sorted(known))}, each once "
                         "(the order they are tried in)", found=",".join(config.fallback_precisions) or "nothing")
    for option, value, choices in (("--int8-io", config.options.int8_io, Int8IO),
                                   ("--onnx-int8", config.options.onnx_int8, OnnxInt8Mode)):
        if value not in {choice.value for choice in choices}:
            raise InputError(option, expected=" or ".join(choice.value for choice in choices), found=value)


def label_order_hint(scores: np.ndarray, labels: np.ndarray | None,
                     class_names: tuple[str, ...] | None) -> str | None:
    """A warning when the class folders' sorted order is not the model's output order.

    A given model's outputs come in whatever order its maker chose; without --labels the
    classes are the sorted folder names. When another one-to-one order of the folders
    makes the model far more accurate, say which (else None).
    """
    if labels is None or not class_names or len(labels) == 0:
        return None
    k = len(class_names)
    predicted = np.argmax(scores.reshape(len(scores), -1), axis=1)
    if predicted.max(initial=0) >= k:
        return None
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels.astype(np.int64), predicted), 1)
    order = [int(np.argmax(confusion[:, j])) for j in range(k)]  # folder most often called output j
    if sorted(order) != list(range(k)):
        return None
    now = np.trace(confusion) / len(labels)
    then = sum(confusion[order[j], j] for j in range(k)) / len(labels)
    if then < now + 0.25:
        return None
    names = [class_names[i] for i in order]
    return (f"the given model is {now * 100:.1f}% accurate with its outputs named after the sorted class folders "
            f"{list(class_names)}, {then * 100:.1f}% with them named {names}: pass --labels with one name per "
            "output in the model's order (the bundle's labels come from it)")


# --preprocess none: the model takes ready tensors, said on purpose (no warning about it).
NO_FRONT_END = "none"


def _read_front_end(config: ConvertConfig) -> tuple[Contract, str | None]:
    """The contract (``--preprocess``, else the model's sidecar), and why the bundle will
    have no front end when nobody asked for none (None: it has one, or ``--preprocess
    none`` or a YAML saying ``kind: none`` asked for none).

    Raises:
        InputError: an unreadable or invalid contract, or neither a file nor a preset.
    """
    given = config.preprocess
    if given is not None and str(given) == NO_FRONT_END and not given.exists():
        return Contract(), None
    sidecar = sidecar_path(config.model)
    path = given or (sidecar if sidecar.is_file() else None)
    contract = read_contract(path)
    if not isinstance(contract.preprocess, NoPreprocess):
        return contract, None
    if path is None:
        return contract, "no --preprocess"
    if contract.preprocess_given:  # the file says kind: none itself
        return contract, None
    return contract, f"{path} has no preprocess section"


def _check_calibration(config: ConvertConfig, kinds: dict[str, VariantKind]) -> None:
    """Calibrated variants need --data, unless random calibration was allowed."""
    calibrated = [n for n in config.variants or () if n in kinds and kinds[n].calibrated]
    if config.data is None and not config.allow_random_calibration and calibrated:
        raise InputError(f"variants {calibrated} need calibration data",
                         expected="--data PATH (image/WAV folders or .npy/.npz)", found="no --data",
                         hint="pass --data, or --allow-random-calibration to accept meaningless fidelity figures")


def _open_source(config: ConvertConfig, foreign: bool) -> SourceModel | ForeignModel:
    """The reference model: a trained model to convert, or a given .tflite/.onnx to pack."""
    if foreign:
        return ForeignModel(ForeignConfig(config.model, config.input_shape))
    return SourceModel(LoadConfig(config.model, config.trust_model_code, config.input_shape))


def _variant_kinds(config: ConvertConfig, source: SourceModel | ForeignModel) -> dict[str, VariantKind]:
    """The variants to build, by name, in order.

    A trained model: the requested registry variants. A given model: itself first, as it
    is, then the variants derived from it that were asked for (all of them by default
    when there is --data, none without; ``--variants all`` asks for every one).

    Raises:
        InputError: a variant that cannot be derived from the given model.
    """
    if not isinstance(source, ForeignModel):
        return {name: VARIANTS[name] for name in config.variants or DEFAULT_VARIANTS}
    given = as_given(source)
    derivable = derivations(source.variant_name)
    if config.variants is None:
        wanted = list(derivable) if config.data is not None else []
    elif tuple(config.variants) == tuple(VARIANTS):  # --variants all
        wanted = list(derivable)
    else:
        wanted = [n for n in config.variants if n != given.name]
        missing = [n for n in wanted if n not in derivable]
        if missing:
            raise InputError(
                f"variant(s) {', '.join(missing)} of {source.path.name}",
                expected=f"the given model ({given.name})" + (f" or variants derived from it: {', '.join(derivable)}"
                                                              if derivable else ""),
                found=", ".join(missing),
                hint=(f"{source.path.name} is {given.name} ({given.precision}); " +
                      ("only a float model is quantized further" if not derivable else
                       "a given model is not converted to another format")))
    return {given.name: given, **{n: derivable[n] for n in derivable if n in wanted}}


def _calibration_and_validation(config: ConvertConfig, contract: Contract, source: SourceModel | ForeignModel,
                                samples: Samples, progress: Progress) -> tuple[Samples, Samples]:
    """The calibration and validation samples: `samples` split by hash, or, with
    ``calibration_data``, calibration from there (evenly spaced, at most
    ``calibration_samples``) and validation on all of `samples` (at most
    ``validation_samples``): a held-out split is then measured whole, not a 70% slice."""
    if config.calibration_data is None:
        return split(samples, calibration_max=config.calibration_samples, validation_max=config.validation_samples)
    calibration = load_samples(config.calibration_data, contract.preprocess, source.input_shape,
                               class_names=contract.labels, progress=progress)
    if len(calibration) == 0:
        raise InputError(f"calibration data {config.calibration_data}", expected="at least 1 sample", found="none")
    count = min(len(calibration), config.calibration_samples)
    calibration = calibration.subset(np.unique(np.linspace(0, len(calibration) - 1, count).round().astype(int)))
    return calibration, samples.subset(np.arange(min(len(samples), config.validation_samples)))


def _load_data(config: ConvertConfig, contract: Contract, source: SourceModel | ForeignModel, progress: Progress,
               warnings: list[str]) -> tuple[Samples, bool]:
    if config.data is not None:
        samples = load_samples(config.data, contract.preprocess, source.input_shape, labels_file=config.labels,
                               class_names=contract.labels, progress=progress)
        if samples.skipped:
            warnings.append(f"{len(samples.skipped)} unreadable file(s) skipped, e.g. {samples.skipped[0]}")
        if len(samples) < 2:
            raise InputError(f"data {config.data}", expected="at least 2 samples (calibration and validation)",
                             found=f"{len(samples)}")
        return samples, False
    count = min(config.calibration_samples + config.validation_samples, 400)
    if isinstance(source, ForeignModel) and len(config.variants or ()) == 1:
        warnings.append(f"no --data: {source.path.name} is packed as it is, NOT validated on real data (the manifest "
                        "says so); pass --data to validate it and to derive quantized variants from it")
        return random_samples(contract.preprocess, source.input_shape, min(count, 50), config.seed), True
    warnings.append("no --data: calibration and validation used RANDOM inputs, so every fidelity figure below is "
                    "meaningless for real data; rerun with --data before trusting a quantized variant")
    return random_samples(contract.preprocess, source.input_shape, count, config.seed), True


def _labels(config: ConvertConfig, contract: Contract, samples: Samples, source: SourceModel,
            task: Task) -> tuple[str, ...] | None:
    names = samples.class_names  # load_samples applied --labels, else the contract's labels, else the folders
    if names is None and config.labels is not None:  # no --data: nothing has read the labels file yet
        names = read_labels_file(config.labels)
    names = names or contract.labels
    classes = _classes(source, contract.postprocess)
    if names is not None and task.named_classes and classes is not None and len(names) != classes:
        where = f"labels file {config.labels}" if config.labels else ("class folders in " + samples.source if samples.class_names else "labels in the preprocess file")
        size = "the model's output size" if task.class_labels else \
            f"the classes in the {contract.postprocess.detection_format} detection outputs"  # type: ignore[union-attr]
        raise InputError(where, expected=f"{classes} labels ({size})", found=f"{len(names)} labels",
                         hint=f"pass a --labels file with one line per {'model output' if task.class_labels else 'class'}")
    if samples.labels is not None and classes is not None and task.class_labels:
        bad = samples.labels[(samples.labels >= classes) | (samples.labels < 0)]
        if bad.size:
            raise InputError(f"labels in {samples.source}", expected=f"class indices 0..{classes - 1}",
                             found=f"{bad.size} out of range, e.g. {int(bad[0])}")
    return names


def _check_targets(samples: Samples, source: SourceModel, task: Task, warnings: list[str]) -> None:
    """Float ``y`` are regression targets: refused where class labels are needed, and
    checked against the output size of a regression model.

    Raises:
        InputError: float ``y`` for a classifier, anomaly model or detector; targets
            without one value per output value.
    """
    if samples.targets is None:
        return
    if task.integer_labels and samples.labels is None:
        raise samples.integer_labels_error()
    if not task.targets:
        if not task.integer_labels:
            warnings.append(f"y in {samples.source} ignored: a {task.name} model is measured against the float "
                            "model's outputs")
        return
    out = tuple(d for d in source.outputs[0].shape[1:])
    per_sample = int(np.prod(samples.targets.shape[1:])) if samples.targets.ndim > 1 else 1
    if -1 not in out and per_sample != int(np.prod(out)):
        raise InputError(f"targets (y) in {samples.source}",
                         expected=f"{int(np.prod(out))} value(s) per sample (the model's output {out})",
                         found=f"{per_sample} (y of shape {tuple(samples.targets.shape)})",
                         hint="y must hold what the model predicts, e.g. (N,) or (N, horizon), in its output units")


def _check_detection(config: ConvertConfig, contract: Contract, source: SourceModel) -> None:
    """A detection spec must fit the model's outputs (in the model's own output order)."""
    from edgekit.errors import ShapeError

    try:
        _classes(source, contract.postprocess)
    except ShapeError as exc:
        raise InputError(f"postprocess in {contract.path}: {exc.what}", expected=exc.expected,
                         found=f"{exc.found} (the outputs of {config.model.name}, in the model's order)",
                         hint="fix detection_format, or the order of the model's outputs") from exc


def _build_and_measure(name: str, source: SourceModel | ForeignModel, calibration: Samples, validation: Samples,
                       reference: Reference, class_names: tuple[str, ...] | None, config: ConvertConfig,
                       work: Path, progress: Progress, log: Callable[[str], None],
                       kinds: dict[str, VariantKind] | None = None) -> VariantResult:
    """Build a variant in the first of its forms that converts and runs, and measure it.

    A form whose precision another requested variant already produces (``tflite-int8``
    as dynamic range next to ``tflite-dynamic``) is skipped rather than duplicated.
    """
    kinds = VARIANTS if kinds is None else kinds
    kind = kinds[name]
    started = time.perf_counter()
    tried: list[dict[str, Any]] = []
    result: VariantResult | None = None
    for index, form in enumerate(kind.forms(config.options)):
        twin = _twin(name, form.precision, config.variants or (), kinds) if index else None
        if twin is not None:
            tried.append({"precision": form.precision, "skipped": f"produced as {twin}"})
            continue
        log(f"building {name}" + (f" as {form.description}" if index else ""))
        candidate = VariantResult(name=name, format=kind.format, precision=form.precision)
        try:
            data = form.build(source, calibration.x if kind.calibrated else None, config.options, work, progress)
            _measure(candidate, data, source, validation, reference, class_names, progress)
        except ConversionError as exc:
            tried.append({"precision": form.precision, "error": str(exc), "ops": list(exc.ops)})
            continue
        result = candidate
        _note_substitute(result, kind.precision, form.description, tried)
        break
    if result is None:
        result = VariantResult(name=name, format=kind.format, precision=kind.precision)
        result.error, result.ops = _failure(tried)
    result.seconds = time.perf_counter() - started
    return result


def _twin(name: str, precision: str, requested: tuple[str, ...],
          kinds: dict[str, VariantKind] | None = None) -> str | None:
    """Another requested variant whose own (first) form has this format and precision."""
    kinds = VARIANTS if kinds is None else kinds
    kind = kinds[name]
    for other in requested:
        if other != name and kinds[other].format == kind.format and kinds[other].precision == precision:
            return other
    return None


def _failure(tried: list[dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """The error text of a variant none of whose forms worked, and the ops blamed."""
    errors = [t for t in tried if "error" in t]
    text = errors[0]["error"]
    for t in errors[1:]:
        cause = t["error"].split(": ", 1)[-1]  # without the "what: " prefix
        text += f"; as {t['precision']}: " + ("the same" if cause == errors[0]["error"].split(": ", 1)[-1] else cause)
    for t in tried:
        if "skipped" in t:
            text += f"; its {t['precision']} form is {t['skipped']}"
    ops = tuple(dict.fromkeys(op for t in errors for op in t["ops"]))
    return text, ops


def _note_substitute(result: VariantResult, requested: str, description: str, tried: list[dict[str, Any]]) -> None:
    """Say plainly when a variant is not what its name promises: a later form was kept,
    or the converter kept ops without integer kernels in float inside "full integer"."""
    float_ops: tuple[str, ...] = ()
    if result.format == "tflite" and result.precision in ("int8", "int16x8", "int8-float-ops", "int16x8-float-ops"):
        float_ops = tflite_float_ops(result.data or b"")
        if float_ops and result.precision in ("int8", "int16x8"):
            result.precision = f"{result.precision}-float-ops"
    failed = [t for t in tried if "error" in t]
    if result.precision == requested or (not failed and not float_ops):
        return
    names = ", ".join(float_ops)
    if failed:
        first = failed[0]
        cause = first["error"].split(": ", 1)[-1]
        reason = f"{requested} failed ({cause}); produced {description}"
        ops = tuple(dict.fromkeys(op for t in failed for op in t["ops"]))
    else:
        reason = (f"the converter kept op{'s' if len(float_ops) > 1 else ''} {names} in float, between quantize "
                  f"and dequantize ops (an op without an {requested} kernel, and what it feeds or is fed by)")
        ops = float_ops
    if float_ops and failed:
        reason += f"; in float: {names}"
    result.substitute = {"requested": requested, "produced": result.precision, "form": description,
                         "reason": reason, "ops": list(ops), "float_ops": list(float_ops), "tried": tried}


def _measure(result: VariantResult, data: bytes, source: SourceModel, validation: Samples, reference: Reference,
             class_names: tuple[str, ...] | None, progress: Progress) -> None:
    """Put the variant's outputs in the source's order, run it on the validation split and
    record its tensor specs and fidelity.

    Raises:
        ConversionError: the produced file is refused by the runtime, fails when run, or
            gives NaN or infinite outputs where the float model does not: such a file is
            reported, never written.
    """
    data = align_outputs(result.format, data, source.outputs, result.name)
    try:
        info = describe_in_process(result.format, data=data)
        outputs = run_variant(result.format, data, info.inputs, info.outputs, validation.x, progress,
                              f"validating {result.name}")
    except InputError as exc:  # a produced model the runtime refuses is a converter failure
        raise ConversionError(f"{result.name}: the converter produced a model the runtime refuses: {exc}",
                              ops_in_error(str(exc))) from exc
    except Exception as exc:  # noqa: BLE001 - converter output is untrusted; interpreters raise their own types
        raise ConversionError(f"{result.name}: the produced model fails when run: {type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:300]}", ops_in_error(str(exc))) from exc
    broken = [i for i, (got, want) in enumerate(zip(outputs, reference.outputs, strict=True))
              if not np.all(np.isfinite(got)[np.isfinite(want)])]
    if broken:
        raise ConversionError(f"{result.name}: the produced model gives NaN or infinite values in output "
                              f"{source.outputs[broken[0]].name!r} where the float model does not")
    result.data = data
    result.inputs, result.outputs = info.inputs, info.outputs
    result.metrics = fidelity(reference, outputs, validation.x, validation.labels, class_names)


def _apply_gate(results: list[VariantResult], source: SourceModel, calibration: Samples, validation: Samples,
                reference: Reference, class_names: tuple[str, ...] | None, config: ConvertConfig,
                progress: Progress, log: Callable[[str], None], work: Path) -> None:
    """Judge every quantized variant by the noise-aware rule (`edgekit.stats`): it fails
    only when its drop exceeds ``max_accuracy_drop`` beyond noise, i.e. when the lower end
    of the drop's 95% confidence interval is above the budget; on 89 samples one
    disagreement (1.12 points) passes a 1-point gate, many do not. The verdict is recorded
    in the variant's metrics as ``gate`` (``pass``, ``fail``, ``none``: no gate, float
    precision, or no drop basis)."""
    limit = config.max_accuracy_drop
    for result in results:
        if result.data is None:
            continue
        result.metrics["gate"] = "none"
        if limit is None or result.precision == "fp32":
            continue
        drop = drop_from_metrics(result.metrics)
        if drop is None:  # no basis for this task (generation): the gate does not apply
            continue
        result.gate = result.metrics["gate"] = "fail" if drop.exceeds(limit + 1e-9) else "pass"
        if (result.gate == "fail" and config.auto_fallback and result.name in FALLBACK_VARIANTS
                and (result.format == "tflite" or result.precision == "int8")):  # not dynamic ONNX int8
            _fallback(result, source, calibration, validation, reference, class_names, config, progress, log,
                      _float_size(results, result.format), work)
            result.metrics["gate"] = result.gate


def _float_size(results: list[VariantResult], fmt: str) -> int | None:
    """The size of this run's float variant of a format (None: not produced in this run)."""
    for v in results:
        if v.format == fmt and v.precision == "fp32" and v.data is not None:
            return len(v.data)
    return None


# The variants --auto-fallback repairs, and how it re-quantizes each (edgekit.convert.fallback).
FALLBACK_VARIANTS = ("tflite-int8", "onnx-int8")


def _fallback(result: VariantResult, source: SourceModel, calibration: Samples, validation: Samples,
              reference: Reference, class_names: tuple[str, ...] | None, config: ConvertConfig,
              progress: Progress, log: Callable[[str], None], float_size: int | None, work: Path) -> None:
    """Search the layers to keep at a higher precision by their measured effect
    (`edgekit.convert.fallback.search`) and keep the first set that passes the gate."""
    assert result.data is not None and config.max_accuracy_drop is not None
    limit = config.max_accuracy_drop
    limits = SearchLimits()
    if result.format == "onnx":  # a given .onnx stands for the export (ForeignModel.cached)
        route: Any = OnnxInt8Route(source, calibration.x, config.options, work, config.fallback_precisions)
    elif isinstance(source, ForeignModel):  # a given .tflite: ai-edge-quantizer made the variant and makes the tries
        route = ForeignTfliteInt8Route(source, calibration.x, config.options, config.fallback_precisions,
                                       failed=result.data)
    else:
        route = TfliteInt8Route(source, calibration.x, config.options, config.fallback_precisions)
    base_size, base_drop = len(result.data), result.metrics.get("drop_pts")

    def measure(data: bytes) -> tuple[VariantResult, Any, Any, Any]:
        candidate = VariantResult(result.name, result.format, result.precision)
        _measure(candidate, data, source, validation, reference, class_names, progress)
        return candidate, drop_from_metrics(candidate.metrics), candidate.metrics.get("drop_pts"), \
            candidate.metrics.get("drop_ci95")

    record: dict[str, Any] = {"succeeded": False, "remedy": None, "float_layers": [], "int16_layers": [],
                              "size_cost_bytes": 0, "drop_before_pts": base_drop, "size_before_bytes": base_size,
                              "limits": dataclasses.asdict(limits), "candidates": [], "tries": [], "seconds": 0.0}
    result.fallback = record
    started = time.perf_counter()
    if float_size is None:
        try:
            float_size = route.float_size()
        except (ConversionError, InputError) as exc:  # no ceiling to hold the search to: no search
            record["reason"] = f"the float model to bound the file size could not be made: {one_line(str(exc))}"
            return
    record["float_size_bytes"] = float_size
    try:
        outcome = search(route, measure, lambda drop: drop is not None and not drop.exceeds(limit + 1e-9),
                         float_size, limits, log)
    except Exception as exc:  # noqa: BLE001 - the debuggers are experimental; report, don't crash
        text = str(exc) if isinstance(exc, (ConversionError, InputError)) else f"{type(exc).__name__}: {exc}"
        record["reason"] = f"the quantization debugger failed: {one_line(text)}"
        record["seconds"] = round(time.perf_counter() - started, 3)
        return
    labels = {layer.name: layer.label() for layer in outcome.ranked}
    record["candidates"] = [{"tensor": layer.name, "op": layer.op, "relative_error": layer.error}
                            for layer in outcome.ranked[: limits.candidates]]
    record["layers_ranked"] = len(outcome.ranked)
    record["tries"] = [trial.to_dict() for trial in outcome.trials]
    record["seconds"] = round(outcome.seconds, 3)
    accepted = outcome.accepted
    if accepted is None:
        record["reason"] = outcome.reason
        return
    candidate = outcome.accepted_data
    result.data, result.inputs, result.outputs = candidate.data, candidate.inputs, candidate.outputs
    result.metrics = candidate.metrics
    result.gate = "pass"
    names = [labels.get(name, name) for name in accepted.layers]
    record.update({"succeeded": True, "remedy": accepted.remedy,
                   "float_layers": names if accepted.remedy == "float" else [],
                   "int16_layers": names if accepted.remedy == "int16" else [],
                   "size_cost_bytes": len(candidate.data) - base_size})
    result.precision = "int8-mixed"
    if result.substitute:  # the ops kept in float are still in float; the file is now this one
        result.substitute["produced"] = "int8-mixed"


def _postprocess(contract: Contract, task: Task, reference: Reference, classes: int | None) -> PostprocessSpec:
    if contract.postprocess is not None:
        return contract.postprocess
    return task.default_postprocess(reference.outputs, classes)


def _derived_by(config: ConvertConfig, source: ForeignModel) -> dict[str, str]:
    """Which tool made each derived variant of a given model (for the provenance)."""
    tools = {"tflite": "ai-edge-quantizer", "onnx": "onnxruntime.quantization"}
    return {name: tools[source.format] for name in config.variants or () if name != source.variant_name}


def _write(config: ConvertConfig, report: ConvertReport, source: SourceModel | ForeignModel, contract: Contract,
           class_names: tuple[str, ...] | None, task: Task, produced: list[VariantResult],
           reference: Reference) -> dict[str, Any]:
    foreign = isinstance(source, ForeignModel)
    variants, payloads = [], {}
    for v in produced:
        file = f"models/{v.name}{VariantFormat.SUFFIX[v.format]}"
        payloads[file] = v.data
        metrics = dict(v.metrics)
        metrics["convert_seconds"] = round(v.seconds, 3)
        if v.fallback:
            metrics["fallback"] = {k: v.fallback.get(k) for k in ("remedy", "float_layers", "int16_layers",
                                                                 "size_cost_bytes", "drop_before_pts")}
        if v.substitute:
            metrics["substitute"] = {k: v.substitute[k] for k in ("requested", "produced", "reason", "ops", "float_ops")}
        if foreign:  # the given model is packed as it is; the others were derived from it
            metrics["origin"] = "given" if v.name == source.variant_name else "derived"
        variants.append(Variant(name=v.name, format=v.format, file=file, precision=v.precision, inputs=v.inputs,
                                outputs=v.outputs, metrics=metrics))
    options = dataclasses.asdict(config.options)
    options["float_nodes"] = list(options["float_nodes"])
    extra: dict[str, Any] = {}
    if foreign:
        extra = {"foreign": True, "given_variant": source.variant_name,
                 "validated": not report.data["random"],
                 "validation": (f"measured on {report.data['validation_samples']} samples of {report.data['source']}"
                                if not report.data["random"] else
                                "not validated: no --data, so the figures come from random inputs; the given model "
                                "is packed as it is")}
    manifest = Manifest(
        name=config.name or config.output.name.removesuffix(config.output.suffix) or "model",
        variants=tuple(variants),
        preprocess=contract.preprocess,
        labels=tuple(class_names) if class_names and task.named_classes else (),
        postprocess=_postprocess(contract, task, reference, _classes(source, contract.postprocess)),
        provenance=make_provenance(
            source=describe_source(source) if foreign else {"path": config.model.name, "sha256": source.sha256,
                                                            "format": source.format},
            command=config.command,
            steps=[*contract.steps, {
                "step": "convert",
                "variants": list(config.variants),
                "adapted": list(source.adaptations),
                "options": options,
                "data": {k: report.data[k] for k in ("source", "random", "calibration_samples", "validation_samples")},
                "preprocess_file": str(contract.path) if contract.path else None,
                **({"foreign": True, "derived_by": _derived_by(config, source)} if foreign else {}),
            }],
        ),
        metrics={
            "reference": reference.to_dict(),
            "fidelity_on_random_data": report.data["random"],
            "failed_variants": {v.name: v.error for v in report.variants if v.error},
            "max_accuracy_drop_pts": config.max_accuracy_drop,
            **extra,
        },
    )
    check, check_payloads, note = build_self_check(
        contract.preprocess, config.data, tuple(source.input_shape), config.seed,
        [ProducedVariant(v.name, v.format, payloads[f"models/{v.name}{VariantFormat.SUFFIX[v.format]}"], v.inputs,
                         v.outputs) for v in produced])
    if note:
        report.warnings.append(note)
    manifest = dataclasses.replace(manifest, self_check=check)
    written = write_bundle(config.output, manifest, {**payloads, **check_payloads})
    return {"path": str(config.output), "variants": [v.name for v in written.variants],
            "size_bytes": config.output.stat().st_size,
            "self_check": {"source": check.source, "samples": list(check.ids),
                           "size_bytes": sum(len(b) for b in check_payloads.values())}}
