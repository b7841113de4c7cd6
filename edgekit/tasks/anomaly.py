"""Anomaly detection: an autoencoder trained on normal data; the reconstruction error is
the anomaly score, ROC-AUC the metric, and a threshold calibrated on normal validation
errors travels in the bundle."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.contract import Contract
from edgekit.stats import Drop, bootstrap_drop, roc_auc
from edgekit.tasks.base import Features, Log, Predict, Task

ANOMALY_NAMES = ("anomaly", "anomalous", "abnormal", "fault", "faulty", "defect")


def anomaly_scores(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """Mean squared reconstruction error per sample."""
    diff = x.reshape(len(x), -1).astype(np.float64) - reconstruction.reshape(len(x), -1)
    return np.mean(diff**2, axis=1)


def anomaly_positive(labels: np.ndarray, class_names: Sequence[str] | None) -> np.ndarray:
    """Which samples are anomalies: the class named like 'anomaly', else every label != 0."""
    if class_names:
        hits = [i for i, name in enumerate(class_names) if name.lower() in ANOMALY_NAMES]
        if hits:
            return np.isin(labels, hits)
    return labels != 0


class Anomaly(Task):
    name = "anomaly"
    integer_labels = True
    normal_only = True
    autoencoder = True

    def compile(self, keras: Any, model: Any, recipe: Any, optimizer: Any) -> None:
        model.compile(optimizer=optimizer, loss="mse")

    def per_example_loss(self, keras: Any, recipe: Any) -> Any:
        return keras.losses.MeanSquaredError(reduction=None)

    def evaluate(self, model: Any, recipe: Any, parts: Any, features: Features, predict: Predict,
                 log: Log) -> dict[str, Any]:
        x_val = features(parts.validation)
        val_errors = anomaly_scores(x_val, predict(model, x_val))
        percentile = float(recipe.train["threshold_percentile"])
        threshold = float(np.percentile(val_errors, percentile))
        x_test = features(parts.test)
        errors = anomaly_scores(x_test, predict(model, x_test))
        positive = parts.test.y != 0
        auc = roc_auc(errors, positive)
        flagged = errors > threshold
        test: dict[str, Any] = {"samples": int(len(errors)), "threshold": threshold,
                                "roc_auc": auc if auc is not None else float("nan"),
                                "accuracy_at_threshold": float(np.mean(flagged == positive)),
                                "true_positive_rate": float(flagged[positive].mean()) if positive.any() else None,
                                "false_positive_rate": float(flagged[~positive].mean()) if (~positive).any() else None,
                                "errors_normal": errors[~positive].tolist(),
                                "errors_anomalous": errors[positive].tolist()}
        log(f"  threshold {threshold:.6g} (p{percentile:g} of {len(val_errors)} normal validation errors); held-out "
            f"ROC-AUC {test['roc_auc']:.4f}, accuracy at the threshold {test['accuracy_at_threshold']:.2%}")
        return {"test": test, "validation": {"samples": int(len(val_errors)), "mean_error": float(val_errors.mean())}}

    def threshold(self, evaluation: Mapping[str, Any]) -> float | None:
        return float(evaluation["test"]["threshold"])

    def headline(self, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        test = evaluation["test"]
        auc = test.get("roc_auc")
        if auc is not None and not math.isnan(float(auc)):
            return {"metric": "roc_auc", "value": float(auc), "higher_is_better": True,
                    "samples": int(test["samples"])}
        errors = np.asarray(test.get("errors_normal", []), np.float64)
        return {"metric": "mean_error", "value": float(errors.mean()) if errors.size else float("nan"),
                "higher_is_better": False, "samples": int(test["samples"])}

    def contract(self, recipe: Any, class_names: Sequence[str], evaluation: Mapping[str, Any]) -> Contract:
        postprocess = dataclasses.replace(recipe.postprocess,
                                          anomaly_threshold=round(float(evaluation["test"]["threshold"]), 8))
        return Contract(recipe.preprocess, postprocess)

    def metric(self, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
               class_names: Sequence[str] | None, targets: np.ndarray | None = None) -> tuple[str | None, float | None]:
        if labels is None or (labels < 0).all():
            return None, None
        auc = roc_auc(anomaly_scores(x, outputs[0]), anomaly_positive(labels, class_names))
        return ("roc_auc", auc) if auc is not None else (None, None)

    def drop(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
             class_names: Sequence[str] | None, basis: str | None) -> Drop | None:
        """ROC-AUC has no fixed weight per sample: a seeded paired bootstrap over the samples."""
        if basis != "roc_auc" or labels is None:
            return None

        def auc_drop(ref: np.ndarray, got: np.ndarray, positive: np.ndarray) -> float:
            before, after = roc_auc(ref, positive), roc_auc(got, positive)
            return math.nan if before is None or after is None else 100.0 * (before - after)

        return bootstrap_drop(auc_drop, anomaly_scores(x, reference.outputs[0]), anomaly_scores(x, outputs[0]),
                              anomaly_positive(labels, class_names))
