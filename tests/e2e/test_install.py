"""`pip install "edgekit-ml[litert]"` on a machine without TensorFlow gives a working device side."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.env import REPO

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def device_venv(tmp_path_factory):
    root = tmp_path_factory.mktemp("device")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    proc = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", f"{REPO}[litert]"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def run(venv, *args, cwd=None):
    return subprocess.run([str(venv / "bin" / "edgekit"), *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=cwd)


def test_litert_extra_installs_no_tensorflow(device_venv):
    code = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
            "for m in ('tensorflow', 'keras', 'onnxruntime', 'ai_edge_litert', 'numpy', 'click', 'yaml')}))")
    found = json.loads(subprocess.run([str(device_venv / "bin" / "python"), "-c", code], capture_output=True,
                                      text=True, check=True, cwd="/").stdout)
    assert found == {"tensorflow": False, "keras": False, "onnxruntime": False, "ai_edge_litert": True,
                     "numpy": True, "click": True, "yaml": True}


def test_device_inspects_tflite_and_bundles(device_venv, model_files, tmp_path):
    result = run(device_venv, "inspect", str(model_files.tflite), "--json", cwd="/")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["details"]["interpreter"] == "ai-edge-litert"
    assert report["macs"] == model_files.macs


def test_device_names_the_missing_extra(device_venv, model_files):
    result = run(device_venv, "inspect", str(model_files.onnx), cwd="/")
    assert result.returncode == 1
    assert 'pip install "edgekit-ml[onnx]"' in result.stderr
    assert "Traceback" not in result.stderr
    result = run(device_venv, "inspect", str(model_files.h5), cwd="/")
    assert result.returncode == 1
    assert 'pip install "edgekit-ml[train]"' in result.stderr


def test_device_describes_keras_files_from_config(device_venv, model_files):
    result = run(device_venv, "inspect", str(model_files.keras), "--json", cwd="/")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["details"]["described_from"] == "config"
    assert report["inputs"][0]["shape"] == [-1, 12, 12, 3]


def test_device_evaluates_a_bundle_of_a_foreign_model(device_venv, model_files, tmp_path):
    """A .tflite exported outside edgekit, packed on the workstation with its front end,
    measured by `edgekit eval` on an install with the device extra alone (raw images in an
    .npz, so no image decoder is needed)."""
    import numpy as np

    from tests.support.cli import run_cli

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 12, 12, 3), dtype=np.uint8)
    data = tmp_path / "images.npz"
    np.savez(data, x=x, y=np.arange(20) % 5)
    contract = tmp_path / "tiny.yaml"
    contract.write_text("preprocess:\n  preset: image-0-1\n  height: 12\n  width: 12\n"
                        "postprocess:\n  kind: classification\nlabels: [a, b, c, d, e]\n")
    bundle = tmp_path / "tiny.edgekit"
    packed = run_cli("convert", str(model_files.tflite), "--preprocess", str(contract), "--data", str(data),
                     "--variants", "tflite-fp32,tflite-int8", "-o", str(bundle))
    assert packed.code == 0, packed.stderr
    result = run(device_venv, "eval", str(bundle), "--data", str(data), "--json", cwd="/")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [v["variant"] for v in report["variants"]] == ["tflite-fp32", "tflite-int8"]
    assert all(v["samples"] == 20 for v in report["variants"])
    bare = run(device_venv, "eval", str(model_files.tflite), "--data", str(data), cwd="/")
    assert bare.returncode == 1 and "not an edgekit bundle" in bare.stderr and "Traceback" not in bare.stderr
