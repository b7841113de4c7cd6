"""`edgekit train`: a recipe, data, and out come a Keras model, its contract and a report.

Steps: load the recipe (overrides applied); read the data (or synthesize the recipe's
dataset when there is none); split it by hash (with ``--test-data`` the user's test set
is the test split and the data give only training and validation); fit the sensor
normalization on the training split; pick the distribution strategy (``TF_CONFIG``: multi-worker; GPUs:
`MirroredStrategy` with mixed precision; else the CPU); build and fit the model with a
``tf.data`` pipeline, a learning-rate schedule, early stopping and a checkpoint per
epoch (``--resume`` continues from it); evaluate on the test split through the device's
numpy front end; write ``NAME.keras``, ``NAME.preprocess.yaml`` (preprocess, labels,
postprocess: the contract `edgekit convert` reads), ``heldout.npz`` (raw test data),
``report.json``, ``report.md`` and the plots; optionally convert to a bundle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit import __version__
from edgekit.bundle import atomic_write_bytes
from edgekit.contract import sidecar_path, write_contract
from edgekit.convert.run import ConvertConfig, ConvertReport, convert
from edgekit.convert.run import gate_error as convert_gate_error
from edgekit.errors import GateError, InputError
from edgekit.keras_env import import_keras, save_model
from edgekit.progress import Log, Progress, no_progress
from edgekit.spec import ImagePreprocess, SensorPreprocess
from edgekit.train import architectures, fit, gan, pipeline
from edgekit.train.config import Precision, TrainConfig
from edgekit.train.data import (
    RawData,
    Split,
    describe,
)
from edgekit.train.recipes import Recipe, load_recipe

CHECKPOINT_DIR = "checkpoints"
CALIBRATION_FILE = "calibration.npz"  # what the export calibrates on, so that heldout.npz validates whole


@dataclasses.dataclass(frozen=True)
class TrainResult:
    model_path: Path
    report: dict[str, Any]
    output: Path
    bundle: ConvertReport | None = None

    def summary(self) -> str:
        r = self.report
        test = r["test"]
        lines = [f"{r['recipe']['name']}: {r['model']['parameters']:,} parameters, "
                 f"{r['training']['epochs_run']} epoch(s) in {r['training']['seconds']:.1f} s "
                 f"({r['training']['seconds_per_epoch']:.2f} s/epoch, {r['strategy']['description']})"]
        if "accuracy" in test:
            source = r["data"].get("test_source", "carved from the data")
            of = "" if source == "carved from the data" else f" of {source}"
            lines.append(f"  held-out accuracy {test['accuracy']:.2%} on {test['samples']} samples{of} "
                         f"(validation {r['validation']['accuracy']:.2%})")
        if "roc_auc" in test:
            lines.append(f"  held-out ROC-AUC {test['roc_auc']:.4f} on {test['samples']} samples; threshold "
                         f"{test['threshold']:.6g} (p{r['recipe']['values']['train']['threshold_percentile']:g} of "
                         f"normal validation errors): accuracy {test['accuracy_at_threshold']:.2%}")
        if "rmse" in test:
            lines.append(f"  held-out RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, R^2 {test['r2']:.3f} on "
                         f"{test['samples']} samples (predicting the training mean: RMSE {test['baseline_rmse']:.4g})")
        if "diversity_rms" in test:
            lines.append(f"  {test['samples']} generated images: diversity {test['diversity_rms']['generated']:.3f} "
                         f"(real {test['diversity_rms']['real']:.3f}), nearest training image "
                         f"{test['nearest_train_rms']['generated']:.3f} (held-out real "
                         f"{test['nearest_train_rms']['real_heldout']:.3f}); samples {self.output / 'samples.png'}")
        if r.get("prune"):
            held, p = r["prune"]["held_out"], r["prune"]["parameters"]
            lost = "n/a" if held["lost"] is None else f"{held['lost']:+.2f} {held['unit']} lost"
            lines.append(f"  pruned ({r['prune']['method']}): held-out {held['after']['metric']} "
                         f"{held['after']['value']:.4g} ({lost}), parameters {p['before']:,} -> "
                         f"{p.get('nonzero_after', p['after']):,}{' non-zero' if 'nonzero_after' in p else ''}; "
                         f"model {r['outputs'].get('pruned_model')}")
        if self.model_path.suffix == ".json":  # a multi-worker worker that is not the chief
            lines.append(f"  worker report {self.model_path} ({r['training']['samples_this_worker']} training samples "
                         "on this worker); the chief writes the model")
        else:
            lines.append(f"  model {self.model_path}; report {self.output / 'report.md'}")
        if self.bundle is not None:
            lines.append(self.bundle.render())
        return "\n".join(lines)


# ---------------------------------------------------------------------------
# strategy


@dataclasses.dataclass
class StrategyInfo:
    strategy: Any
    kind: str
    replicas: int
    mixed_precision: bool
    devices: list[str]
    worker: dict[str, Any] | None = None

    @property
    def description(self) -> str:
        text = {"default": "CPU", "mirrored": f"MirroredStrategy on {self.replicas} GPU(s)",
                "multi-worker": f"MultiWorkerMirroredStrategy, {self.replicas} replicas"}[self.kind]
        if self.worker:
            text += f", {self.worker['type']} {self.worker['index']} of {self.worker['workers']}"
        return text + (", mixed precision" if self.mixed_precision else "")

    @property
    def is_chief(self) -> bool:
        if not self.worker:
            return True
        return self.worker["type"] == "chief" or (self.worker["type"] == "worker" and self.worker["index"] == 0
                                                  and not self.worker["has_chief"])

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "replicas": self.replicas, "mixed_precision": self.mixed_precision,
                "devices": self.devices, "worker": self.worker, "description": self.description}


def _tf_config() -> dict[str, Any] | None:
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        workers = [*cluster.get("chief", []), *cluster.get("worker", [])]
        info = {"type": str(task["type"]), "index": int(task["index"]), "workers": len(workers),
                "has_chief": bool(cluster.get("chief"))}
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError("TF_CONFIG", expected='JSON {"cluster": {"worker": ["host:port", ...]}, '
                         '"task": {"type": "worker", "index": 0}}', found=text[:200],
                         hint="unset TF_CONFIG to train on this machine alone") from exc
    if info["type"] not in ("chief", "worker") or not workers:
        raise InputError("TF_CONFIG task", expected="type chief or worker in a cluster with workers",
                         found=json.dumps(config["task"]))
    return info


def select_strategy(tf: Any, keras: Any, log: Log, precision: str = "auto") -> StrategyInfo:
    """Multi-worker with ``TF_CONFIG``; all GPUs with mixed precision; else the CPU.

    `precision` ``auto`` means mixed float16 on GPUs and float32 on CPUs; ``mixed`` or
    ``float32`` force one (mixed on a CPU is slow, but trains and exports the same).
    """
    worker = _tf_config()
    gpus = tf.config.list_physical_devices("GPU")
    chosen = Precision(precision)
    mixed = bool(gpus) if chosen is Precision.AUTO else chosen is Precision.MIXED
    if gpus:
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except (RuntimeError, ValueError):  # already initialized
                pass
    if worker is not None:
        communication = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.NCCL if gpus
            else tf.distribute.experimental.CommunicationImplementation.RING)
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication)
        kind = "multi-worker"
    elif gpus:
        strategy = tf.distribute.MirroredStrategy()
        kind = "mirrored"
    else:
        strategy = tf.distribute.get_strategy()
        kind = "default"
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    info = StrategyInfo(strategy, kind, int(strategy.num_replicas_in_sync), mixed,
                        [d.name for d in (gpus or tf.config.list_physical_devices("CPU"))], worker)
    log(f"  training on {info.description}")
    return info


# ---------------------------------------------------------------------------
# data


def _synthesize(recipe: Recipe, folder: Path, samples: int | None, seed: int, log: Log, progress: Progress) -> Path:
    from edgekit.datasets.synth import make_config, synthesize

    task = recipe.values["data"]["synth"]
    if not task:
        raise InputError(f"recipe {recipe.name}", expected="--data (the recipe has no synthetic dataset)",
                         found="no --data")
    options: dict[str, Any] = {}
    spec = recipe.preprocess
    if task in ("shapes", "defects") and isinstance(spec, ImagePreprocess):
        options["image_size"] = spec.height
    if task == "har" and isinstance(spec, SensorPreprocess):
        options["window"] = spec.window
        options["rate_hz"] = spec.sample_rate_hz
    if task == "demand" and isinstance(spec, SensorPreprocess):
        options["window"] = spec.window
    count = samples or recipe.values["data"]["synth_samples"]
    log(f"  no --data: synthesizing the {task!r} dataset into {folder}")
    result = synthesize(task, folder, make_config(task, samples=count, seed=seed, **options), log=log,
                        progress=progress)
    log("  " + result.summary().splitlines()[0])
    return folder


def _fit_normalization(recipe: Recipe, train: RawData) -> Recipe:
    spec = recipe.preprocess
    if isinstance(spec, SensorPreprocess) and not spec.mean and not spec.std:
        flat = train.x.reshape(-1, train.x.shape[-1]).astype(np.float64)
        std = np.maximum(flat.std(axis=0), 1e-6)
        fitted = dataclasses.replace(spec, mean=tuple(round(float(v), 6) for v in flat.mean(axis=0)),
                                     std=tuple(round(float(v), 6) for v in std))
        return dataclasses.replace(recipe, preprocess=fitted)
    return recipe


# ---------------------------------------------------------------------------
# callbacks


# ---------------------------------------------------------------------------
# model, optimizer


def _float32_copy(keras: Any, model: Any, recipe: Recipe, input_shape: tuple[int, ...], classes: int,
                  private: Mapping[str, Any]) -> Any:
    """The same weights in a float32 model (mixed-precision layers would put casts in every export)."""
    keras.mixed_precision.set_global_policy("float32")
    clone = architectures.build(keras, recipe.architecture, input_shape, classes, recipe.name, **private)
    clone.set_weights(model.get_weights())
    return clone


def _fit_multi_worker(tf: Any, keras: Any, model: Any, strategy: Any, recipe: Recipe, train_ds: Any, val_ds: Any,
                      epochs: int, initial_epoch: int, callbacks: list[Any], global_batch: int) -> int:
    """The training loop under `MultiWorkerMirroredStrategy`, written against ``strategy.run``.

    Keras 3's ``fit`` cannot run under this strategy (it reduces the first batch and the
    scalar logs with calls the strategy rejects; keras-team/keras#20585), so this loop
    does what ``fit`` would: per-replica forward and backward passes, gradients summed
    across workers by the optimizer (Keras' TF optimizer all-reduces in replica context),
    losses and accuracy summed across workers, Keras callbacks (progress, checkpoint,
    early stopping) called with the same logs. Returns how many training samples this
    worker itself processed (its shard), for the report.
    """
    counts_accuracy = recipe.kind.counts_accuracy
    per_example = recipe.kind.per_example_loss(keras, recipe)
    local_samples = tf.Variable(0, dtype=tf.int64, trainable=False)
    scaled = isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)

    def totals(x: Any, y: Any, predictions: Any) -> dict[str, Any]:
        losses = tf.cast(per_example(y, predictions), tf.float32)
        out = {"loss": tf.reduce_sum(losses), "count": tf.cast(tf.shape(x)[0], tf.float32)}
        if counts_accuracy:
            out["correct"] = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(predictions, -1), tf.argmax(y, -1)), tf.float32))
        return out

    @tf.function
    def train_step(x: Any, y: Any) -> dict[str, Any]:
        with tf.GradientTape() as tape:
            predictions = model(x, training=True)
            loss = tf.nn.compute_average_loss(tf.cast(per_example(y, predictions), tf.float32),
                                              global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            if scaled:  # mixed precision: the optimizer unscales what we scale here
                loss = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=False))
        local_samples.assign_add(tf.cast(tf.shape(x)[0], tf.int64))
        return totals(x, y, predictions)

    @tf.function
    def test_step(x: Any, y: Any) -> dict[str, Any]:
        return totals(x, y, model(x, training=False))

    def run(step: Any, batch: Any) -> dict[str, float]:
        result = strategy.run(step, args=batch)
        return {k: strategy.reduce("SUM", v, axis=None) for k, v in result.items()}

    def logs_of(sums: dict[str, float], prefix: str = "") -> dict[str, float]:
        logs = {f"{prefix}loss": sums["loss"] / max(sums["count"], 1.0)}
        if "correct" in sums:
            logs[f"{prefix}accuracy"] = sums["correct"] / max(sums["count"], 1.0)
        return logs

    def accumulate(into: dict[str, float], sums: dict[str, Any]) -> None:
        for key, value in sums.items():
            into[key] = into.get(key, 0.0) + float(value)

    dist_train = strategy.experimental_distribute_dataset(train_ds)
    dist_val = strategy.experimental_distribute_dataset(val_ds)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        train_sums: dict[str, float] = {}
        for step, batch in enumerate(dist_train):
            callback_list.on_train_batch_begin(step)
            accumulate(train_sums, run(train_step, batch))
            callback_list.on_train_batch_end(step, logs_of(train_sums))
        val_sums: dict[str, float] = {}
        for batch in dist_val:
            accumulate(val_sums, run(test_step, batch))
        logs = {**logs_of(train_sums), **logs_of(val_sums, "val_")}
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return int(local_samples.numpy())


# ---------------------------------------------------------------------------
# evaluation


# ---------------------------------------------------------------------------
# the command


def prepare_output(path: Path, what: str = "output folder", hint: str | None = None) -> None:
    """Create `path` and prove it writable before any long work starts.

    Raises:
        InputError: it cannot be created or written.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"{what} {path}", expected=f"a {what.split()[-1]} edgekit can create and write",
                         found=exc.strerror or str(exc), hint=hint) from exc


