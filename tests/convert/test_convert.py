"""`edgekit convert`: real converters, real interpreters, real data through the spec."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import open_bundle
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import REPO
from tests.support.models import save_keras

pytestmark = pytest.mark.tf


def convert_args(clf, out, *extra):
    return ("convert", str(clf.model), "-o", str(out), "--data", str(clf.images), "--preprocess", str(clf.preprocess),
            "--labels", str(clf.labels), *extra)


@pytest.fixture(scope="module")
def all_variants(shapes_classifier, tmp_path_factory):
    out = tmp_path_factory.mktemp("convert") / "shapes.edgekit"
    result = run_cli(*convert_args(shapes_classifier, out, "--variants", "all", "--json"))
    assert result.code == 0, result.stderr
    return out, result.json()


def test_every_variant_is_produced_measured_and_bundled(all_variants, shapes_classifier):
    out, report = all_variants
    bundle = open_bundle(out)
    manifest = bundle.manifest
    names = manifest.variant_names
    assert names == ["tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "tflite-int16x8",
                     "onnx-fp32", "onnx-int8"]
    assert manifest.labels == shapes_classifier.class_names
    assert manifest.preprocess.kind.value == "image" and manifest.preprocess.height == 16
    assert manifest.postprocess.kind.value == "classification"
    assert manifest.postprocess.apply_softmax is False  # the model ends in softmax
    assert report["reference"]["metric"] == "accuracy" and report["reference"]["value"] > 0.8
    for variant in manifest.variants:
        m = variant.metrics
        assert m["samples"] == report["data"]["validation_samples"] > 100
        assert len(m["outputs_sha256"]) == 64
        assert m["top1_agreement"] >= (0.999 if variant.precision in ("fp32", "fp16") else 0.9), variant.name
        if variant.precision == "fp32":
            assert m["max_abs_error"] < 1e-4
    int8 = manifest.variant("tflite-int8")
    assert int8.inputs[0].dtype.value == "int8" and int8.outputs[0].dtype.value == "int8"
    assert int8.inputs[0].quantization is not None and int8.outputs[0].quantization is not None
    assert manifest.variant("tflite-int16x8").precision == "int16x8"
    assert manifest.provenance["source"]["format"] == "keras"
    assert manifest.provenance["steps"][0]["step"] == "convert"


def test_calibration_and_validation_are_disjoint(all_variants):
    _out, report = all_variants
    data = report["data"]
    assert data["calibration_samples"] + data["validation_samples"] <= data["samples"]


def test_report_table_names_every_variant(shapes_classifier, tmp_path):
    out = tmp_path / "t.edgekit"
    result = run_cli(*convert_args(shapes_classifier, out, "--variants", "tflite-fp32,tflite-int8"))
    assert result.code == 0, result.stderr
    assert "tflite-int8" in result.stdout and "bundle:" in result.stdout and "verified" in result.stdout
    assert "float reference: accuracy" in result.stdout


def test_conversion_is_reproducible(shapes_classifier, tmp_path):
    hashes = []
    for i in range(2):
        out = tmp_path / f"r{i}.edgekit"
        result = run_cli(*convert_args(shapes_classifier, out, "--variants", "tflite-int8,onnx-int8"))
        assert result.code == 0, result.stderr
        manifest = open_bundle(out).manifest
        hashes.append({v.name: (v.metrics["outputs_sha256"], bundle_file_hash(out, v.file)) for v in manifest.variants})
    assert hashes[0] == hashes[1]


def bundle_file_hash(path: Path, member: str) -> str:
    import hashlib

    return hashlib.sha256(zipfile.ZipFile(path).read(member)).hexdigest()


def test_uint8_io_and_dynamic_onnx(shapes_classifier, tmp_path):
    out = tmp_path / "u.edgekit"
    result = run_cli(*convert_args(shapes_classifier, out, "--variants", "tflite-int8,onnx-int8", "--int8-io", "uint8",
                                   "--onnx-int8", "dynamic", "--per-tensor"))
    assert result.code == 0, result.stderr
    manifest = open_bundle(out).manifest
    assert manifest.variant("tflite-int8").inputs[0].dtype.value == "uint8"
    assert manifest.provenance["steps"][0]["options"]["onnx_int8"] == "dynamic"


# ---------------------------------------------------------------------------
# the accuracy gate and auto-fallback


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    """A classifier whose hidden layer has one huge-range unit: per-tensor int8 destroys the others."""

    import keras

    root = tmp_path_factory.mktemp("outlier")
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (3, 16))
    y = rng.integers(0, 3, 900)
    x = (centers[y] + rng.normal(0, 0.6, (900, 16))).astype("float32")
    keras.utils.set_random_seed(0)
    inp = keras.Input((16,))
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inp)
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="head")(hidden))
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=30, verbose=0)
    w, b = model.get_layer("hidden").get_weights()
    w[:, 0], b[0] = 400.0, 4000.0  # the outlier unit...
    model.get_layer("hidden").set_weights([w, b])
    w2, b2 = model.get_layer("head").get_weights()
    w2[0, :] = 0.0  # ...which the head ignores, so float accuracy is unchanged
    model.get_layer("head").set_weights([w2, b2])
    path = root / "outlier.keras"
    save_keras(model, path)
    np.savez(root / "data.npz", x=x, y=y)
    return path, root / "data.npz"


def test_gate_fails_with_exit_4_and_writes_nothing(outlier_model, tmp_path):
    model, data = outlier_model
    out = tmp_path / "gated.edgekit"
    result = run_cli("convert", str(model), "-o", str(out), "--data", str(data), "--variants", "tflite-fp32,tflite-int8",
                     "--max-accuracy-drop", "1")
    assert result.code == 4, result.stderr
    assert "FAILED for tflite-int8" in result.stdout
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("edgekit: gate failed: accuracy gate failed for tflite-int8; bundle not written")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_auto_fallback_keeps_the_outlier_layer_at_a_higher_precision(outlier_model, tmp_path):
    model, data = outlier_model
    out = tmp_path / "fallback.edgekit"
    result = run_cli("convert", str(model), "-o", str(out), "--data", str(data), "--variants", "tflite-fp32,tflite-int8",
                     "--max-accuracy-drop", "1", "--auto-fallback", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    int8 = next(v for v in report["variants"] if v["name"] == "tflite-int8")
    assert int8["gate"] == "pass"
    assert int8["fallback"]["succeeded"] is True
    kept = int8["fallback"]["int16_layers"] or int8["fallback"]["float_layers"]  # int16 is tried first
    assert any("hidden" in layer for layer in kept)
    assert int8["fallback"]["drop_before_pts"] > 10
    assert int8["metrics"]["drop_pts"] <= 1
    variant = open_bundle(out).manifest.variant("tflite-int8")
    assert variant.precision == "int8-mixed"
    assert variant.metrics["fallback"]["float_layers"] == int8["fallback"]["float_layers"]


def test_auto_fallback_needs_a_limit(outlier_model, tmp_path):
    model, data = outlier_model
    result = run_cli("-q", "convert", str(model), "-o", str(tmp_path / "x.edgekit"), "--data", str(data), "--auto-fallback")
    assert_one_line_error(result, 1, "--max-accuracy-drop")


# ---------------------------------------------------------------------------
# inputs: safe mode, Keras 2 files, SavedModel, random calibration


def test_model_with_code_is_refused_unless_trusted(model_files, tmp_path):
    model_files.canary.unlink(missing_ok=True)
    out = tmp_path / "lambda.edgekit"
    result = run_cli("-q", "convert", str(model_files.lambda_keras), "-o", str(out), "--allow-random-calibration")
    assert_one_line_error(result, 3, "refused", "Lambda layer 'scale_with_side_effect'", "--trust-model-code")
    assert not out.exists()
    assert not model_files.canary.exists()
    result = run_cli("-q", "convert", str(model_files.lambda_h5), "-o", str(out), "--allow-random-calibration")
    assert_one_line_error(result, 3, "refused")
    assert not model_files.canary.exists()


def test_trusted_model_code_converts(model_files, tmp_path):
    model_files.canary.unlink(missing_ok=True)
    out = tmp_path / "trusted.edgekit"
    result = run_cli("convert", str(model_files.lambda_keras), "-o", str(out), "--trust-model-code",
                     "--variants", "tflite-fp32", "--allow-random-calibration")
    assert result.code == 0, result.stderr
    assert open_bundle(out).manifest.variant_names == ["tflite-fp32"]
    # Trusting runs the code: the canary appears, so the refusal tests' "no canary" is not vacuous.
    assert model_files.canary.exists()
    model_files.canary.unlink()


KERAS2 = """
import os, sys, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import tf_keras as k2
k2.utils.set_random_seed(5)
m = k2.Sequential([k2.layers.InputLayer((10, 10, 3)), k2.layers.Conv2D(6, 3), k2.layers.DepthwiseConv2D(3),
                   k2.layers.BatchNormalization(), k2.layers.ReLU(), k2.layers.GlobalAveragePooling2D(),
                   k2.layers.Dense(4, activation="softmax")])
