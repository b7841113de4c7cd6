"""Comparing what edgekit computed on two machines (tools/arm_parity.py: x86 against an
emulated arm64 or armv7 install), and the table it prints.

The rules (README, "arm64 and 32-bit Raspberry Pi OS"): labels identical; integer
(quantized) output tensors within one quantization step; float outputs within `rtol`
(1e-5) of the tensor's largest magnitude. Scores in JSON results are rounded to 6
decimals, so their comparison adds that rounding (`JSON_ATOL`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

RTOL = 1e-5
JSON_ATOL = 1e-6  # results round scores to 6 decimals


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str  # the measured figure that decided it

    def __str__(self) -> str:
        return ("ok" if self.ok else "MISMATCH") + (f" ({self.detail})" if self.detail else "")


def compare_tensors(a: np.ndarray, b: np.ndarray, *, rtol: float = RTOL) -> Verdict:
    """Integer tensors: at most one step apart; float tensors: within `rtol` of the largest magnitude."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return Verdict(False, f"{a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}")
    if a.size == 0:
        return Verdict(True, "empty")
    if a.dtype.kind in "iub":
        steps = int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64))))
        return Verdict(steps <= 1, f"max {steps} step{'s' if steps != 1 else ''}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        same = bool(np.array_equal(a, b, equal_nan=True))
        return Verdict(same, "non-finite values " + ("equal" if same else "differ"))
    scale = float(max(np.max(np.abs(a)), np.max(np.abs(b))))
    diff = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    rel = diff / scale if scale > 0 else diff
    return Verdict(rel <= rtol, f"max rel {rel:.1e}")


def _scores(result: dict[str, Any]) -> list[float]:
    out = [] if result.get("score") is None else [float(result["score"])]
    for entry in result.get("top_k") or ():
        out.append(float(entry["score"] if isinstance(entry, dict) else entry[1]))
    for key in ("anomaly_score",):
        if result.get(key) is not None:
            out.append(float(result[key]))
    out.extend(float(v) for v in result.get("values") or ())
    return out


def compare_results(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]], *, step: float | None,
                    rtol: float = RTOL) -> Verdict:
    """Two runs' JSON results: same count, identical labels, scores within one `step`
    (quantized outputs) or `rtol` relative (float outputs), plus the JSON rounding."""
    if len(a) != len(b):
        return Verdict(False, f"{len(a)} vs {len(b)} results")
    if not a:
        return Verdict(False, "no results")
    labels_a = [r.get("label") for r in a]
    labels_b = [r.get("label") for r in b]
    if labels_a != labels_b:
        first = next(i for i, (x, y) in enumerate(zip(labels_a, labels_b, strict=True)) if x != y)
        return Verdict(False, f"label #{first}: {labels_a[first]!r} vs {labels_b[first]!r}")
    worst = 0.0  # in units of the allowed difference
    for ra, rb in zip(a, b, strict=True):
        sa, sb = _scores(ra), _scores(rb)
        if len(sa) != len(sb):
            return Verdict(False, f"{len(sa)} vs {len(sb)} scores in one result")
        for x, y in zip(sa, sb, strict=True):
            allowed = (step if step is not None else rtol * max(abs(x), abs(y))) + JSON_ATOL
            worst = max(worst, abs(x - y) / allowed)
    unit = "of a step" if step is not None else "of the tolerance"
    return Verdict(worst <= 1.0, f"{len(a)} labels equal, scores at {worst:.2f} {unit}")


def table(rows: Sequence[Sequence[str]], header: Sequence[str] = ("check", "x86", "arm64", "verdict")) -> str:
    """A fixed-width text table."""
    cells = [list(map(str, header)), *[list(map(str, r)) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
