"""`edgekit prune MODEL --data DIR (--sparsity S | --channels F) -o OUT.keras`.

Steps: check the options; find the recipe (``--recipe``, else the ``report.json`` that
`edgekit train` left next to MODEL) for the task, the split, the augmentation and the
fine-tuning hyperparameters, and take the preprocessing from MODEL's contract (the
single source of truth); load MODEL the way `edgekit convert` does (a model that carries
code is refused, exit 3); read the data and split it exactly as training did, so the
held-out figures are on samples neither training nor fine-tuning saw; evaluate; prune
(`magnitude`: masks on a polynomial-decay schedule during fine-tuning; `structured`: a
thinner model, then fine-tuning); evaluate again; convert both models to TFLite fp32 and
int8 (sizes, gzip sizes, int8 accuracy) and, for channel pruning, measure both with
`edgekit bench` in one interleaved run; write ``OUT.keras``, its contract
``OUT.preprocess.yaml`` (whose provenance records the pruning, so the bundle's does) and
``OUT.prune.json``. Nothing is written unless every step succeeded.
"""

from __future__ import annotations

import copy
import dataclasses
import gzip
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bundle import atomic_write_bytes
from edgekit.contract import Contract, sidecar_path, write_contract
from edgekit.errors import EdgekitError, InputError
from edgekit.progress import Log, Progress, no_progress
from edgekit.train.recipes import DEFAULTS, Recipe, check_prune, load_recipe
from edgekit.train.trained import resolve_recipe, source_contract, training_report

REPORT_SUFFIX = ".prune.json"
# The environment `edgekit prune` runs TensorFlow in: oneDNN's CPU kernels crashed ("double
# free or corruption", SIGABRT) in the first training step of a channel-pruned ResNet-8 fed
# from a tf.data pipeline (TensorFlow 2.21; the same model from numpy arrays, or with oneDNN
# off, trains). The flag is read when TensorFlow loads, so it is set before that.
ONEDNN = {"TF_ENABLE_ONEDNN_OPTS": "0"}
MEASURED_VARIANTS = ("tflite-fp32", "tflite-int8")


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    """Options of `edgekit prune` (see the README). None takes the recipe's ``prune`` value.

    Attributes:
        model: the trained ``.keras`` (or ``.h5``) model.
        output: the pruned model to write (``OUT.keras``).
        data: the training data (as for `edgekit train --data`); None: the data the
            training report next to `model` names.
        sparsity: unstructured target sparsity in [0, 1) (magnitude pruning).
        channels: fraction of every prunable layer's channels to remove, in (0, 1).
        epochs: fine-tuning epochs (0: prune once, no fine-tuning).
        recipe: a recipe name or YAML path; None: the training report's recipe.
        learning_rate: fine-tuning learning rate (None: the recipe's prune value, else a
            quarter of its training rate).
        scope: ``layer`` (every layer at the target) or ``global`` (one threshold).
        importance: channel importance, ``l1``, ``l2`` or ``bn`` (BatchNorm gamma).
        skip: layers never pruned.
        prune_first / prune_last / prune_depthwise: prune the first and last layers and the
            depthwise kernels too (magnitude).
        round_to: keep channel counts a multiple of this.
        block: magnitude: prune runs of this many consecutive input channels together.
        distill: classifiers: weight of the unpruned model's probabilities in the
            fine-tuning targets (0: the labels alone).
        measure: convert before and after (TFLite fp32 and int8 sizes, gzip, int8 accuracy).
        bench: measure TFLite latency before and after with `edgekit bench` (None: with
            channel pruning only; weight sparsity does not change dense kernels' speed).
        bench_seconds: seconds per model and window set in the bench run.
        trust_model_code: load a model that carries code (as `edgekit convert`).
        progress_bar: a progress bar per epoch on stderr.
        command: the command line, for the report and the provenance.
    """

    model: Path
    output: Path
    data: Path | None = None
    sparsity: float | None = None
    channels: float | None = None
    epochs: int | None = None
    recipe: str | None = None
    learning_rate: float | None = None
    scope: str | None = None
    importance: str | None = None
    skip: tuple[str, ...] = ()
    prune_first: bool | None = None
    prune_last: bool | None = None
    prune_depthwise: bool | None = None
    round_to: int | None = None
    block: int | None = None
    distill: float | None = None
    seed: int | None = None
    measure: bool = True
    bench: bool | None = None
    bench_seconds: float = 2.0
    trust_model_code: bool = False
    progress_bar: bool = True
    command: str | None = None


