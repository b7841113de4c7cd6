"""Training figures for every recipe on its synthetic dataset: seconds per epoch, held-out
accuracy (or ROC-AUC), and, with --export, the int8 TFLite figure against the float model.

Each recipe runs `edgekit train` in a fresh process (as a user would) into OUT/RECIPE;
the datasets are made once in OUT/data-TASK-... and reused.

    python tools/train_bench.py [-o out/bench/train] [--recipes kws-dscnn,har-cnn1d] [--epochs N] [--export]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edgekit.train.recipes import list_recipes  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("out/bench/train"))
    parser.add_argument("--recipes", help="comma list (default: all)")
    parser.add_argument("--epochs", type=int, help="override every recipe's epochs")
    parser.add_argument("--export", action="store_true", help="also convert (int8 TFLite + ONNX) behind the gate")
    args = parser.parse_args()
    recipes = list_recipes()
    if args.recipes:
        wanted = args.recipes.split(",")
        recipes = [r for r in recipes if r.name in wanted]
    rows = []
    for recipe in recipes:
        out = args.output / recipe.name
        data = args.output / f"data-{recipe.values['data']['synth']}-{recipe.name}"
        command = [sys.executable, "-m", "edgekit", "-q", "train", recipe.name, "-o", str(out)]
        if args.epochs:
            command += ["--epochs", str(args.epochs)]
        if args.export:
            command += ["--export", str(out / f"{recipe.name}.edgekit")]
        if data.is_dir():
            command += ["--data", str(data)]
        started = time.perf_counter()
        proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        wall = time.perf_counter() - started
        if proc.returncode not in (0, 4):
            print(f"{recipe.name}: exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        if not data.exists() and (out / "data").is_dir():
            (out / "data").rename(data)  # reuse the synthetic data on the next run
        report = json.loads((out / "report.json").read_text())
        test, training = report["test"], report["training"]
        row = {"recipe": recipe.name, "parameters": report["model"]["parameters"],
               "train_samples": report["data"]["train"]["samples"], "epochs": training["epochs_run"],
               "s_per_epoch": round(training["seconds_per_epoch"], 2), "train_s": round(training["seconds"], 1),
               "wall_s": round(wall, 1)}
        if "accuracy" in test:
            row["heldout"] = f"accuracy {test['accuracy']:.2%}"
        else:
            row["heldout"] = f"ROC-AUC {test['roc_auc']:.4f}"
        export = report.get("export")
        if export:
            int8 = export["variants"].get("tflite-int8", {})
            metric = next((k for k in ("accuracy", "roc_auc") if k in int8), None)
            row["int8"] = (f"{metric} {int8[metric]:.2%} (drop {int8.get('drop_pts', float('nan')):.2f} pts, "
                           f"gate {'passed' if export['gate_passed'] else 'FAILED'})" if metric else "-")
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ["recipe", "parameters", "train_samples", "epochs", "s_per_epoch", "train_s", "wall_s", "heldout", "int8"]
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "-")) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
