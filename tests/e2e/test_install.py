"""`pip install "edgekit[litert]"` on a machine without TensorFlow gives a working device side."""

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
    assert 'pip install "edgekit[onnx]"' in result.stderr
    assert "Traceback" not in result.stderr
    result = run(device_venv, "inspect", str(model_files.h5), cwd="/")
    assert result.returncode == 1
    assert 'pip install "edgekit[train]"' in result.stderr


def test_device_describes_keras_files_from_config(device_venv, model_files):
    result = run(device_venv, "inspect", str(model_files.keras), "--json", cwd="/")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["details"]["described_from"] == "config"
    assert report["inputs"][0]["shape"] == [-1, 12, 12, 3]
