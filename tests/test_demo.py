"""The main job, end to end, as `make demo` runs it (fewer epochs)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from edgekit.bundle import open_bundle

pytestmark = pytest.mark.tf


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = run_cli("demo", "-o", str(out), "--epochs", "3")
    assert result.code == 0, result.stderr
    assert "bundle:" in result.stdout and "(verified)" in result.stdout

    bundle = open_bundle(out / "shapes.edgekit")
    manifest = bundle.manifest
    assert manifest.variant_names == ["tflite-fp32", "onnx-fp32"]
    assert manifest.labels == ("circle", "square", "triangle", "cross")
    assert manifest.preprocess.kind.value == "image"
    assert manifest.provenance["source"]["format"] == "keras"
    for variant in manifest.variants:
        # fp32 exports must reproduce Keras: measured on held-out images, one at a time.
        assert variant.metrics["max_abs_error"] < 1e-4
        assert variant.metrics["top1_agreement"] >= 0.99
        assert variant.metrics["validation_samples"] == 360
        assert variant.inputs[0].shape == (-1, 32, 32, 3)
    report = json.loads((out / "inspect.json").read_text())
    assert report["verified"] is True
    assert (out / "shapes.keras").is_file()


def test_demo_into_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("demo", "-o", str(blocker / "sub"), "--epochs", "1")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgekit: error: output directory")