x = np.random.default_rng(0).random((64, 10, 10, 3)).astype("float32")
m.save(sys.argv[1])
np.savez(sys.argv[2], x=x, y=m.predict(x, verbose=0))
"""


def test_keras2_h5_with_depthwise_groups_converts(tmp_path):
    from tests.support.env import need_module

    need_module("tf_keras", "pip install --no-deps tf-keras (the Makefile does)")
    h5, ref = tmp_path / "legacy.h5", tmp_path / "ref.npz"
    subprocess.run([sys.executable, "-c", KERAS2, str(h5), str(ref)], check=True, capture_output=True)
    import h5py

    with h5py.File(h5) as handle:
        assert handle.attrs["keras_version"].startswith("2.")
        assert '"groups": 1' in handle.attrs["model_config"]
    data = np.load(ref)
    arrays = tmp_path / "x.npz"
    np.savez(arrays, x=data["x"])
    out = tmp_path / "legacy.edgekit"
    result = run_cli("convert", str(h5), "-o", str(out), "--data", str(arrays), "--variants", "tflite-fp32,onnx-fp32",
                     "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert any("DepthwiseConv2D" in a and "dropped groups=1" in a for a in report["source"]["adaptations"])
    # The adapted model computes what the Keras 2 model computed: compare the bundle against tf_keras itself.
    from edgekit.convert.fidelity import run_variant

    manifest = open_bundle(out).manifest
    variant = manifest.variant("tflite-fp32")
    outputs = run_variant("tflite", open_bundle(out).variant_bytes("tflite-fp32"), variant.inputs, variant.outputs,
                          data["x"])
    assert np.max(np.abs(outputs[0] - data["y"])) < 1e-4
    assert manifest.provenance["steps"][0]["adapted"]


def test_savedmodel_converts_float_variants_without_data(model_files, tmp_path):
    out = tmp_path / "sm.edgekit"
    result = run_cli("convert", str(model_files.savedmodel), "-o", str(out), "--variants", "tflite-fp32,onnx-fp32")
    assert result.code == 0, result.stderr
    assert "RANDOM inputs" in result.stdout
    manifest = open_bundle(out).manifest
    assert manifest.provenance["source"]["format"] == "savedmodel"
    assert manifest.metrics["fidelity_on_random_data"] is True


def test_quantized_variants_need_data_or_explicit_random(model_files, tmp_path):
    out = tmp_path / "r.edgekit"
    result = run_cli("-q", "convert", str(model_files.keras), "-o", str(out), "--variants", "tflite-int8")
    assert_one_line_error(result, 1, "need calibration data", "--allow-random-calibration")
    result = run_cli("-q", "convert", str(model_files.keras), "-o", str(out), "--variants", "tflite-int8",
                     "--allow-random-calibration")
    assert result.code == 0, result.stderr
    assert "meaningless" in result.stdout


# ---------------------------------------------------------------------------
# bad input: one line, documented exit code, no partial output


def test_unsupported_file_type(tmp_path):
    from edgekit.bundle import write_bundle
    from tests.support.bundles import simple_manifest

    done = tmp_path / "done.edgekit"
    write_bundle(done, *simple_manifest())
    out = tmp_path / "x.edgekit"
    assert_one_line_error(run_cli("-q", "convert", str(done), "-o", str(out)), 1, "an edgekit bundle", "converted already")
    assert not out.exists()


def test_corrupt_model(tmp_path):
    bad = tmp_path / "corrupt.keras"
    bad.write_bytes(os.urandom(2048))
    out = tmp_path / "x.edgekit"
    assert_one_line_error(run_cli("-q", "convert", str(bad), "-o", str(out), "--allow-random-calibration"), 1,
                          "corrupt.keras")
    assert not out.exists()


def test_unknown_variant_lists_the_valid_ones(model_files, tmp_path):
    result = run_cli("-q", "convert", str(model_files.keras), "-o", str(tmp_path / "x.edgekit"), "--variants",
                     "tflite-fp32,tflite-int4")
    assert_one_line_error(result, 1, "tflite-int4", "'tflite-int8'", "'onnx-int8'")


def test_calibration_data_with_the_wrong_shape(model_files, tmp_path):
    data = tmp_path / "wrong.npz"
    np.savez(data, x=np.zeros((20, 10, 10, 3), np.float32))
    out = tmp_path / "x.edgekit"
    result = run_cli("-q", "convert", str(model_files.keras), "-o", str(out), "--data", str(data))
    assert_one_line_error(result, 1, "expected samples of shape (12, 12, 3)", "found samples of shape (10, 10, 3)")
    assert not out.exists()


def test_empty_data_folder(shapes_classifier, tmp_path):
    empty = tmp_path / "empty"
    (empty / "circle").mkdir(parents=True)
    out = tmp_path / "x.edgekit"
    result = run_cli("-q", "convert", str(shapes_classifier.model), "-o", str(out), "--data", str(empty), "--preprocess",
                     str(shapes_classifier.preprocess))
    assert_one_line_error(result, 1, "empty folder")
    assert not out.exists()


def test_labels_that_do_not_match_the_output(shapes_classifier, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("circle\nsquare\ntriangle\ncross\nstar\n")
    (tmp_path / "images").symlink_to(shapes_classifier.images)
    out = tmp_path / "x.edgekit"
    result = run_cli("-q", "convert", str(shapes_classifier.model), "-o", str(out), "--data", str(tmp_path / "images"),
                     "--preprocess", str(shapes_classifier.preprocess), "--labels", str(labels))
    assert_one_line_error(result, 1, "expected 4 labels (the model's output size), found 5 labels")
    assert not out.exists()


@pytest.fixture(scope="module")
def dynamic_model(tmp_path_factory):

    import keras

    path = tmp_path_factory.mktemp("dyn") / "dynamic.keras"
    inp = keras.Input((None, 8))
    model = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling1D()(inp)))
    save_keras(model, path)
    return path


def test_model_without_fixed_input_shape(dynamic_model, tmp_path):
    out = tmp_path / "x.edgekit"
    result = run_cli("-q", "convert", str(dynamic_model), "-o", str(out), "--allow-random-calibration")
    assert_one_line_error(result, 1, "expected a fixed shape", "--input-shape")
    assert not out.exists()
    result = run_cli("-q", "convert", str(dynamic_model), "-o", str(out), "--allow-random-calibration",
                     "--input-shape", "20,8", "--variants", "tflite-fp32,tflite-int8")
    assert result.code == 0, result.stderr
    assert open_bundle(out).manifest.variant("tflite-fp32").inputs[0].shape[1:] == (20, 8)


def test_killed_convert_leaves_no_partial_bundle(shapes_classifier, tmp_path):
    out = tmp_path / "killed.edgekit"
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", *convert_args(shapes_classifier, out, "--variants", "all")],
                            cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # wait until conversion is under way, then kill
        if "building tflite-int8" in line or time.monotonic() > deadline:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_wav_folders_go_through_the_audio_spec(tmp_path):

    import keras

    from edgekit.features.audio import write_wav

    rate = 16000
    rng = np.random.default_rng(0)
    for cls, freq in (("low", 300), ("high", 2500)):
        (tmp_path / "wavs" / cls).mkdir(parents=True)
        for i in range(8):
            t = np.arange(int(rate * rng.uniform(0.6, 1.2))) / 22050  # other rate: exercises resampling
            write_wav(tmp_path / "wavs" / cls / f"{i}.wav", 0.3 * np.sin(2 * np.pi * freq * t) +
                      0.01 * rng.standard_normal(t.size), 22050)
    (tmp_path / "wavs" / "low" / "broken.wav").write_bytes(b"RIFF....WAVEnot audio")
    spec = tmp_path / "kws.yaml"
    spec.write_text("preprocess: {kind: audio, sample_rate: 16000, clip_samples: 16000, feature: mfcc, num_mfcc: 10}\n"
                    "labels: [low, high]\n")
    inp = keras.Input((49, 10, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h)))
    path = tmp_path / "kws.keras"
    save_keras(model, path)
    out = tmp_path / "kws.edgekit"
    result = run_cli("convert", str(path), "-o", str(out), "--data", str(tmp_path / "wavs"), "--preprocess", str(spec),
                     "--variants", "tflite-fp32,tflite-int8", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["data"]["samples"] == 16 and len(report["data"]["skipped"]) == 1
    assert any("unreadable" in w for w in report["warnings"])
    manifest = open_bundle(out).manifest
    assert manifest.preprocess.kind.value == "audio" and manifest.labels == ("low", "high")
    assert manifest.variant("tflite-int8").inputs[0].shape == (-1, 49, 10, 1)
