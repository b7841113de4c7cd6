"""Honesty figures of `edgekit bench`, on three models of different sizes.

1. The harness's median invoke latency against an independent plain timing loop
   (``set_tensor``/``invoke``/``get_tensor`` on its own interpreter, in this process),
   alternating three rounds of each so that drift of the machine hits both alike.
2. Two identical variants (the same bytes under two names) in one interleaved run: the
   ratio of their medians should be 1.0.

Usage: python tools/bench_honesty.py [--duration 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def plain_loop(data: bytes, runs: int) -> float:
    """Median seconds of set_tensor/invoke/get_tensor on a fresh 1-thread interpreter."""
    from edgekit.runtime.backends import tflite_interpreter_class

    interpreter_class, _ = tflite_interpreter_class()
    interpreter = interpreter_class(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]["index"]
    x = np.random.default_rng(0).standard_normal(inp["shape"]).astype(inp["dtype"])
    for _ in range(max(20, runs // 10)):
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        interpreter.get_tensor(out)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        interpreter.get_tensor(out)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e9


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=2.0, help="harness seconds per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from runtime_bench import build_models

    from edgekit.bench.harness import BenchConfig, run_bench
    from edgekit.bench.report import summarize
    from edgekit.bundle import open_bundle
    from edgekit.keras_env import import_keras

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundles = build_models(import_keras(), root)
        print("| model | harness median | plain loop median | difference |")
        print("|---|---|---|---|")
        twins = {}
        for name, bundle in bundles.items():
            data = open_bundle(bundle).variant_bytes("tflite-fp32")
            path = root / f"{name}.tflite"
            path.write_bytes(data)
            twin = root / f"{name}-twin.tflite"
            twin.write_bytes(data)
            twins[name] = (path, twin)
            harness, plain = [], []
            for _ in range(args.rounds):
                doc = summarize(run_bench(BenchConfig(targets=(str(path),), modes=("invoke",), threads=(1,),
                                                      duration=args.duration, idle_seconds=0.0, meter="none")))
                row = doc["results"][0]["invoke"]
                harness.append(row["median_ms"] / 1e3)
                plain.append(plain_loop(data, max(200, row["runs"] // 5)))
            h, p = statistics.median(harness), statistics.median(plain)
            print(f"| {name} | {h * 1e6:.1f} us | {p * 1e6:.1f} us | {(h - p) / p * 100:+.1f}% ({(h - p) * 1e6:+.1f} us) |")
        print("\n| model | identical twin / original (median, interleaved) |")
        print("|---|---|")
        for name, (path, twin) in twins.items():
            doc = summarize(run_bench(BenchConfig(targets=(str(path), str(twin)), modes=("invoke",), threads=(1,),
                                                  duration=args.duration, idle_seconds=0.0, meter="none",
                                                  baseline=path.name)))
            print(f"| {name} | {doc['results'][1]['invoke']['ratio_to_baseline']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
