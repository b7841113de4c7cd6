"""Confidence intervals and the noise-aware gate rule, in numpy alone.

Every figure measured on a finite set of samples carries noise: on 89 samples one
disagreement is 1.12 points. A gate that compares the bare figure with its budget fails
on that one sample. The rule here: a drop *exceeds* its budget only when the lower end
of its 95% confidence interval is above the budget, i.e. when the data show, beyond
noise, that the variant is worse than allowed. The interval of a paired difference of
two proportions (the float model and the variant judged on the same samples) is
Newcombe's hybrid score interval (method 10 of Newcombe, Stat. Med. 1998), which is
sound for the small discordant counts gates see; the interval of one proportion (how
often a variant disagrees with the float model) is Wilson's score interval; any other
figure (ROC-AUC, RMSE) gets a seeded paired percentile bootstrap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from statistics import NormalDist
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RULE = ("fails only when the lower end of the drop's 95% confidence interval exceeds the budget "
        "(Newcombe's paired interval for accuracy, Wilson's for disagreement, a paired bootstrap otherwise)")


def _z(confidence: float) -> float:
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval of a proportion ``successes / n`` (0..1); ``(0, 1)`` for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference_interval(first: np.ndarray, second: np.ndarray,
                               confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``mean(first) - mean(second)`` of two paired boolean outcomes and its interval.

    Newcombe's hybrid score interval for a difference of paired proportions (method 10).

    Returns:
        ``(difference, low, high)`` as proportions (-1..1).
    """
    first = np.asarray(first, bool)
    second = np.asarray(second, bool)
    n = len(first)
    if n == 0:
        return 0.0, -1.0, 1.0
    a = int(np.sum(first & second))
    b = int(np.sum(first & ~second))
    c = int(np.sum(~first & second))
    d = n - a - b - c
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, confidence)
    l2, u2 = wilson_interval(a + c, n, confidence)
    product = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(product) if product > 0 else 0.0
    phi = max(phi, 0.0)  # Newcombe: a negative correlation is taken as zero
    diff = p1 - p2
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return diff, max(-1.0, diff - delta), min(1.0, diff + epsilon)


def bootstrap_interval(statistic: Callable[..., float], *arrays: np.ndarray, resamples: int = 1000,
                       confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)``, resampling rows of all
    arrays together (paired); seeded, so the same data give the same interval.

    Resamples where the statistic is undefined (NaN, e.g. ROC-AUC of one class) are skipped;
    ``(nan, nan)`` when none is defined.
    """
    n = len(arrays[0])
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        index = rng.integers(0, n, n)
        value = statistic(*(np.asarray(a)[index] for a in arrays))
        if value is not None and math.isfinite(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(values, [tail, 100.0 - tail])
    return float(low), float(high)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve of `scores` for the `positive` samples (Mann-Whitney U with
    tie correction: ties count half); None without both classes."""
    positive = np.asarray(positive).astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    # average ranks over ties, vectorized (the bootstrap interval computes this a thousand times)
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = (ends - (counts - 1) / 2.0)[inverse.reshape(-1)]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


@dataclasses.dataclass(frozen=True)
class Drop:
    """A fidelity drop with its noise: the figure a gate judges.

    Attributes:
        value: the measured drop, in the figure's unit (points for accuracy).
        low, high: its 95% confidence interval.
        resolution: what one sample changes the figure by (points), None where a sample
            has no fixed weight (bootstrap figures).
        method: how the interval was computed.
    """

    value: float
    low: float
    high: float
    resolution: float | None
    method: str

    def exceeds(self, budget: float) -> bool:
        """True when the drop is above `budget` beyond noise (the interval's lower end is)."""
        return self.low > budget

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": [self.low, self.high], "resolution": self.resolution,
                "method": self.method}

    def to_metrics(self) -> dict[str, Any]:
        """The keys a variant's metrics carry next to ``drop_pts`` (convert's report, the manifest)."""
        return {"drop_ci95": [self.low, self.high], "drop_resolution_pts": self.resolution,
                "drop_method": self.method}

    def describe(self, unit: str = " points") -> str:
        """``0.22 points (95% CI -0.4..0.9, 1 sample = 0.22 points)``: the figure with its noise."""
        text = f"{self.value:.2f}{unit}"
        if not self.method:
            return text + " (no interval recorded)"
        detail = f"95% CI {self.low:.1f}..{self.high:.1f}"
        if self.resolution is not None:
            detail += f", 1 sample = {self.resolution:.2f}{unit}"
        return f"{text} ({detail})"


#: What a variant's metrics hold when it has no drop figure (generation, no basis).
NO_DROP_METRICS: dict[str, Any] = {"drop_ci95": None, "drop_resolution_pts": None, "drop_method": None}


def drop_from_metrics(metrics: Any) -> Drop | None:
    """The `Drop` a variant's metrics record (convert's report or a manifest), or None when
    it has no drop figure. Metrics written before intervals were recorded give a Drop whose
    interval is the bare figure (``method`` empty), so the old rule applies to them."""
    value = metrics.get("drop_pts") if hasattr(metrics, "get") else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    ci = metrics.get("drop_ci95")
    resolution = metrics.get("drop_resolution_pts")
    resolution = float(resolution) if isinstance(resolution, (int, float)) and not isinstance(resolution, bool) else None
    if (isinstance(ci, (list, tuple)) and len(ci) == 2
            and all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in ci)):
        return Drop(float(value), float(ci[0]), float(ci[1]), resolution, str(metrics.get("drop_method") or "interval"))
    return Drop(float(value), float(value), float(value), resolution, "")


def accuracy_drop(reference_correct: np.ndarray, variant_correct: np.ndarray) -> Drop:
    """The loss in accuracy (points) of a variant judged on the same labelled samples as the
    reference, with Newcombe's paired interval."""
    n = len(reference_correct)
    diff, low, high = paired_difference_interval(reference_correct, variant_correct)
    return Drop(100.0 * diff, 100.0 * low, 100.0 * high, 100.0 / n if n else None, "newcombe-paired")


def disagreement(agree: np.ndarray) -> Drop:
    """How often (points) a variant's answer differs from the float model's, with Wilson's
    interval."""
    agree = np.asarray(agree, bool)
    n = len(agree)
    misses = int(n - np.sum(agree))
    low, high = wilson_interval(misses, n)
    return Drop(100.0 * misses / n if n else 0.0, 100.0 * low, 100.0 * high, 100.0 / n if n else None, "wilson")


def bootstrap_drop(statistic: Callable[..., float], *arrays: np.ndarray, seed: int = 0) -> Drop:
    """Any paired figure: `statistic` over rows of `arrays` (already the drop), with a seeded
    paired bootstrap interval."""
    value = float(statistic(*arrays))
    low, high = bootstrap_interval(statistic, *arrays, seed=seed)
    if not math.isfinite(low):
        low = high = value
    return Drop(value, low, high, None, "paired-bootstrap")
