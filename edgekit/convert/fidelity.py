"""Fidelity: every variant against the float source model, on real validation data.

Variants run through the same runtime backends a device uses, one sample at a time,
with inputs quantized and outputs dequantized by the tensor specs in the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit._native import native_stderr_captured
from edgekit.datasets.loaders import Progress, no_progress
from edgekit.errors import InputError
from edgekit.runtime import open_backend
from edgekit.runtime.tensors import dequantize, quantize
from edgekit.spec import PostprocessKind, PostprocessSpec, TensorSpec

ANOMALY_NAMES = ("anomaly", "anomalous", "abnormal", "fault", "faulty", "defect")


TASK_KINDS = (PostprocessKind.CLASSIFICATION, PostprocessKind.ANOMALY, PostprocessKind.REGRESSION,
              PostprocessKind.DETECTION, PostprocessKind.GENERATION)


def detect_task(input_shape: tuple[int, ...], outputs: Sequence[TensorSpec],
                postprocess: PostprocessSpec | None) -> str:
    """classification, anomaly, regression, detection or generation: the postprocess
    spec's kind, else (no spec, or kind raw) guessed from shapes (never generation)."""
    if postprocess is not None and postprocess.kind in TASK_KINDS:
        return postprocess.kind.value
    out = tuple(outputs[0].shape[1:])
    if out == tuple(input_shape) or (int(np.prod(out)) == int(np.prod(input_shape)) and len(out) > 0):
        return "anomaly"
    if out and out[-1] > 1:
        return "classification"
    return "regression"


def run_variant(fmt: str, data: bytes, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                x: np.ndarray, progress: Progress = no_progress, label: str = "validating") -> list[np.ndarray]:
    """Run a variant on every sample (batch 1); returns dequantized float32 outputs in the
    order of `outputs` (matched by name, as the runtime does)."""
    with native_stderr_captured():  # LiteRT announces its delegate on stderr
        backend = open_backend(fmt, data, threads=1, outputs=[spec.name for spec in outputs])
    collected: list[list[np.ndarray]] = [[] for _ in outputs]
    for i in progress(range(len(x)), label, len(x)):
        sample = quantize(x[i : i + 1], inputs[0])
        result = backend.run([sample])
        for k, (value, spec) in enumerate(zip(result, outputs, strict=True)):
            collected[k].append(dequantize(value, spec))
    return [np.concatenate(c) for c in collected]