def _recipe_hash(recipe: Recipe) -> str:
    values = recipe.to_dict()
    values["train"] = {k: v for k, v in values["train"].items() if k != "epochs"}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train(config: TrainConfig, log: Log = print, progress: Progress = no_progress) -> TrainResult:
    """Train `config.recipe` and write the model, its contract and the report.

    Raises:
        InputError: unknown recipe or key, unusable data, unwritable output (exit 1).
        MissingDependencyError: TensorFlow/Keras missing (names the extra).
        GateError: ``--export`` and a variant failed the recipe's accuracy gate (exit 4);
            the trained model and report are written before.
    """
    overrides = list(config.overrides)
    for key, value in (("train.epochs", config.epochs), ("train.batch_size", config.batch_size),
                       ("train.learning_rate", config.learning_rate), ("train.seed", config.seed)):
        if value is not None:
            overrides.append(f"{key}={value}")
    recipe = load_recipe(config.recipe, overrides)
    out = config.output or Path("out/train") / recipe.name
    if config.export is not None and config.export.suffix != ".edgekit":
        raise InputError(f"--export {config.export}", expected="a bundle path ending in .edgekit",
                         found=repr(config.export.name))
    prepare_output(out)
    started = time.perf_counter()
    train_values = recipe.train
    seed = int(train_values["seed"])
    log(f"[1/4] data for {recipe.name} ({recipe.title})")
    data_path = config.data or _synthesize(recipe, out / "data", config.synth_samples, seed, log, progress)
    raw, parts = fit.prepare_data(recipe, data_path, log, progress, config.test_data)
    recipe = _fit_normalization(recipe, parts.train)
    log(f"  {len(parts.train)} train, {len(parts.validation)} validation, {len(parts.test)} test samples"
        + (f"; classes {', '.join(raw.class_names)}" if raw.class_names else ""))

    keras = import_keras()
    import tensorflow as tf

    strategy = select_strategy(tf, keras, log, config.precision)
    keras.utils.set_random_seed(seed)
    input_shape = pipeline.model_input_shape(recipe.preprocess, tuple(raw.x.shape[1:]))
    classes = recipe.kind.outputs(parts.train.y, raw.class_names)
    private = recipe.kind.private_options(recipe, parts.train.y)
    if recipe.kind.adversarial and strategy.kind == "multi-worker":
        raise InputError(f"recipe {recipe.name} under TF_CONFIG", expected="one machine (a GAN trains with "
                         "MirroredStrategy on this machine's GPUs, or on the CPU)", found="a multi-worker TF_CONFIG",
                         hint="unset TF_CONFIG")
    batch = int(train_values["batch_size"]) * strategy.replicas
    epochs = int(train_values["epochs"])
    step_count = pipeline.steps(len(parts.train), batch)

    def dataset(part: RawData, training: bool) -> Any:
        return fit.fit_dataset(tf, part, recipe, input_shape, batch, training, classes, seed)

    checkpoint = out / CHECKPOINT_DIR
    state: dict[str, Any] = {"epoch": 0, "history": [], "recipe_hash": _recipe_hash(recipe)}
    previous = fit.load_checkpoint(checkpoint)
    with strategy.strategy.scope():
        if config.resume and previous is not None:
            if previous.get("recipe_hash") != state["recipe_hash"]:
                raise InputError(f"--resume from {checkpoint}", expected="the recipe and overrides of the interrupted "
                                 "run (only --epochs may change)", found="a different recipe or override",
                                 hint="run without --resume to start over")
            model = keras.models.load_model(checkpoint / previous["model"])
            if recipe.kind.adversarial:
                discriminator = gan.load_discriminator(keras, checkpoint, recipe, input_shape, train_values)
            state = previous
            log(f"  resuming after epoch {state['epoch']} from {checkpoint}")
        else:
            if config.resume:
                log(f"  note: --resume found no checkpoint in {checkpoint}; starting from the first epoch")
            elif previous is not None:
                log(f"  note: {checkpoint} holds an interrupted run (epoch {previous['epoch']}); starting over "
                    "(--resume continues it)")
            shutil.rmtree(checkpoint, ignore_errors=True)
            model = architectures.build(keras, recipe.architecture, input_shape, classes, recipe.name, **private)
            if recipe.kind.adversarial:
                discriminator = gan.make_discriminator(keras, recipe, input_shape, train_values)
            else:
                fit.compile_model(keras, model, recipe, fit.schedule(keras, train_values, epochs, step_count))
    params = int(model.count_params())
    log(f"[2/4] training {recipe.architecture['name']} ({params:,} parameters), input {input_shape}, "
        f"{epochs} epoch(s), batch {batch}")
    callbacks = fit.callbacks(keras, log, epochs, step_count, config.progress_bar, checkpoint, state, strategy.is_chief)
    patience = int(train_values["patience"])
    monitor = str(train_values["monitor"])
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience, restore_best_weights=True,
                                                       mode="max" if "accuracy" in monitor else "min"))
    fit_start = time.perf_counter()
    if state["epoch"] < epochs:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module="keras")
            if recipe.kind.adversarial:
                gan.fit(tf, keras, model, discriminator, dataset(parts.train, True), recipe, epochs,
                        int(state["epoch"]), callbacks, seed, checkpoint if strategy.is_chief else None)
            elif strategy.kind == "multi-worker":
                state["worker_samples"] = _fit_multi_worker(
                    tf, keras, model, strategy.strategy, recipe, dataset(parts.train, True),
                    dataset(parts.validation, False), epochs, int(state["epoch"]), callbacks, batch)
            else:
                model.fit(dataset(parts.train, True), validation_data=dataset(parts.validation, False), epochs=epochs,
                          initial_epoch=int(state["epoch"]), callbacks=callbacks, verbose=0, shuffle=False)
    fit_seconds = time.perf_counter() - fit_start
    if strategy.mixed_precision:
        model = _float32_copy(keras, model, recipe, input_shape, classes, private)

    log("[3/4] evaluating on the held-out split through the device's numpy front end")
    report = fit.evaluate(model, recipe, parts, input_shape, log)
    history = state["history"]
    epoch_seconds = [h["seconds"] for h in history]
    report.update({
        "edgekit": __version__,
        "recipe": {"name": recipe.name, "title": recipe.title, "path": str(recipe.path), "values": recipe.to_dict()},
        "data": {"source": str(data_path), "synthesized": config.data is None, "notes": list(raw.notes),
                 "classes": list(raw.class_names), "train": describe(parts.train),
                 "validation_split": describe(parts.validation), "test_split": describe(parts.test),
                 "test_source": str(config.test_data) if config.test_data is not None else "carved from the data"},
        "strategy": strategy.to_dict(),
        "model": {"architecture": dict(recipe.architecture), "parameters": params, "input_shape": list(input_shape)},
        "training": {"epochs_run": len(history), "epochs_planned": epochs, "batch_size": batch,
                     "seconds": round(sum(epoch_seconds), 3), "fit_seconds_this_run": round(fit_seconds, 3),
                     "seconds_per_epoch": float(np.median(epoch_seconds)) if epoch_seconds else 0.0,
                     "stopped_early": len(history) < epochs, "history": history,
                     "samples_this_worker": state.get("worker_samples")},
        "host": {"machine": platform.machine(), "python": platform.python_version(), "cores": os.cpu_count(),
                 "tensorflow": tf.__version__, "keras": keras.__version__},
        "command": config.command,
    })
    if not strategy.is_chief:  # multi-worker: the chief writes the outputs, the others only report
        worker_report = out / f"worker-{strategy.worker['index']}.json"  # type: ignore[index]
        atomic_write_bytes(worker_report, json.dumps(report, indent=2, default=fit.plain).encode())
        return TrainResult(model_path=worker_report, report=report, output=out)

    log(f"[4/4] writing {out}")
    model_path = _write_outputs(keras, model, recipe, raw, parts, report, out)
    export_path = model_path
    if pruning_requested(recipe):
        export_path = _prune(recipe, model_path, data_path, out, config, report, log)
    bundle = None
    if config.qat:
        bundle = _qat(recipe, export_path, data_path, out, config, report, log, progress)
    elif config.export is not None:
        bundle = _export(recipe, export_path, out, config, log, progress)
        report["export"] = {"bundle": str(config.export), "gate_passed": bundle.gate_passed,
                            "variants": {v.name: v.metrics for v in bundle.variants}}
    report["seconds_total"] = round(time.perf_counter() - started, 2)
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=2, default=fit.plain).encode())
    if "prune" in report:
        from edgekit.train.report import write_markdown

        atomic_write_bytes(out / "report.md", write_markdown(report).encode())
    shutil.rmtree(checkpoint, ignore_errors=True)
    result = TrainResult(model_path=model_path, report=report, output=out, bundle=bundle)
    if bundle is not None and not bundle.gate_passed:
        log(bundle.render())  # the table the error refers to, before it
        raise gate_error(bundle, out)
    return result


