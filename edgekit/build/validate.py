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
from edgekit.runtime import open_backend
from edgekit.runtime.tensors import dequantize, quantize
from edgekit.spec import PostprocessKind, PostprocessSpec, TensorSpec

ANOMALY_NAMES = ("anomaly", "anomalous", "abnormal", "fault", "faulty", "defect")


def detect_task(input_shape: tuple[int, ...], outputs: Sequence[TensorSpec],
                postprocess: PostprocessSpec | None) -> str:
    """classification, anomaly, regression or detection (from the postprocess spec, else from shapes)."""
    if postprocess is not None and postprocess.kind in (PostprocessKind.CLASSIFICATION, PostprocessKind.ANOMALY,
                                                        PostprocessKind.REGRESSION, PostprocessKind.DETECTION):
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

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "metric": self.metric_name, "value": self.metric}


def task_metric(task: str, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
                class_names: tuple[str, ...] | None) -> tuple[str | None, float | None]:
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

    ``drop_pts`` is the loss in the task metric in points (accuracy x100, or ROC-AUC
    x100) when labels exist, else the top-1 disagreement with the float model in
    points (classifiers); ``drop_basis`` says which.
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