def anomaly_scores(x: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    diff = x.reshape(len(x), -1).astype(np.float64) - reconstruction.reshape(len(x), -1)
    return np.mean(diff**2, axis=1)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tie correction); None without both classes."""
    positive = positive.astype(bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def anomaly_positive(labels: np.ndarray, class_names: tuple[str, ...] | None) -> np.ndarray:
    """Which samples are anomalies: the class named like 'anomaly', else every label != 0."""
    if class_names:
        hits = [i for i, name in enumerate(class_names) if name.lower() in ANOMALY_NAMES]
        if hits:
            return np.isin(labels, hits)
    return labels != 0


def outputs_digest(outputs: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in outputs:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Reference:
    """The float model's outputs and task metric on the validation split.

    Attributes:
        postprocess: detection models: the spec that turns outputs into detections, for
            the detection agreement of each variant.
        input_size: ``(height, width)`` of image inputs, for detections in pixels.
    """

    task: str
    outputs: list[np.ndarray]
    metric_name: str | None
    metric: float | None
    postprocess: PostprocessSpec | None = None
    input_size: tuple[int, int] | None = None

    targets: np.ndarray | None = None
    mae: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"task": self.task, "metric": self.metric_name, "value": self.metric}
        if self.task == "regression":
            data["mae"] = self.mae
        return data


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


def task_metric(task: str, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
                class_names: tuple[str, ...] | None,
                targets: np.ndarray | None = None) -> tuple[str | None, float | None]:
    """The task's metric on the validation split: accuracy (classification), ROC-AUC
    (anomaly), RMSE (regression with targets); ``(None, None)`` without labels/targets."""
    if task == "regression":
        return ("rmse", regression_errors(outputs[0], targets)[0]) if targets is not None else (None, None)
    if labels is None or (labels < 0).all():
        return None, None
    if task == "classification":
        return "accuracy", float(np.mean(outputs[0].argmax(-1) == labels))
    if task == "anomaly":
        auc = roc_auc(anomaly_scores(x, outputs[0]), anomaly_positive(labels, class_names))
        return ("roc_auc", auc) if auc is not None else (None, None)
    return None, None


def fidelity(reference: Reference, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
             class_names: tuple[str, ...] | None) -> dict[str, Any]:
    """Every figure of one variant against the reference, JSON-ready.

    ``drop_pts`` is what the accuracy gate compares, ``drop_basis`` says what it is:

    - ``accuracy`` / ``roc_auc``: the loss in the task metric in points (x100), with labels;
    - ``top1_agreement`` / ``detection_agreement``: the disagreement with the float model
      in points, without labels;
    - ``rmse_increase_pct`` (regression with targets): ``100 * (rmse / float rmse - 1)``,
      the variant's RMSE against the targets as a percentage increase over the float
      model's (negative when it happens to do better);
    - ``output_rmse_pct`` (regression without targets): the RMSE of the variant's
      outputs against the float model's, as a percentage of the float outputs' standard
      deviation;
    - None (generation): no gate basis; judge by ``snr_db`` and the errors.
    """
    ref = np.concatenate([o.reshape(len(o), -1) for o in reference.outputs], axis=1).astype(np.float64)
    got = np.concatenate([o.reshape(len(o), -1) for o in outputs], axis=1).astype(np.float64)
    err = got - ref
    noise = float(np.sum(err**2))
    signal = float(np.sum(ref**2))
    result: dict[str, Any] = {
        "samples": int(len(x)),
        "max_abs_error": float(np.max(np.abs(err))) if err.size else 0.0,
        "mean_abs_error": float(np.mean(np.abs(err))) if err.size else 0.0,
        "snr_db": (10.0 * math.log10(signal / noise)) if noise > 0 and signal > 0 else None,
        "identical": noise == 0.0,
        "outputs_sha256": outputs_digest(outputs),
    }
    if reference.task == "regression":
        result.update(_regression_fidelity(reference, outputs))
        return result
    if reference.task == "generation":
        result["drop_pts"] = None
        result["drop_basis"] = None
        return result
    if reference.task == "classification":
        result["top1_agreement"] = float(np.mean(outputs[0].argmax(-1) == reference.outputs[0].argmax(-1)))
    if reference.task == "detection" and reference.postprocess is not None:
        result["detection_agreement"] = detection_agreement(reference, outputs, class_names or ())
    name, value = task_metric(reference.task, outputs, x, labels, class_names)
    if name is not None and value is not None and reference.metric is not None:
        result[name] = value
        result["drop_pts"] = (reference.metric - value) * 100.0
        result["drop_basis"] = name
    elif "top1_agreement" in result or "detection_agreement" in result:
        basis = "top1_agreement" if "top1_agreement" in result else "detection_agreement"
        result["drop_pts"] = (1.0 - result[basis]) * 100.0
        result["drop_basis"] = basis
    else:
        result["drop_pts"] = None
        result["drop_basis"] = None
    return result


def _regression_fidelity(reference: Reference, outputs: Sequence[np.ndarray]) -> dict[str, Any]:
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
            return figures
    # No targets (or a float model that fits them exactly): judge against the float outputs.
    figures["drop_pts"] = figures["output_rmse_pct"]
    figures["drop_basis"] = "output_rmse_pct" if figures["output_rmse_pct"] is not None else None
    return figures


DETECTION_IOU = 0.5  # a variant's detection matches the float model's at this overlap


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def detection_agreement(reference: Reference, outputs: Sequence[np.ndarray], labels: tuple[str, ...]) -> float:
    """Share of samples whose detections match the float model's: as many objects, and
    each float detection paired with one of the same class at IoU >= 0.5.

    Args:
        labels: class names (the postprocess spec's ``background_labels`` refer to them).
    """
    from edgekit.runtime.postprocess import detect

    assert reference.postprocess is not None
    count = len(reference.outputs[0])
    agree = 0
    for i in range(count):
        want = detect([o[i : i + 1] for o in reference.outputs], reference.postprocess, labels, reference.input_size)
        got = list(detect([o[i : i + 1] for o in outputs], reference.postprocess, labels, reference.input_size)["detections"])
        if len(got) != len(want["detections"]):
            continue
        for d in want["detections"]:
            match = next((g for g in got if g.index == d.index and _iou(g.box, d.box) >= DETECTION_IOU), None)
            if match is None:
                break
            got.remove(match)
        else:
            agree += 1
    return agree / count if count else 1.0