def _write_outputs(keras: Any, model: Any, recipe: Recipe, raw: RawData, parts: Split, report: dict[str, Any],
                   out: Path) -> Path:
    model_path = out / f"{recipe.name}.keras"
    save_model(model, model_path)
    contract = recipe.kind.contract(recipe, raw.class_names, report)
    if contract.labels is not None:
        atomic_write_bytes(out / "labels.txt", ("\n".join(contract.labels) + "\n").encode())
    write_contract(sidecar_path(model_path), contract)
    fit.write_npz(out / "heldout.npz", **recipe.kind.heldout(model, recipe, parts))
    fit.write_npz(out / CALIBRATION_FILE, **recipe.kind.calibration(model, recipe, parts))
    report["outputs"] = {"model": str(model_path), "contract": str(sidecar_path(model_path)),
                         "heldout": str(out / "heldout.npz")}
    from edgekit.train.report import write_markdown, write_plots

    report["outputs"]["plots"] = write_plots(report, out)
    atomic_write_bytes(out / "report.json", json.dumps(report, indent=2, default=fit.plain).encode())
    atomic_write_bytes(out / "report.md", write_markdown(report).encode())
    return model_path


def pruning_requested(recipe: Recipe) -> bool:
    """The recipe's ``prune`` section asks for weight or channel pruning before export."""
    section = recipe.values.get("prune") or {}
    return section.get("sparsity") is not None or section.get("channels") is not None


