"""Measured agreement of each audio front-end option with its reference, and of numpy with TensorFlow.

Usage: .venv/bin/python tools/frontend_parity.py [--json]

For every case of `tests.support.frontend_parity` (one spec option each, and the two audio
presets): the largest absolute difference of edgekit's numpy front end from the reference
implementation (tf.signal, librosa, scipy, the DCASE 2020 task 2 baseline's loop) and
from edgekit's TensorFlow front end, absolute and as a fraction of the reference's
feature range. The tests require both fractions <= 1e-4. Also how far the
speech-commands-mfcc preset is from TensorFlow's audio_ops MFCC, which it imitates
without matching exactly. Needs the dev and train extras.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import frontend_parity  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = [frontend_parity.measure(case) for case in frontend_parity.cases()]
    if args.json:
        print(json.dumps([dataclasses.asdict(f) for f in figures], indent=2))
        return
    print("| option | reference | features | range | max abs diff vs reference (of range) "
          "| max abs diff numpy vs TensorFlow (of range) |")
    print("|---|---|---|---|---|---|")
    for f in figures:
        ref = "-" if f.vs_reference is None else f"{f.vs_reference:.2e} ({f.fraction(f.vs_reference):.1e})"
        print(f"| {f.option} | {f.reference_name} | {f.shape[0]} x {f.shape[1]} | {f.feature_range:.3g} | {ref} "
              f"| {f.vs_tensorflow:.2e} ({f.fraction(f.vs_tensorflow):.1e}) |")
    largest, median, span = frontend_parity.audio_ops_difference()
    print(f"\nspeech-commands-mfcc vs TensorFlow audio_ops (AudioSpectrogram + Mfcc, not matched exactly): "
          f"max abs diff {largest:.3f} ({largest / span:.1e} of the range {span:.3g}), median {median:.3f}")
    worst = max(max(f.fraction(f.vs_reference) or 0.0, f.fraction(f.vs_tensorflow)) for f in figures)
    print(f"\nworst fraction of the feature range: {worst:.1e} (tolerance {frontend_parity.TOLERANCE:g})")


if __name__ == "__main__":
    main()