@dataclasses.dataclass(frozen=True)
class PruneResult:
    model_path: Path | None
    report: dict[str, Any]

    def summary(self) -> str:
        return render_summary(self.report, self.model_path)


# ---------------------------------------------------------------------------
# options, recipe, data


def prune_options(config: PruneConfig, recipe_values: Mapping[str, Any] | None) -> dict[str, Any]:
    """The recipe's ``prune`` section with the command line's values on top, checked.

    Raises:
        InputError: a value out of range, both or neither kind of pruning.
    """
    options = {**copy.deepcopy(DEFAULTS["prune"]), **((recipe_values or {}).get("prune") or {})}
    if config.sparsity is not None or config.channels is not None:  # the command line picks the kind
        options["sparsity"], options["channels"] = config.sparsity, config.channels
    for key in ("epochs", "learning_rate", "scope", "importance", "prune_first", "prune_last", "prune_depthwise",
                "round_to", "block", "distill"):
        value = getattr(config, key)
        if value is not None:
            options[key] = value
    options["skip"] = sorted({*(options.get("skip") or []), *config.skip})
    check_prune(options, "--")
    if options.get("sparsity") is None and options.get("channels") is None:
        raise InputError("edgekit prune", expected="--sparsity S (weights) or --channels F (filters)",
                         found="neither (and no prune section in the recipe)",
                         hint="e.g. --sparsity 0.8 or --channels 0.5")
    return options


# ---------------------------------------------------------------------------
# metrics