def pruned_model_path(folder: Path, name: str) -> Path:
    """Where `edgekit train` writes the pruned model when the recipe asks for pruning."""
    return folder / f"{name}.pruned.keras"


def _prune(recipe: Recipe, model_path: Path, data_path: Path, out: Path, config: TrainConfig, report: dict[str, Any],
           log: Log) -> Path:
    """`edgekit prune`'s library function on the trained model with the recipe's ``prune``
    section (it reads the recipe from the report.json just written); returns the pruned
    model, which the export converts. report.json gains a ``prune`` section. It runs in a
    process of its own (`edgekit.prune.run.prune_in_child`: oneDNN off there)."""
    from edgekit.prune.run import PruneConfig, prune_in_child

    target = pruned_model_path(out, recipe.name)
    section = recipe.values["prune"]
    what = f"--sparsity {section['sparsity']}" if section["sparsity"] is not None else f"--channels {section['channels']}"
    command = f"edgekit prune {model_path} {what} --data {data_path} -o {target}"
    log(f"  {command} (the recipe's prune section)")
    result = prune_in_child(PruneConfig(model=model_path, output=target, data=data_path, sparsity=section["sparsity"],
                                        channels=section["channels"] if section["sparsity"] is None else None,
                                        bench_seconds=config.prune_bench_seconds, progress_bar=config.progress_bar,
                                        command=command),
                            log=lambda line: log("  " + line))
    for line in result.summary().splitlines():
        log("  " + line)
    r = result.report
    report["prune"] = {k: r[k] for k in ("method", "options", "held_out", "parameters", "macs", "seconds")}
    report["prune"]["left_alone"] = [list(item) for item in r["pruning"]["left_alone"]]
    report["prune"]["layers"] = r["pruning"].get("layers") or []  # magnitude: per-layer sparsity
    report["prune"]["tflite"] = {k: v for k, v in (r.get("tflite") or {}).items() if k != "bench"}
    report["prune"]["bench"] = (r.get("tflite") or {}).get("bench")
    report["prune"]["outputs"] = r["outputs"]
    report["outputs"]["pruned_model"] = str(target)
    return target


