"""`edgekit train`: recipes, training-side features against the device's, bad data,
tiny end-to-end trainings through the CLI, --resume after a SIGKILL, determinism.

The trainings are shrunk with ``--set`` (a few hundred parameters, tens of samples, one or
two epochs) so each run takes seconds; they check behaviour and files, not accuracy.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgekit.errors import InputError
from edgekit.features import audio
from edgekit.spec import (
    AudioPreprocess,
    ImagePreprocess,
    NoPreprocess,
    SensorPreprocess,
    preprocess_from_dict,
)
from edgekit.train import architectures
from edgekit.train import data as trainingdata
from edgekit.train.recipes import (
    apply_overrides,
    load_recipe,
    read_recipe_data,
    recipe_names,
    search_path,
)
from tests.support.cli import CliResult, run_cli, train_killed_after_an_epoch
from tests.support.env import REPO, need_module

SHIPPED = ["ad-autoencoder", "ad-conv-autoencoder", "demand-lstm", "gan-dcgan", "har-cnn1d", "har-gru",
           "har-transformer", "ic-mobilenetv2", "ic-resnet8", "kws-dscnn", "tab-mlp", "vww-mobilenet"]
TASKS = {"ad-autoencoder": "anomaly", "ad-conv-autoencoder": "anomaly", "demand-lstm": "regression",
         "gan-dcgan": "generation"}
# model input (without batch) each recipe's front end produces; the autoencoder's is the
# synthetic anomaly vector (5 frames x 128 log-mel bins), the MLP's 44 tabular features
INPUT_SHAPES = {"ad-autoencoder": (640,), "ad-conv-autoencoder": (32, 32, 3), "demand-lstm": (48, 2),
                "gan-dcgan": (32, 32, 3), "har-cnn1d": (128, 6), "har-gru": (128, 6), "har-transformer": (128, 6),
                "ic-mobilenetv2": (32, 32, 3), "ic-resnet8": (32, 32, 3), "kws-dscnn": (49, 10, 1), "tab-mlp": (1, 44), "vww-mobilenet": (96, 96, 3)}
HAR_CHANNELS = ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]

# har-cnn1d shrunk to ~700 parameters on 20 windows per class: a run is a few seconds
TINY_HAR = ("--samples", "20", "--epochs", "2", "--set", "train.batch_size=16", "--set", "architecture.filters=[8,8]",
            "--set", "architecture.dense=8", "--set", "train.patience=0")


def train_cli(*args: str | Path, quiet: bool = False) -> CliResult:
    return run_cli(*(["-q"] if quiet else []), "train", *map(str, args))


def assert_one_error_line(result: CliResult, *fragments: str) -> str:
    """Exit 1 and, on stderr, exactly one line: ``edgekit: error: ...`` holding every fragment."""
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("edgekit: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def read_report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


# ---------------------------------------------------------------------------
# recipes


def test_the_shipped_recipes_are_found_and_valid():
    assert recipe_names() == SHIPPED
    assert search_path()[0] == REPO / "models"
    for name in SHIPPED:
        recipe = load_recipe(name)
        assert recipe.name == name and recipe.path == REPO / "models" / f"{name}.yaml"
        assert recipe.task == TASKS.get(name, "classification")
        assert recipe.postprocess.kind.value == recipe.task
    assert len(load_recipe("kws-dscnn").classes) == 12


def test_overrides_are_yaml_values_at_dotted_paths():
    recipe = load_recipe("kws-dscnn", ["train.epochs=3", "architecture.first_kernel=[3, 3]", "data.classes=null",
                                       "train.learning_rate=1e-4", "augment.flip=true", "preprocess.feature=log_mel"])
    assert recipe.train["epochs"] == 3 and recipe.train["learning_rate"] == 1e-4
    assert recipe.architecture["first_kernel"] == [3, 3]
    assert recipe.classes is None and recipe.augment["flip"] is True
    assert isinstance(recipe.preprocess, AudioPreprocess) and recipe.preprocess.feature == "log_mel"
    raw = read_recipe_data(REPO / "models" / "har-cnn1d.yaml")
    assert apply_overrides(raw, ["train.seed=5"])["train"]["seed"] == 5
    assert raw["train"]["seed"] == 0  # the input mapping is left alone


def test_unknown_or_malformed_overrides_list_the_valid_keys():
    with pytest.raises(InputError) as caught:
        load_recipe("har-cnn1d", ["train.epoch=3"])
    text = str(caught.value)
    assert "'train.epoch'" in text and "'train.epochs'" in text and "'train.batch_size'" in text
    assert "augment." not in text  # only the section's keys
    with pytest.raises(InputError, match=r"'schema', 'name'.*'convert'"):
        load_recipe("har-cnn1d", ["trian.epochs=3"])
    with pytest.raises(InputError, match="KEY=VALUE"):
        load_recipe("har-cnn1d", ["train.epochs"])
    with pytest.raises(InputError, match=r"unknown option 'filter'.*'filters'"):
        load_recipe("har-cnn1d", ["architecture.filter=8"])
    with pytest.raises(InputError, match="train.epochs: expected a whole number >= 1"):
        load_recipe("har-cnn1d", ["train.epochs=0"])
    with pytest.raises(InputError, match=r"optimizer.*one of \['adam', 'adamw', 'sgd'\]"):
        load_recipe("har-cnn1d", ["train.optimizer=lion"])
    with pytest.raises(InputError, match=r"data.classes: expected class names \(strings\), found \[False, True\]; quote"):
        load_recipe("kws-dscnn", ["data.classes=[no, yes]"])
    with pytest.raises(InputError, match=r"preprocess.kind: expected 'image' for data.kind 'image', found 'sensor'"):
        load_recipe("har-cnn1d", ["data.kind=image"])


def test_recipe_search_path_first_match_wins(tmp_path, monkeypatch):
    data = read_recipe_data(REPO / "models" / "har-cnn1d.yaml")
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, epochs in ((first, 7), (second, 9)):
        folder.mkdir()
        (folder / "har-cnn1d.yaml").write_text(yaml.safe_dump(apply_overrides(data, [f"train.epochs={epochs}"])))
    (second / "mine.yaml").write_text(yaml.safe_dump(apply_overrides(data, ["name=mine"])))
    monkeypatch.setenv("EDGEKIT_MODELS", str(second))
    assert search_path([first])[:3] == [first, second, REPO / "models"]
    assert load_recipe("har-cnn1d", dirs=[first]).train["epochs"] == 7
    assert load_recipe("har-cnn1d").train["epochs"] == 9
    assert recipe_names() == sorted([*SHIPPED, "mine"])
    assert load_recipe(str(first / "har-cnn1d.yaml")).train["epochs"] == 7  # a path works too
    (first / "renamed.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(InputError, match=r"name: expected 'renamed' \(the file name\)"):
        load_recipe("renamed", dirs=[first])


@pytest.mark.tf
@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_builds_its_architecture(name):
    from edgekit.keras_env import import_keras
    from edgekit.train import pipeline

    keras = import_keras()
    recipe = load_recipe(name)
    shape = pipeline.model_input_shape(recipe.preprocess, INPUT_SHAPES[name])
    assert shape == INPUT_SHAPES[name]
    classes = len(recipe.classes or ()) or 4
    model = architectures.build(keras, recipe.architecture, shape, classes, recipe.name)
    assert model.name == name.replace("-", "_")
    if recipe.task == "generation":  # latent vector in, an image of the data's shape out
        assert tuple(model.input_shape) == (None, recipe.architecture["latent_dim"])
        assert tuple(model.output_shape) == (None, *shape)
        return
    assert tuple(model.input_shape) == (None, *shape)
    expected = {"anomaly": (None, *shape), "classification": (None, classes)}.get(recipe.task, (None, classes))
    assert tuple(model.output_shape) == expected
    assert model.count_params() > 0


def test_train_list_names_every_recipe():
    result = train_cli("--list")
    assert result.code == 0, result.stderr
    rows = [line.split() for line in result.stdout.strip().splitlines()]
    assert [row[0] for row in rows] == SHIPPED
    assert {row[0]: row[1] for row in rows}["ad-autoencoder"] == "anomaly"
    assert {row[0]: row[1] for row in rows}["demand-lstm"] == "regression"


def test_train_show_prints_the_recipe_with_overrides(tmp_path):
    result = train_cli("har-cnn1d", "--show", "--set", "train.epochs=3", "--set", "architecture.filters=[8,8]")
    assert result.code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["name"] == "har-cnn1d" and shown["train"]["epochs"] == 3
    assert shown["architecture"]["filters"] == [8, 8] and shown["architecture"]["kernel"] == 5
    saved = tmp_path / "mine.yaml"  # the output is itself a recipe
    saved.write_text(result.stdout)
    assert load_recipe(str(saved)).to_dict() == shown


@pytest.mark.tf
def test_train_unknown_recipe_lists_the_valid_names():
    line = assert_one_error_line(train_cli("nosuch"), "unknown recipe 'nosuch'", "--list")
    for name in SHIPPED:
        assert repr(name) in line


@pytest.mark.tf
def test_train_unknown_set_key_lists_the_sections_keys():
    line = assert_one_error_line(train_cli("har-cnn1d", "--set", "train.epoch=3"), "'train.epoch'", "'train.epochs'",
                                 "'train.learning_rate'", "--show")
    assert "augment." not in line


def test_train_unknown_architecture_option_lists_the_builders_options():
    assert_one_error_line(train_cli("har-cnn1d", "--show", "--set", "architecture.units=[8]"),
                          "unknown option 'units'", "'filters'", "'kernel'")
    assert_one_error_line(train_cli("har-cnn1d", "--show", "--set", "architecture.name=vit"),
                          "'vit'", "'cnn1d'", "'transformer'")


# ---------------------------------------------------------------------------
# training-side front end (TensorFlow) == the device's (numpy)
#
# Audio tolerance: TensorFlow computes the STFT, mel and DCT in float32, edgekit.features
# in float64. Logs of nearly empty mel bins amplify float32 rounding, so a relative bound
# alone fails there; the bound is rtol 1e-3 plus an absolute 1e-4 of the feature's range.
# On clips with a -70 dBFS noise floor (any microphone) the largest difference measured is
# ~2e-5 of the range (5x headroom), while real mismatches are far beyond it (checked
# below: an upper mel edge 10 Hz off is ~3e-3). A clean tone with only 16-bit quantization
# below it needs ~140 dB of dynamic range, more than float32 FFTs hold: up to ~5e-4 of the
# range, also checked, with a bound of 1e-3.


def audio_batch(rate: int, samples: int, floor_dbfs: float | None = -70.0) -> np.ndarray:
    """16-bit clips: a chirp, noise, a clipped loud tone, a very quiet chirp, and digital silence."""
    rng = np.random.default_rng(0)
    t = np.arange(samples) / rate
    chirp = 0.3 * np.sin(2 * np.pi * (200 * t + 0.2 * rate * t**2))  # 200 Hz up to 0.4 x the rate
    clips = np.stack([chirp, 0.05 * rng.standard_normal(samples), np.clip(3 * np.sin(2 * np.pi * 440 * t), -1, 1),
                      1e-3 * chirp])
    if floor_dbfs is not None:
        clips += 10 ** (floor_dbfs / 20) * rng.standard_normal(clips.shape)
    clips = np.concatenate([clips, np.zeros((1, samples))])
    return (np.round(clips * 32767) / 32767).astype(np.float32)


AUDIO_SPECS = {
    "mfcc-per_clip (kws-dscnn)": AudioPreprocess(normalize="per_clip"),
    "mfcc-none": AudioPreprocess(),
    "mfcc-global-hamming-8k": AudioPreprocess(sample_rate=8000, clip_samples=8000, frame_length=256, frame_step=128,
                                              fft_length=256, window="hamming", num_mel_bins=32, num_mfcc=13,
                                              normalize="global", mean=-2.0, std=5.0),
    "log_mel-none": AudioPreprocess(feature="log_mel"),
    "log_mel-per_clip-power-pad_end": AudioPreprocess(feature="log_mel", spectrum="power", frame_length=400,
                                                      frame_step=160, fft_length=512, num_mel_bins=64,
                                                      lower_edge_hz=125, upper_edge_hz=7500, pad_end=True,
                                                      normalize="per_clip"),
    "log_mel-global": AudioPreprocess(feature="log_mel", normalize="global", mean=-6.0, std=3.0),
    "spectrogram-none": AudioPreprocess(feature="spectrogram", frame_length=256, frame_step=128, fft_length=256),
    "spectrogram-per_clip-power": AudioPreprocess(feature="spectrogram", spectrum="power", frame_length=256,
                                                  frame_step=128, fft_length=256, normalize="per_clip"),
}


def assert_audio_close(training: np.ndarray, device: np.ndarray, of_range: float = 1e-4) -> None:
    span = float(device.max() - device.min())
    np.testing.assert_allclose(training, device, rtol=1e-3, atol=of_range * span)


@pytest.mark.tf
@pytest.mark.parametrize("name", list(AUDIO_SPECS))
def test_audio_front_end_matches_the_device(name):
    from edgekit.train import pipeline

    spec = AUDIO_SPECS[name]
    raw = audio_batch(spec.sample_rate, spec.clip_samples)
    shape = pipeline.model_input_shape(spec, raw.shape[1:])
    assert shape == (spec.num_frames, spec.num_features, 1)
    training = pipeline.front_end(raw, spec, shape).numpy()
    device = pipeline.numpy_front_end(raw, spec, shape)
    assert training.shape == device.shape == (len(raw), *shape) and training.dtype == device.dtype == np.float32
    assert_audio_close(training, device)
    np.testing.assert_array_equal(device[..., 0], audio.features(raw, spec))  # the device's own function
    # digital silence: per_clip normalization once turned float32 rounding into features of +-1
    np.testing.assert_allclose(training[-1], device[-1], rtol=1e-5, atol=1e-5)


@pytest.mark.tf
def test_the_audio_tolerance_catches_a_real_mismatch():
    from edgekit.train import pipeline

    spec = AudioPreprocess(normalize="per_clip")
    raw = audio_batch(16000, 16000)
    shape = pipeline.model_input_shape(spec, raw.shape[1:])
    training = pipeline.front_end(raw, spec, shape).numpy()
    for change in ({"upper_edge_hz": 3990}, {"lower_edge_hz": 25}, {"window": "hamming"}, {"spectrum": "power"}):
        with pytest.raises(AssertionError):
            assert_audio_close(training, pipeline.numpy_front_end(raw, dataclasses.replace(spec, **change), shape))


@pytest.mark.tf
@pytest.mark.parametrize("feature", ["mfcc", "log_mel"])
def test_a_clean_tone_differs_by_float32_fft_rounding_only(feature):
    from edgekit.train import pipeline

    spec = AudioPreprocess(feature=feature)
    raw = audio_batch(16000, 16000, floor_dbfs=None)
    shape = pipeline.model_input_shape(spec, raw.shape[1:])
    assert_audio_close(pipeline.front_end(raw, spec, shape).numpy(), pipeline.numpy_front_end(raw, spec, shape),
                       of_range=1e-3)


IMAGE_SPECS = {
    "nhwc": ImagePreprocess(height=12, width=10, scale=1 / 255, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
    "nchw": ImagePreprocess(height=12, width=10, layout="nchw", scale=2 / 255, mean=(1.0,), std=(1.0,)),
    "gray": ImagePreprocess(height=12, width=10, channels=1, color_order="gray", scale=1.0, mean=(127.5,), std=(64.0,)),
}


@pytest.mark.tf
@pytest.mark.parametrize("name", list(IMAGE_SPECS))
def test_image_front_end_matches_the_device(name):
    from edgekit.features import image
    from edgekit.train import pipeline

    spec = IMAGE_SPECS[name]
    raw = np.random.default_rng(1).integers(0, 256, (4, spec.height, spec.width, spec.channels), dtype=np.uint8)
    shape = pipeline.model_input_shape(spec, raw.shape[1:])
    assert shape == ((spec.channels, 12, 10) if spec.layout == "nchw" else (12, 10, spec.channels))
    training = pipeline.front_end(raw, spec, shape).numpy()
    device = pipeline.numpy_front_end(raw, spec, shape)
    # elementwise float32 arithmetic on both sides: equal to float32 rounding
    np.testing.assert_allclose(training, device, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(device, image.normalize(raw, spec))


@pytest.mark.tf
@pytest.mark.parametrize("fitted", [True, False], ids=["fitted-mean-std", "no-normalization"])
def test_sensor_and_vector_front_ends_match_the_device(fitted):
    from edgekit.train import pipeline

    raw = np.random.default_rng(2).normal([0, 0, 9.8, 0, 0, 0], [3, 3, 4, 0.5, 0.5, 0.3], (5, 16, 6))
    raw = raw.astype(np.float32)
    spec = SensorPreprocess(channels=tuple(HAR_CHANNELS), window=16, stride=8,
                            mean=(0.1, -0.2, 9.7, 0.0, 0.01, -0.01) if fitted else (),
                            std=(2.9, 3.1, 4.2, 0.44, 0.42, 0.28) if fitted else ())
    training = pipeline.front_end(raw, spec, (16, 6)).numpy()
    np.testing.assert_allclose(training, pipeline.numpy_front_end(raw, spec, (16, 6)), rtol=1e-6, atol=1e-6)
    vectors = raw.reshape(5, -1)
    np.testing.assert_array_equal(pipeline.front_end(vectors, NoPreprocess(), (96,)).numpy(),
                                  pipeline.numpy_front_end(vectors, NoPreprocess(), (96,)))


@pytest.mark.tf
def test_the_evaluation_dataset_carries_the_same_features():
    """make_dataset (batched map, cache) yields what the device computes, in order."""
    from edgekit.train import pipeline

    spec = AudioPreprocess(normalize="per_clip")
    raw = np.concatenate([audio_batch(16000, 16000)] * 2)
    shape = pipeline.model_input_shape(spec, raw.shape[1:])
    ds = pipeline.make_dataset(raw, np.arange(len(raw)), spec, shape, batch_size=4, training=False,
                               augment_options={}, seed=0)
    batches = list(ds.as_numpy_iterator())
    inputs = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), np.arange(len(raw)))
    assert_audio_close(inputs, pipeline.numpy_front_end(raw, spec, shape))


# ---------------------------------------------------------------------------
# raw data: split and classes (no TensorFlow)


def _raw(n: int, classes: tuple[str, ...] = ("a", "b"), groups: tuple[str, ...] | None = None) -> trainingdata.RawData:
    return trainingdata.RawData(np.arange(n, dtype=np.float32)[:, None], np.arange(n) % len(classes),
                                tuple(f"s{i}" for i in range(n)), classes, groups=groups)


def test_the_hash_split_is_stable_when_data_is_added():
    small = trainingdata.split(_raw(200), 0.1, 0.1)
    large = trainingdata.split(_raw(400), 0.1, 0.1)
    for part in ("train", "validation", "test"):
        assert set(getattr(small, part).ids) <= set(getattr(large, part).ids)
    sizes = [len(small.train), len(small.validation), len(small.test)]
    assert sum(sizes) == 200 and 5 <= sizes[1] <= 40 and 5 <= sizes[2] <= 40
    assert not set(small.train.ids) & set(small.test.ids)


def test_subjects_stay_on_one_side_of_the_split():
    groups = tuple(f"subject {i % 10}" for i in range(200))
    parts = trainingdata.split(_raw(200, groups=groups), 0.1, 0.1)
    sides = [{groups[int(i[1:])] for i in p.ids} for p in (parts.train, parts.validation, parts.test)]
    assert [len(s) for s in sides] == [8, 1, 1]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])


def test_check_classes_reorders_labels_into_the_recipe_order():
    recipe = load_recipe("kws-dscnn", ["data.classes=['no', 'yes']"])
    data = trainingdata.RawData(np.zeros((4, 1)), np.array([0, 1, 1, 0]), ("a", "b", "c", "d"), ("yes", "no"))
    checked = trainingdata.check_classes(data, recipe, "here")
    assert checked.class_names == ("no", "yes") and checked.y.tolist() == [1, 0, 0, 1]


# ---------------------------------------------------------------------------
# data on disk


def write_wavs(root: Path, rate: int, per_class: int = 6, broken: bool = True) -> Path:
    """Two classes of 1 s tones at `rate` (low 300 Hz, high 1200 Hz), and a corrupt WAV."""
    rng = np.random.default_rng(3)
    t = np.arange(rate) / rate
    for name, hz in (("low", 300), ("high", 1200)):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            wave = rng.uniform(0.2, 0.6) * np.sin(2 * np.pi * hz * t + rng.uniform(0, 6)) + 0.01 * rng.standard_normal(rate)
            audio.write_wav(root / name / f"{i}.wav", wave, rate)
    if broken:
        (root / "low" / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    return root


def write_images(root: Path, classes: tuple[str, ...], size: tuple[int, int], per_class: int = 6) -> Path:
    """PNG folders of `size` (width, height): dark and bright noise images."""
    need_module("cv2", 'pip install "edgekit-ml[camera]"')
    import cv2

    rng = np.random.default_rng(4)
    width, height = size
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 100, (height, width, 3)) + 150 * k
            cv2.imwrite(str(root / name / f"{i}.png"), pixels.clip(0, 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def wavs_8k(tmp_path_factory) -> Path:
    return write_wavs(tmp_path_factory.mktemp("wav8k") / "data", 8000)


# ---------------------------------------------------------------------------
# bad input: one line on stderr, exit 1


@pytest.mark.tf
def test_a_data_folder_with_one_class_is_refused(tmp_path):
    data = write_images(tmp_path / "data", ("cat",), (32, 32), per_class=3)
    assert_one_error_line(train_cli("ic-resnet8", "--data", data, "-o", tmp_path / "out", quiet=True),
                          "two or more classes", "only class 'cat'")


@pytest.mark.tf
def test_labels_that_do_not_match_the_recipe_point_at_data_classes_null(tmp_path):
    data = write_wavs(tmp_path / "data", 16000, per_class=2, broken=False)
    assert_one_error_line(train_cli("kws-dscnn", "--data", data, "-o", tmp_path / "out", quiet=True),
                          "the recipe's classes", "missing ['_silence_', '_unknown_', 'down'",
                          "not in the recipe ['high', 'low']", "--set data.classes=null")


@pytest.mark.tf
def test_a_missing_data_path_is_one_line(tmp_path):
    assert_one_error_line(train_cli("har-cnn1d", "--data", tmp_path / "nowhere", "-o", tmp_path / "out", quiet=True),
                          str(tmp_path / "nowhere"), "no such path")


@pytest.mark.tf
def test_an_unwritable_output_folder_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_one_error_line(train_cli("har-cnn1d", "-o", blocker / "out", quiet=True),
                          f"output folder {blocker / 'out'}", "a folder edgekit can create and write")
    assert not (blocker.parent / "out").exists()


# ---------------------------------------------------------------------------
# tiny trainings through the CLI


@pytest.fixture(scope="module")
def har_run(tmp_path_factory) -> tuple[Path, Path, CliResult]:
    """har-cnn1d on synthetic data, exported to a one-variant bundle."""
    root = tmp_path_factory.mktemp("har")
    out, bundle = root / "out", root / "har.edgekit"
    result = train_cli("har-cnn1d", "-o", out, *TINY_HAR, "--export", bundle,
                       "--set", "convert.variants=[tflite-fp32]")
    assert result.code == 0, result.stderr
    return out, bundle, result


@pytest.mark.tf
@pytest.mark.slow
def test_har_training_writes_model_contract_and_report(har_run):
    out, _, result = har_run
    for name in ("report.json", "report.md", "curves.png", "confusion.png", "har-cnn1d.keras",
                 "har-cnn1d.preprocess.yaml", "heldout.npz", "labels.txt"):
        assert (out / name).is_file(), name
    for plot in ("curves.png", "confusion.png"):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "checkpoints").exists()  # removed once the run completed
    report = read_report(out)
    classes = ["idle", "walk", "run", "stairs"]
    assert report["data"]["classes"] == classes and report["data"]["synthesized"] is True
    assert (out / "labels.txt").read_text().split() == classes
    assert report["training"]["epochs_run"] == 2 and [h["epoch"] for h in report["training"]["history"]] == [1, 2]
    assert report["model"]["input_shape"] == [128, 6]
    assert 0.0 <= report["test"]["accuracy"] <= 1.0 and report["test"]["classes"] == classes
    assert "Held-out accuracy" in (out / "report.md").read_text()
    assert "held-out accuracy" in result.stdout
    with np.load(out / "heldout.npz") as heldout:
        assert heldout["x"].shape[1:] == (128, 6) and len(heldout["y"]) == report["test"]["samples"]

    # the contract carries the sensor normalization fitted on the training split only
    contract = yaml.safe_load((out / "har-cnn1d.preprocess.yaml").read_text())
    assert contract["labels"] == classes
    spec = preprocess_from_dict(contract["preprocess"])
    assert isinstance(spec, SensorPreprocess) and list(spec.channels) == HAR_CHANNELS
    recipe = load_recipe("har-cnn1d")
    raw = trainingdata.load_raw(out / "data", recipe)
    train = trainingdata.split(raw, 0.1, 0.1).train.x.reshape(-1, 6).astype(np.float64)
    np.testing.assert_allclose(spec.mean, train.mean(axis=0), atol=2e-6)
    np.testing.assert_allclose(spec.std, train.std(axis=0), atol=2e-6)
    everything = raw.x.reshape(-1, 6).astype(np.float64)
    assert np.abs(np.asarray(spec.mean) - everything.mean(axis=0)).max() > 1e-3  # not fitted on all data


@pytest.mark.tf
@pytest.mark.slow
def test_export_writes_a_verified_bundle_with_the_contract(har_run):
    from edgekit.bundle import open_bundle

    out, bundle, result = har_run
    manifest = open_bundle(bundle).manifest  # verifies hashes, sizes and schema
    contract = yaml.safe_load((out / "har-cnn1d.preprocess.yaml").read_text())
    assert list(manifest.labels) == contract["labels"]
    assert manifest.preprocess == preprocess_from_dict(contract["preprocess"])
    assert manifest.postprocess.top_k == 2 and manifest.variant_names == ["tflite-fp32"]
    assert read_report(out)["export"]["gate_passed"] is True
    assert "verified" in result.stdout


@pytest.mark.tf
@pytest.mark.slow
def test_the_same_seed_trains_the_same_model(har_run, tmp_path):
    first = read_report(har_run[0])
    result = train_cli("har-cnn1d", "-o", tmp_path / "again", *TINY_HAR)
    assert result.code == 0, result.stderr
    second = read_report(tmp_path / "again")

    def losses(report: dict) -> list[tuple[float, float]]:
        return [(h["loss"], h["val_loss"]) for h in report["training"]["history"]]

    assert losses(second) == losses(first)
    assert second["test"]["accuracy"] == first["test"]["accuracy"]
    assert second["test"]["confusion_matrix"] == first["test"]["confusion_matrix"]


def write_recording(path: Path, repeats: int = 3, segment: int = 320) -> int:
    """A CSV IMU recording at 50 Hz with a label column: idle, walk, run segments, repeated.

    The columns come in another order than the recipe's, with an extra one: they are
    picked by name. Returns the number of rows.
    """
    rng = np.random.default_rng(5)
    rows = []
    t = np.arange(segment) / 50.0
    for _ in range(repeats):
        for label, hz, amplitude in (("idle", 0.0, 0.05), ("walk", 1.9, 2.0), ("run", 2.8, 5.0)):
            wave = amplitude * np.sin(2 * np.pi * hz * t)[:, None] + 0.1 * rng.standard_normal((segment, 6))
            wave[:, 2] += 9.81
            rows += [[f"{len(rows) / 50:.2f}", label, *(f"{v:.4f}" for v in values[::-1])] for values in wave]
    header = ["time", "label", *HAR_CHANNELS[::-1]]
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return len(rows)


def test_a_recording_is_split_in_blocks_so_held_out_windows_do_not_overlap(tmp_path):
    rows = write_recording(tmp_path / "recording.csv")
    recipe = load_recipe("har-cnn1d")
    raw = trainingdata.load_raw(tmp_path / "recording.csv", recipe)
    assert raw.class_names == ("idle", "run", "walk") and len(raw) == 1 + (rows - 128) // 64
    assert raw.x[0, 0, 2] == pytest.approx(9.81, abs=0.5)  # acc_z picked by name
    assert any("split in 6 blocks of up to 8 consecutive windows" in note for note in raw.notes)

    def overlapping(parts: trainingdata.Split) -> tuple[int, int]:
        """(held-out windows, those sharing samples with a training window)."""
        def starts(part: trainingdata.RawData) -> list[int]:
            return [int(i.split("@")[1]) for i in part.ids]

        held_out = starts(parts.validation) + starts(parts.test)
        assert sorted(starts(parts.train) + held_out) == [64 * k for k in range(len(raw))]
        return len(held_out), sum(any(abs(s - t) < 128 for t in starts(parts.train)) for s in held_out)

    held_out, shared = overlapping(trainingdata.split(raw, 0.1, 0.1))
    assert held_out >= 8 and shared <= 4  # at most one window at each edge of the two held-out blocks
    # window by window (no groups), most held-out windows would share samples with training ones
    held_out, shared = overlapping(trainingdata.split(dataclasses.replace(raw, groups=None), 0.1, 0.1))
    assert shared > held_out / 2


@pytest.mark.tf
@pytest.mark.slow
def test_a_csv_recording_with_a_label_column_trains(tmp_path):
    csv_path = tmp_path / "recording.csv"
    rows = write_recording(csv_path)
    out = tmp_path / "out"
    result = train_cli("har-cnn1d", "--data", csv_path, "-o", out, *TINY_HAR[2:])
    assert result.code == 0, result.stderr
    windows = 1 + (rows - 128) // 64
    assert f"{windows} windows of 128 samples every 64 from 1 recording(s)" in result.stderr
    report = read_report(out)
    assert report["data"]["classes"] == ["idle", "run", "walk"] and report["data"]["synthesized"] is False
    assert any("blocks" in note for note in report["data"]["notes"])
    counted = sum(report["data"][part]["samples"] for part in ("train", "validation_split", "test_split"))
    assert counted == windows


@pytest.mark.tf
@pytest.mark.slow
def test_wavs_at_another_rate_are_resampled_and_corrupt_ones_skipped(wavs_8k, tmp_path):
    out = tmp_path / "out"
    result = train_cli("kws-dscnn", "--data", wavs_8k, "-o", out, "--epochs", "1", "--set", "data.classes=null",
                       "--set", "train.batch_size=8", "--set", "architecture.filters=8", "--set", "architecture.blocks=1")
    assert result.code == 0, result.stderr
    notes = read_report(out)["data"]["notes"]
    assert "12 file(s) resampled from 8000 Hz to 16000 Hz" in notes
    assert any(n.startswith("1 unreadable file(s) skipped, e.g. low/broken.wav") for n in notes), notes
    assert "note: 12 file(s) resampled from 8000 Hz to 16000 Hz" in result.stderr
    assert "skipped 1 unreadable file(s)" in result.stderr
    assert read_report(out)["data"]["classes"] == ["high", "low"]
    assert "Traceback" not in result.stderr


@pytest.mark.tf
@pytest.mark.slow
def test_images_of_another_size_are_resized_and_corrupt_ones_skipped(tmp_path):
    data = write_images(tmp_path / "data", ("dark", "bright"), (24, 20))
    (data / "dark" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    result = train_cli("ic-resnet8", "--data", data, "-o", out, "--epochs", "1", "--set", "train.batch_size=8",
                       "--set", "architecture.filters=[4,4,4]")
    assert result.code == 0, result.stderr
    report = read_report(out)
    assert "12 file(s) resized from 24x20 to 32x32" in report["data"]["notes"]
    assert any(n.startswith("1 unreadable file(s) skipped, e.g. dark/broken.png") for n in report["data"]["notes"])
    assert report["data"]["classes"] == ["bright", "dark"] and report["model"]["input_shape"] == [32, 32, 3]


@pytest.mark.tf
@pytest.mark.slow
def test_anomaly_training_reports_roc_auc_and_carries_the_threshold(tmp_path):
    out = tmp_path / "out"
    result = train_cli("ad-autoencoder", "-o", out, "--samples", "150", "--epochs", "2", "--set",
                       "architecture.units=[16]", "--set", "architecture.bottleneck=4", "--set", "train.batch_size=32")
    assert result.code == 0, result.stderr
    report = read_report(out)
    test = report["test"]
    assert 0.0 <= test["roc_auc"] <= 1.0  # a labelled test.npz with anomalies: not NaN
    assert test["threshold"] > 0 and "errors_normal" not in test  # the error lists went into the plot
    contract = yaml.safe_load((out / "ad-autoencoder.preprocess.yaml").read_text())
    assert contract["postprocess"]["kind"] == "anomaly"
    assert contract["postprocess"]["anomaly_threshold"] == pytest.approx(test["threshold"], rel=1e-6)
    assert "labels" not in contract and not (out / "labels.txt").exists()
    assert (out / "scores.png").is_file() and "ROC-AUC" in (out / "report.md").read_text()


# ---------------------------------------------------------------------------
# --resume


RESUME_EPOCHS = 8


@pytest.mark.tf
@pytest.mark.slow
def test_resume_continues_a_killed_training(tmp_path):
    out = tmp_path / "out"
    args = ["har-cnn1d", "-o", str(out), *TINY_HAR[:2], "--epochs", str(RESUME_EPOCHS), *TINY_HAR[4:]]
    killed_state = train_killed_after_an_epoch(args, out)
    killed_at = killed_state["epoch"]
    assert 1 <= killed_at < RESUME_EPOCHS
    assert not (out / "report.json").exists()
    interrupted = tmp_path / "interrupted"
    shutil.copytree(out, interrupted)

    result = train_cli(*args, "--resume")
    assert result.code == 0, result.stderr
    assert f"resuming after epoch {killed_at} from {out / 'checkpoints'}" in result.stderr
    training = read_report(out)["training"]
    assert [h["epoch"] for h in training["history"]] == list(range(1, RESUME_EPOCHS + 1))
    assert training["history"][:killed_at] == killed_state["history"]  # the epochs before the kill, as recorded
    assert training["epochs_run"] == RESUME_EPOCHS
    assert f"epoch {killed_at + 1}/{RESUME_EPOCHS}" in result.stderr and "epoch 1/" not in result.stderr

    # without --resume, the interrupted run is noted and training starts over
    args[args.index("-o") + 1] = str(interrupted)
    result = train_cli(*args, "--epochs", "1")
    assert result.code == 0, result.stderr
    assert f"holds an interrupted run (epoch {killed_at}); starting over (--resume continues it)" in result.stderr
    assert [h["epoch"] for h in read_report(interrupted)["training"]["history"]] == [1]
