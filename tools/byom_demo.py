"""Bring your own model: a .tflite and an .onnx made outside edgekit, bundled and run.

Usage: .venv/bin/python tools/byom_demo.py [-o DIR]

Builds a small keyword-spotting model the way someone outside edgekit would (a tf.signal
MFCC front end, a Keras CNN, the TFLite converter and tf2onnx's SavedModel route; see
`tests/support/foreign_kws.py`), then runs the commands a user runs, each in a fresh
process from DIR (default: a temporary folder), and prints each command line with what
it printed (stdout, then stderr) and its exit code.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def commands() -> list[str]:
    return [
        "edgekit inspect kws.tflite",
        "edgekit run kws.tflite --source wav:mixed.wav",
        "edgekit convert kws.tflite --preprocess kws.yaml --labels labels.txt -o kws_asis.edgekit",
        "edgekit convert kws.tflite --preprocess kws.yaml --labels labels.txt --data data -o kws_tflite.edgekit",
        "edgekit run kws_tflite.edgekit --source wav:mixed.wav --variant tflite-fp32",
        "edgekit run kws_tflite.edgekit --source wav:mixed.wav",
        "edgekit convert kws.onnx --preprocess kws.yaml --labels labels.txt --data data -o kws_onnx.edgekit",
        "edgekit run kws_onnx.edgekit --source wav:mixed.wav --variant onnx-fp32",
        "edgekit run kws_onnx.edgekit --source wav:mixed.wav",
        "edgekit eval kws.tflite --data test",
        "edgekit eval kws_tflite.edgekit --data test -o eval_tflite",
        "edgekit eval kws_onnx.edgekit --data test -o eval_onnx",
        "edgekit convert kws.tflite --preprocess kws.yaml --variants onnx-int8 --data data -o x.edgekit",
        "edgekit convert cut.tflite --preprocess kws.yaml --data data -o cut.edgekit",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    root = args.output or Path(tempfile.mkdtemp(prefix="byom-"))
    root.mkdir(parents=True, exist_ok=True)

    from tests.support.foreign_kws import CLASSES, build, run_directly

    kws = build(root, test_per_class=30)
    data = kws.tflite.read_bytes()
    (root / "cut.tflite").write_bytes(data[: len(data) // 2])  # a copy cut short
    print(f"# in {root}: kws.tflite ({kws.tflite.stat().st_size} bytes), kws.onnx ({kws.onnx.stat().st_size} bytes),"
          f" kws.yaml, labels.txt, data/ ({sum(1 for _ in kws.data.rglob('*.wav'))} WAV clips), test/ "
          f"({sum(1 for _ in kws.test.rglob('*.wav'))} other clips, for eval), mixed.wav")
    for model in (kws.tflite, kws.onnx):
        scores = run_directly(model, kws.wavs["mixed"])
        print(f"# {model.name} run directly (tf.signal MFCC + its own interpreter) on mixed.wav: "
              + ", ".join(f"{c} {s:.6f}" for c, s in zip(CLASSES, scores, strict=True)))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for line in commands():
        argv = shlex.split(line)
        proc = subprocess.run([sys.executable, "-m", "edgekit", *argv[1:]], cwd=root, env=env, capture_output=True,
                              text=True, check=False)
        print(f"\n$ {line}")
        if proc.stdout.strip():
            print(proc.stdout.rstrip())
        if proc.stderr.strip():
            print("\n".join(f"[stderr] {x}" for x in proc.stderr.rstrip().splitlines() if "XNNPACK" not in x))
        print(f"[exit {proc.returncode}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
