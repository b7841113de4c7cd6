"""`edgekit datasets synth`: every task writes real files the loaders read back, the
same bytes for the same seed, atomically, and a complete dataset is reused."""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.datasets import keywords, speech, synth, textures
from edgekit.datasets.loaders import load_samples
from edgekit.errors import InputError
from edgekit.features.audio import read_wav
from edgekit.features.image import decode_image
from edgekit.spec import AudioPreprocess, ImagePreprocess, NoPreprocess, preprocess_from_dict
from tests.support.env import need_module, need_program


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
    """A machine without eSpeak NG: no espeak-ng program and no espeakng-loader package."""
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(speech.ENV, raising=False)
    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # import espeakng_loader raises ImportError


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


def test_tabular_features_read_back(tmp_path: Path) -> None:
    root = _make("tabular", tmp_path / "tab", 12).path
    manifest = synth.read_manifest(root)
    assert manifest["classes"] == ["idle", "walk", "run", "stairs"]
    assert manifest["counts"] == {name: 12 for name in manifest["classes"]}
    assert sorted(p.name for p in root.iterdir()) == ["dataset.json", "features.npz", "labels.txt"]
    loaded = load_samples(root / "features.npz", NoPreprocess(), (44,), labels_file=root / synth.LABELS)
    assert loaded.x.shape == (48, 44) and np.isfinite(loaded.x).all()
    assert loaded.class_names == ("idle", "walk", "run", "stairs")
    assert np.bincount(loaded.labels).tolist() == [12] * 4
    with np.load(root / "features.npz") as data:
        x, y, subject, names = data["x"], data["y"], data["subject"], data["feature_names"].tolist()
        assert (x.dtype, y.dtype, data["classes"].tolist()) == (np.float32, np.int64, list(synth.ACTIVITIES))
        assert len(data["mixed"]) == 48
    assert names == list(synth.imu_feature_names()) and len(names) == 44
    assert names[:7] == ["acc_x_mean", "acc_x_std", "acc_x_min", "acc_x_max", "acc_x_rms", "acc_x_mean_abs_diff",
                         "acc_x_dominant_hz"]
    assert names[-2:] == ["acc_mag_mean", "acc_mag_std"]
    assert sorted(set(subject.tolist())) == list(range(10))
    assert len(manifest["feature_stats"]["mean"]) == 44
    column = {name: x[:, k] for k, name in enumerate(names)}
    # gravity in every window; idle still, running the most vigorous
    assert 9.0 < float(column["acc_mag_mean"][y == 0].mean()) < 10.6
    vigour = [float(np.median(column["acc_mag_std"][y == k])) for k in range(4)]
    assert vigour[0] < 0.5 < vigour[1] < vigour[2]
    # the strongest rhythm of walking sits near its step frequency, not at the idle noise
    walking = np.stack([column[f"acc_{axis}_dominant_hz"] for axis in "xyz"], axis=1)[y == 1]
    assert 1.2 < float(np.median(walking)) < 2.6


def test_imu_features_of_known_signals() -> None:
    rate, n = 50.0, 128
    t = np.arange(n) / rate
    window = np.zeros((1, n, 6))
    window[0, :, 2] = 9.81 + np.sin(2 * np.pi * 13 * np.arange(n) / n)  # 13 cycles per window
    window[0, :, 3] = 0.5 * np.cos(2 * np.pi * 2.0 * t) + 0.1
    features = synth.imu_features(window, rate)[0]
    named = dict(zip(synth.imu_feature_names(), features, strict=True))
    assert named["acc_z_mean"] == pytest.approx(9.81, abs=0.02)
    assert named["acc_z_dominant_hz"] == pytest.approx(13 * rate / n)
    assert named["gyro_x_dominant_hz"] == pytest.approx(2.0, abs=rate / n)
    assert named["gyro_x_min"] == pytest.approx(-0.4, abs=0.01) and named["gyro_x_max"] == pytest.approx(0.6)
    assert named["gyro_x_rms"] == pytest.approx(np.sqrt(0.5**2 / 2 + 0.1**2), abs=0.01)
    assert named["acc_x_std"] == 0 and named["acc_x_mean_abs_diff"] == 0
    assert named["acc_mag_mean"] == pytest.approx(9.81, abs=0.05)
    with pytest.raises(ValueError, match="shape"):
        synth.imu_features(np.zeros((3, 6)), rate)


