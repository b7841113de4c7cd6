"""The steps of fitting a recipe's model that `edgekit train` and `edgekit prune` share:
reading and splitting the data, the ``tf.data`` pipeline, optimizer and schedule,
compiling, the per-epoch callbacks and checkpoint, and the held-out evaluation through
the device's numpy front end."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle import atomic_write_bytes
from edgekit.errors import InputError
from edgekit.keras_env import save_model
from edgekit.progress import Log, Progress
from edgekit.tasks.anomaly import anomaly_positive
from edgekit.train import pipeline
from edgekit.train.data import RawData, Split, check_classes, concatenate, load_raw, split
from edgekit.train.recipes import Recipe


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
    """Compile with the task's loss and metrics and the recipe's optimizer."""
    recipe.kind.compile(keras, model, recipe, _optimizer(keras, recipe.train, schedule))


def _predict(model: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=256, verbose=0), np.float32)


def prepare_data(recipe: Recipe, data_path: Path, log: Log, progress: Progress,
                 test_path: Path | None = None) -> tuple[RawData, Split]:
    """Read the data and split it by hash (the same split for `edgekit train` and `edgekit prune`).

    With `test_path` (``edgekit train --test-data``) the user's own test set is the test
    split, and the data at `data_path` are only split into training and validation (the
    validation part then only serves early stopping and the learning-rate schedule).
    An anomaly recipe trains on normal data only: its anomalies go to the test split.

    Raises:
        InputError: unusable data, or a test set whose sample shape or classes do not
            match the training data's.
    """
    if test_path is not None and test_path.exists() and test_path.resolve() == data_path.resolve():
        raise InputError(f"--test-data {test_path}", expected="test data kept apart from --data",
                         found="the --data path itself", hint="omit --test-data to carve a test split out of --data")
    raw = check_classes(load_raw(data_path, recipe, log, progress), recipe, str(data_path))
    if test_path is not None:
        raw = attach_test_data(raw, recipe, test_path, log, progress)
    anomalous = None
    if recipe.kind.normal_only:  # train and calibrate on normal data only; anomalies are for the test
        raw = _anomaly_labels(raw)
        if raw.test is None and (raw.y != 0).any():
            anomalous = raw.subset(np.flatnonzero(raw.y != 0))
        raw = dataclasses.replace(raw.subset(np.flatnonzero(raw.y == 0)), test=raw.test)
    parts = split(raw, float(recipe.train["validation_split"]), float(recipe.train["test_split"]))
    if anomalous is not None:
        parts = dataclasses.replace(parts, test=concatenate(parts.test, anomalous))
    if recipe.kind.normal_only and not (parts.test.y != 0).any():
        log("  note: no anomalous samples to test on (a labelled test.npz, or y=1 rows): no ROC-AUC, errors only")
    return raw, parts


@dataclasses.dataclass(frozen=True)
class ModelData:
    """The data of a loaded model, read, split and checked against it (`prepare_for_model`).

    Attributes:
        raw: the data as read (class names included).
        parts: the train / validation / test split, as training made it.
        input_shape: the model's input shape after the contract's preprocessing.
        classes: the width of the model's first output.
        seed: the seed in use (set in Keras, NumPy and TensorFlow).
    """

    raw: RawData
    parts: Split
    input_shape: tuple[int, ...]
    classes: int
    seed: int


def prepare_for_model(recipe: Recipe, data_path: Path, model: Any, model_name: str, seed: int | None, log: Log,
                      progress: Progress) -> ModelData:
    """Read and split the data as training did for a trained `model` (`edgekit prune`,
    `edgekit qat`), check them against it, and set the seed (`seed`, else the recipe's).

    Raises:
        InputError: unusable data, inputs of another shape than the model's after the
            contract's preprocessing, or another number of classes than its outputs.
    """
    from edgekit.keras_env import import_keras

    raw, parts = prepare_data(recipe, data_path, log, progress)
    input_shape = tuple(pipeline.model_input_shape(recipe.preprocess, tuple(raw.x.shape[1:])))
    model_shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    if model_shape != input_shape:
        raise InputError(f"data {data_path} for model {model_name}", expected=f"inputs of shape {model_shape} "
                         "after the contract's preprocessing", found=f"{input_shape}",
                         hint="pass the data (and --recipe) the model was trained with")
    classes = int(model.outputs[0].shape[-1])
    if recipe.kind.class_labels and classes != len(raw.class_names):
        raise InputError(f"data {data_path}", expected=f"{classes} classes (the model's outputs)",
                         found=f"{len(raw.class_names)}: {', '.join(raw.class_names)}")
    seed = int(seed if seed is not None else recipe.train["seed"])
    import_keras().utils.set_random_seed(seed)
    return ModelData(raw, parts, input_shape, classes, seed)


def attach_test_data(raw: RawData, recipe: Recipe, test_path: Path, log: Log,
                     progress: Progress) -> RawData:
    """`raw` with the test set at `test_path` as its test split, its labels in `raw`'s class order.

    Raises:
        InputError: unreadable test data, samples shaped unlike the training data's, or
            (classifiers) classes the training data do not have.
    """
    where = f"--test-data {test_path}"
    test = load_raw(test_path, recipe, log, progress)
    if test.x.shape[1:] != raw.x.shape[1:]:
        raise InputError(where, expected=f"samples shaped like the training data's {tuple(raw.x.shape[1:])}",
                         found=f"samples of shape {tuple(test.x.shape[1:])}",
                         hint="pass test data in the training data's layout (the same recipe reads both)")
    if recipe.kind.targets and test.y.shape[1:] != raw.y.shape[1:]:
        raise InputError(where, expected=f"targets shaped like the training data's {tuple(raw.y.shape[1:])} per "
                         "sample", found=f"{tuple(test.y.shape[1:])} per sample")
    if recipe.kind.class_labels:
        present = sorted({test.class_names[i] for i in np.unique(test.y)})
        unknown = [name for name in present if name not in raw.class_names]
        if unknown:
            raise InputError(f"classes in {where}", expected=f"classes of the training data {list(raw.class_names)}",
                             found=f"{unknown} not in the training data",
                             hint="name the test set's class folders (or labels.txt) as the training data's")
        mapping = np.array([raw.class_names.index(n) if n in raw.class_names else -1 for n in test.class_names],
                           np.int64)
        test = dataclasses.replace(test, y=mapping[test.y], class_names=raw.class_names)
        missing = [name for name in raw.class_names if name not in present]
        if missing:
            log(f"  note: {where} has no samples of {missing}")
    if raw.test is not None:
        log(f"  note: {where} replaces the test set found with the training data")
    log(f"  test split: {len(test)} samples from {where} (the training data only give training and validation)")
    return dataclasses.replace(raw, test=test)


def fit_dataset(tf: Any, part: RawData, recipe: Recipe, input_shape: tuple[int, ...], batch: int, training: bool,
                classes: int, seed: int) -> Any:
    """The ``tf.data`` pipeline `model.fit` reads: front end, augmentation (training), one-hot labels."""
    task = recipe.kind
    targets = part.y if task.class_labels or task.targets else None
    ds = pipeline.make_dataset(part.x, targets, recipe.preprocess, input_shape, batch_size=batch, training=training,
                               augment_options=recipe.augment, seed=seed, autoencoder=task.autoencoder)
    if task.class_labels:
        ds = ds.map(lambda x, y: (x, tf.one_hot(y, classes)))
    return ds


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """The arrays as a compressed ``.npz`` at `path`, written atomically (the split files
    `edgekit train` and `edgekit qat` leave for `edgekit convert`)."""
    import io

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def evaluate(model: Any, recipe: Recipe, parts: Split, input_shape: tuple[int, ...], log: Log) -> dict[str, Any]:
    """The task's held-out evaluation, through the device's numpy front end."""
    spec = recipe.preprocess

    def features(part: RawData) -> np.ndarray:
        return pipeline.numpy_front_end(part.x, spec, input_shape)

    return recipe.kind.evaluate(model, recipe, parts, features, _predict, log)
