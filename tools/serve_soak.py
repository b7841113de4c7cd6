"""edgekit serve under hot updates: the swap gap, lost inputs, refusals, and memory.

    .venv/bin/python tools/serve_soak.py --minutes 5 --every 10     # make serve-soak
    .venv/bin/python tools/serve_soak.py --minutes 30 --every 60    # the issue's 30-minute run

Starts `edgekit serve APP_DIR` (a real process) on a steady source (a CSV of sensor rows
at --rate rows per second, replayed; the tiny ONNX model of the signing tests makes one
result per 4 rows), and every --every seconds switches APP_DIR/current as `edgekit deploy`
does: alternately to the other good release, and every third time to a corrupt one (which
must be refused while the running model keeps serving). Prints the longest gap between two
results around swaps and refusals against the inference period, the inputs lost (results'
sequence numbers and source rows), and serve's resident memory (RSS) after each update.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.bundle.test_signing import make_bundle  # noqa: E402 - the tiny real bundle the tests use
from tests.support.bundles import rewrite  # noqa: E402
from tests.support.releases import release, switch  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--every", type=float, default=10.0, help="seconds between updates")
    parser.add_argument("--rate", type=float, default=40.0, help="source rows per second (4 rows a result)")
    args = parser.parse_args()
    period = 4 / args.rate
    root = Path(tempfile.mkdtemp(prefix="serve-soak-"))
    app = root / "app"
    good = [release(app, make_bundle(root / f"r{i}.edgekit", f"r{i}")) for i in range(2)]
    bad = release(app, rewrite(root / "r0.edgekit", root / "bad.edgekit",
                               members={"models/onnx-fp32.onnx": b"\x08\x07" * 100}))
    switch(app, good[0])
    rows = root / "rows.csv"
    rows.write_text("a,b\n" + "".join(f"{i},{i % 3}\n" for i in range(40)))
    results = root / "results.jsonl"
    env = {**os.environ, "XDG_CACHE_HOME": str(root / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "serve", str(app), "--source",
                             f"csv:{rows}?loop=1&rate={args.rate:g}", "--sink", f"jsonl:{results}", "--port", "0",
                             "--skip-self-check"], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        while not (app / "serve.json").exists() or not json.loads((app / "serve.json").read_text())["ready"]:
            time.sleep(0.1)
            if proc.poll() is not None:
                print(proc.stderr.read() if proc.stderr else "", file=sys.stderr)
                return 1
        time.sleep(2.0)
        rss = [("start", rss_mib(proc.pid))]
        events: list[tuple[float, str]] = []
        end = time.time() + args.minutes * 60
        n = 0
        while time.time() + args.every < end:
            time.sleep(args.every)
            n += 1
            kind = "refused" if n % 3 == 0 else "taken"
            target = bad if kind == "refused" else good[(n - n // 3) % 2]
            events.append((time.time(), kind))
            switch(app, target)
            deadline = time.time() + 30
            while time.time() < deadline:
                last = json.loads((app / "serve.json").read_text())["last_update"] or {}
                if last.get("release") == target and last.get("time", 0) >= events[-1][0]:
                    break
                time.sleep(0.05)
            if last.get("outcome") != kind:
                print(f"update {n}: expected {kind}, got {last}", file=sys.stderr)
                return 1
            rss.append((f"after update {n} ({kind})", rss_mib(proc.pid)))
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    stamps = [r["timestamp"] for r in lines]
    sequence_ok = [r["sequence"] for r in lines] == list(range(len(lines)))
    ends = [int(r["source"].rsplit(":", 1)[1]) - 2 for r in lines]
    lost_rows = sum(((b - a) % 40) // 4 - 1 for a, b in zip(ends, ends[1:], strict=False) if (b - a) % 40 != 4)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]

    def gap_near(when: float, window: float = 2.0) -> float:
        near = [g for g, t in zip(gaps, stamps[1:], strict=False) if when <= t <= when + window + args.every / 2]
        return max(near) if near else float("nan")

    near_updates = {i for i, t in enumerate(stamps[1:]) if any(e <= t <= e + 2.0 + args.every / 2 for e, _ in events)}
    quiet = [g for i, g in enumerate(gaps) if i not in near_updates]
    quiet_max = max(quiet) if quiet else float("nan")
    taken = [gap_near(t) for t, k in events if k == "taken"]
    refused = [gap_near(t) for t, k in events if k == "refused"]
    print(f"serve exit code {proc.returncode}; {len(lines)} results over {args.minutes:g} min, "
          f"{len(taken)} updates taken, {len(refused)} refused")
    print(f"inference period {period * 1e3:.0f} ms; longest gap between two results: overall {max(gaps) * 1e3:.0f} ms, "
          f"after a taken update {max(taken) * 1e3:.0f} ms (median over updates {sorted(taken)[len(taken) // 2] * 1e3:.0f}), "
          f"after a refused one {max(refused) * 1e3:.0f} ms, away from updates {quiet_max * 1e3:.0f} ms")
    print(f"inputs lost: {lost_rows} rows; sequence numbers continuous: {sequence_ok}")
    print("RSS MiB: " + ", ".join(f"{name} {value:.1f}" for name, value in rss))
    print(f"RSS change from start to the end: {rss[-1][1] - rss[0][1]:+.1f} MiB; from update 1 to the end: "
          f"{rss[-1][1] - rss[1][1]:+.1f} MiB" if len(rss) > 1 else "")
    refusals = [line for line in err.splitlines() if "refused" in line]
    print(f"log: {refusals[0] if refusals else 'no refusal line'}")
    return 0 if proc.returncode == 0 and sequence_ok and lost_rows == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
