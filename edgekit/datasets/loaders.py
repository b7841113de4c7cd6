"""Loading calibration and validation data, raw, through a preprocessing spec.

Sources: image folders and WAV folders (one subfolder per class, or a flat folder of
unlabelled files), and ``.npy``/``.npz`` arrays (``x`` and optional ``y``: integer class
labels, or float regression targets). Raw data
goes through the same numpy front ends the runtime uses (`edgekit.features`), so the
tensors a converter calibrates and validates on are the tensors the device will see.

`raw_samples` lists the same sources (and CSV sensor recordings, see
`edgekit.datasets.recordings`) as raw inputs with their labels, without any front end:
file paths and array rows for a runtime that runs its own (``edgekit eval``).
numpy only; no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.features import audio as audio_features
from edgekit.features import image as image_features
from edgekit.features import same_but_singletons
from edgekit.features import sensor as sensor_features
from edgekit.progress import Progress, no_progress
from edgekit.spec import (
    AudioPreprocess,
    ImagePreprocess,
    NoPreprocess,
    PreprocessSpec,
    SensorPreprocess,
)

WAV_SUFFIXES = (".wav", ".wave")


@dataclasses.dataclass(frozen=True)
class Samples:
    """Model-ready inputs with optional labels or regression targets.

    Attributes:
        x: float32 ``(N, *input_shape)``.
        labels: int64 ``(N,)`` class indices, or None (also None when ``y`` is float).
        class_names: names for the label indices (folder names or the labels file).
        ids: a stable identifier per sample (relative path, or ``index:i``).
        source: where the samples came from.
        skipped: files that could not be read, with the reason.
        targets: the arrays' ``y`` as stored (dtype and shape, ``(N,)`` or ``(N, ...)``;
            one-hot rows are not folded), the targets of regression models; None without
            ``y`` and for folders. The model's task decides whether `labels` or `targets`
            count.
    """

    x: np.ndarray
    labels: np.ndarray | None
    class_names: tuple[str, ...] | None
    ids: tuple[str, ...]
    source: str
    skipped: tuple[str, ...] = ()
    targets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, index: np.ndarray) -> Samples:
        return dataclasses.replace(
            self, x=self.x[index], labels=None if self.labels is None else self.labels[index],
            targets=None if self.targets is None else self.targets[index],
            ids=tuple(self.ids[i] for i in index))

    def integer_labels_error(self) -> InputError:
        """The error for a float ``y`` given to a model that needs class labels."""
        assert self.targets is not None
        return InputError(f"labels in {self.source}", expected=f"{len(self)} integer labels",
                          found=f"{len(self.targets)} of {self.targets.dtype}",
                          hint="float y are regression targets: for a regression model put postprocess "
                               "kind: regression in the preprocess YAML")


def _fit_shape(x: np.ndarray, input_shape: tuple[int, ...], source: str) -> np.ndarray:
    """Match sample shape to the model input, allowing only singleton dimensions to differ.

    Features of several vectors per clip (`stack_frames`) for a model that takes one
    vector are returned as they are, ``(N, vectors, ...)``: `_per_vector` makes each
    vector a sample.
    """
    if tuple(x.shape[1:]) == tuple(input_shape):
        return x
    if same_but_singletons(x.shape[1:], tuple(input_shape)):
        return x.reshape((len(x), *input_shape))
    if x.ndim >= 3 and same_but_singletons(x.shape[2:], tuple(input_shape)):
        return x
    raise InputError(f"data {source}", expected=f"samples of shape {tuple(input_shape)} (the model input)",
                     found=f"samples of shape {tuple(x.shape[1:])}",
                     hint="check --preprocess (size, features) or the arrays you passed")


def _per_vector(samples: Samples, input_shape: tuple[int, ...]) -> Samples:
    """A clip of many vectors for a model that takes one (the DCASE baseline's 5 stacked
    log-mel frames): every vector becomes a sample with its clip's label, target and id
    (``ID#vK``), as the model saw them in training and as the runtime runs them."""
    x = samples.x
    if x.ndim < 2 or same_but_singletons(x.shape[1:], tuple(input_shape)):
        return samples
    count = x.shape[1]

    def repeat(values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else np.repeat(values, count, axis=0)

    return dataclasses.replace(
        samples, x=x.reshape((len(x) * count, *input_shape)), labels=repeat(samples.labels),
        targets=repeat(samples.targets), ids=tuple(f"{i}#v{k}" for i in samples.ids for k in range(count)))


def _prepare_arrays(raw: np.ndarray, spec: PreprocessSpec, source: str) -> np.ndarray:
    if isinstance(spec, NoPreprocess):
        return np.asarray(raw, dtype=np.float32)
    if isinstance(spec, ImagePreprocess):
        if raw.ndim == 3 and spec.channels == 1:
            raw = raw[..., None]
        if raw.ndim != 4:
            raise InputError(f"data {source}", expected="raw images (N, H, W, C)", found=f"shape {raw.shape}")
        return np.stack([image_features.preprocess(img if img.shape[-1] != 1 else np.repeat(img, 3, -1), spec)
                         for img in raw]).astype(np.float32)
    if isinstance(spec, AudioPreprocess):
        if raw.ndim != 2:
            raise InputError(f"data {source}", expected=f"raw waveforms (N, samples) at {spec.sample_rate} Hz",
                             found=f"shape {raw.shape}")
        return audio_features.features(raw, spec)
    if isinstance(spec, SensorPreprocess):
        return sensor_features.normalize(raw, spec)
    raise AssertionError(f"unhandled preprocess {spec!r}")


def read_labels_file(path: Path) -> tuple[str, ...]:
    try:
        lines = [line.strip() for line in path.read_text("utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"labels file {path}", expected="a UTF-8 text file, one label per line",
                         found=str(exc)) from exc
    labels = tuple(line for line in lines if line)
    if not labels or len(set(labels)) != len(labels):
        raise InputError(f"labels file {path}", expected="one distinct label per line",
                         found=f"{len(labels)} labels, {len(labels) - len(set(labels))} duplicates")
    return labels


def _labels_and_targets(y: Any, count: int, path: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    """An arrays file's ``y`` as class labels and targets: integer (or bool) ``y`` gives
    int64 labels (one-hot rows folded to indices) and the targets as stored; float ``y``
    gives targets only.

    Raises:
        InputError: not one numeric row per sample, or a float that is not finite.
    """
    if y is None:
        return None, None
    y = np.asarray(y)
    if y.ndim == 0 or len(y) != count or y.dtype.kind not in "iubf":
        raise InputError(f"labels in {path}", expected=f"{count} integer labels or float targets",
                         found=f"{0 if y.ndim == 0 else len(y)} of {y.dtype}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise InputError(f"targets in {path}", expected="finite values", found="NaN or infinity")
        return None, y
    folded = y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1)  # one-hot rows to indices
    if len(folded) != count:
        raise InputError(f"labels in {path}", expected=f"{count} integer labels", found=f"{len(folded)} of {y.dtype}")
    return folded.astype(np.int64), y


def load_arrays(path: Path, spec: PreprocessSpec, input_shape: tuple[int, ...]) -> Samples:
    """``.npy`` (inputs only) or ``.npz`` (``x``/``inputs`` and optional ``y``/``labels``).

    An integer (or bool) ``y`` gives class `labels` (one-hot rows folded to indices) and
    `targets`; a float ``y`` gives `targets` only.

    Raises:
        InputError: unreadable file, no ``x``, no samples, a ``y`` that is not numeric or
            not one row per sample, or samples that do not fit the model input.
    """
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"data {path}", expected="a readable .npy/.npz file (no pickles)", found=str(exc)) from exc
    labels = None
    if isinstance(loaded, np.ndarray):
        x = loaded
    else:
        with loaded:
            keys = list(loaded.files)
            xkey = next((k for k in ("x", "inputs", "data", "X") if k in keys), keys[0] if len(keys) == 1 else None)
            if xkey is None:
                raise InputError(f"data {path}", expected="an array named x (and optionally y)", found=f"arrays {keys}")
            x = loaded[xkey]
            ykey = next((k for k in ("y", "labels", "Y") if k in keys), None)
            labels = loaded[ykey] if ykey else None
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"data {path}", expected="at least one sample", found="an empty array")
    labels, targets = _labels_and_targets(labels, len(x), path)
    prepared = _fit_shape(_prepare_arrays(x, spec, str(path)), input_shape, str(path))
    return _per_vector(Samples(x=prepared, labels=labels, class_names=None,
                               ids=tuple(f"index:{i}" for i in range(len(x))), source=str(path), targets=targets),
                       input_shape)


def _folder_files(root: Path) -> tuple[list[tuple[Path, str | None]], list[str]]:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files: list[tuple[Path, str | None]] = []
    if classes:
        for name in classes:
            files += [(f, name) for f in sorted((root / name).rglob("*")) if f.is_file() and not f.name.startswith(".")]
    else:
        files = [(f, None) for f in sorted(root.iterdir()) if f.is_file() and not f.name.startswith(".")]
    return files, classes


def folder_files(root: Path, spec: PreprocessSpec) -> tuple[list[tuple[Path, str | None]], list[str], str]:
    """The image or WAV files of a folder (as `spec` wants), with their class folder names.

    Returns:
        ``(files, classes, kind)``: ``(path, class folder name or None)`` pairs, the sorted
        class folder names (empty for a flat folder), and ``"image"`` or ``"WAV"``.

    Raises:
        InputError: a spec that does not read files, or no such files.
    """
    files, classes = _folder_files(root)
    if isinstance(spec, ImagePreprocess):
        suffixes, kind = image_features.IMAGE_SUFFIXES, "image"
    elif isinstance(spec, AudioPreprocess):
        suffixes, kind = WAV_SUFFIXES, "WAV"
    else:
        raise InputError(f"data folder {root}", expected="--preprocess with kind image or audio for a folder of files",
                         found=f"preprocess kind {spec.kind.value!r}",
                         hint="pass --preprocess SPEC.yaml describing how raw files become model inputs")
    usable = [(f, c) for f, c in files if f.suffix.lower() in suffixes]
    if not usable:
        raise InputError(f"data folder {root}", expected=f"{kind} files ({', '.join(suffixes)}), in one subfolder per class",
                         found=f"{len(files)} file(s), none of them {kind} files" if files else "an empty folder")
    return usable, classes, kind


def load_folder(root: Path, spec: PreprocessSpec, input_shape: tuple[int, ...],
                class_names: tuple[str, ...] | None = None, progress: Progress = no_progress) -> Samples:
    """Image or WAV files, one subfolder per class (or unlabelled, flat)."""
    usable, classes, kind = folder_files(root, spec)
    names = class_names or (tuple(classes) if classes else None)
    if names is not None and classes:
        unknown = sorted(set(classes) - set(names))
        if unknown:
            raise InputError(f"data folder {root}", expected=f"class folders named after the labels {list(names)}",
                             found=f"folders {unknown} with no label")
    inputs, labels, ids, skipped = [], [], [], []
    for path, cls in progress(usable, f"reading {kind} files", len(usable)):
        try:
            if kind == "image":
                sample = image_features.preprocess(image_features.decode_image(path), spec)  # type: ignore[arg-type]
            else:
                wave, rate = audio_features.read_wav(path)
                wave = audio_features.resample(wave, rate, spec.sample_rate)  # type: ignore[union-attr]
                sample = audio_features.features(wave, spec)  # type: ignore[arg-type]
        except InputError as exc:
            skipped.append(f"{path.relative_to(root)}: {exc}")
            continue
        inputs.append(sample)
        labels.append(names.index(cls) if names is not None and cls is not None else -1)
        ids.append(str(path.relative_to(root)))
    if not inputs:
        raise InputError(f"data folder {root}", expected="at least one readable file",
                         found=f"{len(skipped)} unreadable file(s), e.g. {skipped[0]}")
    x = _fit_shape(np.stack(inputs).astype(np.float32), input_shape, str(root))
    y = np.asarray(labels, np.int64) if names is not None and classes else None
    return _per_vector(Samples(x=x, labels=y, class_names=names, ids=tuple(ids), source=str(root),
                               skipped=tuple(skipped)), input_shape)


def load_samples(path: Path, spec: PreprocessSpec, input_shape: tuple[int, ...], *,
                 labels_file: Path | None = None, class_names: tuple[str, ...] | None = None,
                 progress: Progress = no_progress) -> Samples:
    """Load `path` (folder, .npy or .npz) as model-ready samples.

    Class order (the model's output order) comes from `labels_file`, else `class_names`,
    else the sorted class folder names.

    Raises:
        InputError: missing or empty data, unreadable files only, or samples whose shape
            does not match the model input.
    """
    names = read_labels_file(labels_file) if labels_file is not None else class_names
    if not path.exists():
        raise InputError(f"data {path}", expected="an existing folder or .npy/.npz file", found="no such path")
    if path.is_dir():
        return load_folder(path, spec, input_shape, names, progress)
    if path.suffix.lower() in (".npy", ".npz"):
        samples = load_arrays(path, spec, input_shape)
        return dataclasses.replace(samples, class_names=names) if names else samples
    raise InputError(f"data {path}", expected="a folder (one subfolder per class) or a .npy/.npz file",
                     found=f"a {path.suffix or 'suffix-less'} file")


def random_raw(spec: PreprocessSpec, input_shape: tuple[int, ...], count: int, seed: int) -> np.ndarray:
    """`count` seeded random raw inputs of the spec's kind: uint8 RGB images, audio clips
    (float32, about -20 dBFS), sensor windows, or model input tensors without a front end."""
    rng = np.random.default_rng(seed)
    if isinstance(spec, ImagePreprocess):
        return rng.integers(0, 256, (count, spec.height, spec.width, 3), dtype=np.uint8)
    if isinstance(spec, AudioPreprocess):
        return (rng.standard_normal((count, spec.clip_samples)) * 0.1).astype(np.float32)
    if isinstance(spec, SensorPreprocess):
        return rng.standard_normal((count, spec.window, len(spec.channels))).astype(np.float32)
    return rng.standard_normal((count, *(1 if d < 0 else d for d in input_shape))).astype(np.float32)


def random_samples(spec: PreprocessSpec, input_shape: tuple[int, ...], count: int, seed: int) -> Samples:
    """Random raw inputs pushed through the spec (for --allow-random-calibration only)."""
    raw = random_raw(spec, input_shape, count, seed)
    x = _fit_shape(_prepare_arrays(raw, spec, "random data"), input_shape, "random data")
    return _per_vector(Samples(x=x, labels=None, class_names=None, ids=tuple(f"random:{i}" for i in range(count)),
                               source="random (no --data)"), input_shape)


def split(samples: Samples, calibration_fraction: float = 0.3, calibration_max: int = 200,
          validation_max: int = 1000) -> tuple[Samples, Samples]:
    """Deterministic calibration/validation split by a hash of each sample's id.

    The same sample always lands on the same side, whatever else is in the folder.
    """
    keys = np.array([int.from_bytes(hashlib.sha256(i.encode()).digest()[:8], "big") for i in samples.ids],
                    dtype=np.uint64)
    bucket = (keys % np.uint64(10_000)).astype(np.float64) / 10_000.0
    order = np.argsort(keys, kind="stable")
    calibration = [i for i in order if bucket[i] < calibration_fraction][:calibration_max]
    validation = [i for i in order if bucket[i] >= calibration_fraction][:validation_max]
    if not validation or not calibration:
        # Tiny datasets: alternate, still deterministic.
        calibration = list(order[::3])[:calibration_max] or list(order[:1])
        taken = set(calibration)
        validation = [i for i in order if i not in taken][:validation_max] or list(order[:1])
    return samples.subset(np.array(sorted(calibration))), samples.subset(np.array(sorted(validation)))


# ---------------------------------------------------------------------------
# raw samples, for a runtime that runs its own front end


@dataclasses.dataclass(frozen=True)
class RawSamples:
    """Raw inputs with their labels, before any front end.

    Attributes:
        inputs: one raw input per sample: a `Path` (an image or WAV file, decoded by the
            consumer), or an array (a row of an ``.npz`` ``x``, or a sensor window).
        y: int64 ``(N,)`` class indices into `class_names` (or, when `class_names` is None,
            into the model's own output order); None when the data carry no labels.
        class_names: names of the indices in `y` (class folders, the arrays' ``classes``,
            the recordings' labels), or None.
        targets: float ``(N,)`` or ``(N, outputs)`` regression targets, or None.
        ids: a stable identifier per sample (relative path, ``index:i``, ``FILE@ROW``).
        groups: for windows of recordings, the recording each window comes from; else None.
        source: where the samples came from.
        form: ``"image files"``, ``"WAV files"``, ``"arrays"`` or ``"recordings"``.
    """

    inputs: tuple[Any, ...]
    y: np.ndarray | None
    class_names: tuple[str, ...] | None
    targets: np.ndarray | None
    ids: tuple[str, ...]
    source: str
    form: str
    groups: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.inputs)


def _npz_raw(path: Path) -> RawSamples:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"data {path}", expected="a readable .npy/.npz file (no pickles)", found=str(exc)) from exc
    if isinstance(loaded, np.ndarray):
        x, y, classes = loaded, None, None
    else:
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
        x = next((arrays[k] for k in ("x", "inputs", "data", "X") if k in arrays), None)
        if x is None:
            raise InputError(f"data {path}", expected="an array named x (and y)", found=f"arrays {sorted(arrays)}")
        y = next((arrays[k] for k in ("y", "labels", "Y", "targets") if k in arrays), None)
        classes = tuple(str(c) for c in arrays["classes"].reshape(-1)) if "classes" in arrays else None
    if x.ndim == 0 or len(x) == 0:
        raise InputError(f"data {path}", expected="at least one sample", found="an empty array")
    labels, targets = _labels_and_targets(y, len(x), path)
    return RawSamples(tuple(np.asarray(row) for row in x), labels, classes, targets,
                      tuple(f"index:{i}" for i in range(len(x))), str(path), "arrays")


