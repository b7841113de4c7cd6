"""The device extras installed alone, as on a device: `pip install "edgekit_ml-VERSION.whl[litert]"`
(and `[onnx]`) into fresh virtual environments, from the wheel `make wheel` builds, on a
machine without TensorFlow. Each runs `edgekit run` on images, a WAV file and a CSV of sensor
rows by itself (Pillow decodes the images, the standard library the WAV), and names the
missing extra for a camera."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from tests.support.env import REPO

pytestmark = [pytest.mark.tf, pytest.mark.slow]

DEVICE_EXTRAS = ("litert", "onnx")


@pytest.fixture(scope="module")
def device_venvs(tmp_path_factory) -> dict:
    """One fresh venv per device extra, installed side by side from one wheel of this checkout."""
    root = tmp_path_factory.mktemp("device")
    wheels = root / "dist"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                            "--no-deps", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = wheels.glob("edgekit_ml-*-py3-none-any.whl")
    installs = {}
    for extra in DEVICE_EXTRAS:
        venv = root / extra
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        started = time.perf_counter()
        proc = subprocess.Popen([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                                 "--disable-pip-version-check", f"{wheel}[{extra}]"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        installs[extra] = (venv, proc, started)
    venvs = {}
    for extra, (venv, proc, started) in installs.items():
        _out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        print(f"[{extra}] installed in {time.perf_counter() - started:.0f} s (both at once)", file=sys.stderr)
        venvs[extra] = venv
    return venvs


@pytest.fixture(scope="module")
def device_venv(device_venvs):
    return device_venvs["litert"]


@pytest.fixture(scope="module")
def source_bundles(model_files, tmp_path_factory):
    """An image, a keyword (WAV) and a sensor (CSV) bundle, each with a tflite-fp32 and an
    onnx-fp32 variant, and a file for each: PNG and JPEG images of other sizes than the
    model's, a 2.5 s 16-bit WAV, 60 CSV rows under a header."""
    import keras
    from PIL import Image

    from edgekit.convert.run import ConvertConfig, convert

    root = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(5)
    images = root / "images"
    images.mkdir()
    for i in range(6):
        pixels = rng.integers(0, 256, (20 + 3 * i, 30 - 2 * i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"{i}.{'png' if i % 2 else 'jpg'}")
    image_contract = root / "image.yaml"
    image_contract.write_text("preprocess:\n  preset: image-0-1\n  height: 12\n  width: 12\n"
                              "postprocess:\n  kind: classification\nlabels: [a, b, c, d, e]\n")

    keras.utils.set_random_seed(11)
    inp = keras.Input((49, 10, 1))
    hidden = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    kws_model = root / "kws.keras"
    keras.Model(inp, keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(hidden))
                ).save(kws_model)
    kws_contract = root / "kws.yaml"
    kws_contract.write_text("preprocess: {kind: audio, sample_rate: 16000, clip_samples: 16000, feature: mfcc}\n"
                            "labels: [_silence_, 'yes', 'no']\npostprocess: {kind: classification}\n")
    clip = root / "clip.wav"
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(40000) / 16000) * 32767).astype("<i2")
    with wave.open(str(clip), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(tone.tobytes())

    inp = keras.Input((20, 3))
    imu_model = root / "imu.keras"
    keras.Model(inp, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inp))).save(imu_model)
    imu_contract = root / "imu.yaml"
    imu_contract.write_text("preprocess: {kind: sensor, channels: [ax, ay, az], window: 20, stride: 10}\n"
                            "labels: [idle, walk]\n")
    rows = root / "imu.csv"
    rows.write_text("ax,ay,az\n" + "".join(f"{a:.3f},{b:.3f},{c:.3f}\n" for a, b, c in rng.normal(size=(60, 3))))

    bundles = {}
    for name, model, contract in [("image", model_files.keras, image_contract), ("kws", kws_model, kws_contract),
                                  ("imu", imu_model, imu_contract)]:
        bundles[name] = root / f"{name}.edgekit"  # in this process: TensorFlow is loaded once
        convert(ConvertConfig(model=model, output=bundles[name], preprocess=contract,
                              variants=("tflite-fp32", "onnx-fp32"), allow_random_calibration=True))
    return {"image": (bundles["image"], f"images:{images}"), "wav": (bundles["kws"], f"wav:{clip}"),
            "csv": (bundles["imu"], f"csv:{rows}")}


def run(venv, *args, cwd=None):
    return subprocess.run([str(venv / "bin" / "edgekit"), *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=cwd)


def test_litert_extra_installs_no_tensorflow(device_venv):
    code = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
            "for m in ('tensorflow', 'keras', 'onnxruntime', 'ai_edge_litert', 'numpy', 'click', 'yaml', 'cv2',"
            " 'PIL', 'serial')}))")
    found = json.loads(subprocess.run([str(device_venv / "bin" / "python"), "-c", code], capture_output=True,
                                      text=True, check=True, cwd="/").stdout)
    assert found == {"tensorflow": False, "keras": False, "onnxruntime": False, "ai_edge_litert": True,
                     "numpy": True, "click": True, "yaml": True, "cv2": False, "PIL": True, "serial": True}


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


@pytest.mark.parametrize("extra", DEVICE_EXTRAS)
def test_each_device_extra_alone_runs_every_file_source(device_venvs, source_bundles, extra):
    venv = device_venvs[extra]
    backend = {"litert": "ai-edge-litert", "onnx": "onnxruntime"}[extra]
    expected = {"image": 6, "wav": None, "csv": 5}  # files; windows of 20 rows every 10 in 60 rows
    for kind, (bundle, source) in source_bundles.items():
        result = run(venv, "run", str(bundle), "--source", source, cwd="/")
        assert result.returncode == 0, f"{extra} {kind}: {result.stderr}"
        lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert lines and all("label" in line for line in lines), result.stdout[:500]
        if expected[kind] is not None:
            assert len(lines) == expected[kind], (kind, len(lines))
        summary = result.stderr.strip().splitlines()[-1]
        assert backend in summary and re.search(r"malformed (files|chunks|lines) 0,", summary), summary
        print(f"[{extra}] {kind}: {summary}", file=sys.stderr)


def test_a_camera_without_opencv_is_one_line_naming_the_extra(device_venv, source_bundles):
    bundle, _source = source_bundles["image"]
    result = run(device_venv, "run", str(bundle), "--source", "camera:0", cwd="/")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'pip install "edgekit-ml[camera]"' in lines[0], result.stderr
    assert result.stdout == ""


def test_onnx_extra_installs_neither_tensorflow_nor_opencv(device_venvs):
    code = ("import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None "
            "for m in ('tensorflow', 'cv2', 'ai_edge_litert', 'onnxruntime', 'PIL', 'serial')}))")
    found = json.loads(subprocess.run([str(device_venvs["onnx"] / "bin" / "python"), "-c", code],
                                      capture_output=True, text=True, check=True, cwd="/").stdout)
    assert found == {"tensorflow": False, "cv2": False, "ai_edge_litert": False, "onnxruntime": True,
                     "PIL": True, "serial": True}
