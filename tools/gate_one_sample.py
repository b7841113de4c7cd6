"""The accuracy gate and the runtime's choice where one validation sample decides.

Usage: .venv/bin/python tools/gate_one_sample.py [--out DIR] [--bad N]

Builds, reproducibly and without training (tests/support/gate_case.py), a one-layer
classifier and 136 labelled samples of which convert validates on 89, exactly one of them
on the decision boundary, where the int8 variant answers differently from the float model:
one sample = 1.12 points, more than the 1-point gate. Then runs, as a user would:

    edgekit convert MODEL -o one.edgekit --data one.npz --variants tflite-int8,onnx-fp32 --max-accuracy-drop 1
    edgekit run one.edgekit --source csv:rows.csv --limit 3

and prints the convert table, the exit code and `edgekit run`'s reason line ("model: ...").
With ``--bad N`` it also converts the same model with N boundary samples in the validation
split (a variant clearly worse than allowed) and prints the table and the one-line error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.gate_case import ONE_SAMPLE_COUNT, boundary_data, boundary_model  # noqa: E402


def edgekit(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, check=False)


def convert(model: Path, data: Path, bundle: Path) -> int:
    args = ["convert", str(model), "-o", str(bundle), "--data", str(data), "--variants", "tflite-int8,onnx-fp32",
            "--max-accuracy-drop", "1"]
    print(f"$ edgekit {' '.join(args)}")
    proc = edgekit(*args)
    print(proc.stdout.rstrip())
    errors = [line for line in proc.stderr.splitlines() if line.startswith("edgekit:")]
    for line in errors:
        print(line)
    print(f"(exit {proc.returncode})\n")
    return proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="keep the model, data and bundles here (default: a temp folder)")
    parser.add_argument("--bad", type=int, default=20, help="boundary samples of the clearly bad case (0: skip it)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="gate-one-sample-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    model = boundary_model(out / "boundary.keras")
    one = boundary_data(out / "one.npz", ONE_SAMPLE_COUNT, 1)
    print(f"{ONE_SAMPLE_COUNT} samples, {one['validation']} validated, {one['boundary']} on the boundary "
          f"(one sample = {100 / one['validation']:.2f} points)\n")
    if convert(model, out / "one.npz", out / "one.edgekit") != 0:
        return 1
    (out / "rows.csv").write_text("x0,x1,x2,x3\n0.001,0,0,0\n2,0,0,0\n-2,0,0,0\n")
    run = ["run", str(out / "one.edgekit"), "--source", f"csv:{out / 'rows.csv'}", "--limit", "3"]
    print(f"$ edgekit {' '.join(run)}")
    proc = edgekit(*run)
    reason = [line for line in proc.stderr.splitlines() if line.startswith("model:")]
    print("\n".join(reason) or proc.stderr.strip())
    print(f"(exit {proc.returncode})\n")
    if args.bad:
        bad = boundary_data(out / "bad.npz", ONE_SAMPLE_COUNT, args.bad)
        print(f"clearly bad: {bad['boundary']} of {bad['validation']} validation samples on the boundary\n")
        convert(model, out / "bad.npz", out / "bad.edgekit")
    print(f"files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
