"""`edgekit qat MODEL --data PATH [--epochs N] [-o OUT] [--export OUT.edgekit]` and
`edgekit train RECIPE --qat`: quantization-aware fine-tuning of a trained Keras 3 model.

Steps: find the recipe (``--recipe``, else the ``report.json`` `edgekit train` left next to
MODEL) for the task, the split and the augmentation, and take the preprocessing from
MODEL's contract; load MODEL the way `edgekit convert` does (a model that carries code is
refused, exit 3); read and split the data exactly as training did; evaluate the float
model on the held-out split; build the fake-quantized twin (`edgekit.train.qat`: BatchNorm
folded, per-channel symmetric int8 weights, per-tensor activation ranges as moving
averages), initialize its ranges on training batches, fine-tune it with the recipe's loss
and augmentation; evaluate it; write the SavedModel ``OUT`` (FakeQuant ops in the graph),
its contract ``OUT.preprocess.yaml`` (whose provenance records the QAT step, so the
bundle's does) and ``OUT.qat.json``. With ``--export`` the QAT model and the float model
both go through `edgekit convert` (the int8 variants, the same calibration), are compared
on the validation split, and the better one (QAT on a tie) is converted again into the
bundle, validated on the held-out split: never worse than post-training int8 (`export`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bundle import atomic_write_bytes
from edgekit.contract import Contract, sidecar_path, write_contract
from edgekit.errors import InputError
from edgekit.progress import Log, Progress, no_progress
from edgekit.train.config import QatConfig
from edgekit.train.recipes import Recipe, load_recipe
from edgekit.train.trained import resolve_recipe, source_contract, training_report

REPORT_SUFFIX = ".qat.json"
INT8_VARIANTS = ("tflite-int8", "onnx-int8")


@dataclasses.dataclass(frozen=True)
class QatResult:
    output: Path
    report: dict[str, Any]
    bundle: Any = None

    def summary(self) -> str:
        r = self.report
        held = r["held_out"]
        kept = r["fine_tuning"].get("kept_epoch")
        lines = [f"QAT: {r['fine_tuning']['epochs']} epoch(s) at learning rate {r['fine_tuning']['learning_rate']:g} "
                 f"(kept epoch {kept}), "
                 f"{r['fine_tuning']['seconds_per_epoch']:.2f} s/epoch; {len(r['quantization']['folded_batchnorm'])} "
                 f"BatchNorm folded, {len(r['quantization']['weights_per_channel'])} weight tensors and "
                 f"{r['quantization']['activation_ranges']} activation ranges fake-quantized",
                 f"  held-out {held['metric']}: float {held['float']:.4g}, fake-quantized before fine-tuning "
                 f"{held['before']:.4g}, after {held['after']:.4g} ({held['samples']} samples)",
                 f"  QAT model {self.output} (SavedModel); report {report_path(self.output)}"]
        inside = r["quantization"].get("left_float_inside") or []
        if inside:
            lines.append(f"  note: not fake-quantized inside: {'; '.join(inside)}. The converter quantizes those "
                         "tensors from its calibration, not from training" + (
                             ": --export compares the int8 variants with post-training int8 on the validation "
                             "split and keeps the better" if self.bundle is None else ""))
        if self.bundle is not None:
            choice = r["export"]["choice"]
            lines.append(f"  int8 bundle: {choice['quantization']}" + (f" ({choice['reason']})"
                                                                        if choice["quantization"] == "qat" else ""))
            lines.append(self.bundle.render())
        return "\n".join(lines)


def report_path(output: Path) -> Path:
    return output.with_name(output.name + REPORT_SUFFIX)


def default_output(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(model.suffix) + "-qat")


def _resolve(config: QatConfig) -> tuple[Recipe, Path]:
    named = load_recipe(config.recipe) if config.recipe else None
    return resolve_recipe(config.model, config.data, named, training_report(config.model), "edgekit qat")


def _check(config: QatConfig) -> Path:
    output = config.output or default_output(config.model)
    if not config.model.exists():
        raise InputError(f"model {config.model}", expected="a trained .keras or .h5 model", found="no such file")
    if output.resolve() == config.model.resolve():
        raise InputError(f"-o {output}", expected="a new SavedModel folder (the float model is the reference)",
                         found="the input model itself")
    if output.suffix in (".keras", ".h5", ".tflite", ".onnx", ".edgekit"):
        raise InputError(f"-o {output}", expected="a folder name for the QAT SavedModel (no model suffix)",
                         found=repr(output.name), hint=f"e.g. -o {default_output(config.model)}")
    if output.exists() and not (output / "saved_model.pb").is_file():
        raise InputError(f"-o {output}", expected="a new folder, or a QAT SavedModel to replace",
                         found="an existing path that is not a SavedModel", hint="choose another -o")
    if not output.resolve().parent.is_dir():
        raise InputError(f"-o {output}", expected="a path in an existing directory",
                         found=f"no directory {output.parent}", hint="create it first")
    for variant in config.variants:
        if variant not in INT8_VARIANTS:
            raise InputError(f"--variants {variant}", expected=f"int8 variants of the QAT model: some of "
                             f"{list(INT8_VARIANTS)}", found=repr(variant),
                             hint="the float variants come from the float model (edgekit convert MODEL)")
    return output


def qat(config: QatConfig, log: Log = print, progress: Progress = no_progress) -> QatResult:
    """Fine-tune `config.model` with fake quantization; write the QAT SavedModel.

    Raises:
        InputError: bad options, model, recipe or data (exit 1).
        UnsafeModelError: the model carries code and was not trusted (exit 3).
        GateError: the exported bundle failed its accuracy gate (exit 4).
    """
    started = time.perf_counter()
    output = _check(config)
    recipe, data_path = _resolve(config)
    from edgekit.convert.source import LoadConfig, SourceModel

    log(f"[1/5] loading {config.model}")
    with SourceModel(LoadConfig(config.model, config.trust_model_code, export=False)) as source:
        if source.keras_model is None:
            raise InputError(f"model {config.model}", expected="a .keras or .h5 model (QAT rebuilds Keras layers)",
                             found="a SavedModel", hint="fine-tune the Keras model the SavedModel was exported from")
        model, source_sha = source.keras_model, source.sha256
    return _qat_loaded(config, output, recipe, data_path, model, source_sha, started, log, progress)


def _qat_loaded(config: QatConfig, output: Path, recipe: Recipe, data_path: Path, model: Any, source_sha: str,
                started: float, log: Log, progress: Progress) -> QatResult:
    from edgekit.keras_env import import_keras
    from edgekit.train import fit, pipeline
    from edgekit.train import qat as fake

    keras = import_keras()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # predict's retracing notes on the held-out batches
    log(f"[2/5] data {data_path} (split as in training: {recipe.name})")
    prepared = fit.prepare_for_model(recipe, data_path, model, config.model.name, config.seed, log, progress)
    raw, parts, input_shape, classes, seed = (prepared.raw, prepared.parts, prepared.input_shape, prepared.classes,
                                              prepared.seed)
    section = recipe.values["qat"]
    epochs = int(config.epochs if config.epochs is not None else section["epochs"])
    rate = config.learning_rate if config.learning_rate is not None else section["learning_rate"]
    rate = float(rate) if rate is not None else float(recipe.train["learning_rate"]) / 10
    quiet = lambda message: log("  " + message.strip())  # noqa: E731
    float_eval = fit.evaluate(model, recipe, parts, input_shape, quiet)

    log("[3/5] fake quantization: BatchNorm folded, per-channel int8 weights, per-tensor int8 activation ranges")
    # an anomaly detector trains on normal data only: ranges that follow it would clip the
    # anomalies the detector is there to see, so it keeps every value seen in range
    decay = 0.0 if recipe.kind.normal_only else float(section["ema_decay"])
    options = fake.QatOptions(ema_decay=decay)
    built = fake.quantize_model(model, options)
    qmodel = built.model
    batch = int(recipe.train["batch_size"])
    steps = pipeline.steps(len(parts.train), batch)
    calibration = fit.fit_dataset(tf, parts.train, recipe, input_shape, batch, False, classes, seed)
    seen = fake.calibrate(qmodel, calibration, options.calibration_batches)
    before_eval = fit.evaluate(qmodel, recipe, parts, input_shape, quiet)
    train_values = {**recipe.train, "learning_rate": rate, "warmup_epochs": 0, "schedule": "cosine"}
    fitted = dataclasses.replace(recipe, values={**recipe.values, "train": train_values})
    fit.compile_model(keras, qmodel, fitted, fit.schedule(keras, train_values, epochs, steps))
    log(f"[4/5] fine-tuning {epochs} epoch(s) at learning rate {rate:g} (batch {batch})")
    state: dict[str, Any] = {"epoch": 0, "history": []}
    import warnings

    validation = fit.fit_dataset(tf, parts.validation, fitted, input_shape, batch, False, classes, seed)
    best = _KeepBest(keras, qmodel, validation)
    with tempfile.TemporaryDirectory(prefix="edgekit-qat-") as scratch:
        callbacks = fit.callbacks(keras, log, epochs, steps, config.progress_bar, Path(scratch), state, False)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="keras")
            qmodel.fit(fit.fit_dataset(tf, parts.train, fitted, input_shape, batch, True, classes, seed),
                       validation_data=validation, epochs=epochs, callbacks=[*callbacks, best.callback()], verbose=0,
                       shuffle=False)
        fit_seconds = time.perf_counter() - t0
    best.restore()
    if best.epoch < len(state["history"]):
        log(f"  kept the weights and ranges of epoch {best.epoch} (the lowest validation loss"
            + (", before any fine-tuning)" if best.epoch == 0 else ")"))
    fake.sync_weight_ranges(qmodel)
    after_eval = fit.evaluate(qmodel, recipe, parts, input_shape, quiet)
    headline = [recipe.kind.headline(e) for e in (float_eval, before_eval, after_eval)]
    history = state["history"]
    report: dict[str, Any] = {
        "edgekit": __version__,
        "model": {"path": str(config.model), "sha256": source_sha},
        "recipe": recipe.name,
        "data": {"source": str(data_path), "train": len(parts.train), "validation": len(parts.validation),
                 "test": len(parts.test)},
        "quantization": {"method": "qat", **fake.summary_counts(built),
                         "weights": "int8 symmetric narrow range [-127, 127], per output channel (Dense on sequences: per tensor), "
                                    "from the current weights",
                         "activations": "int8 asymmetric, per tensor",
                         "ranges_source": (fake.RANGES_SOURCE if decay else fake.MINMAX_SOURCE).format(n=seen),
                         "ema_decay": decay},
        "fine_tuning": {"epochs": epochs, "kept_epoch": best.epoch, "learning_rate": rate, "batch_size": batch,
                        "steps_per_epoch": steps,
                        "seed": seed, "seconds": round(fit_seconds, 3),
                        "seconds_per_epoch": float(np.median([h["seconds"] for h in history])) if history else 0.0,
                        "history": history},
        "held_out": {"metric": headline[0]["metric"], "unit": headline[0].get("unit"),
                     "float": headline[0]["value"], "before": headline[1]["value"], "after": headline[2]["value"],
                     "samples": len(parts.test)},
        "ranges": fake.activation_ranges(qmodel),
        "command": config.command,
    }
    log(f"[5/5] writing {output} (SavedModel with FakeQuant ops)")
    float_contract = source_contract(config.model, recipe, raw.class_names)
    contract = _qat_contract(float_contract, config.model, report, source_sha)
    _write_saved_model(fake, qmodel, output)
    write_contract(sidecar_path(output), contract)
    heldout = output.parent / f"{output.name}.heldout.npz"
    fit.write_npz(heldout, **recipe.kind.heldout(model, recipe, parts))
    calibration_file = output.parent / f"{output.name}.calibration.npz"
    fit.write_npz(calibration_file, **recipe.kind.calibration(model, recipe, parts))
    report["outputs"] = {"model": str(output), "contract": str(sidecar_path(output)), "heldout": str(heldout),
                         "report": str(report_path(output))}
    bundle = None
    if config.export is not None:
        validation_file = output.parent / f"{output.name}.validation.npz"
        fit.write_npz(validation_file, **recipe.kind.heldout(model, recipe, dataclasses.replace(parts, test=parts.validation)))
        report["outputs"]["validation"] = str(validation_file)
        bundle, choice = export(output, contract, float_contract,
                                Int8Data(heldout, calibration_file, validation_file), config, seed, log, progress)
        report["export"] = {"bundle": str(config.export), "gate_passed": bundle.gate_passed, "choice": choice,
                            "variants": {v.name: v.metrics for v in bundle.variants}}
    report["seconds"] = round(time.perf_counter() - started, 2)
    atomic_write_bytes(report_path(output), (json.dumps(report, indent=2, default=fit.plain) + "\n").encode())
    result = QatResult(output, report, bundle)
    if bundle is not None and not bundle.gate_passed:
        from edgekit.convert.run import gate_error

        log(bundle.render())
        raise gate_error(bundle, f" (the QAT model is in {output})", "no bundle was written")
    return result


class _KeepBest:
    """The weights and ranges of the epoch with the lowest validation loss, the calibrated
    start (epoch 0) included: fine-tuning that only makes the model worse is not kept."""

    def __init__(self, keras: Any, model: Any, validation: Any) -> None:
        self.keras, self.model = keras, model
        self.loss = float(_loss(model.evaluate(validation, verbose=0)))
        self.weights = model.get_weights()
        self.epoch = 0

    def callback(self) -> Any:
        keeper = self

        class Keep(self.keras.callbacks.Callback):
            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                loss = float((logs or {}).get("val_loss", np.inf))
                if loss < keeper.loss:
                    keeper.loss, keeper.weights, keeper.epoch = loss, keeper.model.get_weights(), epoch + 1

        return Keep()

    def restore(self) -> None:
        self.model.set_weights(self.weights)


def _loss(result: Any) -> float:
    if isinstance(result, dict):
        return float(result["loss"])
    return float(result[0] if isinstance(result, (list, tuple)) else result)


@dataclasses.dataclass(frozen=True)
class Int8Data:
    """The splits an export uses: ``heldout`` (the test split) validates the bundle,
    ``calibration`` calibrates the tensors without learnt ranges, ``validation`` (the
    validation split) decides between QAT and post-training int8."""

    heldout: Path
    calibration: Path
    validation: Path


def export(output: Path, qat_contract: Contract, float_contract: Contract, data: Int8Data, config: QatConfig,
           seed: int, log: Log, progress: Progress) -> tuple[Any, dict[str, Any]]:
    """The int8 bundle of the QAT model, or of post-training int8 where that is better.

    Both are made by `edgekit convert` with the same calibration (the validation split;
    the converters take the QAT model's ranges from its FakeQuant ops, the calibration
    only covers tensors without one) and measured on the validation split: QAT is kept
    when each int8 variant does at least as well as its post-training twin there and one
    does better (`choose`), else
    the bundle is post-training int8 of the float model (one source per bundle: never
    worse than post-training on any variant). The held-out split is not looked at for
    the choice; the kept model is then converted once more, validated on every held-out
    sample under the gate. The choice is in the returned dict and in the bundle's
    provenance (an ``int8 choice`` step with its ``quantization``).

    Returns:
        The `ConvertReport` of the bundle, and the choice (``quantization``, ``reason``,
        ``metric``, ``validation``: per variant, both figures).
    """
    from edgekit.convert.run import ConvertConfig, convert

    def convert_to(model: Path, contract: Path | None, target: Path, samples: Path, gate: float | None,
                   command: str) -> Any:
        with np.load(samples, allow_pickle=False) as arrays:
            count = len(arrays["x"])
        return convert(ConvertConfig(model=model, output=target, variants=tuple(config.variants), data=samples,
                                     preprocess=contract, max_accuracy_drop=gate, auto_fallback=False, seed=seed,
                                     calibration_data=data.calibration, validation_samples=max(1, count),
                                     trust_model_code=config.trust_model_code, command=command),
                       progress=progress, log=lambda _line: None)

    log(f"  int8 on the validation split ({data.validation.name}): QAT against post-training "
        f"({','.join(config.variants)}, both calibrated on {data.calibration.name})")
    failure = ""
    with tempfile.TemporaryDirectory(prefix="edgekit-qat-export-") as scratch:
        float_file = Path(scratch) / "float.preprocess.yaml"
        write_contract(float_file, float_contract)
        ptq_report = convert_to(config.model, float_file, Path(scratch) / "ptq.edgekit", data.validation, None, "choice")
        try:
            qat_report = convert_to(output, None, Path(scratch) / "qat.edgekit", data.validation, None, "choice")
        except InputError as exc:  # no int8 variant of the QAT model: post-training int8 is what there is
            qat_report = None
            failure = " ".join(str(exc).split())[:200]
    choice = choose(qat_report, ptq_report) if qat_report is not None else {
        "metric": ptq_report.reference.get("metric"), "validation": {},
        "quantization": f"post-training (QAT was not converted: {failure})", "reason": failure}
    log(f"  kept {choice['quantization']}" + (f": {choice['reason']}" if choice["quantization"] == "qat" else ""))
    step = {"step": "int8 choice", "quantization": choice["quantization"], "reason": choice["reason"],
            "metric": choice["metric"], "validation": choice["validation"]}
    qat_won = choice["quantization"] == "qat"
    chosen = output.parent / f"{output.name}.export.preprocess.yaml"
    write_contract(chosen, (qat_contract if qat_won else float_contract).with_step(step))
    model = output if qat_won else config.model
    log(f"  edgekit convert {model} -o {config.export} --variants {','.join(config.variants)} --data {data.heldout} "
        f"--preprocess {chosen}" + (f" --max-accuracy-drop {config.max_accuracy_drop:g}"
                                    if config.max_accuracy_drop is not None else ""))
    bundle = convert_to(model, chosen, config.export, data.heldout, config.max_accuracy_drop,
                        config.command or f"edgekit qat {config.model} --export {config.export}")
    return bundle, {**choice, "contract": str(chosen)}


# a variant's headline figure on labelled data, and whether higher is better
HIGHER_IS_BETTER = {"accuracy": True, "roc_auc": True, "rmse": False}


def choose(qat_report: Any, ptq_report: Any) -> dict[str, Any]:
    """QAT or post-training int8, from two convert reports of the same variants on the same
    (validation) data: QAT when every variant of it does at least as well as its
    post-training twin in the task's metric against the labels and one does better (a tie
    keeps post-training int8: nothing shows that the fine-tuning helped)."""
    metric = qat_report.reference.get("metric") or ptq_report.reference.get("metric")
    figures: dict[str, dict[str, float | None]] = {}
    for q in qat_report.variants:
        p = next((v for v in ptq_report.variants if v.name == q.name), None)
        figures[q.name] = {"qat": _figure(q, metric), "post_training": _figure(p, metric) if p else None}
    base = {"metric": metric, "validation": figures}
    if metric not in HIGHER_IS_BETTER:
        return {**base, "quantization": "post-training (no metric against labels on the validation split to show "
                "that QAT is not worse)", "reason": "no labelled figure on the validation split"}
    higher = HIGHER_IS_BETTER[metric]
    worse = []
    for name, f in figures.items():
        q, p = f["qat"], f["post_training"]
        if q is None and p is not None:
            worse.append(f"{name}: QAT not produced")
        elif q is not None and p is not None and (q < p if higher else q > p):
            worse.append(f"{name} {metric} {q:.4g} vs {p:.4g}")
    if worse:
        return {**base, "quantization": f"post-training (QAT was worse on validation: {'; '.join(worse)})",
                "reason": "; ".join(worse)}
    said = "; ".join(f"{name} {metric} {_g(f['qat'])} vs post-training {_g(f['post_training'])}"
                     for name, f in figures.items())
    better = [name for name, f in figures.items() if f["qat"] is not None and
              (f["post_training"] is None or (f["qat"] > f["post_training"] if higher
                                              else f["qat"] < f["post_training"]))]
    if not better:  # no evidence for the fine-tuned model: keep the one without the extra step
        return {**base, "quantization": f"post-training (QAT was no better on validation: {said})",
                "reason": f"a tie on validation: {said}"}
    return {**base, "quantization": "qat", "reason": f"better on validation: {said}"}


def _figure(variant: Any, metric: str | None) -> float | None:
    if variant is None or variant.data is None or metric is None:
        return None
    value = (variant.metrics or {}).get(metric)
    return float(value) if value is not None else None


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _write_saved_model(fake: Any, qmodel: Any, output: Path) -> None:
    """The SavedModel, staged next to `output` and renamed over it (no half-written model)."""
    staged = output.with_name(f".{output.name}.staging")
    shutil.rmtree(staged, ignore_errors=True)
    try:
        fake.export_saved_model(qmodel, staged)
        if output.exists():
            old = output.with_name(f".{output.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            output.rename(old)
            staged.rename(output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staged.rename(output)
    finally:
        shutil.rmtree(staged, ignore_errors=True)


def _qat_contract(source: Contract, model: Path, report: Mapping[str, Any], source_sha: str) -> Contract:
    """The QAT model's contract: `source` (the float model's, `source_contract`) plus the QAT step."""
    q = report["quantization"]
    step = {"step": "qat", "quantization": "qat", "source": {"path": model.name, "sha256": source_sha},
            "epochs": report["fine_tuning"]["epochs"], "learning_rate": report["fine_tuning"]["learning_rate"],
            "ranges_source": q["ranges_source"], "weights": q["weights"], "activations": q["activations"],
            "folded_batchnorm": len(q["folded_batchnorm"]), "held_out": dict(report["held_out"]),
            "command": report.get("command")}
    return source.with_step(step)
