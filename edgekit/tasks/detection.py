"""Detection: boxes, classes and scores decoded by the contract's postprocess spec;
variants are judged by how often their detections match the float model's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit.stats import disagreement
from edgekit.tasks.base import Task, with_drop

DETECTION_IOU = 0.5  # a variant's detection matches the float model's at this overlap


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def detection_matches(reference: Any, outputs: Sequence[np.ndarray], labels: Sequence[str]) -> np.ndarray:
    """Per sample: do the variant's detections match the float model's (as many objects,
    and each float detection paired with one of the same class at IoU >= 0.5)?

    Args:
        reference: the float model's outputs (``outputs``), its ``postprocess`` spec and ``input_size``.
        labels: class names (the postprocess spec's ``background_labels`` refer to them).
    """
    from edgekit.runtime.postprocess import detect

    count = len(reference.outputs[0])
    matches = np.zeros(count, bool)
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
            matches[i] = True
    return matches


def detection_agreement(reference: Any, outputs: Sequence[np.ndarray], labels: Sequence[str]) -> float:
    """Share of samples whose detections match the float model's (`detection_matches`)."""
    matches = detection_matches(reference, outputs, labels)
    return float(matches.mean()) if len(matches) else 1.0


class Detection(Task):
    """Convert-only: no recipe trains a detector yet; a detector arrives with a postprocess spec."""

    name = "detection"
    named_classes = True
    integer_labels = True
    detects = True
    trainable = False

    def agreement(self, reference: Any, outputs: Sequence[np.ndarray],
                  class_names: Sequence[str] | None) -> dict[str, float]:
        if reference.postprocess is None:
            return {}
        return {"detection_agreement": detection_agreement(reference, outputs, class_names or ())}

    def fidelity(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
                 class_names: Sequence[str] | None) -> dict[str, Any]:
        """The disagreement with the float model's detections, with Wilson's interval
        (the detections are decoded once per sample, for the figure and its interval)."""
        if reference.postprocess is None:
            return with_drop({"drop_pts": None, "drop_basis": None}, None)
        matches = detection_matches(reference, outputs, class_names or ())
        agreement = float(matches.mean()) if len(matches) else 1.0
        figures = {"detection_agreement": agreement, "drop_pts": (1.0 - agreement) * 100.0,
                   "drop_basis": "detection_agreement"}
        return with_drop(figures, disagreement(matches) if len(matches) else None)