def _feature_rows(samples: RawSamples, spec: PreprocessSpec) -> RawSamples:
    """Rows of features ``(channels,)`` as windows of one sample ``(1, channels)``, for sensor
    models with ``window: 1`` (a channel per feature, as training reads them)."""
    if not isinstance(spec, SensorPreprocess) or spec.window != 1 or not samples.inputs:
        return samples
    if samples.inputs[0].shape != (len(spec.channels),):
        return samples
    return dataclasses.replace(samples, inputs=tuple(row[None, :] for row in samples.inputs))


def _recordings_raw(paths: list[Path], spec: SensorPreprocess, source: str, root: Path | None,
                    need: str | None) -> RawSamples:
    from edgekit.datasets.recordings import recording_windows

    cut = recording_windows(paths, spec, root=root, need=need)
    return RawSamples(tuple(cut.x), cut.labels, cut.class_names or None, cut.targets, cut.ids, source,
                      "recordings", groups=cut.recordings)


def raw_samples(path: Path, spec: PreprocessSpec, *, need: str | None = "label") -> RawSamples:
    """List `path` as raw inputs with labels, for a runtime that runs its own front end.

    Accepted: a folder of image or WAV files (one subfolder per class, or flat and
    unlabelled), an ``.npz`` (``x`` raw, optional ``y``, optional ``classes``) or ``.npy``,
    a folder holding ``test.npz`` (the labelled part of an anomaly dataset) or one
    ``.npz``, and for sensor models a CSV recording or a folder of them (`edgekit.datasets
    .recordings`: channels by name, a ``label`` or ``target`` column).

    Args:
        path: the data.
        spec: the model's preprocessing (which files a folder holds, what a CSV is cut into).
        need: for recordings, the column required: ``"label"`` or ``"target"``.

    Raises:
        InputError: a missing path, a layout that is none of the above, unreadable arrays
            or recordings.
    """
    if not path.exists():
        raise InputError(f"data {path}", expected="an existing folder or file", found="no such path")
    sensor = isinstance(spec, SensorPreprocess)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in (".npz", ".npy"):
            return _feature_rows(_npz_raw(path), spec)
        if suffix == ".csv" and sensor:
            return _recordings_raw([path], spec, str(path), None, need)  # type: ignore[arg-type]
        raise InputError(f"data {path}", expected="a folder, an .npz/.npy file"
                         + (" or a CSV recording" if sensor else ""), found=f"a {suffix or 'suffix-less'} file")
    npz = sorted(path.glob("*.npz"))
    if (path / "test.npz").is_file():
        return _feature_rows(_npz_raw(path / "test.npz"), spec)
    if len(npz) == 1:
        return _feature_rows(_npz_raw(npz[0]), spec)
    if sensor:
        from edgekit.datasets.recordings import find_recordings

        csvs = find_recordings(path)
        if csvs:
            return _recordings_raw(csvs, spec, str(path), path, need)  # type: ignore[arg-type]
    if not isinstance(spec, (ImagePreprocess, AudioPreprocess)):
        raise InputError(f"data folder {path}", expected="an .npz with x and y" + (" or CSV recordings" if sensor else ""),
                         found=f"{len(list(path.iterdir()))} entries, none of them usable"
                         + (f" ({len(npz)} .npz files: pass one)" if len(npz) > 1 else ""))
    files, classes, kind = folder_files(path, spec)
    names = tuple(classes) if classes else None
    y = np.array([names.index(c) for _f, c in files], np.int64) if names else None
    return RawSamples(tuple(f for f, _c in files), y, names, None,
                      tuple(f.relative_to(path).as_posix() for f, _c in files), str(path), f"{kind} files")
