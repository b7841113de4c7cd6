"""The steps of fitting a recipe's model that `edgekit train` and `edgekit prune` share:
reading and splitting the data, the ``tf.data`` pipeline, optimizer and schedule,
compiling, the per-epoch callbacks and checkpoint, and the held-out evaluation through
the device's numpy front end."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import atomic_write_bytes
from edgekit.convert.fidelity import anomaly_positive, anomaly_scores, regression_errors, roc_auc
from edgekit.datasets.loaders import Progress
from edgekit.keras_env import save_model
from edgekit.train import gan, pipeline
from edgekit.train.data import RawData, Split, check_classes, concatenate, load_raw, split
from edgekit.train.recipes import Recipe

Log = Callable[[str], None]


def _anomaly_labels(raw: RawData) -> RawData:
    """0 normal / 1 anomalous, from class names when they say which (folders ``normal`` and
    ``anomaly`` sort the anomalies first), else every class but the first is anomalous."""
    positive = anomaly_positive(raw.y, raw.class_names)
    test = _anomaly_labels(raw.test) if raw.test is not None else None
    return dataclasses.replace(raw, y=positive.astype(np.int64), class_names=("normal", "anomalous"), test=test)


def callbacks(keras: Any, log: Log, epochs: int, steps: int, bar: bool, checkpoint: Path, state: dict[str, Any],
               chief: bool) -> list[Any]:
    import click

    class Progress(keras.callbacks.Callback):
        """A progress bar per epoch (stderr) and one line per epoch; saves the resumable checkpoint."""

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.start = time.perf_counter()
            self.bar = None
            if bar:
                self.bar = click.progressbar(length=steps, label=f"epoch {epoch + 1}/{epochs}", file=sys.stderr,
                                             show_pos=True)
                self.bar.__enter__()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if self.bar is not None:
                self.bar.update(1)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.bar is not None:
                self.bar.__exit__(None, None, None)
            seconds = time.perf_counter() - self.start
            logs = {k: float(v) for k, v in (logs or {}).items()}
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            state["history"].append({"epoch": epoch + 1, "seconds": seconds, **logs})
            state["epoch"] = epoch + 1
            shown = ", ".join(f"{k} {v:.2%}" if "accuracy" in k else f"{k} {v:.4g}" for k, v in logs.items()
                              if k != "learning_rate")
            log(f"  epoch {epoch + 1}/{epochs}: {shown}, {seconds:.1f} s")
            if chief:
                save_checkpoint(self.model, checkpoint, state)

    return [Progress()]


def save_checkpoint(model: Any, folder: Path, state: dict[str, Any]) -> None:
    """``epoch-N.keras``, then ``state.json`` naming it, then older files go: a kill at any
    point leaves a state whose model file exists and matches it."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"epoch-{state['epoch']}.keras"
    save_model(model, folder / name)
    atomic_write_bytes(folder / "state.json", json.dumps({**state, "model": name}, indent=1).encode())
    for old in folder.glob("epoch-*.keras"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    try:
        state = json.loads((folder / "state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not (folder / str(state.get("model", ""))).is_file():
        return None
    return state


def schedule(keras: Any, train: Mapping[str, Any], epochs: int, steps: int) -> Any:
    rate = float(train["learning_rate"])
    warmup = int(train["warmup_epochs"]) * steps
    total = max(1, epochs * steps)
    if train["schedule"] == "cosine":
        if warmup:
            return keras.optimizers.schedules.CosineDecay(rate * 0.1, max(1, total - warmup), alpha=0.01,
                                                          warmup_target=rate, warmup_steps=warmup)
        return keras.optimizers.schedules.CosineDecay(rate, total, alpha=0.01)
    if train["schedule"] == "step":
        every = int(train["step_epochs"]) * steps
        boundaries = list(range(every, total, every))
        values = [rate * float(train["step_factor"]) ** i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values) if boundaries else rate
    return rate


def _optimizer(keras: Any, train: Mapping[str, Any], schedule: Any) -> Any:
    name = train["optimizer"]
    if name == "adamw":
        return keras.optimizers.AdamW(schedule, weight_decay=float(train["weight_decay"]) or 0.004)
    if name == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True)
    return keras.optimizers.Adam(schedule)


def compile_model(keras: Any, model: Any, recipe: Recipe, schedule: Any) -> None:
    train = recipe.train
    if recipe.task == "anomaly":
        model.compile(optimizer=_optimizer(keras, train, schedule), loss="mse")
        return
    if recipe.task == "regression":
        model.compile(optimizer=_optimizer(keras, train, schedule), loss="mse",
                      metrics=[keras.metrics.RootMeanSquaredError(name="rmse"),
                               keras.metrics.MeanAbsoluteError(name="mae")])
        return
    metrics: list[Any] = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    if "top2" in recipe.values["metrics"]:
        metrics.append(keras.metrics.TopKCategoricalAccuracy(k=2, name="top2"))
    model.compile(optimizer=_optimizer(keras, train, schedule),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=float(train["label_smoothing"])),
                  metrics=metrics)


def _classification_metrics(probabilities: np.ndarray, y: np.ndarray, names: tuple[str, ...]) -> dict[str, Any]:
    predicted = probabilities.argmax(-1)
    k = len(names)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_class = {}
    for i, name in enumerate(names):
        tp = confusion[i, i]
        precision = tp / max(1, confusion[:, i].sum())
        recall = tp / max(1, confusion[i].sum())
        f1 = 2 * precision * recall / max(1e-12, precision + recall)
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(confusion[i].sum())}
    return {"samples": int(len(y)), "accuracy": float(np.mean(predicted == y)),
            "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 4),
            "per_class": per_class, "confusion_matrix": confusion.tolist(), "classes": list(names)}