def _qat(recipe: Recipe, model_path: Path, data_path: Path, out: Path, config: TrainConfig, report: dict[str, Any],
         log: Log, progress: Progress) -> ConvertReport | None:
    """`edgekit qat` on the trained (or pruned) model with the recipe's ``qat`` section;
    with --export the bundle holds the int8 variants (the recipe's, else tflite-int8) of the
    QAT model, or post-training int8 where QAT was worse on the validation split (the
    choice is in the ``qat.export`` section report.json gains)."""
    from edgekit.train.config import QatConfig
    from edgekit.train.qat_run import INT8_VARIANTS, default_output
    from edgekit.train.qat_run import qat as run_qat

    variants = tuple(v for v in recipe.convert["variants"] if v in INT8_VARIANTS) or ("tflite-int8",)
    left = [v for v in recipe.convert["variants"] if v not in INT8_VARIANTS]
    if config.export is not None and left:
        log(f"  note: --qat bundles the QAT model's int8 variants ({', '.join(variants)}); {', '.join(left)} "
            f"come from the float model: edgekit convert {model_path} --variants {','.join(left)}")
    command = f"edgekit qat {model_path} --data {data_path}" + (f" --export {config.export}" if config.export else "")
    log(f"  {command} (the recipe's qat section)")
    result = run_qat(QatConfig(model=model_path, data=data_path, output=default_output(model_path),
                               export=config.export, variants=variants,
                               max_accuracy_drop=float(recipe.convert["max_accuracy_drop"]),
                               seed=int(recipe.train["seed"]), progress_bar=config.progress_bar,
                               command=config.command or command),
                     log=lambda line: log("  " + line), progress=progress)
    for line in result.summary().splitlines():
        log("  " + line)
    r = result.report
    report["qat"] = {k: r[k] for k in ("quantization", "fine_tuning", "held_out", "outputs", "export") if k in r}
    report["outputs"]["qat_model"] = str(result.output)
    return result.bundle


