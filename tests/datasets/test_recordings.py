"""CSV sensor recordings (`edgekit.datasets.recordings`) and raw samples for a runtime
(`edgekit.datasets.loaders.raw_samples`): numpy only, no TensorFlow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.datasets.loaders import raw_samples
from edgekit.datasets.recordings import read_recording, recording_windows
from edgekit.errors import InputError
from edgekit.spec import ImagePreprocess, NoPreprocess, SensorPreprocess

SPEC = SensorPreprocess(channels=("ax", "ay", "az"), window=4, stride=2)


def write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_columns_are_taken_by_name_and_others_ignored(tmp_path):
    rows = [f"{t},{label},{t + 0.3},s1,{t + 0.2},{t + 0.1}" for t, label in
            zip(range(10), ["idle"] * 5 + ["walk"] * 5, strict=True)]
    path = write(tmp_path / "r.csv", "timestamp,label,az,subject,ay,ax", rows)
    recording = read_recording(path, SPEC)
    assert recording.values.shape == (10, 3)
    assert recording.values[2].tolist() == pytest.approx([2.1, 2.2, 2.3])
    assert recording.labels[:6] == ("idle",) * 5 + ("walk",)

    cut = recording_windows([path], SPEC)
    assert cut.x.shape == (4, 4, 3) and cut.starts == (0, 2, 4, 6)
    assert cut.class_names == ("idle", "walk")
    # rows 0-3 idle; 2-5 three idle, one walk; 4-7 one idle, three walk; 6-9 walk
    assert cut.labels.tolist() == [0, 0, 1, 1]
    assert cut.ids[1] == "r.csv@2" and set(cut.recordings) == {"r.csv"}


def test_a_missing_channel_or_label_column_is_one_line_naming_it(tmp_path):
    path = write(tmp_path / "r.csv", "timestamp,ax,ay,label", ["0,1,2,idle"])
    with pytest.raises(InputError, match=r"missing \['az'\]") as caught:
        read_recording(path, SPEC)
    assert "\n" not in str(caught.value)
    no_label = write(tmp_path / "n.csv", "ax,ay,az", ["0,1,2"])
    with pytest.raises(InputError, match=r"missing \['label'\]"):
        read_recording(no_label, SPEC)
    assert read_recording(no_label, SPEC, need=None).labels is None
    bad = write(tmp_path / "b.csv", "ax,ay,az,label", ["0,1,2,idle", "0,x,2,idle"])
    with pytest.raises(InputError, match="line 3"):
        read_recording(bad, SPEC)


def test_a_target_column_gives_each_window_its_last_rows_target(tmp_path):
    path = write(tmp_path / "t.csv", "ax,ay,az,target", [f"{i},{i},{i},{10 * i}" for i in range(8)])
    cut = recording_windows([path], SPEC, need="target")
    assert cut.labels is None and cut.targets.tolist() == [30.0, 50.0, 70.0]
    with pytest.raises(InputError, match="target"):
        recording_windows([write(tmp_path / "u.csv", "ax,ay,az", ["1,2,3"])], SPEC, need="target")


def test_raw_samples_list_files_arrays_and_recordings_without_a_front_end(tmp_path):
    for name in ("b", "a"):
        (tmp_path / "images" / name).mkdir(parents=True)
        (tmp_path / "images" / name / "1.png").write_bytes(b"not decoded here")
    listed = raw_samples(tmp_path / "images", ImagePreprocess(height=8, width=8))
    assert listed.form == "image files" and listed.class_names == ("a", "b")
    assert listed.y.tolist() == [0, 1] and all(isinstance(p, Path) for p in listed.inputs)

    np.savez(tmp_path / "rows.npz", x=np.arange(12.0).reshape(4, 3), y=np.array([0, 1, 1, 0]))
    rows = raw_samples(tmp_path / "rows.npz", SensorPreprocess(channels=("a", "b", "c"), window=1, stride=1))
    assert rows.inputs[1].shape == (1, 3) and rows.y.tolist() == [0, 1, 1, 0] and rows.class_names is None
    plain = raw_samples(tmp_path / "rows.npz", NoPreprocess())
    assert plain.inputs[1].shape == (3,)

    np.savez(tmp_path / "reg.npz", x=np.zeros((3, 2)), y=np.array([0.5, 1.5, 2.5]))
    regression = raw_samples(tmp_path / "reg.npz", NoPreprocess(), need="target")
    assert regression.y is None and regression.targets.tolist() == [0.5, 1.5, 2.5]

    folder = tmp_path / "recordings"
    folder.mkdir()
    write(folder / "one.csv", "ax,ay,az,label", [f"{i},0,1,walk" for i in range(6)])
    write(folder / "two.csv", "label,az,ay,ax", [f"idle,1,0,{i}" for i in range(4)])
    windows = raw_samples(folder, SPEC)
    assert windows.form == "recordings" and len(windows) == 3 and windows.class_names == ("idle", "walk")
    assert windows.groups == ("one.csv", "one.csv", "two.csv") and windows.y.tolist() == [1, 1, 0]

    with pytest.raises(InputError, match="no such path"):
        raw_samples(tmp_path / "missing", SPEC)
    with pytest.raises(InputError, match="CSV recording"):
        raw_samples(write(tmp_path / "x.txt", "a", []), SPEC)