def change(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Points lost (accuracy, AUC) or % increase (RMSE, error): positive is worse."""
    a, b = float(before["value"]), float(after["value"])
    if before["metric"] in ("accuracy", "roc_auc"):
        return {"lost": round((a - b) * 100.0, 3), "unit": "pts"}
    return {"lost": round((b - a) / a * 100.0, 3) if a else None, "unit": "%"}


def _gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# ---------------------------------------------------------------------------
# the run


def prune(config: PruneConfig, log: Log = print, progress: Progress = no_progress) -> PruneResult:
    """Prune `config.model`, fine-tune it, measure both and write the pruned model.

    Raises:
        InputError: bad options, model, recipe or data; nothing prunable (exit 1).
        UnsafeModelError: the model carries code and was not trusted (exit 3).
    """
    started = time.perf_counter()
    if config.output.suffix != ".keras":
        raise InputError(f"-o {config.output}", expected="a Keras model path ending in .keras",
                         found=repr(config.output.name))
    if not config.output.resolve().parent.is_dir():
        raise InputError(f"-o {config.output}", expected="a path in an existing directory",
                         found=f"no directory {config.output.parent}", hint="create it first")
    if config.output.resolve() == config.model.resolve():
        raise InputError(f"-o {config.output}", expected="a new file (the unpruned model is the reference)",
                         found="the input model itself")
    if not config.model.exists():
        raise InputError(f"model {config.model}", expected="a trained .keras or .h5 model", found="no such file")
    found = training_report(config.model)
    named = load_recipe(config.recipe) if config.recipe else None
    recipe_values = named.values if named else (found[1]["recipe"]["values"] if found else None)
    options = prune_options(config, recipe_values)  # before any heavy work: bad values fail at once
    method = "magnitude" if options.get("sparsity") is not None else "channels"

    from edgekit.convert.source import LoadConfig, SourceModel

    log(f"[1/5] loading {config.model}")  # as convert does: a model that carries code is refused here (exit 3)
    with SourceModel(LoadConfig(config.model, config.trust_model_code, export=False)) as source:
        if source.keras_model is None:
            raise InputError(f"model {config.model}", expected="a .keras or .h5 model (pruning rebuilds Keras layers)",
                             found="a SavedModel", hint="prune the Keras model the SavedModel was exported from")
        model, source_sha, adaptations = source.keras_model, source.sha256, list(source.adaptations)
    recipe, data_path = resolve_recipe(config.model, config.data, named, found, "edgekit prune",
                                       "prune the generator's weights once with --epochs 0, or retrain a smaller "
                                       "generator")
    return _prune_loaded(config, options, method, recipe, data_path, model, source_sha, adaptations, started, log,
                         progress)


def prune_in_child(config: PruneConfig, log: Log = print) -> PruneResult:
    """`prune` in a process of its own, for a caller that has TensorFlow loaded already.

    The child is spawned (a fresh interpreter, not a fork of this TensorFlow process) with
    `ONEDNN` in its environment before TensorFlow loads there: fine-tuning a channel-pruned
    ResNet-8 from a ``tf.data`` pipeline crashed oneDNN's CPU kernels ("double free or
    corruption") in this TensorFlow. Log lines and the result come back through a pipe;
    an `EdgekitError` in the child is raised here with its type (and exit code) intact.

    Raises:
        EdgekitError: what `prune` raised in the child.
        InputError: the child died without a result (a crash), naming its exit code.
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    reader, writer = context.Pipe(duplex=False)
    saved = {key: os.environ.get(key) for key in ONEDNN}
    os.environ.update(ONEDNN)  # the spawned child copies this environment at start
    try:
        child = context.Process(target=_prune_child, args=(config, writer), name="edgekit-prune", daemon=True)
        child.start()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    writer.close()
    result: PruneResult | None = None
    error: dict[str, Any] | None = None
    try:
        while True:
            try:
                kind, payload = reader.recv()
            except EOFError:
                break
            if kind == "log":
                log(payload)
            elif kind == "result":
                result = payload
            else:
                error = payload
    finally:
        reader.close()
        child.join()
    if error is not None:
        raise EdgekitError.from_dict(error)
    if result is None:
        raise InputError(f"edgekit prune of {config.model}", expected="a pruned model",
                         found=f"the pruning process ended with exit code {child.exitcode} and no result",
                         hint="run edgekit prune on the model by itself to see why")
    return result


def _prune_child(config: PruneConfig, connection: Any) -> None:
    """The spawned side of `prune_in_child`."""
    try:
        result = prune(config, log=lambda line: connection.send(("log", line)))
        connection.send(("result", result))
    except EdgekitError as exc:
        connection.send(("error", exc.to_dict()))
    finally:
        connection.close()


def _prune_loaded(config: PruneConfig, options: dict[str, Any], method: str, recipe: Recipe, data_path: Path,
                  model: Any, source_sha: str, adaptations: list[str], started: float, log: Log,
                  progress: Progress) -> PruneResult:
    from edgekit.keras_env import import_keras
    from edgekit.train import fit, pipeline

    keras = import_keras()
    import tensorflow as tf

    from edgekit.inspection.keras import keras_macs

    log(f"[2/5] data {data_path} (split as in training: {recipe.name})")
    prepared = fit.prepare_for_model(recipe, data_path, model, config.model.name, config.seed, log, progress)
    raw, parts, input_shape, classes, seed = (prepared.raw, prepared.parts, prepared.input_shape, prepared.classes,
                                              prepared.seed)
    log(f"  {len(parts.train)} train, {len(parts.validation)} validation, {len(parts.test)} held-out samples")

    quiet = _indent(log)
    before_eval = fit.evaluate(model, recipe, parts, input_shape, quiet)
    before = recipe.kind.headline(before_eval)
    params_before, macs_before = int(model.count_params()), keras_macs(model)

    epochs = int(options["epochs"])
    train_values = dict(recipe.train)
    rate = options.get("learning_rate")
    train_values.update(learning_rate=float(rate) if rate is not None else float(recipe.train["learning_rate"]) / 4,
                        warmup_epochs=0)
    batch = int(train_values["batch_size"])
    steps = pipeline.steps(len(parts.train), batch)
    teacher = None
    if float(options["distill"]) > 0 and recipe.kind.distills and epochs:
        teacher = keras.models.clone_model(model)  # magnitude pruning changes `model` in place
        teacher.set_weights(model.get_weights())
        teacher.trainable = False
    record: dict[str, Any]
    if method == "magnitude":
        log(f"[3/5] magnitude pruning to {options['sparsity']:.0%} sparsity ({options['scope']} scope), "
            f"{epochs} epoch(s) of fine-tuning at learning rate {train_values['learning_rate']:g}")
        pruned, record = _magnitude(keras, tf, model, recipe, parts, options, train_values, input_shape, classes,
                                    epochs, steps, batch, seed, config, log, teacher)
    else:
        log(f"[3/5] removing {options['channels']:.0%} of the channels of every prunable layer ({options['importance']} "
            f"importance), {epochs} epoch(s) of fine-tuning at learning rate {train_values['learning_rate']:g}")
        pruned, record = _channels(keras, tf, model, recipe, parts, options, train_values, input_shape, classes,
                                   epochs, steps, batch, seed, config, log, teacher)
    for name, reason in record["left_alone"]:
        log(f"  left alone: {name}: {reason}")

    log("[4/5] evaluating on the held-out split")
    after_eval = fit.evaluate(pruned, recipe, parts, input_shape, quiet)
    after = recipe.kind.headline(after_eval)
    report: dict[str, Any] = {
        "edgekit": __version__,
        "model": {"path": str(config.model), "sha256": source_sha, "adaptations": adaptations},
        "recipe": recipe.name,
        "data": {"source": str(data_path), "train": len(parts.train), "validation": len(parts.validation),
                 "test": len(parts.test)},
        "method": method,
        "options": {k: options[k] for k in sorted(options)},
        "fine_tuning": {"epochs": epochs, "learning_rate": train_values["learning_rate"], "batch_size": batch,
                        "steps_per_epoch": steps, "seed": seed, "seconds": record.pop("fit_seconds"),
                        "history": record.pop("history")},
        "held_out": {"before": before, "after": after, **change(before, after)},
        "parameters": {"before": params_before, "after": int(pruned.count_params())},
        "macs": {"before": macs_before, "after": keras_macs(pruned)},
        "pruning": record,
        "command": config.command,
    }
    if method == "magnitude":
        report["parameters"]["nonzero_after"] = int(record["nonzero_parameters"])
    threshold_before = recipe.kind.threshold(before_eval)
    if threshold_before is not None:  # the pruned model decides differently: its own threshold
        report["anomaly_threshold"] = {"before": threshold_before, "after": recipe.kind.threshold(after_eval)}
    from edgekit.keras_env import save_model

    bench = config.bench if config.bench is not None else method == "channels"
    if config.measure:
        log("[5/5] converting both models to TFLite fp32 and int8" + (" and measuring their latency with "
            "edgekit bench" if bench else ""))
        with tempfile.TemporaryDirectory(prefix="edgekit-prune-") as work:
            folder = Path(work)
            pruned_path = folder / config.output.name  # convert reads a model and its contract from files
            save_model(pruned, pruned_path)
            contract = _contract(config.model, recipe, raw, report, source_sha)
            write_contract(sidecar_path(pruned_path), contract)
            report["tflite"] = _measure(config, recipe, parts, pruned_path, folder, bench, log, progress)
    else:
        log("[5/5] not converted (--no-measure)")
    report["seconds"] = round(time.perf_counter() - started, 2)
    contract = _contract(config.model, recipe, raw, report, source_sha)  # the provenance with the figures
    # everything is measured: now write, model last-but-one, report last
    write_contract(sidecar_path(config.output), contract)
    try:
        save_model(pruned, config.output)
        report["outputs"] = {"model": str(config.output), "contract": str(sidecar_path(config.output)),
                             "report": str(report_path(config.output))}
        atomic_write_bytes(report_path(config.output), (json.dumps(report, indent=2, default=fit.plain) + "\n").encode())
    except BaseException:
        for path in (sidecar_path(config.output), config.output, report_path(config.output)):
            path.unlink(missing_ok=True)
        raise
    return PruneResult(config.output, report)


def report_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(model.suffix) + REPORT_SUFFIX)


