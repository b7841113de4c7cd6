"""Pruning figures (`make bench-prune`): the issue's targets measured on this machine.

Trains (or reuses) ic-resnet8, kws-dscnn and vww-mobilenet on their synthetic datasets,
then runs `edgekit prune` as a user would:

- 80% magnitude sparsity on ResNet-8 and DS-CNN: held-out accuracy lost (target <= 1 pt)
  and the gzip ratio of the fp32 TFLite file, unpruned over pruned (target >= 3.5x);
- 50% channel pruning on ResNet-8 and the MobileNet: TFLite latency, unpruned over
  pruned, measured by `edgekit bench` in one interleaved run (target >= 1.6x), and the
  accuracy lost (target <= 1.5 pts).

Prints a Markdown table (and writes it with the raw reports to OUT). Nothing is
asserted: the table says which targets were met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Fine-tuning: 20 epochs (the default) everywhere but the DS-CNN's sparsity run, whose 24k
# weights need 40 at 0.002 (at 20 epochs and the default rate it lost 4.9 points with its
# depthwise kernels pruned). Sparsity runs with the defaults (first and last layers and
# depthwise kernels dense, element-wise) and, for ResNet-8, in runs of 8 input channels
# (contiguous zeros in the TFLite file, which gzip codes more cheaply than scattered ones).
E20 = ("--epochs", "20")
RUNS = (
    # (recipe, kind, amount, target lost pts, extra options, label)
    ("ic-resnet8", "sparsity", 0.8, 1.0, E20, "defaults"),
    ("ic-resnet8", "sparsity", 0.8, 1.0, (*E20, "--block", "8"), "block 8"),
    ("kws-dscnn", "sparsity", 0.8, 1.0, ("--epochs", "40", "--learning-rate", "0.002"), "40 epochs at 0.002"),
    ("ic-resnet8", "channels", 0.5, 1.5, E20, "defaults"),
    ("vww-mobilenet", "channels", 0.5, 1.5, E20, "defaults"),
)
GZIP_TARGET = 3.5
LATENCY_TARGET = 1.6


def edgekit(*args: str, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with log.open("a") as handle:
        handle.write(f"$ edgekit {' '.join(args)}\n")
        handle.flush()
        proc = subprocess.run([sys.executable, "-m", "edgekit", *args], stdout=subprocess.PIPE, stderr=handle,
                              text=True, env=env, check=False)
        handle.write(proc.stdout)
    return proc


def train(recipe: str, out: Path) -> Path:
    folder = out / recipe
    model = folder / f"{recipe}.keras"
    if model.is_file() and (folder / "report.json").is_file():
        print(f"reusing {model}", file=sys.stderr)
        return model
    print(f"training {recipe} -> {folder}", file=sys.stderr)
    t0 = time.perf_counter()
    proc = edgekit("train", recipe, "-o", str(folder), log=out / f"{recipe}.log")
    if proc.returncode != 0:
        sys.exit(f"edgekit train {recipe} failed (exit {proc.returncode}); see {out / f'{recipe}.log'}")
    print(f"  trained in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("out/prune-figures"))
    parser.add_argument("--bench-seconds", type=float, default=3.0)
    parser.add_argument("--only", help="comma list of recipe:kind to run, e.g. ic-resnet8:channels")
    args = parser.parse_args()
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only.split(",")) if args.only else None
    rows, reports = [], {}
    for recipe, kind, amount, target, extra, label in RUNS:
        if wanted and f"{recipe}:{kind}" not in wanted and f"{recipe}:{kind}:{label}" not in wanted:
            continue
        model = train(recipe, out)
        tag = "" if label == "defaults" else "-" + "".join(c for c in label if c.isalnum())
        pruned = out / f"{recipe}.{kind}-{amount:g}{tag}.keras"
        command = ["prune", str(model), f"--{kind}", f"{amount:g}", *extra, "-o", str(pruned), "--json",
                   "--bench-seconds", f"{args.bench_seconds:g}"]
        print(f"edgekit {' '.join(command)}", file=sys.stderr)
        t0 = time.perf_counter()
        proc = edgekit(*command, log=out / f"{recipe}.{kind}{tag}.log")
        if proc.returncode != 0:
            rows.append(f"| {recipe} | {kind} {amount:g} ({label}) | failed (exit {proc.returncode}, see "
                        f"{out / f'{recipe}.{kind}{tag}.log'}) | | | | | |")
            continue
        report = json.loads(proc.stdout)
        reports[f"{recipe}:{kind}:{label}"] = report
        held = report["held_out"]
        lost = held["lost"]
        variants = report["tflite"]["variants"]
        bench = report["tflite"].get("bench") or {}
        fp32, int8 = variants.get("tflite-fp32", {}), variants.get("tflite-int8", {})
        if kind == "sparsity":
            figure = fp32.get("gzip_ratio")
            compression = fp32.get("pruned_compression")
            met = lost <= target and figure is not None and figure >= GZIP_TARGET
            shown = (f"fp32 gzip {figure:.2f}x smaller than the unpruned gzip, the file compresses {compression:.2f}x "
                     f"(int8 {int8.get('gzip_ratio', float('nan')):.2f}x); sparsity "
                     f"{report['pruning']['overall']:.1%} of all kernel weights")
        else:
            figure = (bench.get("tflite-fp32") or {}).get("ratio")
            int8_ratio = (bench.get("tflite-int8") or {}).get("ratio")
            met = lost <= target and figure is not None and figure >= LATENCY_TARGET
            shown = (f"fp32 {bench['tflite-fp32']['unpruned_ms']:.3f} -> {bench['tflite-fp32']['pruned_ms']:.3f} ms "
                     f"= {figure:.2f}x" if figure else "no latency") + \
                    (f"; int8 {int8_ratio:.2f}x" if int8_ratio else "")
        p, m = report["parameters"], report["macs"]
        rows.append(f"| {recipe} | {kind} {amount:g} ({label}) | {held['before']['value']:.2%} -> {held['after']['value']:.2%} "
                    f"({lost:+.2f} pts) | {p['before']:,} -> {p.get('nonzero_after', p['after']):,}"
                    f"{' non-zero' if 'nonzero_after' in p else ''} | {m['before']:,} -> {m['after']:,} | {shown} | "
                    f"{'met' if met else 'MISSED'} | {time.perf_counter() - t0:.0f} s |")
    table = ["| model | pruning | held-out accuracy (lost) | parameters | MACs | size / latency | target | time |",
             "|---|---|---|---|---|---|---|---|", *rows]
    text = "\n".join(table)
    print(text)
    (out / "figures.md").write_text(text + "\n")
    (out / "figures.json").write_text(json.dumps(reports, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
