"""Shared fixtures: tiny real models made by real converters, and the brokers tests start.

Tests that need TensorFlow carry ``@pytest.mark.tf``. When a library or a system
program is missing the test skips with the install command, except under
``EDGEKIT_STRICT_TESTS=1`` (CI), where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support.brokers import Mosquitto
from tests.support.cli import run_cli
from tests.support.env import STRICT, need_module, need_program
from tests.support.models import save_keras

settings.register_profile("edgekit", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("edgekit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Under EDGEKIT_STRICT_TESTS=1 nothing is skipped: a missing TensorFlow fails the tests.
    if STRICT or importlib.util.find_spec("tensorflow") is not None:
        return
    for item in items:
        if "tf" in item.keywords:
            item.add_marker(pytest.mark.skip(reason='needs TensorFlow: pip install "edgekit-ml[train]"'))


@pytest.fixture(scope="session")
def cli():
    return run_cli


@dataclass
class ModelFiles:
    """Files of one tiny model, each made by the real exporter."""

    keras: Path
    h5: Path
    tflite: Path
    onnx: Path
    savedmodel: Path
    lambda_keras: Path
    lambda_h5: Path
    canary: Path
    macs: int
    parameters: int


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> ModelFiles:
    """A tiny CNN (Conv2D, DepthwiseConv2D, BatchNorm, Dense) in every format, plus Lambda models."""
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import contextlib

    import keras
    import numpy as np

    root = tmp_path_factory.mktemp("models")
    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3), name="pixels")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="dw")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(5, activation="softmax", name="probs")(x)
    model = keras.Model(inputs, outputs)
    model(np.zeros((1, 12, 12, 3), "float32"))
    files = {
        "keras": root / "tiny.keras",
        "h5": root / "tiny.h5",
        "tflite": root / "tiny.tflite",
        "onnx": root / "tiny.onnx",
        "savedmodel": root / "tiny_savedmodel",
    }
    with contextlib.redirect_stdout(sys.stderr):
        model.save(files["keras"])
        model.save(files["h5"])
        model.export(str(files["tflite"]), format="litert")
        model.export(str(files["onnx"]), format="onnx")
        model.export(str(files["savedmodel"]), format="tf_saved_model")

    # Conv: 12*12*8 outputs x 3*3*3; depthwise: 6*6*8 x 3*3; dense: 5 x 8
    macs = 12 * 12 * 8 * 27 + 6 * 6 * 8 * 9 + 5 * 8

    # A model whose Lambda would create a canary file if its code ever ran.
    canary = root / "CANARY"
    canary_path = str(canary)
    lam_in = keras.Input((4,), name="x")
    lam_out = keras.layers.Lambda(
        lambda t: (open(canary_path, "w").close(), t * 2.0)[1], name="scale_with_side_effect"  # noqa: SIM115
    )(lam_in)
    lam_model = keras.Model(lam_in, keras.layers.Dense(2)(lam_out))
    lambda_keras = root / "lambda.keras"
    lambda_h5 = root / "lambda.h5"
    save_keras(lam_model, lambda_keras)
    save_keras(lam_model, lambda_h5)
    if canary.exists():  # building the model traced the lambda once; start clean
        canary.unlink()
    return ModelFiles(**files, lambda_keras=lambda_keras, lambda_h5=lambda_h5, canary=canary, macs=macs,
                      parameters=int(model.count_params()))


@dataclass
class Classifier:
    """A small trained shapes classifier with its raw data and contract files."""

    model: Path
    images: Path
    preprocess: Path
    labels: Path
    class_names: tuple[str, ...]


@pytest.fixture(scope="session")
def shapes_classifier(tmp_path_factory: pytest.TempPathFactory) -> Classifier:
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')

    import keras

    from edgekit.datasets.shapes import generate
    from edgekit.features.image import normalize
    from edgekit.spec import ImagePreprocess

    root = tmp_path_factory.mktemp("shapes")
    images, labels, names = generate(1500, 16, seed=3)
    spec = ImagePreprocess(height=16, width=16, scale=1 / 255, mean=(0.5,), std=(0.25,))
    x = normalize(images, spec)
    keras.utils.set_random_seed(3)
    inputs = keras.Input((16, 16, 3))
    h = inputs
    for filters in (16, 32, 48):
        h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
        h = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9)(h))
        h = keras.layers.MaxPooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(len(names), activation="softmax")(keras.layers.Flatten()(h)))
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:1200], labels[:1200], epochs=8, batch_size=32, verbose=0)
    path = root / "shapes.keras"
    save_keras(model, path)

    import cv2

    folder = root / "images"
    for i in range(1200, 1500):  # held-out images only
        cls = folder / names[labels[i]]
        cls.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(cls / f"{i:04d}.png"), cv2.cvtColor(images[i], cv2.COLOR_RGB2BGR))
    preprocess = root / "preprocess.yaml"
    preprocess.write_text("kind: image\nheight: 16\nwidth: 16\nscale: 0.00392156862745098\nmean: [0.5]\nstd: [0.25]\n")
    labels_file = root / "labels.txt"
    labels_file.write_text("\n".join(names) + "\n")
    return Classifier(path, folder, preprocess, labels_file, names)


@dataclass
class RuntimeBundles:
    shapes: Path  # image classifier, tflite-fp32/int8 + onnx-fp32/int8, real calibration data
    shapes_images: Path
    kws: Path  # audio classifier on 49x10 MFCC with posterior smoothing
    sensor: Path  # IMU-style classifier on 20-sample windows of 3 channels


@pytest.fixture(scope="session")
def runtime_bundles(shapes_classifier: Classifier, tmp_path_factory: pytest.TempPathFactory) -> RuntimeBundles:
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')

    import keras

    from edgekit.convert.run import ConvertConfig, convert

    root = tmp_path_factory.mktemp("runtime")
    shapes = root / "shapes.edgekit"
    convert(ConvertConfig(model=shapes_classifier.model, output=shapes, data=shapes_classifier.images,
                          preprocess=shapes_classifier.preprocess, labels=shapes_classifier.labels,
                          variants=("tflite-fp32", "tflite-int8", "onnx-fp32", "onnx-int8")))

    keras.utils.set_random_seed(7)
    inp = keras.Input((49, 10, 1))
    h = keras.layers.Conv2D(8, 3, activation="relu")(inp)
    kws_model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h)))
    kws_path = root / "kws.keras"
    save_keras(kws_model, kws_path)
    (root / "kws.preprocess.yaml").write_text(
        "preprocess: {kind: audio, sample_rate: 16000, clip_samples: 16000, feature: mfcc}\n"
        "labels: [_silence_, 'yes', 'no']\n"
        "postprocess: {kind: classification, top_k: 2, smoothing_ms: 500, suppression_ms: 1000,"
        " background_labels: [_silence_], score_threshold: 0.0}\n")
    kws = root / "kws.edgekit"
    convert(ConvertConfig(model=kws_path, output=kws, variants=("tflite-fp32",), allow_random_calibration=True))

    inp = keras.Input((20, 3))
    sensor_model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp)))
    sensor_path = root / "imu.keras"
    save_keras(sensor_model, sensor_path)
    (root / "imu.preprocess.yaml").write_text(
        "preprocess: {kind: sensor, channels: [ax, ay, az], window: 20, stride: 10, mean: [0, 0, 1], std: [1, 1, 1]}\n"
        "labels: [idle, walk]\n")
    sensor = root / "imu.edgekit"
    convert(ConvertConfig(model=sensor_path, output=sensor, variants=("tflite-fp32", "onnx-fp32"),
                          allow_random_calibration=True))
    return RuntimeBundles(shapes, shapes_classifier.images, kws, sensor)


@pytest.fixture
def mosquitto(tmp_path: Path):
    broker = Mosquitto(need_program("mosquitto", "apt-get install mosquitto"), tmp_path)
    broker.start()
    yield broker
    broker.stop()