def test_demand_windows_and_series(tmp_path: Path) -> None:
    options = {"days": 20, "sites": 3}
    result = _make("demand", tmp_path / "demand", 1000, options=options)
    root = result.path
    manifest = synth.read_manifest(root)
    # a regression: no classes and no labels file
    assert manifest["classes"] == [] and not (root / synth.LABELS).exists()
    assert sorted(p.name for p in root.iterdir()) == ["dataset.json", "series.csv", "windows.npz"]
    per_site = (20 * 24 - 48 - 1) // 3 + 1
    assert manifest["counts"] == {f"site {s}": per_site for s in range(3)}
    assert manifest["samples_total"] == 3 * per_site
    with np.load(root / "windows.npz") as data:
        x, y, group, start = data["x"], data["y"], data["group"], data["start"]
        assert data["channels"].tolist() == ["demand", "temperature"]
    assert x.shape == (3 * per_site, 48, 2) and x.dtype == np.float32
    assert y.shape == (3 * per_site,) and y.dtype == np.float32
    assert group.tolist() == [s for s in range(3) for _ in range(per_site)]
    assert start[:per_site].tolist() == list(range(0, 3 * per_site, 3))
    # y is the next hour: the next window (3 hours later) holds it at step 45
    same_site = group[:-1] == group[1:]
    assert np.array_equal(y[:-1][same_site], x[1:, 45, 0][same_site])
    # raw units: demand in the hundreds of kW, temperature in degrees C
    assert 100 < float(x[..., 0].mean()) < 2000 and float(x[..., 0].min()) > 0
    assert -35 < float(x[..., 1].min()) and float(x[..., 1].max()) < 45 and float(x[..., 1].std()) > 2
    # a daily cycle: demand an hour apart is closer than 12 hours apart
    demand = x[..., 0].astype(np.float64)
    assert np.abs(demand[:, 1:] - demand[:, :-1]).mean() < np.abs(demand[:, 12:] - demand[:, :-12]).mean()
    # the naive forecasts are well above what the hidden process allows
    baselines = manifest["baselines"]
    assert set(baselines) == {"last_value", "same_hour_yesterday", "oracle"}
    oracle = baselines["oracle"]["percent_of_mean"]
    assert 1.5 < oracle < 6
    assert baselines["last_value"]["percent_of_mean"] > 2 * oracle
    assert baselines["same_hour_yesterday"]["percent_of_mean"] > 2 * oracle
    last = float(np.sqrt(np.mean((x[:, -1, 0].astype(np.float64) - y) ** 2)))
    assert last == pytest.approx(baselines["last_value"]["rmse_kw"], abs=0.05)
    assert "last value" in result.summary() and "regression" in result.summary()
    # the streaming preprocess spec matches the arrays
    spec = preprocess_from_dict(manifest["preprocess"])
    assert spec.channels == ("demand", "temperature") and spec.window == 48
    # a held-out site's hourly series, for streaming
    with open(root / "series.csv") as handle:
        assert handle.readline().strip() == "hour,demand,temperature"
    series = np.loadtxt(root / "series.csv", delimiter=",", skiprows=1)
    assert series.shape == (20 * 24, 3) and series[:, 0].tolist() == list(range(480))
    assert len(manifest["generator"]["sites"]) == 4


def test_demand_samples_horizon_and_short_window(tmp_path: Path) -> None:
    options = {"days": 10, "sites": 2, "horizon": 3, "window": 12, "stride": 2}
    root = _make("demand", tmp_path / "demand", 20, options=options).path
    manifest = synth.read_manifest(root)
    with np.load(root / "windows.npz") as data:
        x, y, start = data["x"], data["y"], data["start"]
    assert x.shape == (40, 12, 2) and y.shape == (40, 3)
    # at most `samples` windows per site, spread over the whole series
    assert manifest["counts"] == {"site 0": 20, "site 1": 20}
    assert start[0] == 0 and start[19] == 240 - 12 - 3 - ((240 - 12 - 3) % 2)
    assert (np.diff(start[:20]) > 2).all()
    # the three hours after the window: the window starting 2 hours later shows the first two
    full = synth.synthesize("demand", tmp_path / "full",
                            synth.make_config("demand", samples=1000, **options)).path
    with np.load(full / "windows.npz") as data:
        fx, fy = data["x"], data["y"]
    assert np.array_equal(fy[0, :2], fx[1, 10:12, 0])
    # the same hour yesterday is unknown for windows shorter than a day that start early
    assert manifest["baselines"]["same_hour_yesterday"]["windows"] < 40


