"""`edgekit datasets synth`: every task writes real files the loaders read back, the
same bytes for the same seed, atomically, and a complete dataset is reused."""

from __future__ import annotations

import csv
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import need_program

from edgekit.datasets import synth
from edgekit.datasets.loaders import load_samples
from edgekit.errors import InputError
from edgekit.features.audio import read_wav
from edgekit.spec import AudioPreprocess, ImagePreprocess, NoPreprocess, preprocess_from_dict


def _make(task: str, out: Path, samples: int, **kwargs) -> synth.SynthResult:
    options = kwargs.pop("options", {})
    return synth.synthesize(task, out, synth.make_config(task, samples=samples, **options), **kwargs)


def _files(root: Path) -> dict[str, bytes]:
    """Every data file (all but dataset.json, which records the time taken), by relative path."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != synth.MANIFEST}


def _stable_manifest(root: Path) -> dict:
    manifest = synth.read_manifest(root)
    return {k: v for k, v in manifest.items() if k not in ("created", "seconds")}


def _band_fraction(x: np.ndarray, low: float, high: float, rate: int = 16000) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    return float(power[(freqs >= low) & (freqs < high)].sum() / power.sum())


def _loud_to_quiet(x: np.ndarray) -> float:
    """RMS of the loudest 100 ms over the quietest 100 ms."""
    rms = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(1600) / 1600, "valid"))
    return float(rms.max() / (rms.min() + 1e-9))


def _no_espeak(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def _check_wav_folders(root: Path, samples: int) -> None:
    manifest = synth.read_manifest(root)
    assert manifest["classes"] == sorted(["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
                                          "_silence_", "_unknown_"])
    assert (root / synth.LABELS).read_text().split() == manifest["classes"]
    for path in root.rglob("*.wav"):
        wave, rate = read_wav(path)
        assert (rate, wave.shape) == (16000, (16000,)), path
    spec = AudioPreprocess(feature="log_mel", num_mel_bins=40)
    loaded = load_samples(root, spec, (49, 40), labels_file=root / synth.LABELS)
    assert loaded.class_names == tuple(manifest["classes"])
    assert loaded.x.shape == (12 * samples, 49, 40) and np.isfinite(loaded.x).all()
    assert np.bincount(loaded.labels).tolist() == [samples] * 12
    # without the labels file the loaders' order (sorted folder names) is the same
    assert load_samples(root, spec, (49, 40)).class_names == tuple(manifest["classes"])
    with open(root / "index.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 * samples and all((root / row["path"]).is_file() for row in rows)


# ---------------------------------------------------------------------------
# tasks


def test_shapes_png_folders_read_back(tmp_path: Path) -> None:
    result = _make("shapes", tmp_path / "shapes", 5)
    assert not result.reused
    root = result.path
    manifest = synth.read_manifest(root)
    assert manifest["task"] == "shapes" and manifest["seed"] == 0 and manifest["samples_per_class"] == 5
    assert manifest["classes"] == ["circle", "cross", "square", "triangle"]
    assert manifest["files"] == 21  # 20 PNG + labels.txt
    assert sorted(p.name for p in root.iterdir()) == sorted([*manifest["classes"], "dataset.json", "labels.txt"])
    loaded = load_samples(root, ImagePreprocess(height=32, width=32), (32, 32, 3), labels_file=root / synth.LABELS)
    assert loaded.x.shape == (20, 32, 32, 3)
    assert loaded.class_names == tuple(manifest["classes"])
    assert np.bincount(loaded.labels).tolist() == [5, 5, 5, 5]
    assert not loaded.skipped
    # varied: no two images alike, and colours spread over the range
    assert len({loaded.x[i].tobytes() for i in range(len(loaded.x))}) == 20
    assert loaded.x.min() < 0.1 and loaded.x.max() > 0.9


def test_shapes_other_size(tmp_path: Path) -> None:
    root = _make("shapes", tmp_path / "vww", 2, options={"image_size": 96, "classes": ("circle", "square")}).path
    loaded = load_samples(root, ImagePreprocess(height=96, width=96), (96, 96, 3))
    assert loaded.x.shape == (4, 96, 96, 3) and loaded.class_names == ("circle", "square")


def test_har_windows_read_back(tmp_path: Path) -> None:
    root = _make("har", tmp_path / "har", 12, options={"stream_seconds": 12.0}).path
    manifest = synth.read_manifest(root)
    assert manifest["classes"] == ["idle", "walk", "run", "stairs"]
    spec = preprocess_from_dict(manifest["preprocess"])
    loaded = load_samples(root / "windows.npz", spec, (128, 6), labels_file=root / synth.LABELS)
    assert loaded.x.shape == (48, 128, 6)
    assert loaded.class_names == ("idle", "walk", "run", "stairs")
    assert np.bincount(loaded.labels).tolist() == [12] * 4
    # the spec's normalization statistics come from the data
    assert abs(float(loaded.x.mean())) < 0.2 and 0.8 < float(loaded.x.std()) < 1.2

    with np.load(root / "windows.npz") as data:
        x, y, subject = data["x"], data["y"], data["subject"]
        assert data["channels"].tolist() == list(synth.HAR_CHANNELS)
    assert sorted(set(subject.tolist())) == list(range(10))
    acc = np.linalg.norm(x[..., :3], axis=-1)
    # gravity in every window, idle still, running the most vigorous
    assert 9.0 < float(acc[y == 0].mean()) < 10.6
    spread = [float(acc[y == k].std(axis=1).mean()) for k in range(4)]
    assert spread[0] < 0.5 < spread[1] < spread[2] and spread[0] < spread[3] < spread[2]
    # subjects wear the sensor differently: gravity falls on other axes
    idle_gravity = {s: x[(y == 0) & (subject == s), :, :3].mean(axis=(0, 1)) for s in range(3)}
    assert not np.allclose(idle_gravity[0], idle_gravity[1], atol=0.5)
    # a held-out subject's continuous recording, in the runtime's csv: format
    with open(root / "stream.csv") as handle:
        header = handle.readline().strip().split(",")
    assert header == list(synth.HAR_CHANNELS)
    stream = np.loadtxt(root / "stream.csv", delimiter=",", skiprows=1)
    assert stream.shape == (600, 6)
    assert [s["activity"] for s in manifest["stream"]["segments"]] == ["idle", "walk", "stairs", "run", "walk", "idle"]


def test_anomaly_train_normal_test_with_faults(tmp_path: Path) -> None:
    root = _make("anomaly", tmp_path / "ad", 60).path
    manifest = synth.read_manifest(root)
    assert manifest["classes"] == ["normal", "anomalous"]
    assert manifest["counts"] == {"train": {"normal": 60},
                                  "test": {"normal": 30, "bearing": 10, "imbalance": 10, "broadband": 10}}
    train = load_samples(root / "train.npz", NoPreprocess(), (640,), labels_file=root / synth.LABELS)
    test = load_samples(root / "test.npz", NoPreprocess(), (640,), labels_file=root / synth.LABELS)
    assert train.x.shape == (60, 640) and set(train.labels.tolist()) == {0}
    assert test.x.shape == (60, 640) and np.bincount(test.labels).tolist() == [30, 30]
    with np.load(root / "test.npz") as data:
        faults, y = data["fault"], data["y"]
    assert ((faults == "normal") == (y == 0)).all()
    # every fault is detectable from normal data alone (PCA reconstruction error)
    mean = train.x.mean(axis=0)
    basis = np.linalg.svd(train.x - mean, full_matrices=False)[2][:8]

    def error(x: np.ndarray) -> np.ndarray:
        centred = x - mean
        return ((centred - centred @ basis.T @ basis) ** 2).mean(axis=1)

    normal = error(test.x[y == 0])
    for fault in ("bearing", "imbalance", "broadband"):
        faulty = error(test.x[faults == fault])
        auc = float((faulty[:, None] > normal[None, :]).mean())
        assert auc > 0.8, (fault, auc)


def test_kws_stand_in_without_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    _no_espeak(monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING):
        root = _make("kws", tmp_path / "kws", 2).path
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "espeak-ng not found" in message and "apt-get install espeak-ng" in message and "\n" not in message
    manifest = synth.read_manifest(root)
    assert "stand-in" in manifest["generator"]["name"]
    _check_wav_folders(root, 2)
    assert {row["source"] for row in csv.DictReader(open(root / "index.csv"))} == {"stand-in", "noise"}
    caplog.clear()
    lines: list[str] = []
    assert _make("kws", root, 2, log=lines.append).reused  # no second warning on reuse
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_same_seed_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_espeak(monkeypatch, tmp_path)
    for task, samples in (("shapes", 3), ("har", 3), ("anomaly", 9), ("kws", 1)):
        options = {"stream_seconds": 6.0} if task == "har" else {}
        first = _make(task, tmp_path / f"{task}-a", samples, options=options).path
        second = _make(task, tmp_path / f"{task}-b", samples, options=options).path
        other = synth.synthesize(task, tmp_path / f"{task}-c",
                                 synth.make_config(task, samples=samples, seed=1, **options)).path
        assert _files(first) == _files(second), task
        assert _stable_manifest(first) == _stable_manifest(second), task
        data = {k: v for k, v in _files(first).items() if k != synth.LABELS}
        changed = {k: v for k, v in _files(other).items() if k != synth.LABELS}
        assert data.keys() == changed.keys() and all(data[k] != changed[k] for k in data), task


# ---------------------------------------------------------------------------
# espeak-ng speech


@pytest.mark.system
def test_kws_espeak_speech(tmp_path: Path) -> None:
    program = need_program("espeak-ng", "apt-get install espeak-ng")
    root = _make("kws", tmp_path / "kws", 3).path
    manifest = synth.read_manifest(root)
    generator = manifest["generator"]
    assert generator["name"].startswith("espeak-ng") and generator["utterances"] >= 20
    _check_wav_folders(root, 3)
    rows = list(csv.DictReader(open(root / "index.csv")))
    assert {row["source"] for row in rows} == {"espeak-ng", "noise"}
    assert len({row["voice"] for row in rows if row["voice"]}) >= 5
    assert len({row["noise"] for row in rows}) >= 3
    assert set(generator["voices"]) <= set(synth.ESPEAK_VOICES)

    for row in rows:
        wave, _ = read_wav(root / row["path"])
        if row["label"] == "_silence_":
            assert _loud_to_quiet(wave) < 2.0, row
        else:
            # speech stands out of the background and sits in the speech band
            assert np.abs(wave).max() > 0.1 and _loud_to_quiet(wave) > 2.5, row
            assert _band_fraction(wave, 100, 4000) > 0.5, row

    # real phonetics: the /s/ of "yes" puts far more energy above 3 kHz than "no"
    yes = synth.espeak_utterance(program, "yes", "en-us", 170, 50, 16000)
    no = synth.espeak_utterance(program, "no", "en-us", 170, 50, 16000)
    assert 0.2 < len(yes) / 16000 < 0.9 and 0.2 < len(no) / 16000 < 0.9
    assert _band_fraction(yes, 3000, 8000) > 2 * _band_fraction(no, 3000, 8000)
    # one espeak-ng call for several words cuts them apart like single calls
    words = ("backward", "go", "no", "stop", "yes")
    batch = synth.espeak_utterances(program, words, "en-gb-scotland+f1", 120, 70, 16000)
    for word, piece in zip(words, batch, strict=True):
        single = synth.espeak_utterance(program, word, "en-gb-scotland+f1", 120, 70, 16000)
        assert abs(len(piece) / len(single) - 1) < 0.15, word

    again = _make("kws", tmp_path / "kws-again", 3).path
    assert _files(root) == _files(again)


# ---------------------------------------------------------------------------
# the folder: reuse, replacement, atomicity, bad input


def test_rerun_reuses_complete_dataset(tmp_path: Path) -> None:
    out = tmp_path / "shapes"
    _make("shapes", out, 4)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    lines: list[str] = []
    again = _make("shapes", out, 4, log=lines.append)
    assert again.reused and again.seconds < 1.0
    assert any("reusing" in line for line in lines)
    assert "reused" in again.summary()
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before

    # other options: refused without force, replaced with it
    with pytest.raises(InputError, match="--force"):
        _make("shapes", out, 5)
    replaced = _make("shapes", out, 5, force=True)
    assert not replaced.reused and synth.read_manifest(out)["samples_per_class"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["shapes"]  # no temp or old folders left

    # force rebuilds even an identical, complete dataset
    stamp = (out / synth.MANIFEST).stat().st_mtime_ns
    assert not _make("shapes", out, 5, force=True).reused
    assert (out / synth.MANIFEST).stat().st_mtime_ns != stamp

    # a damaged dataset is not reused
    next(out.glob("circle/*.png")).unlink()
    with pytest.raises(InputError, match="missing or added"):
        _make("shapes", out, 5)
    assert not _make("shapes", out, 5, force=True).reused
    assert len(list(out.glob("circle/*.png"))) == 5


def test_empty_folder_is_filled(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert not _make("anomaly", out, 6).reused
    assert (out / "train.npz").is_file()


def test_failure_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(config, folder, log, progress):  # noqa: ANN001, ANN202
        (folder / "half-written.bin").write_bytes(b"x")
        raise RuntimeError("generator crashed")

    task = synth.TASKS["shapes"]
    monkeypatch.setitem(synth.TASKS, "shapes", synth.SynthTask("shapes", task.summary, task.config, broken))
    with pytest.raises(RuntimeError, match="generator crashed"):
        _make("shapes", tmp_path / "out", 2)
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_folders_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = tmp_path / ".out.4194305.0badc0de.tmp"  # above Linux's pid_max: no such process
    dead.mkdir()
    (dead / "junk").write_bytes(b"x")
    mine = tmp_path / f".out.{os.getpid()}.0badc0de.tmp"  # a live process's (here: ours) stays
    mine.mkdir()
    _make("anomaly", tmp_path / "out", 3)
    assert not dead.exists() and mine.exists()


def test_bad_task_lists_valid_tasks(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        synth.synthesize("speech", tmp_path / "x")
    message = str(info.value)
    assert "'speech'" in message and all(name in message for name in ("anomaly", "har", "kws", "shapes"))
    with pytest.raises(InputError, match="anomaly"):
        synth.make_config("speech")
    assert not (tmp_path / "x").exists()


def test_output_that_is_a_file_errors_cleanly(tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep me")
    with pytest.raises(InputError, match="existing file"):
        _make("shapes", target, 2)
    with pytest.raises(InputError, match="existing file"):
        _make("shapes", target, 2, force=True)
    assert target.read_text() == "keep me"


def test_foreign_folder_is_never_touched(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"jpeg")
    for force in (False, True):
        with pytest.raises(InputError, match="other content"):
            _make("shapes", folder, 2, force=force)
    assert [p.name for p in folder.iterdir()] == ["cat.jpg"]
    # nor is a folder whose dataset.json edgekit did not write
    (folder / "dataset.json").write_text('{"name": "my photos"}')
    for force in (False, True):
        with pytest.raises(InputError, match="schema"):
            _make("shapes", folder, 2, force=force)
    assert sorted(p.name for p in folder.iterdir()) == ["cat.jpg", "dataset.json"]


def test_bad_options(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="samples"):
        synth.make_config("kws", samples=0)
    with pytest.raises(InputError, match="seed"):
        synth.make_config("har", seed=-1)
    with pytest.raises(InputError, match="colour"):
        synth.make_config("shapes", colour="red")
    with pytest.raises(InputError, match="faults"):
        synth.make_config("anomaly", faults=("melted",))
    (tmp_path / "dataset.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(InputError, match="schema"):
        synth.read_manifest(tmp_path)


def test_datasets_synth_from_the_command_line(tmp_path):
    from conftest import run_cli

    out = tmp_path / "shapes"
    made = run_cli("datasets", "synth", "shapes", "-o", str(out), "--samples", "3", "--json")
    assert made.code == 0, made.stderr
    manifest = json.loads(made.stdout)
    assert manifest["task"] == "shapes" and (out / "dataset.json").exists()
    again = run_cli("datasets", "synth", "shapes", "-o", str(out), "--samples", "3")
    assert again.code == 0 and again.stdout.strip()
    bad = run_cli("datasets", "synth", "faces", "-o", str(tmp_path / "x"))
    assert bad.code == 1 and len(bad.stderr.strip().splitlines()) == 1 and "kws" in bad.stderr
    assert not (tmp_path / "x").exists()
