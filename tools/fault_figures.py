"""Fault figures: how long `edgekit run` takes to recover from injected faults.

Usage: .venv/bin/python tools/fault_figures.py [--repeats 5] [--timeout 5] [--backoff-max 8]
       [--outage 2-10] [--rate 1000] [--out DIR]

Runs the fault scenarios of tests/e2e/test_faults.py, each `--repeats` times, every one a real
`edgekit run` process (no TensorFlow in it) on tiny random-weight bundles made by the real
converter:

- camera server SIGKILL: an MJPEG-over-HTTP server (tests/support/mjpeg.py, its own process) is
  killed mid-stream and restarted on the same port `outage` seconds later;
- camera server frozen: it is stopped (SIGSTOP: the connection stays open and silent)
  for `outage` seconds, then killed and restarted, so the source's watchdog must notice;
- MQTT broker stopped: a real mosquitto (persistence on) publishing-to at QoS 1 with
  buffer=1000 gets SIGTERM and is started again on the same port `outage` seconds later;
- MQTT broker hung: SIGSTOP for a second (results pile up unacknowledged in the
  client), then SIGKILL, restarted `outage` seconds after the freeze; buffer=200.

The outages are spread evenly over `--outage LO-HI` across the repeats, so the restart
falls at different points of the reconnect backoff. Reported per scenario (min / median /
max): the time from the fault to the runtime's warning about it ("detected"; the MQTT
client notices a hung broker only when it dies, or after 1.5 keepalives), and from
the restarted server accepting connections to the first result made after it ("recovered":
on the run's stdout for the camera, at a subscriber that reconnects within 0.2 s for the
broker). The camera source uses ``?timeout=`` and ``backoff_max=`` as given (default:
the source's own defaults, 5 and 8 s); the MQTT sink's backoff is fixed at 1 to 8 s.
Each run's invariants are checked as the tests check them and a broken one is printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.support: the fault scenarios, the MJPEG server, the broker and subscriber

from tests.support.faults import broker_fault, build_bundles, camera_fault, mosquitto_binary  # noqa: E402


def spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f} s"


def outages(text: str, count: int) -> list[float]:
    low, _, high = text.partition("-")
    lo, hi = float(low), float(high or low)
    if count == 1:
        return [lo]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=5.0, help="the camera source's ?timeout= (s)")
    parser.add_argument("--backoff-max", type=float, default=8.0, help="the camera source's ?backoff_max= (s)")
    parser.add_argument("--outage", default="2-10", help="seconds from fault to restart, LO-HI (spread evenly)")
    parser.add_argument("--rate", type=float, default=1000.0, help="sensor rows per second (10 rows per result)")
    parser.add_argument("--only", choices=["camera", "broker"], help="run one family of faults")
    parser.add_argument("--out", type=Path, help="keep the bundles and broker files here (default: a temp dir)")
    args = parser.parse_args()

    work = args.out or Path(tempfile.mkdtemp(prefix="edgekit-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(f"building bundles in {work} ...", file=sys.stderr)
    bundles = build_bundles(work / "bundles")
    rows: list[tuple[str, list[float], list[float], str]] = []
    problems: list[str] = []
    spread_outages = outages(args.outage, args.repeats)

    if args.only in (None, "camera"):
        for how in ("kill", "freeze"):
            detected, recovered = [], []
            for outage in spread_outages:
                if how == "freeze":  # the watchdog must fire before the server is killed
                    outage = max(outage, args.timeout + 1.0)
                fault = camera_fault(bundles.image, how, timeout=args.timeout, backoff_max=args.backoff_max,
                                     outage=outage)
                print(f"  outage {outage:.1f} s: {fault.report()}")
                detected.append(fault.detected_s)
                recovered.append(fault.recovery_s)
                if fault.returncode != 0 or fault.recovery_s > fault.timeout + fault.backoff_max:
                    problems.append(fault.report())
            label = "camera server SIGKILL" if how == "kill" else "camera server frozen (SIGSTOP)"
            rows.append((label, detected, recovered, f"timeout={args.timeout:g}&backoff_max={args.backoff_max:g}"))

    if args.only in (None, "broker"):
        binary = mosquitto_binary()
        if binary is None:
            print("skipping the broker faults: no mosquitto (apt-get install mosquitto)", file=sys.stderr)
        for how, buffer in (("stop", 1000), ("hang", 200)) if binary else ():
            detected, recovered = [], []
            notes = []
            for number, outage in enumerate(spread_outages):
                per_second = args.rate / 10
                total = int(per_second * (1.5 + outage + 8.0 + 2.0))  # past the sink's longest backoff
                root = work / f"broker-{how}-{number}"
                shutil.rmtree(root, ignore_errors=True)
                fault = broker_fault(bundles.sensor, root, binary, how, buffer=min(buffer, total), rate=args.rate,
                                     total=total, outage=outage)
                print(f"  outage {outage:.1f} s: {fault.report()}")
                detected.append(fault.detected_s)
                recovered.append(fault.recovery_s)
                notes.append(f"{fault.sink_dropped}/{fault.total}")
                ok = (fault.returncode == 0 and len(fault.delivered) + fault.sink_dropped == fault.total
                      and fault.delivered == sorted(fault.delivered)
                      and all(s <= fault.last_before_restart for s in fault.duplicates)
                      and fault.seconds < fault.expected_seconds + 1.0)
                if not ok:
                    problems.append(fault.report())
            label = "MQTT broker stopped (SIGTERM)" if how == "stop" else "MQTT broker hung, then SIGKILL"
            rows.append((label, detected, recovered, f"qos=1&buffer={buffer}; not delivered {', '.join(notes)}"))

    outage_text = ", ".join(f"{o:.1f}" for o in spread_outages)
    print(f"\nRecovery after injected faults, {args.repeats} runs each, outages {outage_text} s "
          f"({time.monotonic() - started:.0f} s in all):\n")
    print(f"| {'fault':32} | {'detected (min / median / max)':30} | {'results again (min / median / max)':34} "
          "| settings |")
    print(f"|{'-' * 34}|{'-' * 32}|{'-' * 36}|----------|")
    for label, detected, recovered, settings in rows:
        print(f"| {label:32} | {spread(detected):30} | {spread(recovered):34} | {settings} |")
    if problems:
        print("\nruns that broke an invariant:", *problems, sep="\n  ")
    if args.out is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