def test_defects_png_folders_read_back(tmp_path: Path) -> None:
    root = _make("defects", tmp_path / "defects", 12).path
    manifest = synth.read_manifest(root)
    assert manifest["classes"] == ["normal", "anomaly"]
    assert (root / synth.LABELS).read_text() == "normal\nanomaly\n"
    assert manifest["counts"] == {"normal": 12, "anomaly": 4}
    assert manifest["defects"] == {"scratch": 1, "hole": 1, "stain": 1, "missing": 1}
    assert manifest["files"] == 18  # 16 PNG, labels.txt, defects.csv
    loaded = load_samples(root, ImagePreprocess(height=32, width=32), (32, 32, 3), labels_file=root / synth.LABELS)
    assert loaded.x.shape == (16, 32, 32, 3) and not loaded.skipped
    assert loaded.class_names == ("normal", "anomaly")
    assert np.bincount(loaded.labels).tolist() == [12, 4]
    # without labels.txt the folder order would be alphabetical: the labels file sets normal = 0
    assert load_samples(root, ImagePreprocess(height=32, width=32), (32, 32, 3)).class_names == ("anomaly", "normal")
    image = decode_image(root / "anomaly" / "00000.png")
    assert image.shape == (32, 32, 3) and (image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all()
    with open(root / "defects.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 16 and all((root / row["path"]).is_file() for row in rows)
    faults = [row for row in rows if row["label"] == "anomaly"]
    assert [row["defect"] for row in faults] == ["scratch", "hole", "stain", "missing"]
    for row in faults:  # visible but not huge
        x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
        assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32
        assert (x1 - x0) * (y1 - y0) < 0.4 * 32 * 32, row
    assert all(row["defect"] == "" for row in rows if row["label"] == "normal")


def test_defects_options(tmp_path: Path) -> None:
    options = {"image_size": 48, "defects": ("scratch",), "anomaly_fraction": 0.5, "texture": "brushed"}
    root = _make("defects", tmp_path / "defects", 3, options=options).path
    manifest = synth.read_manifest(root)
    assert manifest["counts"] == {"normal": 3, "anomaly": 3} and manifest["defects"] == {"scratch": 3}
    loaded = load_samples(root, ImagePreprocess(height=48, width=48), (48, 48, 3), labels_file=root / synth.LABELS)
    assert loaded.x.shape == (6, 48, 48, 3)


@pytest.mark.parametrize("texture", textures.TEXTURES)
def test_defects_are_detectable_but_not_trivial(texture: str) -> None:
    """A reconstruction-error detector (PCA on normal images) finds every kind of defect, not perfectly."""

    def images(label: int, count: int, defect: str | None = None) -> np.ndarray:
        return np.stack([textures.part(texture, 32, np.random.default_rng([7, label, i]), defect)[0][..., 0]
                         for i in range(count)]).reshape(count, -1) / 255.0

    train, normal = images(0, 200), images(1, 60)
    mean = train.mean(axis=0)
    values, vectors = np.linalg.eigh((train - mean) @ (train - mean).T)  # principal axes via the small Gram matrix
    basis = ((train - mean).T @ vectors[:, -32:] / np.sqrt(values[-32:])).T

    def error(x: np.ndarray) -> np.ndarray:
        centred = x - mean
        return ((centred - centred @ basis.T @ basis) ** 2).mean(axis=1)

    baseline = error(normal)
    aucs = {}
    for k, kind in enumerate(textures.DEFECT_KINDS):
        faulty = error(images(2 + k, 30, kind))
        aucs[kind] = float((faulty[:, None] > baseline[None, :]).mean())
    assert min(aucs.values()) > 0.6, aucs
    assert 0.8 < float(np.mean(list(aucs.values()))) < 0.995, aucs
    again = [textures.part(texture, 32, np.random.default_rng(0), "stain") for _ in range(2)]
    assert np.array_equal(again[0][0], again[1][0]) and again[0][1] == again[1][1]


def test_kws_stand_in_without_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    _no_espeak(monkeypatch, tmp_path)
    with caplog.at_level(logging.WARNING):
        root = _make("kws", tmp_path / "kws", 2).path
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "espeak-ng not found" in message and "espeakng-loader is not installed" in message
    assert "apt-get install espeak-ng" in message and "pip install espeakng-loader" in message and "\n" not in message
    manifest = synth.read_manifest(root)
    assert "stand-in" in manifest["generator"]["name"] and manifest["generator"]["engine"] == "tones"
    _check_wav_folders(root, 2)
    assert {row["source"] for row in csv.DictReader(open(root / "index.csv"))} == {"stand-in", "noise"}
    caplog.clear()
    lines: list[str] = []
    assert _make("kws", root, 2, log=lines.append).reused  # no second warning on reuse
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_same_seed_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_espeak(monkeypatch, tmp_path)
    small = {"har": {"stream_seconds": 6.0}, "demand": {"days": 4, "sites": 2}}
    for task, samples in (("shapes", 3), ("har", 3), ("anomaly", 9), ("kws", 1), ("tabular", 3), ("demand", 10),
                          ("defects", 4)):
        options = small.get(task, {})
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
def test_kws_espeak_speech(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = need_program("espeak-ng", "apt-get install espeak-ng")
    monkeypatch.delenv(speech.ENV, raising=False)
    root = _make("kws", tmp_path / "kws", 3).path
    manifest = synth.read_manifest(root)
    generator = manifest["generator"]
    assert generator["name"].startswith("espeak-ng") and generator["utterances"] >= 20
    assert generator["engine"] == "espeak-ng" and generator["program"] == program
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


def _f0(x: np.ndarray, rate: int = 16000) -> float:
    """Fundamental frequency (Hz, 60-400) of the loudest 50 ms, by autocorrelation."""
    n = rate // 20
    start = int(np.argmax(np.convolve(x.astype(np.float64) ** 2, np.ones(n), "valid")))
    segment = x[start:start + n] - x[start:start + n].mean()
    correlation = np.correlate(segment, segment, "full")[n - 1:]
    low, high = rate // 400, rate // 60
    return rate / (low + int(np.argmax(correlation[low:high])))


def test_kws_library_speech(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libespeak-ng of espeakng-loader (what a machine without the espeak-ng program speaks
    with) says the keywords, with the program's voices, speeds and pitches; not tones."""
    need_module("espeakng_loader", "pip install espeakng-loader (the train extra)")
    engine, why = speech.library_engine()
    assert engine is not None, why
    assert engine.id == "espeakng-loader" and engine.name.startswith("espeak-ng ") and "stand-in" not in engine.name

    def say(word: str, voice: str = "en-us", speed: int = 170, pitch: int = 50) -> np.ndarray:
        return synth.espeak_utterance(engine, word, voice, speed, pitch, 16000)

    yes, no, stop = say("yes"), say("no"), say("stop")
    tones = {word: keywords.utterance(word, 16000, np.random.default_rng(0)) for word in ("yes", "stop")}
    for clip in (yes, no, stop):
        assert clip.dtype == np.float32 and 0.2 < len(clip) / 16000 < 0.9 and np.abs(clip).max() == pytest.approx(1, abs=1e-3)
    # phonetics the tone stand-in lacks: the hiss of /s/ above 3 kHz in "yes" and "stop"
    assert _band_fraction(yes, 3000, 8000) > 2 * _band_fraction(no, 3000, 8000)
    assert min(_band_fraction(yes, 3000, 8000), _band_fraction(stop, 3000, 8000)) > 0.02
    assert max(_band_fraction(tone, 3000, 8000) for tone in tones.values()) < 0.01
    # the program's knobs: -p raises the voice, +f3 is a female variant, -s speaks faster
    assert _f0(say("go", pitch=25)) < 0.85 * _f0(say("go", pitch=85))
    assert _f0(say("go", "en-us+f3")) > 1.5 * _f0(say("go", "en-us+m3"))
    assert len(say("backward", speed=220)) < 0.75 * len(say("backward", speed=120))
    with pytest.raises(InputError, match="no such voice"):
        say("yes", "xx-no-such-voice")
    # several words in one call (SSML) cut apart like single calls
    words = ("go", "left", "yes")
    for word, piece in zip(words, synth.espeak_utterances(engine, words, "en-gb-scotland+f1", 120, 70, 16000),
                           strict=True):
        assert abs(len(piece) / len(say(word, "en-gb-scotland+f1", 120, 70)) - 1) < 0.15, word

    # the same clip as the espeak-ng program (when there is one), up to the version difference
    program = speech.program_engine()[0]
    if program is not None:
        for word in ("yes", "left"):
            ours, theirs = say(word), synth.espeak_utterance(program, word, "en-us", 170, 50, 16000)
            assert abs(len(ours) / len(theirs) - 1) < 0.1, word
            spectra = [np.abs(np.fft.rfft(x, 16000))[:4000] for x in (ours, theirs)]
            assert np.corrcoef(*spectra)[0, 1] > 0.6, word

    # a dataset through the library even though the program may be on PATH
    monkeypatch.setenv(speech.ENV, "library")
    options = {"voices": ("en-us", "en-us+f3", "en-gb-scotland", "en+m1")}
    root = _make("kws", tmp_path / "kws", 2, options=options).path
    generator = synth.read_manifest(root)["generator"]
    assert generator["engine"] == "espeakng-loader" and generator["name"] == engine.name
    assert Path(generator["library"]).is_file() and Path(generator["data"]).is_dir()
    _check_wav_folders(root, 2)
    rows = list(csv.DictReader(open(root / "index.csv")))
    assert {row["source"] for row in rows} == {"espeakng-loader", "noise"}
    for row in rows:
        if row["label"] != "_silence_":
            wave, _ = read_wav(root / row["path"])
            assert np.abs(wave).max() > 0.1 and _loud_to_quiet(wave) > 2.5, row
    assert _files(root) == _files(_make("kws", tmp_path / "kws-again", 2, options=options).path)

    monkeypatch.setenv(speech.ENV, "tones")
    assert synth.read_manifest(_make("kws", tmp_path / "kws-tones", 1).path)["generator"]["engine"] == "tones"
    monkeypatch.setenv(speech.ENV, "festival")
    with pytest.raises(InputError, match="EDGEKIT_SPEECH"):
        _make("kws", tmp_path / "kws-bad", 1)


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
    assert "'speech'" in message and all(name in message for name in ("anomaly", "har", "kws", "shapes", "tabular",
                                                                       "demand", "defects"))
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
    with pytest.raises(InputError, match="tabular options"):
        synth.make_config("tabular", transitions=1.5)
    with pytest.raises(InputError, match="tabular options"):
        synth.make_config("tabular", window=8)
    with pytest.raises(InputError, match="demand options"):
        synth.make_config("demand", horizon=0)
    with pytest.raises(InputError, match="demand options"):
        synth.make_config("demand", days=2, window=48)  # no room for one window
    with pytest.raises(InputError, match="demand options"):
        synth.make_config("demand", stride=0)
    with pytest.raises(InputError, match="defects kinds"):
        synth.make_config("defects", defects=("dent",))
    with pytest.raises(InputError, match="defects kinds"):
        synth.make_config("defects", defects=())
    with pytest.raises(InputError, match="anomaly_fraction"):
        synth.make_config("defects", anomaly_fraction=1.0)
    with pytest.raises(InputError, match="texture"):
        synth.make_config("defects", texture="wood")
    with pytest.raises(InputError, match="image_size"):
        synth.make_config("defects", image_size=8)
    with pytest.raises(InputError, match="window"):
        synth.make_config("demand", windows=3)  # no such option: the message lists the valid ones
    (tmp_path / "dataset.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(InputError, match="schema"):
        synth.read_manifest(tmp_path)


def test_datasets_synth_from_the_command_line(tmp_path):
    from tests.support.cli import run_cli

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
