"""Task figures with their 95% confidence intervals (numpy only).

Proportions (accuracy, precision, recall) get Wilson's score interval; figures that are
not a count over a fixed denominator (F1, ROC-AUC, RMSE, MAE) get the seeded percentile
bootstrap of `edgekit.stats`, so the same data always give the same interval.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from edgekit import stats
from edgekit.stats import bootstrap_interval, wilson_interval

SEED = 0  # the bootstrap's: the same predictions give the same intervals


@dataclasses.dataclass(frozen=True)
class Figure:
    """One measured figure and its 95% confidence interval.

    Attributes:
        value: the point estimate (None where undefined, e.g. precision of a class never
            predicted).
        low, high: the interval (None where undefined).
        method: ``wilson`` or ``bootstrap``.
        n: the samples the figure is computed on (for a proportion, its denominator).
    """

    value: float | None
    low: float | None
    high: float | None
    method: str
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {"value": _round(self.value), "ci95": [_round(self.low), _round(self.high)], "method": self.method,
                "n": self.n}


def _round(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 6)


def proportion(successes: int, n: int) -> Figure:
    """``successes / n`` with Wilson's interval; undefined for n = 0."""
    if n == 0:
        return Figure(None, None, None, "wilson", 0)
    low, high = wilson_interval(successes, n)
    return Figure(successes / n, low, high, "wilson", n)


def bootstrapped(statistic: Any, *arrays: np.ndarray) -> Figure:
    """``statistic(*arrays)`` with the seeded paired bootstrap interval over rows."""
    n = len(arrays[0])
    value = float(statistic(*arrays)) if n else math.nan
    if not math.isfinite(value):
        return Figure(None, None, None, "bootstrap", n)
    low, high = bootstrap_interval(statistic, *arrays, seed=SEED)
    if not math.isfinite(low):
        low = high = value
    return Figure(value, low, high, "bootstrap", n)


# ---------------------------------------------------------------------------
# classification


def f1_score(truth: np.ndarray, predicted: np.ndarray, cls: int) -> float:
    """F1 of class `cls` (NaN when the class is neither present nor predicted)."""
    tp = np.sum((predicted == cls) & (truth == cls))
    denominator = np.sum(predicted == cls) + np.sum(truth == cls)
    return 2.0 * tp / denominator if denominator else math.nan


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Mean F1 over the classes present in `truth`."""
    scores = [f1_score(truth, predicted, c) for c in np.unique(truth) if 0 <= c < classes]
    return float(np.mean(scores)) if scores else math.nan


def confusion(truth: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Counts ``(classes, classes + 1)``: rows the true class, columns the predicted one; the
    last column counts answers without a class (below the bundle's score threshold)."""
    matrix = np.zeros((classes, classes + 1), np.int64)
    np.add.at(matrix, (truth, np.where(predicted < 0, classes, predicted)), 1)
    return matrix


def classification(truth: np.ndarray, predicted: np.ndarray, labels: tuple[str, ...]) -> dict[str, Any]:
    """Accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix.

    Args:
        truth: int ``(N,)`` true class indices into `labels`.
        predicted: int ``(N,)`` predicted indices (-1: no answer, counted wrong).
        labels: the bundle's labels.
    """
    classes = len(labels)
    matrix = confusion(truth, predicted, classes)
    per_class = []
    for c, name in enumerate(labels):
        tp = int(matrix[c, c])
        support = int(matrix[c].sum())
        predicted_count = int(matrix[:, c].sum())
        if support == 0 and predicted_count == 0:
            continue  # a label the data do not have and the model never answered
        per_class.append({
            "label": name, "support": support, "predicted": predicted_count,
            "precision": proportion(tp, predicted_count).to_dict(),
            "recall": proportion(tp, support).to_dict(),
            "f1": bootstrapped(lambda t, p, c=c: f1_score(t, p, c), truth, predicted).to_dict(),
        })
    return {
        "accuracy": proportion(int(np.sum(truth == predicted)), len(truth)).to_dict(),
        "macro_f1": bootstrapped(lambda t, p: macro_f1(t, p, classes), truth, predicted).to_dict(),
        "per_class": per_class,
        "confusion_matrix": {"labels": list(labels), "columns": [*labels, "(none)"], "rows": matrix.tolist()},
    }


