"""Regression: float targets in the data's units; MSE, RMSE/MAE/R², and variants judged
by their RMSE against the targets (or against the float model's outputs without targets)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.errors import InputError
from edgekit.stats import bootstrap_drop
from edgekit.tasks.base import Features, Log, Predict, Task, with_drop


def regression_errors(prediction: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """RMSE and MAE of a regression output against its targets, over every value.

    Raises:
        InputError: the targets do not have one value per output value.
    """
    pred = prediction.reshape(len(prediction), -1).astype(np.float64)
    want = np.asarray(targets).reshape(len(targets), -1).astype(np.float64)
    if pred.shape != want.shape:
        raise InputError("regression targets (y) in the data", expected=f"{pred.shape[1]} value(s) per sample, "
                         f"like the model's output {tuple(prediction.shape[1:])}",
                         found=f"{want.shape[1]} per sample (y of shape {tuple(np.shape(targets))})",
                         hint="y must hold the model's outputs (e.g. (N,) or (N, horizon)) in the same units")
    err = pred - want
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def regression_metrics(predicted: np.ndarray, y: np.ndarray, train_y: np.ndarray) -> dict[str, Any]:
    """RMSE, MAE, R^2 per output and overall, against predicting the training mean."""
    truth = y.reshape(len(y), -1).astype(np.float64)
    guess = predicted.reshape(len(predicted), -1).astype(np.float64)
    error = guess - truth
    baseline = truth - train_y.reshape(len(train_y), -1).astype(np.float64).mean(axis=0)
    total = float(np.sum((truth - truth.mean(axis=0)) ** 2))
    rmse, mae = regression_errors(predicted, y)
    return {"samples": int(len(y)), "rmse": rmse, "mae": mae,
            "r2": 1.0 - float(np.sum(error**2)) / total if total > 0 else float("nan"),
            "mape_pct": float(np.mean(np.abs(error) / np.maximum(np.abs(truth), 1e-9)) * 100.0),
            "rmse_per_output": np.sqrt(np.mean(error**2, axis=0)).round(6).tolist(),
            "baseline_rmse": float(np.sqrt(np.mean(baseline**2))),
            "predictions": guess[:500, 0].tolist(), "targets": truth[:500, 0].tolist()}


def _rmse_increase_pct(ref: np.ndarray, got: np.ndarray, want: np.ndarray) -> float:
    """The variant's RMSE against the targets, % above the float model's (rows: samples)."""
    before = float(np.sqrt(np.mean((ref - want) ** 2)))
    return 100.0 * (float(np.sqrt(np.mean((got - want) ** 2))) / before - 1.0) if before > 0 else float("nan")


def _output_rmse_pct(ref: np.ndarray, got: np.ndarray) -> float:
    """RMSE of the variant's outputs against the float model's, % of the float outputs' spread."""
    spread = float(np.std(ref))
    return 100.0 * float(np.sqrt(np.mean((got - ref) ** 2))) / spread if spread > 0 else float("nan")


def _rounded(values: np.ndarray) -> Any:
    """Plain floats (a scalar for one value) that serialize into the model's config."""
    flat = [float(np.float32(v)) for v in np.atleast_1d(values)]
    return flat[0] if len(flat) == 1 else flat


