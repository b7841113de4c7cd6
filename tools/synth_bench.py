"""Wall time of `edgekit datasets synth` per task, and of a re-run that reuses the dataset.

Usage: .venv/bin/python tools/synth_bench.py [--samples 200] [--tasks kws,shapes,har,anomaly]
       [--no-espeak] [--keep DIR]

For each task: a fresh dataset with SAMPLES per class into a temp folder (or DIR/TASK),
timed end to end, with the time of each stage (espeak-ng calls, file writing), then
the same call again (which finds the complete dataset and reuses it). `--no-espeak`
times the tone stand-in (EDGEKIT_SPEECH=tones) instead of speech. Prints one row per task.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from edgekit.datasets import synth


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200, help="samples per class")
    parser.add_argument("--tasks", default=",".join(synth.task_names()))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-espeak", action="store_true", help="time the tone stand-in instead of espeak-ng")
    parser.add_argument("--keep", type=Path, help="write the datasets here (default: a temp folder, removed)")
    args = parser.parse_args()
    if args.no_espeak:
        os.environ["EDGEKIT_SPEECH"] = "tones"

    stages: dict[str, float] = {}

    def progress(items: Iterable, label: str, _total: int) -> Iterator:
        start = time.perf_counter()
        yield from items
        stages[label] = time.perf_counter() - start

    print(f"cores available: {len(os.sched_getaffinity(0))}, load average: "
          f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as scratch:
        root = args.keep or Path(scratch)
        print(f"{'task':8} {'samples':>8} {'files':>6} {'MB':>7} {'seconds':>8} {'re-run s':>9}  stages / generator")
        for task in args.tasks.split(","):
            stages.clear()
            out = root / task
            config = synth.make_config(task, samples=args.samples, seed=args.seed)
            start = time.perf_counter()
            result = synth.synthesize(task, out, config, force=True, progress=progress)
            seconds = time.perf_counter() - start
            start = time.perf_counter()
            again = synth.synthesize(task, out, config)
            rerun = time.perf_counter() - start
            assert again.reused
            size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
            detail = ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
            print(f"{task:8} {result.manifest['samples_total']:>8} {result.manifest['files']:>6} {size:>7.1f} "
                  f"{seconds:>8.2f} {rerun:>9.3f}  {detail}{'; ' if detail else ''}"
                  f"{result.manifest['generator']['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
