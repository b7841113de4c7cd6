"""Labelled sensor recordings (CSV) cut into windows by a `SensorPreprocess` spec.

A recording is a CSV file with a header row: one column per channel, named as the spec's
``channels``, and a ``label`` column (a class name per row) or, for regression, a
``target`` column (a number per row). Columns are taken by name; any other column
(``timestamp``, ``subject``, ...) is ignored, and the order of the columns does not matter.
Windows of ``window`` rows every ``stride`` rows are cut as the runtime cuts a stream;
a window's label is the label of the majority of its rows, its target the target of its
last row. Both ``edgekit train`` and ``edgekit eval`` read recordings here. numpy only.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np

from edgekit.errors import InputError
from edgekit.features.sensor import windows as cut_windows
from edgekit.spec import SensorPreprocess

LABEL_COLUMN = "label"
TARGET_COLUMNS = ("target", "y", "value")  # the first present is a regression recording's target


@dataclasses.dataclass(frozen=True)
class Recording:
    """One CSV recording, its channels in the spec's order.

    Attributes:
        path: the file.
        values: float32 ``(rows, channels)``.
        labels: the ``label`` column, one string per row, or None.
        targets: the target column as float32 ``(rows,)``, or None.
    """

    path: Path
    values: np.ndarray
    labels: tuple[str, ...] | None
    targets: np.ndarray | None


@dataclasses.dataclass(frozen=True)
class RecordingWindows:
    """Raw (not normalized) windows of one or more recordings.

    Attributes:
        x: float32 ``(N, window, channels)``.
        labels: int64 ``(N,)`` indices into `class_names` (majority of the window's rows),
            or None for recordings without labels.
        targets: float32 ``(N,)`` (the target of each window's last row), or None.
        class_names: the names of the label indices.
        ids: ``NAME@START`` per window (NAME relative to the root folder, or the file name).
        recordings: the NAME each window comes from.
        starts: the first row of each window.
    """

    x: np.ndarray
    labels: np.ndarray | None
    targets: np.ndarray | None
    class_names: tuple[str, ...]
    ids: tuple[str, ...]
    recordings: tuple[str, ...]
    starts: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.x)


def read_recording(path: Path, spec: SensorPreprocess, *, need: str | None = LABEL_COLUMN) -> Recording:
    """Read the spec's channels (by name) and the label or target column of a CSV file.

    Args:
        path: the CSV file.
        spec: the sensor spec whose ``channels`` name the columns to read.
        need: ``"label"`` (a label column is required), ``"target"`` (one of
            `TARGET_COLUMNS` is required), or None (read whichever is present).

    Raises:
        InputError: unreadable file, no header, a missing channel or label/target column,
            or a non-number in a channel or target column (with its line number).
    """
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"sensor recording {path}", expected="a readable UTF-8 CSV file", found=str(exc)) from exc
    if not rows:
        raise InputError(f"sensor recording {path}", expected="a header and rows", found="an empty file")
    header = [h.strip() for h in rows[0]]
    target_column = next((c for c in TARGET_COLUMNS if c in header), None)
    wanted = list(spec.channels)
    if need == LABEL_COLUMN:
        wanted.append(LABEL_COLUMN)
    missing = [c for c in wanted if c not in header]
    if need == "target" and target_column is None:
        missing.append("target")
    if missing:
        raise InputError(f"sensor recording {path}", expected=f"columns {wanted + (['target'] if need == 'target' else [])}"
                         " (by name; other columns are ignored)", found=f"columns {header} (missing {missing})",
                         hint="name the columns as the model's preprocessing does (edgekit inspect shows them)")
    columns = [header.index(c) for c in spec.channels]
    label_index = header.index(LABEL_COLUMN) if LABEL_COLUMN in header and need != "target" else None
    target_index = header.index(target_column) if target_column is not None and need != LABEL_COLUMN else None
    values, labels, targets = [], [], []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line, e.g. at the end
        try:
            values.append([float(row[i]) for i in columns])
            if label_index is not None:
                labels.append(row[label_index].strip())
            if target_index is not None:
                targets.append(float(row[target_index]))
        except (ValueError, IndexError) as exc:
            raise InputError(f"sensor recording {path} line {number}", expected="numbers in the channel"
                             + (" and target" if target_index is not None else "") + " columns",
                             found=str(exc)) from exc
    return Recording(path, np.asarray(values, np.float32).reshape(-1, len(spec.channels)),
                     tuple(labels) if label_index is not None else None,
                     np.asarray(targets, np.float32) if target_index is not None else None)


def recording_windows(paths: list[Path], spec: SensorPreprocess, *, class_names: tuple[str, ...] | None = None,
                      root: Path | None = None, need: str | None = LABEL_COLUMN) -> RecordingWindows:
    """Cut recordings into windows of ``spec.window`` rows every ``spec.stride`` rows.

    Args:
        paths: CSV files.
        spec: the sensor spec (channels, window, stride).
        class_names: the label order; default: the sorted labels found.
        root: names in ids are relative to it (a folder of recordings), else file names.
        need: the column required, as in `read_recording`.

    Raises:
        InputError: as `read_recording`; a label not in `class_names`; no recording as long
            as one window.
    """
    recordings = [read_recording(p, spec, need=need) for p in paths]
    labelled = all(r.labels is not None for r in recordings)
    names = class_names or (tuple(sorted({n for r in recordings for n in r.labels or ()})) if labelled else ())
    xs, ys, targets, ids, origins, starts = [], [], [], [], [], []
    for recording in recordings:
        index = None
        if labelled:
            assert recording.labels is not None
            unknown = sorted(set(recording.labels) - set(names))
            if unknown:
                raise InputError(f"sensor recording {recording.path}", expected=f"labels among {list(names)}",
                                 found=f"labels {unknown[:10]}")
            position = {n: i for i, n in enumerate(names)}
            index = np.array([position[n] for n in recording.labels], np.int64)
        cut = cut_windows(recording.values, spec)
        name = recording.path.relative_to(root).as_posix() if root is not None else recording.path.name
        for k in range(len(cut)):
            start = k * spec.stride
            xs.append(cut[k])
            if index is not None:
                ys.append(int(np.bincount(index[start : start + spec.window], minlength=len(names)).argmax()))
            if recording.targets is not None:
                targets.append(float(recording.targets[start + spec.window - 1]))
            ids.append(f"{name}@{start}")
            origins.append(name)
            starts.append(start)
    if not xs:
        raise InputError("sensor recordings", expected=f"at least {spec.window} rows (one window)",
                         found=f"{sum(len(r.values) for r in recordings)} rows in {len(paths)} file(s)")
    has_targets = all(r.targets is not None for r in recordings)
    return RecordingWindows(np.stack(xs), np.asarray(ys, np.int64) if labelled else None,
                            np.asarray(targets, np.float32) if has_targets else None, names, tuple(ids),
                            tuple(origins), tuple(starts))


def find_recordings(folder: Path) -> list[Path]:
    """The CSV recordings under `folder` (``index.csv``, a dataset's file list, excluded)."""
    return sorted(p for p in folder.rglob("*.csv") if p.name != "index.csv" and not p.name.startswith("."))
