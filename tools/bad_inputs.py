"""Run `edgekit inspect` on every bad input of the foundation issue and print what it said.

Usage: .venv/bin/python tools/bad_inputs.py [--markdown]

Builds a tiny Keras model with the real exporters, derives each bad input from it, runs
the CLI in a fresh process for each, and prints the exit code and the stderr line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_models(root: Path) -> dict[str, Path]:
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(8, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    model(np.zeros((1, 12, 12, 3), "float32"))
    out = {"tflite": root / "model.tflite", "onnx": root / "model.onnx"}
    with contextlib.redirect_stdout(sys.stderr):
        model.export(str(out["tflite"]), format="litert")
        model.export(str(out["onnx"]), format="onnx")
    return out


def make_bundle(root: Path, models: dict[str, Path]) -> Path:
    from edgekit.bundle import Manifest, Variant, write_bundle
    from edgekit.inspection import InspectConfig, inspect_path
    from edgekit.spec import TensorSpec

    variants = []
    for fmt, path in models.items():
        report = inspect_path(InspectConfig(path))
        variants.append(Variant(f"{fmt}-fp32", fmt, f"models/{fmt}-fp32.{fmt}", "fp32",
                                tuple(TensorSpec.from_dict(t) for t in report["inputs"]),
                                tuple(TensorSpec.from_dict(t) for t in report["outputs"])))
    path = root / "good.edgekit"
    write_bundle(path, Manifest(name="good", variants=tuple(variants)),
                 {v.file: models[v.format].read_bytes() for v in variants})
    return path


def edit_zip(src: Path, dst: Path, **changes: bytes) -> Path:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, changes.get(name.replace("/", "__").replace(".", "_").replace("-", "_"), zin.read(name)))
    return dst


def cases(root: Path) -> list[tuple[str, list[str]]]:
    models = make_models(root)
    bundle = make_bundle(root, models)
    tflite = models["tflite"].read_bytes()
    onnx = models["onnx"].read_bytes()

    def file(name: str, data: bytes) -> str:
        path = root / name
        path.write_bytes(data)
        return str(path)

    flipped = bytearray(tflite)
    flipped[0] ^= 0xFF
    (root / "folder").mkdir()
    return [
        ("missing path", [str(root / "absent.tflite")]),
        ("directory where a file is expected", [str(root / "folder")]),
        ("zero-byte .tflite", [file("empty.tflite", b"")]),
        ("zero-byte .onnx", [file("empty.onnx", b"")]),
        ("truncated .tflite", [file("truncated.tflite", tflite[: len(tflite) // 2])]),
        ("truncated .onnx", [file("truncated.onnx", onnx[: len(onnx) // 2])]),
        ("random bytes as .tflite", [file("random.tflite", os.urandom(4096))]),
        ("random bytes as .onnx", [file("random.onnx", os.urandom(4096))]),
        ("random bytes as .keras", [file("random.keras", os.urandom(4096))]),
        ("random bytes as .h5", [file("random.h5", os.urandom(4096))]),
        (".tflite with one byte flipped (root offset)", [file("flipped.tflite", bytes(flipped))]),
        ("bundle whose manifest is not JSON", [str(edit_zip(bundle, root / "notjson.edgekit",
                                                            manifest_json=b"{not json"))]),
        ("bundle whose model file was swapped", [str(edit_zip(bundle, root / "swapped.edgekit",
                                                              models__tflite_fp32_tflite=tflite[::-1]))]),
        ("truncated bundle", [file("truncated.edgekit", bundle.read_bytes()[:-300])]),
        ("zero-byte bundle", [file("empty.edgekit", b"")]),
        ("unknown-schema bundle", [str(edit_zip(bundle, root / "schema9.edgekit", manifest_json=json.dumps(
            {**json.loads(zipfile.ZipFile(bundle).read("manifest.json")), "schema_version": 9}).encode()))]),
        ("unsupported file type", [file("model.pt", b"torch")]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edgekit-bad-") as tmp:
        root = Path(tmp)
        rows = []
        for label, argv in cases(root):
            proc = subprocess.run([sys.executable, "-m", "edgekit", "inspect", *argv], capture_output=True,
                                  text=True, check=False)
            lines = [line for line in proc.stderr.splitlines() if line.strip()]
            line = (lines[0] if len(lines) == 1 else f"{len(lines)} LINES: " + " | ".join(lines)).replace(tmp, "$TMP")
            if "Traceback" in proc.stderr:
                line = "TRACEBACK: " + line
            rows.append((label, proc.returncode, line))
    for label, code, line in rows:
        if args.markdown:
            print(f"| {label} | {code} | `{line}` |")
        else:
            print(f"{label}\n  exit {code}: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