def segments(truth: np.ndarray, groups: tuple[str, ...]) -> np.ndarray:
    """A segment number per window: consecutive windows of one recording with one true label."""
    ids = np.zeros(len(truth), np.int64)
    for i in range(1, len(truth)):
        ids[i] = ids[i - 1] + (groups[i] != groups[i - 1] or truth[i] != truth[i - 1])
    return ids


def recording_accuracy(truth: np.ndarray, predicted: np.ndarray, groups: tuple[str, ...],
                       classes: int) -> dict[str, Any]:
    """Accuracy per recording segment (a run of windows of one recording with one label):
    the segment's answer is the majority vote of its windows' answers (ties: the first class
    in the bundle's order; windows without an answer do not vote)."""
    ids = segments(truth, groups)
    right = 0
    for segment in range(int(ids[-1]) + 1 if len(ids) else 0):
        member = ids == segment
        votes = predicted[member]
        votes = votes[votes >= 0]
        answer = int(np.bincount(votes, minlength=classes).argmax()) if len(votes) else -1
        right += int(answer == truth[member][0])
    count = int(ids[-1]) + 1 if len(ids) else 0
    return {"accuracy": proportion(right, count).to_dict(), "segments": count}


# ---------------------------------------------------------------------------
# anomaly detection


def roc_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for ``truth == 1`` (ties count half); NaN
    without both classes (`edgekit.stats.roc_auc`)."""
    value = stats.roc_auc(scores, truth)
    return math.nan if value is None else value


def anomaly(truth: np.ndarray, scores: np.ndarray, flagged: np.ndarray | None,
            threshold: float | None) -> dict[str, Any]:
    """ROC-AUC of the anomaly scores and the precision/recall of the bundle's threshold.

    Args:
        truth: ``(N,)`` 0 normal, 1 anomalous.
        scores: ``(N,)`` the runtime's anomaly scores.
        flagged: ``(N,)`` the runtime's verdicts at the bundle's threshold, or None without one.
        threshold: the bundle's ``postprocess.anomaly_threshold``.
    """
    truth = np.asarray(truth, bool)
    fields: dict[str, Any] = {
        "roc_auc": bootstrapped(roc_auc, truth, scores).to_dict(),
        "normal": int((~truth).sum()), "anomalous": int(truth.sum()), "threshold": threshold,
        "threshold_precision": None, "threshold_recall": None, "threshold_accuracy": None,
    }
    if flagged is not None:
        flagged = np.asarray(flagged, bool)
        tp = int(np.sum(flagged & truth))
        fields["threshold_precision"] = proportion(tp, int(flagged.sum())).to_dict()
        fields["threshold_recall"] = proportion(tp, int(truth.sum())).to_dict()
        fields["threshold_accuracy"] = proportion(int(np.sum(flagged == truth)), len(truth)).to_dict()
    return fields


# ---------------------------------------------------------------------------
# regression


def _rmse(squared: np.ndarray) -> float:
    return float(np.sqrt(np.mean(squared)))


def _mae(absolute: np.ndarray) -> float:
    return float(np.mean(absolute))


def regression(targets: np.ndarray, values: np.ndarray) -> dict[str, Any]:
    """RMSE and MAE over all outputs; the bootstrap resamples whole samples.

    Args:
        targets, values: ``(N, outputs)``.
    """
    error = values.astype(np.float64) - targets.astype(np.float64)
    return {"rmse": bootstrapped(_rmse, np.mean(error**2, axis=1)).to_dict(),
            "mae": bootstrapped(_mae, np.mean(np.abs(error), axis=1)).to_dict(),
            "outputs": int(targets.shape[1]), "target_std": _round(float(np.std(targets)))}
