"""`edgekit inspect` on real files made by the real exporters."""

from __future__ import annotations

import io
import json
import random
import shutil
import zipfile

import pytest

from edgekit.bundle import Manifest, Variant, write_bundle
from edgekit.inspection import InspectConfig, inspect_path
from edgekit.spec import ImagePreprocess, PostprocessKind, PostprocessSpec, TensorSpec
from tests.support.cli import assert_one_line_error, run_cli

pytestmark = pytest.mark.tf


@pytest.mark.parametrize("fmt", ["tflite", "onnx", "keras", "h5", "savedmodel"])
def test_every_format_is_described(model_files, fmt):
    path = getattr(model_files, fmt)
    result = run_cli("inspect", str(path), "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["format"] == fmt
    assert report["kind"] == "model"
    assert [t["shape"] for t in report["inputs"]] == [[-1, 12, 12, 3]]
    assert [t["shape"] for t in report["outputs"]] == [[-1, 5]]
    assert report["inputs"][0]["dtype"] == "float32"
    # The same network gives the same MAC estimate in every format.
    assert report["macs"] == model_files.macs
    assert report["operator_count"] == sum(report["operators"].values()) > 0
    assert report["parameters"] > 0
    assert report["contains_code"] is False


def test_keras_parameters_match_count_params(model_files):
    for path in (model_files.keras, model_files.h5):
        assert run_cli("inspect", str(path), "--json").json()["parameters"] == model_files.parameters


def test_tflite_operators_and_text_report(model_files):
    result = run_cli("inspect", str(model_files.tflite))
    assert result.code == 0
    text = result.stdout
    assert "CONV_2D x1" in text and "DEPTHWISE_CONV_2D x1" in text and "FULLY_CONNECTED x1" in text
    assert "[?, 12, 12, 3]  float32" in text
    assert f"({model_files.macs:,})" in text


def test_truncated_tflite_and_onnx(model_files, tmp_path):
    for source in (model_files.tflite, model_files.onnx):
        data = source.read_bytes()
        bad = tmp_path / f"trunc{source.suffix}"
        bad.write_bytes(data[: len(data) // 2])
        assert_one_line_error(run_cli("inspect", str(bad)), 1, "truncated or corrupt")


def test_tflite_with_a_flipped_header_byte(model_files, tmp_path):
    data = bytearray(model_files.tflite.read_bytes())
    data[0] ^= 0xFF  # the root table offset: the verifier must refuse it
    bad = tmp_path / "flip.tflite"
    bad.write_bytes(bytes(data))
    assert_one_line_error(run_cli("inspect", str(bad)), 1, "flip.tflite")


def test_tflite_single_byte_flips_never_crash(model_files, tmp_path):
    """A flip anywhere either still describes (weights changed) or fails with one line."""
    data = model_files.tflite.read_bytes()
    rng = random.Random(1234)
    positions = sorted(rng.sample(range(8, len(data)), 10)) + [4, 5, 6, 7]
    for position in positions:
        mutated = bytearray(data)
        mutated[position] ^= 1 << rng.randrange(8)
        path = tmp_path / f"flip{position}.tflite"
        path.write_bytes(bytes(mutated))
        result = run_cli("inspect", str(path), "--json")
        assert result.code in (0, 1), (position, result.stderr)
        assert "Traceback" not in result.stderr
        if result.code == 1:
            assert_one_line_error(result, 1)
        else:
            assert result.json()["format"] == "tflite"


def test_lambda_models_are_described_without_running_their_code(model_files):
    model_files.canary.unlink(missing_ok=True)  # another test may have run the code on purpose
    for path in (model_files.lambda_keras, model_files.lambda_h5):
        result = run_cli("inspect", str(path), "--json")
        assert result.code == 0, result.stderr
        report = result.json()
        assert report["contains_code"] is True
        assert any("Lambda layer 'scale_with_side_effect'" in note for note in report["notes"])
        assert report["details"]["described_from"] == "config"
        assert report["inputs"][0]["shape"] == [-1, 4]
        assert report["parameters"] == 4 * 2 + 2
    assert not model_files.canary.exists(), "inspect executed the Lambda's code"


def test_module_injection_in_config_is_flagged(model_files, tmp_path):
    with zipfile.ZipFile(model_files.keras) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][1]["module"] = "os"
    config["config"]["layers"][1]["class_name"] = "system"
    members["config.json"] = json.dumps(config).encode()
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(hostile, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    report = run_cli("inspect", str(hostile), "--json").json()
    assert report["contains_code"] is True
    assert any("from module 'os'" in note for note in report["notes"])


def test_keras2_h5_that_keras3_refuses_is_described_from_config(model_files, tmp_path):
    import h5py

    legacy = tmp_path / "legacy.h5"
    shutil.copy(model_files.h5, legacy)
    with h5py.File(legacy, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "DepthwiseConv2D":
                layer["config"]["groups"] = 1  # what TF 2.x Keras 2 wrote; Keras 3 rejects it
        handle.attrs["model_config"] = json.dumps(config)
        handle.attrs["keras_version"] = "2.15.0"
    result = run_cli("inspect", str(legacy), "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["details"]["keras_version"] == "2.15.0"
    assert any("Unrecognized keyword arguments passed to DepthwiseConv2D" in n for n in report["notes"])
    assert report["inputs"][0]["shape"] == [-1, 12, 12, 3]
    assert report["parameters"] == model_files.parameters  # counted from the stored weights


def test_corrupt_savedmodel(model_files, tmp_path):
    broken = tmp_path / "broken_savedmodel"
    shutil.copytree(model_files.savedmodel, broken)
    pb = broken / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    assert_one_line_error(run_cli("inspect", str(broken)), 1, "SavedModel")


@pytest.fixture(scope="module")
def real_bundle(model_files, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundle")
    specs = {}
    for fmt in ("tflite", "onnx"):
        info = inspect_path(InspectConfig(getattr(model_files, fmt)))
        specs[fmt] = (tuple(TensorSpec.from_dict(t) for t in info["inputs"]),
                      tuple(TensorSpec.from_dict(t) for t in info["outputs"]))
    variants = tuple(
        Variant(name=f"{fmt}-fp32", format=fmt, file=f"models/{fmt}-fp32.{fmt}", precision="fp32",
                inputs=specs[fmt][0], outputs=specs[fmt][1], metrics={"top1_agreement": 1.0})
        for fmt in ("tflite", "onnx")
    )
    manifest = Manifest(name="tiny", variants=variants, preprocess=ImagePreprocess(height=12, width=12),
                        labels=tuple("abcde"), postprocess=PostprocessSpec(PostprocessKind.CLASSIFICATION, top_k=3),
                        metrics={"note": "test"})
    path = tmp / "tiny.edgekit"
    write_bundle(path, manifest, {v.file: getattr(model_files, v.format).read_bytes() for v in variants})
    return path


def test_bundle_is_verified_and_every_variant_described(real_bundle, model_files):
    result = run_cli("inspect", str(real_bundle), "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["verified"] is True
    assert report["labels"] == list("abcde")
    assert report["preprocess"]["kind"] == "image"
    assert [v["name"] for v in report["variants"]] == ["tflite-fp32", "onnx-fp32"]
    for variant in report["variants"]:
        assert variant["macs"] == model_files.macs
        assert variant["operator_count"] > 0
        assert variant["metrics"] == {"top1_agreement": 1.0}
        assert len(variant["sha256"]) == 64
    text = run_cli("inspect", str(real_bundle)).stdout
    assert "verification: OK" in text and "tflite-fp32" in text and "onnx-fp32" in text
    assert report["self_check"] is None and "self-check: none" in text  # written without one


def test_real_bundle_with_swapped_model_is_refused(real_bundle, model_files, tmp_path):
    with zipfile.ZipFile(real_bundle) as zin:
        members = {name: zin.read(name) for name in zin.namelist()}
    # Swap in a different but perfectly valid model of the same format.
    other = io.BytesIO()
    other.write(model_files.tflite.read_bytes().replace(b"serving_default", b"serving_defauLt"))
    members["models/tflite-fp32.tflite"] = other.getvalue()
    swapped = tmp_path / "swapped.edgekit"
    with zipfile.ZipFile(swapped, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)
    assert_one_line_error(run_cli("inspect", str(swapped)), 3, "refused", "sha256")
