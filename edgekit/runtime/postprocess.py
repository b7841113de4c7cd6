"""From dequantized outputs to results: softmax, top-k, thresholds, anomaly scores, and
keyword-spotting posterior smoothing with suppression for streams."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from edgekit.spec import PostprocessKind, PostprocessSpec


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def top_k(scores: np.ndarray, labels: tuple[str, ...], k: int) -> tuple[tuple[str, float], ...]:
    """The k best ``(label, score)`` pairs; unnamed classes are called by their index."""
    k = min(k, scores.shape[-1])
    order = np.argsort(-scores, kind="stable")[:k]
    return tuple((labels[i] if i < len(labels) else str(i), float(scores[i])) for i in order)


def classify(outputs: list[np.ndarray], spec: PostprocessSpec, labels: tuple[str, ...]) -> dict[str, Any]:
    scores = outputs[0].reshape(-1).astype(np.float64)
    if spec.apply_softmax:
        scores = softmax(scores)
    best = int(np.argmax(scores))
    score = float(scores[best])
    fields: dict[str, Any] = {"index": best, "score": score, "top_k": top_k(scores, labels, spec.top_k),
                              "label": labels[best] if best < len(labels) else str(best)}
    if spec.score_threshold is not None and score < spec.score_threshold:
        fields["label"], fields["index"] = None, None
    return fields


def anomaly(inputs: np.ndarray, outputs: list[np.ndarray], spec: PostprocessSpec) -> dict[str, Any]:
    error = float(np.mean((inputs.reshape(-1).astype(np.float64) - outputs[0].reshape(-1)) ** 2))
    fields: dict[str, Any] = {"anomaly_score": error}
    if spec.anomaly_threshold is not None:
        fields["is_anomaly"] = error > spec.anomaly_threshold
    return fields


def postprocess(inputs: np.ndarray, outputs: list[np.ndarray], spec: PostprocessSpec,
                labels: tuple[str, ...]) -> dict[str, Any]:
    """Result fields for one input (already dequantized outputs, batch 1)."""
    if spec.kind is PostprocessKind.CLASSIFICATION:
        return classify(outputs, spec, labels)
    if spec.kind is PostprocessKind.ANOMALY:
        return anomaly(inputs, outputs, spec)
    return {"values": tuple(float(v) for v in np.concatenate([o.reshape(-1) for o in outputs]))}


class PosteriorSmoother:
    """Keyword-spotting decisions over a stream of classification scores.

    Averages the class scores of the results within `smoothing_ms`; a detection fires
    when the best non-background class reaches `score_threshold` (default 0.5), and no
    other detection fires for `suppression_ms` after it.
    """

    def __init__(self, spec: PostprocessSpec, labels: tuple[str, ...]) -> None:
        self.spec = spec
        self.labels = labels
        self.window: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self.last_detection_ms = -float("inf")
        self.background = {i for i, name in enumerate(labels) if name in spec.background_labels}

    def update(self, time_ms: float, scores: np.ndarray) -> dict[str, Any]:
        self.window.append((time_ms, scores))
        while self.window and self.window[0][0] < time_ms - self.spec.smoothing_ms:
            self.window.popleft()
        smoothed = np.mean([s for _, s in self.window], axis=0)
        candidates = [i for i in np.argsort(-smoothed) if i not in self.background]
        fields: dict[str, Any] = {"top_k": top_k(smoothed, self.labels, self.spec.top_k), "detected": False}
        if not candidates:
            fields.update(label=None, index=None, score=float(np.max(smoothed)))
            return fields
        best = int(candidates[0])
        score = float(smoothed[best])
        fields.update(label=self.labels[best] if best < len(self.labels) else str(best), index=best, score=score)
        threshold = self.spec.score_threshold if self.spec.score_threshold is not None else 0.5
        if score >= threshold and time_ms - self.last_detection_ms >= self.spec.suppression_ms:
            fields["detected"] = True
            self.last_detection_ms = time_ms
        return fields
