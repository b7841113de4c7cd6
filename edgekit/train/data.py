"""Raw training data for a recipe, and its deterministic train/validation/test split.

Raw means before the recipe's feature front end: waveforms at the recipe's sample rate
and clip length, uint8 images at the recipe's size and colour order, sensor windows in
the recipe's channel order, feature vectors as they are. The front end (TensorFlow on
the training side, `edgekit.features` on the device) runs later, so augmentation can act
on raw data and the test split can be handed to `edgekit convert` as raw arrays.

Sources:
    audio   WAV folders (one subfolder per class), or .npz (x: (N, samples) waveforms, y).
    image   image folders (one subfolder per class), or .npz (x: (N, H, W, 3) uint8, y).
    sensor  .npz (x: (N, window, channels), y), a CSV recording with a ``label`` column
            (cut into windows; a window takes the label of its samples' majority; the
            split keeps blocks of consecutive windows together), or a folder of them
            (``windows.npz`` from ``edgekit datasets synth har``).
    vector  .npz (x: (N, D), optional y), or a folder with ``train.npz`` and ``test.npz``
            (anomaly detection: train on the normal samples, test on labelled ones).

Regression recipes read float targets from the .npz ``y`` array, ``(N,)`` or ``(N, outputs)``.

Class names come from, in order: the folder's ``labels.txt``, the arrays' ``classes``,
the sorted class folder names, ``class_0..``. Corrupt files are skipped, counted and
warned about; nothing usable left is an error.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.datasets.loaders import WAV_SUFFIXES
from edgekit.datasets.recordings import find_recordings, recording_windows
from edgekit.errors import InputError, MissingDependencyError
from edgekit.features import audio as audio_features
from edgekit.features import image as image_features
from edgekit.progress import Log, Progress, no_progress
from edgekit.spec import AudioPreprocess, ImagePreprocess, SensorPreprocess
from edgekit.train.recipes import Recipe

logger = logging.getLogger("edgekit.train")
# a CSV recording's windows go to the train/validation/test split in blocks of this many
CSV_BLOCK_WINDOWS = 8


@dataclasses.dataclass(frozen=True)
class RawData:
    """Raw samples with labels.

    Attributes:
        x: raw arrays, one row per sample.
        y: int64 class indices (anomaly: 0 normal, 1 anomalous); float32 targets ``(N,)`` or
            ``(N, outputs)`` for regression.
        ids: a stable identifier per sample (the split hashes it).
        class_names: names of the label indices.
        notes: what was adapted (resampled, resized, skipped), for the report.
        test: a separate labelled test set (anomaly ``test.npz``), else None.
        groups: a group per sample (the subject of a sensor recording, from a ``subject``
            or ``group`` array) or None; the split then keeps each group on one side.
    """

    x: np.ndarray
    y: np.ndarray
    ids: tuple[str, ...]
    class_names: tuple[str, ...]
    notes: tuple[str, ...] = ()
    test: RawData | None = None
    groups: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> RawData:
        return dataclasses.replace(self, x=self.x[index], y=self.y[index], ids=tuple(self.ids[i] for i in index),
                                   test=None, groups=None if self.groups is None else tuple(self.groups[i] for i in index))


@dataclasses.dataclass(frozen=True)
class Split:
    train: RawData
    validation: RawData
    test: RawData


# ---------------------------------------------------------------------------
# class names


def _labels_txt(folder: Path) -> tuple[str, ...] | None:
    path = folder / "labels.txt"
    if not path.is_file():
        return None
    names = tuple(line.strip() for line in path.read_text("utf-8").splitlines() if line.strip())
    return names or None


def _class_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


# ---------------------------------------------------------------------------
# per kind


def _files_by_class(root: Path, suffixes: tuple[str, ...], kind: str) -> tuple[list[tuple[Path, str]], list[str]]:
    classes = _class_folders(root)
    if not classes:
        raise InputError(f"data folder {root}", expected=f"one subfolder of {kind} files per class",
                         found="no subfolders", hint="put each class's files in a folder named after the class")
    files = [(f, c) for c in classes for f in sorted((root / c).rglob("*"))
             if f.is_file() and f.suffix.lower() in suffixes and not f.name.startswith(".")]
    return files, classes


def _order(found: list[str], labels: tuple[str, ...] | None) -> tuple[str, ...]:
    if labels and set(found) <= set(labels):
        return tuple(n for n in labels if n in found) if set(labels) - set(found) else labels
    return tuple(found)


def _read_folder(root: Path, recipe: Recipe, log: Log, progress: Progress) -> RawData:
    spec = recipe.preprocess
    if isinstance(spec, AudioPreprocess):
        suffixes, kind = WAV_SUFFIXES, "WAV"
    else:
        suffixes, kind = image_features.IMAGE_SUFFIXES, "image"
    files, classes = _files_by_class(root, suffixes, kind)
    if not files:
        raise InputError(f"data folder {root}", expected=f"{kind} files ({', '.join(suffixes)}) in the class folders",
                         found=f"folders {classes[:5]} without {kind} files")
    names = _order(classes, _labels_txt(root))
    xs: list[np.ndarray] = []
    ys, ids, skipped = [], [], []
    adapted: dict[str, int] = {}
    for path, cls in progress(files, f"reading {kind} files", len(files)):
        try:
            if isinstance(spec, AudioPreprocess):
                wave, rate = audio_features.read_wav(path)
                if rate != spec.sample_rate:
                    wave = audio_features.resample(wave, rate, spec.sample_rate)
                    key = f"resampled from {rate} Hz to {spec.sample_rate} Hz"
                    adapted[key] = adapted.get(key, 0) + 1
                if len(wave) != spec.clip_samples:
                    key = f"padded or cut to {spec.clip_samples} samples"
                    adapted[key] = adapted.get(key, 0) + 1
                xs.append(audio_features.fit_clip(wave, spec))
            else:
                image = image_features.decode_image(path)
                assert isinstance(spec, ImagePreprocess)
                if image.shape[:2] != (spec.height, spec.width):
                    key = f"resized from {image.shape[1]}x{image.shape[0]} to {spec.width}x{spec.height}"
                    adapted[key] = adapted.get(key, 0) + 1
                xs.append(image_features.prepare(image, spec))
        except MissingDependencyError:
            raise  # no decoder installed: not a corrupt file
        except (InputError, ValueError) as exc:
            skipped.append(f"{path.relative_to(root)}: {exc}")
            continue
        ys.append(names.index(cls))
        ids.append(str(path.relative_to(root)))
    notes = [f"{count} file(s) {what}" for what, count in sorted(adapted.items())]
    if skipped:
        logger.warning("skipped %d unreadable file(s) in %s, e.g. %s", len(skipped), root, skipped[0])
        notes.append(f"{len(skipped)} unreadable file(s) skipped, e.g. {skipped[0]}")
    if not xs:
        raise InputError(f"data folder {root}", expected="at least one readable file",
                         found=f"{len(skipped)} unreadable file(s), e.g. {skipped[0] if skipped else '-'}")
    for note in notes[: len(adapted)]:
        log(f"  note: {note}")
    groups = _index_groups(root, ids)
    if groups is not None:
        notes.append(f"split by recording group from {root / 'index.csv'} ({len(set(groups))} groups): "
                     "takes of one utterance never straddle train and test")
    return RawData(np.stack(xs), np.asarray(ys, np.int64), tuple(ids), names, tuple(notes), groups=groups)


def _index_groups(root: Path, ids: list[str]) -> tuple[str, ...] | None:
    """Groups from the folder's ``index.csv``: a ``group`` column, or (as ``edgekit datasets
    synth kws`` writes it) the utterance: word, voice, speed and pitch. Clips mixed from one
    utterance must stay on one side of the split, or the held-out figure is inflated."""
    path = root / "index.csv"
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    if not rows or "path" not in rows[0]:
        return None
    utterance = ("word", "voice", "speed_wpm", "pitch")
    by_path: dict[str, str] = {}
    for row in rows:
        if row.get("group"):
            by_path[row["path"]] = row["group"]
        elif all(row.get(k) for k in utterance):
            by_path[row["path"]] = "|".join(row[k] for k in utterance)
    if not by_path:
        return None
    return tuple(by_path.get(i.replace("\\", "/"), f"file {i}") for i in ids)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as loaded:
            return {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"data {path}", expected="a readable .npz file (no pickles)", found=str(exc)) from exc


def _from_arrays(arrays: dict[str, np.ndarray], path: Path, recipe: Recipe, labels: tuple[str, ...] | None,
                 log: Log, need_labels: bool = True) -> RawData:
    x = next((arrays[k] for k in ("x", "inputs", "data", "X") if k in arrays), None)
    if x is None:
        raise InputError(f"data {path}", expected="an array named x (and y)", found=f"arrays {sorted(arrays)}")
    y = next((arrays[k] for k in ("y", "labels", "Y", "targets") if k in arrays), None)
    if recipe.kind.targets:
        return _with_targets(x, y, arrays, path, recipe, log)
    if y is None:
        if need_labels:
            raise InputError(f"data {path}", expected="labels in an array named y", found=f"arrays {sorted(arrays)}")
        y = np.zeros(len(x), np.int64)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)
    if y.dtype.kind not in "iub" or len(y.reshape(-1)) != len(x) or len(x) == 0:
        raise InputError(f"labels in {path}", expected=f"{len(x)} integer labels", found=f"{y.size} of {y.dtype}")
    y = y.reshape(-1).astype(np.int64)
    names = labels or (tuple(str(c) for c in arrays["classes"]) if "classes" in arrays else None)
    if names is None:
        names = tuple(f"class_{i}" for i in range(int(y.max()) + 1))
    if y.min() < 0 or y.max() >= len(names):
        raise InputError(f"labels in {path}", expected=f"class indices 0..{len(names) - 1} ({len(names)} class names)",
                         found=f"{y.min()}..{y.max()}")
    notes: list[str] = []
    spec = recipe.preprocess
    x = np.asarray(x)
    if isinstance(spec, AudioPreprocess):
        if x.ndim != 2:
            raise InputError(f"data {path}", expected=f"raw waveforms (N, samples) at {spec.sample_rate} Hz",
                             found=f"shape {x.shape}")
        if x.shape[1] != spec.clip_samples:
            notes.append(f"clips of {x.shape[1]} samples padded or cut to {spec.clip_samples}")
        x = audio_features.fit_clip(x.astype(np.float32), spec)
    elif isinstance(spec, ImagePreprocess):
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4:
            raise InputError(f"data {path}", expected="raw images (N, H, W, C)", found=f"shape {x.shape}")
        if x.shape[1:3] != (spec.height, spec.width) or x.shape[3] != spec.channels:
            notes.append(f"images of {x.shape[2]}x{x.shape[1]}x{x.shape[3]} resized to {spec.width}x{spec.height}")
            x = np.stack([image_features.prepare(img if img.shape[-1] != 1 else img[..., 0], spec) for img in x])
    elif isinstance(spec, SensorPreprocess):
        expected = (spec.window, len(spec.channels))
        if x.ndim == 2 and spec.window == 1 and x.shape[1] == len(spec.channels):
            x = x[:, None, :]  # feature vectors: windows of one sample, a channel per feature
        if x.ndim != 3 or x.shape[1:] != expected:
            raise InputError(f"data {path}", expected=f"sensor windows (N, {spec.window}, {len(spec.channels)}) "
                             f"with channels {list(spec.channels)}", found=f"shape {x.shape}",
                             hint="or pass a CSV recording with a label column; the recipe's window and stride cut it")
        x = x.astype(np.float32)
    else:
        x = x.astype(np.float32)
    for note in notes:
        log(f"  note: {note}")
    group_key = next((k for k in ("subject", "group") if k in arrays and len(arrays[k]) == len(x)), None)
    groups = tuple(f"{group_key} {g}" for g in arrays[group_key].tolist()) if group_key else None
    return RawData(x, y, tuple(f"{path.name}:{i}" for i in range(len(x))), names, tuple(notes), groups=groups)


def _with_targets(x: np.ndarray, y: np.ndarray | None, arrays: dict[str, np.ndarray], path: Path, recipe: Recipe,
                  log: Log) -> RawData:
    """Regression data: inputs and float targets ``(N,)`` or ``(N, outputs)``."""
    if y is None:
        raise InputError(f"data {path}", expected="regression targets in an array named y", found=f"arrays {sorted(arrays)}")
    y = np.asarray(y)
    if y.dtype.kind not in "fiu" or len(y) != len(x) or y.ndim not in (1, 2) or len(x) == 0:
        raise InputError(f"targets in {path}", expected=f"{len(x)} numeric targets, shape (N,) or (N, outputs)",
                         found=f"shape {y.shape} of {y.dtype}")
    if not np.isfinite(y).all():
        raise InputError(f"targets in {path}", expected="finite numbers", found=f"{int((~np.isfinite(y)).sum())} NaN/inf")
    raw = _from_arrays({"x": x, "y": np.zeros(len(x), np.int64), **{k: v for k, v in arrays.items()
                                                                    if k in ("subject", "group")}},
                       path, dataclasses.replace(recipe, task="classification"), ("target",), log)
    return dataclasses.replace(raw, y=y.astype(np.float32), class_names=())


def _windows_from_csv(paths: list[Path], recipe: Recipe, labels: tuple[str, ...] | None, log: Log,
                      root: Path | None = None) -> RawData:
    """Windows of CSV recordings with a label column (read by `edgekit.datasets.recordings`)."""
    spec = recipe.preprocess
    assert isinstance(spec, SensorPreprocess)
    cut = recording_windows(paths, spec, class_names=labels, root=root)
    assert cut.labels is not None
    xs, ys, ids, names = cut.x, cut.labels, cut.ids, cut.class_names
    groups = [f"{name} block {start // spec.stride // CSV_BLOCK_WINDOWS}"
              for name, start in zip(cut.recordings, cut.starts, strict=True)]
    log(f"  {len(xs)} windows of {spec.window} samples every {spec.stride} from {len(paths)} recording(s)")
    # Neighbouring windows share samples (stride < window) and are alike anyway: split by
    # blocks of consecutive windows, or the held-out windows would overlap training ones.
    blocks = len(set(groups))
    if blocks >= 3:
        note = (f"recordings split in {blocks} blocks of up to {CSV_BLOCK_WINDOWS} consecutive windows: held-out "
                "windows overlap training windows only at block edges")
    else:  # split() needs three groups; too short to keep the held-out windows apart
        note = (f"recordings too short for a split in blocks ({len(xs)} windows): held-out windows overlap "
                "training windows; record longer")
    return RawData(xs, ys, ids, names, (note,), groups=tuple(groups))


def load_raw(path: Path, recipe: Recipe, log: Log = lambda _m: None, progress: Progress = no_progress) -> RawData:
    """Read `path` for `recipe` (see the module docstring for the accepted layouts).

    Raises:
        InputError: missing path, unknown layout, unreadable or unusable data.
    """
    if not path.exists():
        raise InputError(f"data {path}", expected="an existing folder or file", found="no such path",
                         hint="omit --data to train on the recipe's synthetic dataset")
    kind = recipe.data_kind
    labels = _labels_txt(path) if path.is_dir() else None
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return _from_arrays(_load_npz(path), path, recipe, None, log, need_labels=recipe.kind.class_labels)
        if path.suffix.lower() == ".csv" and kind == "sensor":
            return _windows_from_csv([path], recipe, None, log)
        raise InputError(f"data {path}", expected=_expected(kind), found=f"a {path.suffix or 'suffix-less'} file")
    if kind in ("audio", "image") and _class_folders(path):
        return _read_folder(path, recipe, log, progress)
    npz = sorted(path.glob("*.npz"))
    if kind == "vector" and (path / "train.npz").is_file():
        train = _from_arrays(_load_npz(path / "train.npz"), path / "train.npz", recipe, labels, log, need_labels=False)
        test = None
        if (path / "test.npz").is_file():
            test = _from_arrays(_load_npz(path / "test.npz"), path / "test.npz", recipe, labels, log)
        return dataclasses.replace(train, test=test)
    if kind in ("sensor", "vector", "audio", "image") and len(npz) == 1:
        return _from_arrays(_load_npz(npz[0]), npz[0], recipe, labels, log, need_labels=recipe.kind.class_labels)
    if kind == "sensor":
        csvs = find_recordings(path)
        if csvs:
            return _windows_from_csv(csvs, recipe, labels, log, root=path)
    raise InputError(f"data folder {path}", expected=_expected(kind),
                     found=f"{len(list(path.iterdir()))} entries, none in that layout")


def _expected(kind: str) -> str:
    return {
        "audio": "WAV files in one subfolder per class, or an .npz with x (waveforms) and y",
        "image": "images in one subfolder per class, or an .npz with x (N, H, W, 3) and y",
        "sensor": "an .npz with x (N, window, channels) and y, or CSV recordings with a label column",
        "vector": "an .npz with x (N, features) and optional y, or a folder with train.npz and test.npz",
    }[kind]


def check_classes(data: RawData, recipe: Recipe, source: str) -> RawData:
    """Reorder labels into the recipe's class order; refuse data that cannot train a classifier.

    Raises:
        InputError: fewer than two classes with samples, or class names that do not match
            the recipe's ``data.classes``.
    """
    if not recipe.kind.class_labels:
        return data
    present = sorted({data.class_names[i] for i in np.unique(data.y)})
    if len(present) < 2:
        raise InputError(f"data {source}", expected="samples of two or more classes",
                         found=f"only class {present[0]!r} ({len(data)} samples)" if present else "no samples",
                         hint="a classifier needs at least two classes; add folders, or use an anomaly recipe")
    wanted = recipe.classes
    if wanted is None:
        return data
    if set(data.class_names) != set(wanted):
        missing = sorted(set(wanted) - set(data.class_names))
        extra = sorted(set(data.class_names) - set(wanted))
        raise InputError(f"classes in {source}", expected=f"the recipe's classes {list(wanted)}",
                         found="; ".join(filter(None, [f"missing {missing}" if missing else "",
                                                       f"not in the recipe {extra}" if extra else ""])),
                         hint="rename the folders, or train on the data's own classes with --set data.classes=null")
    mapping = np.array([wanted.index(n) for n in data.class_names], np.int64)
    return dataclasses.replace(data, y=mapping[data.y], class_names=tuple(wanted))


def concatenate(first: RawData, second: RawData) -> RawData:
    """`first` followed by `second` (same class names)."""
    groups = None if first.groups is None or second.groups is None else first.groups + second.groups
    return dataclasses.replace(first, x=np.concatenate([first.x, second.x]), y=np.concatenate([first.y, second.y]),
                               ids=first.ids + second.ids, groups=groups, test=None)


def _bucket(ids: tuple[str, ...]) -> np.ndarray:
    keys = np.array([int.from_bytes(hashlib.sha256(i.encode()).digest()[:8], "big") for i in ids], dtype=np.uint64)
    return (keys % np.uint64(1_000_000)).astype(np.float64) / 1_000_000.0


def split(data: RawData, validation: float, test: float) -> Split:
    """Deterministic split by a hash of each sample's id: the same sample always lands on
    the same side, whatever else is in the data. With groups (subjects), whole groups go
    to each side. A separate test set (``data.test``) is used as the test split as it is."""
    bucket = _bucket(data.ids)
    if data.groups is not None and len(set(data.groups)) >= 3 and data.test is None:
        # whole groups (subjects) to each side, ordered by hash: the test subjects are unseen
        names = sorted(set(data.groups), key=lambda g: _bucket((g,))[0])
        n_test = max(1, round(test * len(names)))
        n_val = max(1, round(validation * len(names)))
        rank = {g: i for i, g in enumerate(names)}
        position = np.array([rank[g] for g in data.groups])
        test_index = np.flatnonzero(position < n_test)
        val_index = np.flatnonzero((position >= n_test) & (position < n_test + n_val))
        train_index = np.flatnonzero(position >= n_test + n_val)
        if len(train_index):
            return Split(data.subset(train_index), data.subset(val_index), data.subset(test_index))
    if data.test is not None:
        val_index = np.flatnonzero(bucket < validation)
        train_index = np.flatnonzero(bucket >= validation)
        test_data = data.test
    else:
        test_index = np.flatnonzero(bucket < test)
        val_index = np.flatnonzero((bucket >= test) & (bucket < test + validation))
        train_index = np.flatnonzero(bucket >= test + validation)
        if min(len(test_index), len(val_index), len(train_index)) == 0:
            order = np.arange(len(data))  # tiny data: every fifth sample to each held-out part
            test_index, val_index = order[0::5], order[1::5]
            train_index = np.setdiff1d(order, np.concatenate([test_index, val_index]))
        test_data = data.subset(test_index)
    if len(train_index) == 0 or len(val_index) == 0 or len(test_data) == 0:
        raise InputError("data split", expected="samples for training, validation and test",
                         found=f"{len(train_index)}/{len(val_index)}/{len(test_data)} samples")
    return Split(data.subset(train_index), data.subset(val_index), test_data)


def describe(part: RawData) -> dict[str, Any]:
    if part.y.dtype.kind == "f":  # regression targets
        return {"samples": len(part), "target_mean": np.round(part.y.mean(axis=0), 6).tolist() if len(part) else None,
                "target_std": np.round(part.y.std(axis=0), 6).tolist() if len(part) else None}
    counts = np.bincount(part.y, minlength=len(part.class_names)) if len(part) else []
    return {"samples": len(part), "per_class": {n: int(c) for n, c in zip(part.class_names, counts, strict=True)}}