def _regression_metrics(predicted: np.ndarray, y: np.ndarray, train_y: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE, R^2 per output and overall, against predicting the training mean."""
    truth = y.reshape(len(y), -1).astype(np.float64)
    guess = predicted.reshape(len(predicted), -1).astype(np.float64)
    error = guess - truth
    baseline = truth - train_y.reshape(len(train_y), -1).astype(np.float64).mean(axis=0)
    total = float(np.sum((truth - truth.mean(axis=0)) ** 2))
    rmse, mae = regression_errors(predicted, y)
    return {"samples": int(len(y)), "rmse": rmse, "mae": mae,
            "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan"),
            "mape_pct": float(np.mean(np.abs(error) / np.maximum(np.abs(truth), 1e-9)) * 100.0),
            "rmse_per_output": np.sqrt(np.mean(error**2, axis=0)).round(6).tolist(),
            "baseline_rmse": float(np.sqrt(np.mean(baseline**2))),
            "predictions": guess[:500, 0].tolist(), "targets": truth[:500, 0].tolist()}


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=256, verbose=0), np.float32)


def prepare_data(recipe: Recipe, data_path: Path, log: Log, progress: Progress) -> tuple[RawData, Split]:
    """Read the data and split it by hash (the same split for `edgekit train` and `edgekit prune`).

    An anomaly recipe trains on normal data only: its anomalies go to the test split.
    """
    raw = check_classes(load_raw(data_path, recipe, log, progress), recipe, str(data_path))
    anomalous = None
    if recipe.task == "anomaly":  # train and calibrate on normal data only; anomalies are for the test
        raw = _anomaly_labels(raw)
        if raw.test is None and (raw.y != 0).any():
            anomalous = raw.subset(np.flatnonzero(raw.y != 0))
        raw = dataclasses.replace(raw.subset(np.flatnonzero(raw.y == 0)), test=raw.test)
    parts = split(raw, float(recipe.train["validation_split"]), float(recipe.train["test_split"]))
    if anomalous is not None:
        parts = dataclasses.replace(parts, test=concatenate(parts.test, anomalous))
    if recipe.task == "anomaly" and not (parts.test.y != 0).any():
        log("  note: no anomalous samples to test on (a labelled test.npz, or y=1 rows): no ROC-AUC, errors only")
    return raw, parts


def fit_dataset(tf: Any, part: RawData, recipe: Recipe, input_shape: tuple[int, ...], batch: int, training: bool,
                classes: int, seed: int) -> Any:
    """The ``tf.data`` pipeline `model.fit` reads: front end, augmentation (training), one-hot labels."""
    autoencoder = recipe.task == "anomaly"
    targets = None if autoencoder or recipe.task == "generation" else part.y
    ds = pipeline.make_dataset(part.x, targets, recipe.preprocess, input_shape, batch_size=batch, training=training,
                               augment_options=recipe.augment, seed=seed, autoencoder=autoencoder)
    if recipe.task == "classification":
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes)))
    return ds


def plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def evaluate(model: Any, recipe: Recipe, parts: Split, input_shape: tuple[int, ...], log: Log) -> dict[str, Any]:
    spec = recipe.preprocess

    def features(part: RawData) -> np.ndarray:
        return pipeline.numpy_front_end(part.x, spec, input_shape)

    if recipe.task == "classification":
        names = parts.train.class_names
        test = _classification_metrics(_predict(model, features(parts.test)), parts.test.y, names)
        validation = _classification_metrics(_predict(model, features(parts.validation)), parts.validation.y, names)
        log(f"  held-out accuracy {test['accuracy']:.2%} ({test['samples']} samples), "
            f"validation {validation['accuracy']:.2%}")
        return {"test": test, "validation": {k: validation[k] for k in ("samples", "accuracy", "macro_f1")}}
    if recipe.task == "regression":
        test = _regression_metrics(_predict(model, features(parts.test)), parts.test.y, parts.train.y)
        validation = _regression_metrics(_predict(model, features(parts.validation)), parts.validation.y,
                                         parts.train.y)
        log(f"  held-out RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, R^2 {test['r2']:.3f} ({test['samples']} "
            f"samples; predicting the training mean: RMSE {test['baseline_rmse']:.4g})")
        return {"test": test, "validation": {k: validation[k] for k in ("samples", "rmse", "mae", "r2")}}
    if recipe.task == "generation":
        real, train_images = features(parts.test), features(parts.train)
        figures, fake = gan.evaluate(model, real, train_images, int(recipe.train["seed"]))
        figures["grid"] = {"generated": fake[:64], "real": real[:16]}  # drawn into samples.png, then dropped
        log(f"  generated {figures['samples']} images: diversity {figures['diversity_rms']['generated']:.3f} "
            f"(real {figures['diversity_rms']['real']:.3f}), distance to the nearest training image "
            f"{figures['nearest_train_rms']['generated']:.3f} (held-out real {figures['nearest_train_rms']['real_heldout']:.3f})")
        return {"test": figures, "validation": {}}
    x_val = features(parts.validation)
    val_errors = anomaly_scores(x_val, _predict(model, x_val))
    percentile = float(recipe.train["threshold_percentile"])
    threshold = float(np.percentile(val_errors, percentile))
    x_test = features(parts.test)
    errors = anomaly_scores(x_test, _predict(model, x_test))
    positive = parts.test.y != 0
    auc = roc_auc(errors, positive)
    flagged = errors > threshold
    test: dict[str, Any] = {"samples": int(len(errors)), "threshold": threshold,
                            "roc_auc": auc if auc is not None else float("nan"),
                            "accuracy_at_threshold": float(np.mean(flagged == positive)),
                            "true_positive_rate": float(flagged[positive].mean()) if positive.any() else None,
                            "false_positive_rate": float(flagged[~positive].mean()) if (~positive).any() else None,
                            "errors_normal": errors[~positive].tolist(), "errors_anomalous": errors[positive].tolist()}
    log(f"  threshold {threshold:.6g} (p{percentile:g} of {len(val_errors)} normal validation errors); held-out "
        f"ROC-AUC {test['roc_auc']:.4f}, accuracy at the threshold {test['accuracy_at_threshold']:.2%}")
    return {"test": test, "validation": {"samples": int(len(val_errors)), "mean_error": float(val_errors.mean())}}