def _indent(log: Log) -> Log:
    return lambda message: log("  " + message.strip())


def _contract(model: Path, recipe: Recipe, raw: Any, report: Mapping[str, Any], source_sha: str) -> Contract:
    """The pruned model's contract: the source's (or the recipe's), plus the pruning step."""
    contract = source_contract(model, recipe, raw.class_names)
    if "anomaly_threshold" in report and contract.postprocess is not None:
        # recalibrated on the validation split, as training calibrates it (its percentile)
        contract = dataclasses.replace(contract, postprocess=dataclasses.replace(
            contract.postprocess, anomaly_threshold=round(report["anomaly_threshold"]["after"], 8)))
    return contract.with_step(provenance_step(report, model, source_sha))


def provenance_step(report: Mapping[str, Any], model: Path, source_sha: str) -> dict[str, Any]:
    """The pruning as the bundle's provenance records it: what, how much, at what cost."""
    record = report["pruning"]
    step: dict[str, Any] = {
        "step": "prune", "method": report["method"], "source": {"path": model.name, "sha256": source_sha},
        "options": {k: report["options"][k] for k in ("sparsity", "channels", "scope", "importance", "epochs",
                                                       "round_to", "block", "distill", "prune_first", "prune_last",
                                                       "prune_depthwise", "skip")
                    if k in report["options"]},
        "held_out": report["held_out"], "parameters": report["parameters"], "macs": report["macs"],
        "left_alone": [{"layer": n, "reason": r} for n, r in record["left_alone"]],
        "command": report.get("command"),
    }
    if report["method"] == "magnitude":
        step["sparsity"] = {"achieved": record["achieved"], "overall": record["overall"]}
    else:
        step["groups"] = record["groups"]
    tflite = report.get("tflite")
    if tflite:
        step["tflite"] = {k: tflite[k] for k in ("gzip_ratio", "latency_ratio") if k in tflite}
    return step


