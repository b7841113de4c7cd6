"""The main job, end to end, as `make demo` runs it (fewer epochs)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from edgekit.bundle import open_bundle

pytestmark = pytest.mark.tf


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = run_cli("demo", "-o", str(out), "--epochs", "6")
    assert result.code == 0, result.stderr
    assert "bundle:" in result.stdout and "verified" in result.stdout
    assert "gate --max-accuracy-drop 2: passed" in result.stdout

    manifest = open_bundle(out / "shapes.edgekit").manifest
    assert manifest.variant_names == ["tflite-fp32", "tflite-fp16", "tflite-dynamic", "tflite-int8", "onnx-fp32",
                                      "onnx-int8"]
    assert manifest.labels == ("circle", "square", "triangle", "cross")
    assert manifest.preprocess.kind.value == "image"
    assert manifest.provenance["source"]["format"] == "keras"
    assert manifest.provenance["command"] == "edgekit demo"
    for variant in manifest.variants:
        assert variant.metrics["samples"] > 300
        if variant.precision == "fp32":
            assert variant.metrics["max_abs_error"] < 1e-4
        assert variant.metrics["drop_pts"] <= 2.0
    assert manifest.variant("tflite-int8").inputs[0].dtype.value == "int8"
    assert json.loads((out / "inspect.json").read_text())["verified"] is True
    assert json.loads((out / "convert.json").read_text())["gate"]["passed"] is True
    assert (out / "shapes.keras").is_file() and (out / "shapes.preprocess.yaml").is_file()


def test_demo_into_an_unwritable_place(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run_cli("demo", "-o", str(blocker / "sub"), "--epochs", "1")
    assert result.code == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("edgekit: error: output directory")