def export_bundle(model_path: Path, folder: Path, bundle: Path, convert_values: Mapping[str, Any], seed: int,
                  command: str | None, log: Log, progress: Progress) -> ConvertReport:
    """`edgekit convert` of a trained model with the recipe's ``convert`` section (variants,
    gate, auto-fallback), validated on every sample of ``FOLDER/heldout.npz`` (the whole
    held-out split) and calibrated on ``FOLDER/calibration.npz`` (the validation split;
    a folder without it, from an older edgekit, splits the held-out data as convert
    does); writes ``FOLDER/convert.json`` and the table, ``FOLDER/convert.txt``."""
    heldout = folder / "heldout.npz"
    calibration = folder / CALIBRATION_FILE
    options: dict[str, Any] = {}
    if calibration.is_file():
        with np.load(heldout, allow_pickle=False) as arrays:
            count = len(arrays["x"])
        options = {"calibration_data": calibration, "validation_samples": max(1, count)}
    report = convert(ConvertConfig(model=model_path, output=bundle, variants=tuple(convert_values["variants"]),
                                   data=heldout, max_accuracy_drop=float(convert_values["max_accuracy_drop"]),
                                   auto_fallback=bool(convert_values["auto_fallback"]), seed=seed, command=command,
                                   **options),
                     progress=progress, log=log)
    atomic_write_bytes(folder / "convert.json", (json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n").encode())
    atomic_write_bytes(folder / "convert.txt", (report.render() + "\n").encode())
    return report


def gate_error(report: ConvertReport, folder: Path) -> GateError:
    """The exit-4 error for a trained model whose bundle failed the accuracy gate. The
    caller prints the convert table first (`ConvertReport.render`); it is also in
    ``FOLDER/convert.txt``, so the error names a table that exists even under --quiet."""
    return convert_gate_error(report, f" (the trained model is in {folder})",
                              f"no bundle was written; the convert table (each drop with its 95% confidence "
                              f"interval) is in {folder / 'convert.txt'}")


def _export(recipe: Recipe, model_path: Path, out: Path, config: TrainConfig, log: Log,
            progress: Progress) -> ConvertReport:
    log(f"  edgekit convert {model_path} -o {config.export} --variants {','.join(recipe.convert['variants'])} "
        f"--data {out / 'heldout.npz'} --max-accuracy-drop {float(recipe.convert['max_accuracy_drop']):g} "
        f"(validated on every held-out sample, calibrated on {CALIBRATION_FILE}: the validation split)")
    return export_bundle(model_path, out, config.export, recipe.convert, int(recipe.train["seed"]),  # type: ignore[arg-type]
                         config.command or f"edgekit train {recipe.name} --export {config.export}", log, progress)