# ---------------------------------------------------------------------------
# the two kinds


def _fit(keras: Any, tf: Any, model: Any, recipe: Recipe, parts: Any, train_values: dict[str, Any],
         input_shape: tuple[int, ...], classes: int, epochs: int, steps: int, batch: int, seed: int,
         config: PruneConfig, log: Log, extra: list[Any], teacher: Any = None,
         distill: float = 0.0) -> tuple[list[dict[str, Any]], float]:
    """Fine-tune `model` in place with the recipe's loss and augmentation; with a `teacher`
    (the unpruned model), a classifier's targets are ``(1 - distill) * labels + distill *
    teacher probabilities`` on the same augmented batch (distillation at temperature 1)."""
    import warnings

    from edgekit.train import fit

    fitted = dataclasses.replace(recipe, values={**recipe.values, "train": train_values})
    fit.compile_model(keras, model, fitted, fit.schedule(keras, train_values, max(1, epochs), steps))
    state: dict[str, Any] = {"epoch": 0, "history": []}
    if not epochs:
        return [], 0.0
    with tempfile.TemporaryDirectory(prefix="edgekit-prune-fit-") as scratch:
        callbacks = [*extra, *fit.callbacks(keras, log, epochs, steps, config.progress_bar, Path(scratch), state, False)]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="keras")
            train_ds = fit.fit_dataset(tf, parts.train, fitted, input_shape, batch, True, classes, seed)
            if teacher is not None and distill > 0 and recipe.kind.distills:
                train_ds = train_ds.map(lambda x, y: (x, (1.0 - distill) * y + distill * teacher(x, training=False)))
            model.fit(train_ds,
                      validation_data=fit.fit_dataset(tf, parts.validation, fitted, input_shape, batch, False, classes,
                                                  seed),
                      epochs=epochs, callbacks=callbacks, verbose=0, shuffle=False)
    return state["history"], round(time.perf_counter() - t0, 3)