class Regression(Task):
    name = "regression"
    targets = True
    explain_drop = True
    metric_title = "RMSE"
    drop_bases = {
        "rmse_increase_pct": "RMSE against the targets, % above the float model's",
        "output_rmse_pct": "RMSE of the outputs against the float model's, % of their standard deviation (no targets)",
    }

    def outputs(self, train_y: np.ndarray, class_names: Sequence[str]) -> int:
        return 1 if train_y.ndim == 1 else int(train_y.shape[1])

    def private_options(self, recipe: Any, train_y: np.ndarray) -> dict[str, Any]:
        # the network predicts normalized targets; a final Rescaling maps them to the data's units
        y = train_y.astype(np.float64)
        mean, std = y.mean(axis=0), np.maximum(y.std(axis=0), 1e-6)
        return {"_head": "linear", "_target_offset": _rounded(mean), "_target_scale": _rounded(std)}

    def compile(self, keras: Any, model: Any, recipe: Any, optimizer: Any) -> None:
        model.compile(optimizer=optimizer, loss="mse", metrics=[keras.metrics.RootMeanSquaredError(name="rmse"),
                                                               keras.metrics.MeanAbsoluteError(name="mae")])

    def per_example_loss(self, keras: Any, recipe: Any) -> Any:
        return keras.losses.MeanSquaredError(reduction=None)

    def evaluate(self, model: Any, recipe: Any, parts: Any, features: Features, predict: Predict,
                 log: Log) -> dict[str, Any]:
        test = regression_metrics(predict(model, features(parts.test)), parts.test.y, parts.train.y)
        validation = regression_metrics(predict(model, features(parts.validation)), parts.validation.y, parts.train.y)
        log(f"  held-out RMSE {test['rmse']:.4g}, MAE {test['mae']:.4g}, R^2 {test['r2']:.3f} ({test['samples']} "
            f"samples; predicting the training mean: RMSE {test['baseline_rmse']:.4g})")
        return {"test": test, "validation": {k: validation[k] for k in ("samples", "rmse", "mae", "r2")}}

    def headline(self, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        test = evaluation["test"]
        return {"metric": "rmse", "value": float(test["rmse"]), "higher_is_better": False,
                "samples": int(test["samples"])}

    def metric(self, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
               class_names: Sequence[str] | None, targets: np.ndarray | None = None) -> tuple[str | None, float | None]:
        return ("rmse", regression_errors(outputs[0], targets)[0]) if targets is not None else (None, None)

    def fidelity(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
                 class_names: Sequence[str] | None) -> dict[str, Any]:
        """RMSE/MAE against the targets, and against the float model's outputs (first output)."""
        ref = reference.outputs[0].reshape(len(reference.outputs[0]), -1).astype(np.float64)
        got = outputs[0].reshape(len(outputs[0]), -1).astype(np.float64)
        output_rmse = float(np.sqrt(np.mean((got - ref) ** 2))) if ref.size else 0.0
        spread = float(np.std(ref)) if ref.size else 0.0
        figures: dict[str, Any] = {
            "output_rmse": output_rmse,
            "output_rmse_pct": 100.0 * output_rmse / spread if spread > 0 else (0.0 if output_rmse == 0 else None),
        }
        if reference.targets is not None and reference.metric is not None:
            rmse, mae = regression_errors(outputs[0], reference.targets)
            figures["rmse"], figures["mae"] = rmse, mae
            if reference.metric > 0:
                figures["drop_pts"] = 100.0 * (rmse / reference.metric - 1.0)
                figures["drop_basis"] = "rmse_increase_pct"
                want = np.asarray(reference.targets).reshape(len(ref), -1).astype(np.float64)
                return with_drop(figures, bootstrap_drop(_rmse_increase_pct, ref, got, want))
        # No targets (or a float model that fits them exactly): judge against the float outputs.
        figures["drop_pts"] = figures["output_rmse_pct"]
        figures["drop_basis"] = "output_rmse_pct" if figures["output_rmse_pct"] is not None else None
        drop = bootstrap_drop(_output_rmse_pct, ref, got) if figures["drop_basis"] and spread > 0 else None
        return with_drop(figures, drop)

    def drop_words(self, drop: float, basis: str | None) -> str:
        if basis == "rmse_increase_pct":
            return f"has an RMSE {drop:.1f}% above the float model's"
        if basis == "output_rmse_pct":
            return f"differs from the float model's outputs by {drop:.1f}% of their standard deviation (RMSE)"
        return super().drop_words(drop, basis)

    def metric_column(self, figures: Mapping[str, Any]) -> tuple[float | None, str]:
        return figures.get("rmse"), "g"
