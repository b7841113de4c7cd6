"""Bringing your own model: a .tflite and an .onnx made outside edgekit, packed, derived from
and run as a user would (`tests/support/foreign_kws.py` makes them with the exporters
themselves and a tf.signal front end)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgekit.bundle import open_bundle, sha256_file
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import need_module

pytestmark = pytest.mark.tf


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    need_module("tensorflow", 'pip install "edgekit-ml[train]"')
    need_module("tf2onnx", 'pip install "edgekit-ml[train]"')
    from tests.support.foreign_kws import build

    return build(tmp_path_factory.mktemp("foreign"))


def pack(kws, model: Path, out: Path, *extra: str):
    return run_cli("-q", "convert", str(model), "--preprocess", str(kws.preprocess), "--labels", str(kws.labels),
                   "-o", str(out), *extra)


@pytest.fixture(scope="module")
def tflite_bundle(kws, tmp_path_factory):
    out = tmp_path_factory.mktemp("tflite") / "kws.edgekit"
    result = pack(kws, kws.tflite, out, "--data", str(kws.data), "--json")
    assert result.code == 0, result.stderr
    return out, result.json()


@pytest.fixture(scope="module")
def onnx_bundle(kws, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "kws.edgekit"
    result = pack(kws, kws.onnx, out, "--data", str(kws.data))
    assert result.code == 0, result.stderr
    return out, result.stdout


def run_one(bundle: Path, wav: Path, variant: str) -> dict:
    result = run_cli("run", str(bundle), "--source", f"wav:{wav}", "--variant", variant)
    assert result.code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # a one-second clip is one window
    return json.loads(lines[0])


def test_a_foreign_tflite_is_packed_as_it_is_with_derived_variants(kws, tflite_bundle):
    out, report = tflite_bundle
    bundle = open_bundle(out)
    manifest = bundle.manifest
    assert manifest.variant_names == ["tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8"]
    assert bundle.variant_bytes("tflite-fp32") == kws.tflite.read_bytes()  # byte for byte
    assert manifest.labels == ("low", "mid", "high")
    assert manifest.preprocess.kind.value == "audio" and manifest.preprocess.num_mfcc == 10
    assert manifest.postprocess.kind.value == "classification"  # derived from the output shape
    source = manifest.provenance["source"]
    assert source["foreign"] is True and source["sha256"] == sha256_file(kws.tflite)
    assert source["identified_as"] == "tflite-fp32"
    assert manifest.provenance["command"].startswith("edgekit -q convert")
    step = manifest.provenance["steps"][-1]
    assert step["derived_by"] == {n: "ai-edge-quantizer" for n in ("tflite-fp16", "tflite-dynamic", "tflite-int8")}
    assert manifest.metrics["validated"] is True and manifest.metrics["fidelity_on_random_data"] is False
    assert report["reference"]["metric"] == "accuracy" and report["reference"]["value"] > 0.9
    precision = {v.name: v.precision for v in manifest.variants}
    assert precision == {"tflite-fp32": "fp32", "tflite-fp16": "fp16", "tflite-dynamic": "dynamic-int8",
                         "tflite-int8": "int8"}
    int8 = manifest.variant("tflite-int8")
    assert int8.inputs[0].dtype.value == "int8" and int8.inputs[0].quantization is not None
    for variant in manifest.variants:
        assert variant.metrics["origin"] == ("given" if variant.name == "tflite-fp32" else "derived")
        assert variant.metrics["samples"] == report["data"]["validation_samples"] > 0
        assert variant.metrics["top1_agreement"] >= 0.9, variant.name
        assert len(variant.metrics["outputs_sha256"]) == 64
    assert manifest.variant("tflite-fp32").metrics["identical"] is True


def test_the_bundle_runs_as_the_foreign_model_does(kws, tflite_bundle):
    from tests.support.foreign_kws import CLASSES, run_directly

    out, _report = tflite_bundle
    wav = kws.wavs["mixed"]
    scores = run_directly(kws.tflite, wav)  # tf.signal front end, the model's own interpreter
    assert scores.max() < 0.99  # a score worth comparing
    result = run_one(out, wav, "tflite-fp32")
    assert result["label"] == CLASSES[int(np.argmax(scores))]
    assert result["score"] == pytest.approx(float(scores.max()), abs=1e-4)
    # int8 calibrated on single keywords: the same verdict on two at once, the score less exact
    assert run_one(out, wav, "tflite-int8")["label"] == result["label"]


def test_a_foreign_onnx_is_packed_and_quantized(kws, onnx_bundle):
    from tests.support.foreign_kws import CLASSES, run_directly

    out, stdout = onnx_bundle
    manifest = open_bundle(out).manifest
    assert manifest.variant_names == ["onnx-fp32", "onnx-int8"]
    assert manifest.provenance["steps"][-1]["derived_by"] == {"onnx-int8": "onnxruntime.quantization"}
    assert manifest.variant("onnx-int8").metrics["top1_agreement"] >= 0.9
    assert "onnx-int8" in stdout and "bundle:" in stdout
    wav = kws.wavs["high"]
    scores = run_directly(kws.onnx, wav)
    result = run_one(out, wav, "onnx-fp32")
    assert result["label"] == CLASSES[int(np.argmax(scores))] == "high"
    assert result["score"] == pytest.approx(float(scores.max()), abs=1e-4)


def test_without_data_the_model_is_packed_as_it_is_and_says_so(kws, tmp_path):
    out = tmp_path / "kws.edgekit"
    result = pack(kws, kws.tflite, out)
    assert result.code == 0, result.stderr
    assert "NOT validated" in result.stdout
    manifest = open_bundle(out).manifest
    assert manifest.variant_names == ["tflite-fp32"]
    assert manifest.metrics["validated"] is False and "not validated" in manifest.metrics["validation"]
    # int8 calibration refuses random data unless allowed, as for a trained model
    refused = pack(kws, kws.tflite, tmp_path / "int8.edgekit", "--variants", "tflite-int8")
    assert_one_line_error(refused, 1, "need calibration data")


def test_variants_that_cannot_be_derived_are_refused(kws, tmp_path):
    out = tmp_path / "x.edgekit"
    result = pack(kws, kws.tflite, out, "--variants", "onnx-int8", "--data", str(kws.data))
    assert_one_line_error(result, 1, "onnx-int8", "tflite-fp16, tflite-dynamic, tflite-int8")
    assert not out.exists()


def test_a_quantized_foreign_model_is_named_from_what_it_is(tflite_bundle, tmp_path):
    from edgekit.convert.foreign import ForeignConfig, ForeignModel
    from edgekit.convert.variants.foreign import derivations

    bundle = open_bundle(tflite_bundle[0])
    for name, precision in (("tflite-int8", "int8"), ("tflite-dynamic", "dynamic-int8"), ("tflite-fp16", "fp16")):
        path = tmp_path / f"{name}.tflite"
        path.write_bytes(bundle.variant_bytes(name))
        with ForeignModel(ForeignConfig(path)) as model:
            assert (model.variant_name, model.precision) == (name, precision)
            assert derivations(model.variant_name) == {}  # not quantized again


def test_a_bare_model_given_to_run_says_what_it_is(kws):
    from edgekit.errors import InputError
    from edgekit.runtime import load

    result = run_cli("run", str(kws.tflite), "--source", f"wav:{kws.wavs['low']}")
    assert_one_line_error(result, 1, "is a TFLite model, not an edgekit bundle", "pack it first: edgekit convert",
                          "--preprocess SPEC.yaml -o kws.edgekit")
    assert "tampered" not in result.stderr and "verification" not in result.stderr
    # the library says the same (what eval and bench reach through load and open_bundle)
    with pytest.raises(InputError, match="is an ONNX model, not an edgekit bundle; pack it first"):
        load(kws.onnx)


def test_a_truncated_tflite_is_refused_cleanly(kws, tmp_path):
    data = kws.tflite.read_bytes()
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(data[: len(data) // 2])
    out = tmp_path / "cut.edgekit"
    result = pack(kws, cut, out, "--data", str(kws.data))
    assert_one_line_error(result, 1, "cut.tflite")
    assert not out.exists()
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="is a TFLite model, not an edgekit bundle"):
        open_bundle(cut)


def test_an_onnx_model_with_external_data_is_packed_with_its_weights_inside(kws, tmp_path):
    import onnx

    from edgekit.convert.foreign import ForeignConfig, ForeignModel
    from edgekit.runtime.onnxdata import external_refs

    split = tmp_path / "split.onnx"
    onnx.save(onnx.load(str(kws.onnx)), str(split), save_as_external_data=True, all_tensors_to_one_file=True,
              location="split.weights", size_threshold=0)
    assert external_refs(split.read_bytes())
    x = np.random.default_rng(0).standard_normal((3, 49, 10, 1)).astype(np.float32)
    with ForeignModel(ForeignConfig(split)) as model, ForeignModel(ForeignConfig(kws.onnx)) as whole:
        assert not external_refs(model.data)
        assert "split.weights" in model.adaptations[0]
        assert model.variant_name == "onnx-fp32"
        np.testing.assert_allclose(model.predict(x)[0], whole.predict(x)[0], rtol=0, atol=1e-6)


def test_a_class_order_other_than_the_folders_is_pointed_out():
    from edgekit.convert.run import label_order_hint

    labels = np.array([0, 0, 1, 1, 2, 2])  # folders high, low, mid (sorted)
    outputs = np.eye(3)[[2, 2, 0, 0, 1, 1]]  # the model says low, mid, high
    hint = label_order_hint(outputs, labels, ("high", "low", "mid"))
    assert "0.0% accurate" in hint and "100.0% with them named ['low', 'mid', 'high']" in hint and "--labels" in hint
    assert label_order_hint(np.eye(3)[labels], labels, ("high", "low", "mid")) is None  # the order fits


def test_foreign_bundles_carry_a_self_check_that_passes_here(tflite_bundle, onnx_bundle):
    from edgekit.runtime.selfcheck import check_bundle

    for path in (tflite_bundle[0], onnx_bundle[0]):
        bundle = open_bundle(path)
        check = bundle.manifest.self_check
        assert check is not None and check.source == "data" and len(check.raw) == 2  # WAV clips of --data
        assert set(check.variants) == set(bundle.manifest.variant_names)  # the given model and the derived ones
        checked = check_bundle(bundle)
        assert checked.ok and len(checked.reports) == len(bundle.manifest.variants), checked.lines()