def _magnitude(keras: Any, tf: Any, model: Any, recipe: Recipe, parts: Any, options: dict[str, Any],
               train_values: dict[str, Any], input_shape: tuple[int, ...], classes: int, epochs: int, steps: int,
               batch: int, seed: int, config: PruneConfig, log: Log, teacher: Any) -> tuple[Any, dict[str, Any]]:
    from edgekit.prune.magnitude import MagnitudePruner, Schedule

    total = epochs * steps
    # Zhu & Gupta: ramp to the target over most of the run, then recover at the target
    end = max(1, int(round(total * 0.7)))
    schedule = Schedule(final=float(options["sparsity"]), begin_step=0, end_step=end, frequency=max(1, end // 16))
    pruner = MagnitudePruner(model, schedule, scope=str(options["scope"]), skip_first=not options["prune_first"],
                             skip_last=not options["prune_last"], skip=tuple(options["skip"]),
                             block=int(options["block"]), skip_depthwise=not options["prune_depthwise"])
    log(f"  pruning {len(pruner.pruned)} layer(s); sparsity ramps to {schedule.final:.0%} by step {end} of {total}, "
        f"masks updated every {schedule.frequency} step(s)")
    if epochs:
        history, seconds = _fit(keras, tf, model, recipe, parts, train_values, input_shape, classes, epochs, steps,
                                batch, seed, config, log, [pruner.callback()], teacher, float(options["distill"]))
    else:
        history, seconds = [], 0.0
        pruner.update_masks(schedule.final)
        pruner.apply_masks()
    pruner.strip()
    record = pruner.report()
    zeros = sum(int(layer["zeros"]) for layer in record["layers"])
    record.update(left_alone=[(e["name"], e["reason"]) for e in record["left_alone"]],
                  nonzero_parameters=int(model.count_params()) - zeros, history=history, fit_seconds=seconds)
    log(f"  sparsity {record['achieved']:.1%} over the pruned layers, {record['overall']:.1%} of all kernel weights")
    return model, record


def _channels(keras: Any, tf: Any, model: Any, recipe: Recipe, parts: Any, options: dict[str, Any],
              train_values: dict[str, Any], input_shape: tuple[int, ...], classes: int, epochs: int, steps: int,
              batch: int, seed: int, config: PruneConfig, log: Log, teacher: Any) -> tuple[Any, dict[str, Any]]:
    from edgekit.prune.structured import prune_channels

    thinner, plan = prune_channels(model, float(options["channels"]), importance=str(options["importance"]),
                                   skip=tuple(options["skip"]), round_to=int(options["round_to"]))
    for group in plan.groups:
        log(f"  {', '.join(group.producers)}: {group.channels} -> {len(group.keep)} channels")
    history, seconds = _fit(keras, tf, thinner, recipe, parts, train_values, input_shape, classes, epochs, steps,
                            batch, seed, config, log, [], teacher, float(options["distill"]))
    record = plan.to_dict()
    record.update(left_alone=[tuple(item) for item in plan.left_alone], history=history, fit_seconds=seconds)
    return thinner, record


# ---------------------------------------------------------------------------
# TFLite sizes and latency


def _measure(config: PruneConfig, recipe: Recipe, parts: Any, pruned_path: Path, folder: Path, bench: bool,
             log: Log, progress: Progress) -> dict[str, Any]:
    """Convert the unpruned and the pruned model (fp32, int8) on the held-out split; gzip
    sizes; int8 figures; optionally both in one `edgekit bench` run."""
    from edgekit.convert.run import ConvertConfig, convert

    heldout = folder / "heldout.npz"
    np.savez(heldout, x=parts.test.x, y=parts.test.y)
    models = {"unpruned": config.model, "pruned": pruned_path}
    out: dict[str, Any] = {"variants": {}}
    bundles = {}
    for label, path in models.items():
        bundle = folder / f"{label}.edgekit"
        report = convert(ConvertConfig(model=path, output=bundle, variants=MEASURED_VARIANTS, data=heldout,
                                       trust_model_code=config.trust_model_code, seed=0,
                                       command=f"edgekit prune ({label} model)"), progress=progress)
        bundles[label] = bundle
        for v in report.variants:
            entry = out["variants"].setdefault(v.name, {})
            if v.data is None:
                entry[label] = {"error": v.error}
                continue
            entry[label] = {"bytes": len(v.data), "gzip_bytes": _gzip_size(v.data), "precision": v.precision,
                            "metrics": {k: v.metrics[k] for k in ("accuracy", "rmse", "roc_auc", "drop_pts",
                                                                  "agreement") if k in v.metrics}}
    for name, entry in out["variants"].items():
        if "gzip_bytes" in entry.get("unpruned", {}) and "gzip_bytes" in entry.get("pruned", {}):
            u, p = entry["unpruned"], entry["pruned"]
            entry["gzip_ratio"] = round(u["gzip_bytes"] / p["gzip_bytes"], 3)
            entry["size_ratio"] = round(u["bytes"] / p["bytes"], 3)
            entry["pruned_compression"] = round(p["bytes"] / p["gzip_bytes"], 3)
            log(f"  {name}: {_kib(u['bytes'])} -> {_kib(p['bytes'])}; gzip {_kib(u['gzip_bytes'])} -> "
                f"{_kib(p['gzip_bytes'])} ({entry['gzip_ratio']:.2f}x smaller)")
    fp32 = out["variants"].get("tflite-fp32", {})
    if "gzip_ratio" in fp32:
        out["gzip_ratio"] = fp32["gzip_ratio"]
    if bench and all(b.is_file() for b in bundles.values()):
        out["bench"] = _bench(bundles, folder, config.bench_seconds, log)
        fp32_bench = out["bench"].get("tflite-fp32")
        if fp32_bench and fp32_bench.get("ratio"):
            out["latency_ratio"] = fp32_bench["ratio"]
    return out


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def _bench(bundles: Mapping[str, Path], folder: Path, seconds: float, log: Log) -> dict[str, Any]:
    """Both models' TFLite variants in one bench run (`edgekit.bench.run.collect`:
    interleaved windows, each variant in its own worker process); the report is kept in
    ``FOLDER/bench.json``."""
    from edgekit.bench.harness import BenchConfig
    from edgekit.bench.report import render
    from edgekit.bench.run import collect

    docs = collect(BenchConfig(targets=tuple(str(b) for b in bundles.values()), variants=MEASURED_VARIANTS,
                               threads=(1,), modes=("invoke",), duration=seconds, windows=5, warmup_runs=10,
                               meter="none"))
    doc = docs[0]
    atomic_write_bytes(folder / "bench.json", render(docs, "json").encode("utf-8"))
    if doc.get("partial"):
        raise InputError("bench of the unpruned and pruned models", expected="both measured",
                         found="; ".join(doc.get("errors") or ["a partial run"]))
    names = {Path(path).resolve(): name for name, path in bundles.items()}
    medians: dict[str, dict[str, float]] = {}
    for row in doc["results"]:
        invoke = row.get("invoke") or {}
        name = names.get(Path(str(row["target"])).resolve())
        if name is not None and invoke.get("median_ms") is not None:
            medians.setdefault(str(row["variant"]), {})[name] = float(invoke["median_ms"])
    figures: dict[str, Any] = {"protocol": doc.get("protocol"), "environment": {
        k: (doc.get("environment") or {}).get(k) for k in ("cpu", "cores", "governor") if k in (doc.get("environment")
                                                                                                   or {})}}
    for variant, by_model in medians.items():
        u, p = by_model.get("unpruned"), by_model.get("pruned")
        if u is None or p is None:
            continue
        figures[variant] = {"unpruned_ms": round(u, 4), "pruned_ms": round(p, 4), "ratio": round(u / p, 3)}
        log(f"  {variant} latency (median, 1 thread): {u:.3f} ms -> {p:.3f} ms ({u / p:.2f}x faster)")
    return figures


# ---------------------------------------------------------------------------
# rendering


def _value(h: Mapping[str, Any]) -> str:
    return f"{h['value']:.2%}" if h["metric"] == "accuracy" else f"{h['value']:.4g}"


def _sizes(tflite: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any], float]]:
    """``(variant, unpruned, pruned, gzip ratio)`` of the variants converted for both models."""
    return [(name, e["unpruned"], e["pruned"], e["gzip_ratio"]) for name, e in (tflite.get("variants") or {}).items()
            if "gzip_ratio" in e]


def _latencies(bench: Mapping[str, Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """``(variant, figures)`` of the variants benched for both models."""
    return [(name, f) for name, f in (bench or {}).items() if isinstance(f, dict) and "ratio" in f]


def render_summary(report: Mapping[str, Any], model_path: Path | None) -> str:
    """The lines `edgekit prune` prints on stdout."""
    held = report["held_out"]
    b, a = held["before"], held["after"]
    options = report["options"]
    if report["method"] == "magnitude":
        what = f"magnitude pruning to {options['sparsity']:.0%} sparsity ({options['scope']} scope)"
    else:
        what = f"channel pruning, {options['channels']:.0%} of the channels removed ({options['importance']})"
    lost = held["lost"]
    cost = "n/a" if lost is None else f"{lost:+.2f} {held['unit']} lost"
    lines = [f"{report['recipe']}: {what}, {report['fine_tuning']['epochs']} epoch(s) of fine-tuning",
             f"  held-out {b['metric']} {_value(b)} -> {_value(a)} "
             f"({cost}) on {a['samples']} samples"]
    p, m = report["parameters"], report["macs"]
    params = f"  parameters {p['before']:,} -> {p['after']:,}"
    if "nonzero_after" in p:
        params += f" ({p['nonzero_after']:,} non-zero)"
    lines.append(params + f"; MACs {m['before']:,} -> {m['after']:,}"
                 + (f" ({m['before'] / m['after']:.2f}x fewer)" if m["after"] and m["after"] != m["before"] else ""))
    record = report["pruning"]
    if report["method"] == "magnitude":
        lines.append(f"  sparsity {record['achieved']:.1%} over {len(record['layers'])} pruned layer(s); "
                     f"{record['overall']:.1%} of all kernel weights")
        lines.append("  per layer: " + ", ".join(f"{layer['name']} {layer['sparsity']:.1%}"
                                                 for layer in record["layers"]))
    else:
        lines.append(f"  {len(record['groups'])} channel group(s) thinned")
    if record["left_alone"]:
        lines.append("  left alone: " + "; ".join(f"{n} ({r})" for n, r in record["left_alone"]))
    tflite = report.get("tflite") or {}
    for name, entry in (tflite.get("variants") or {}).items():
        if "gzip_ratio" not in entry:
            errors = "; ".join(f"{k}: {v.get('error')}" for k, v in entry.items() if isinstance(v, dict) and
                               v.get("error"))
            lines.append(f"  {name}: not converted ({errors})")
    for name, u, pr, ratio in _sizes(tflite):
        lines.append(f"  {name}: {_kib(u['bytes'])} -> {_kib(pr['bytes'])}, gzip {_kib(u['gzip_bytes'])} -> "
                     f"{_kib(pr['gzip_bytes'])} ({ratio:.2f}x smaller)")
    for name, figures in _latencies(tflite.get("bench")):
        lines.append(f"  {name} latency {figures['unpruned_ms']:.3f} ms -> {figures['pruned_ms']:.3f} ms "
                     f"({figures['ratio']:.2f}x faster; median, 1 thread, edgekit bench)")
    if model_path is not None:
        lines.append(f"  model {model_path}; report {report_path(model_path)}")
    return "\n".join(lines)


def markdown(section: Mapping[str, Any]) -> list[str]:
    """A report section (Markdown lines) from a prune report or train's ``prune`` subset."""
    held, options = section["held_out"], section["options"]
    if section["method"] == "magnitude":
        what = f"magnitude pruning to {options['sparsity']:.0%} sparsity ({options['scope']} scope)"
    else:
        what = f"channel pruning: {options['channels']:.0%} of the channels removed ({options['importance']} importance)"
    b, a = held["before"], held["after"]
    lost = "n/a" if held["lost"] is None else f"{held['lost']:+.2f} {held['unit']}"
    p, m = section["parameters"], section["macs"]
    lines = ["## Pruning", "", f"{what}, {options['epochs']} epoch(s) of fine-tuning.", "",
             "| | before | after |", "|---|---:|---:|",
             f"| held-out {b['metric']} | {_value(b)} | {_value(a)} ({lost} lost) |",
             f"| parameters | {p['before']:,} | {p['after']:,}"
             + (f" ({p['nonzero_after']:,} non-zero)" if "nonzero_after" in p else "") + " |",
             f"| MACs | {m['before']:,} | {m['after']:,} |"]
    tflite = section.get("tflite") or {}
    for name, u, pr, ratio in _sizes(tflite):
        lines.append(f"| {name} file (gzip) | {_kib(u['bytes'])} ({_kib(u['gzip_bytes'])}) | {_kib(pr['bytes'])} "
                     f"({_kib(pr['gzip_bytes'])}, {ratio:.2f}x smaller) |")
    for name, figures in _latencies(section.get("bench") if "bench" in section else tflite.get("bench")):
        lines.append(f"| {name} latency (median, 1 thread) | {figures['unpruned_ms']:.3f} ms | "
                     f"{figures['pruned_ms']:.3f} ms ({figures['ratio']:.2f}x faster) |")
    layers = (section.get("pruning") or {}).get("layers") or section.get("layers") or []
    if layers:
        lines += ["", "| pruned layer | type | weights | sparsity |", "|---|---|---:|---:|",
                  *(f"| `{x['name']}` | {x['type']} | {x['weights']:,} | {x['sparsity']:.1%} |" for x in layers)]
    left = section.get("left_alone") or section.get("pruning", {}).get("left_alone") or []
    if left:
        lines += ["", "Left alone: " + "; ".join(f"`{n}` ({r})" for n, r in left) + "."]
    return lines
