"""From dequantized outputs to results: softmax, top-k, thresholds, anomaly scores,
generated tensors, and keyword-spotting posterior smoothing with suppression for streams."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

from edgekit.runtime.results import ClassScore, Detection
from edgekit.spec import PostprocessKind, PostprocessSpec


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / np.sum(exp, axis=-1, keepdims=True)


def top_k(scores: np.ndarray, labels: tuple[str, ...], k: int) -> tuple[ClassScore, ...]:
    """The k best `ClassScore` ``(label, score)`` pairs; unnamed classes are called by their index."""
    k = min(k, scores.shape[-1])
    order = np.argsort(-scores, kind="stable")[:k]
    return tuple(ClassScore(labels[i] if i < len(labels) else str(i), float(scores[i])) for i in order)


def classify(outputs: list[np.ndarray], spec: PostprocessSpec, labels: tuple[str, ...]) -> dict[str, Any]:
    scores = outputs[0].ravel()
    if spec.apply_softmax:
        scores = softmax(scores.astype(np.float64))
    return ranked(scores, spec, labels)


def ranked(scores: np.ndarray, spec: PostprocessSpec, labels: tuple[str, ...]) -> dict[str, Any]:
    """Result fields of class scores: the top class (`label`, `index`, `score`) and `top_k`;
    `label` and `index` are None when the top score is below `score_threshold`."""
    if scores.size <= 64:  # plain Python beats numpy's per-call overhead on a few classes
        return ranked_values(scores.tolist(), spec, labels)
    best = int(np.argmax(scores))
    score = float(scores[best])
    best_k = top_k(scores.astype(np.float64), labels, spec.top_k)
    return _fields(best, score, best_k, spec, labels)


def ranked_values(values: list[float], spec: PostprocessSpec, labels: tuple[str, ...],
                  order: list[int] | None = None) -> dict[str, Any]:
    """`ranked` of scores given as a list of Python floats (a few classes: no numpy call).
    `order`: the classes best first, when the caller has them (the posterior smoother):
    ``sorted(range(n), key=values.__getitem__, reverse=True)``, stable (ties by index).

    Every `predict` of a classifier runs this, right after the interpreter has pushed
    Python's own code out of the CPU's caches, where each Python call costs about twice
    what it costs in a tight loop: hence no helper calls, and the `ClassScore` pairs made
    by ``tuple.__new__`` (what a NamedTuple's ``_make`` does) rather than by the class's
    Python-level ``__new__``.
    """
    if order is None:
        order = sorted(range(len(values)), key=values.__getitem__, reverse=True)
    named = len(labels)
    pairs = []
    for i in order[: spec.top_k]:  # a loop, not a comprehension (a Python frame of its own before 3.12)
        pairs.append(_pair(ClassScore, (labels[i] if i < named else str(i), values[i])))
    best_k = tuple(pairs)
    best = order[0]
    score = values[best]
    fields: dict[str, Any] = {"index": best, "score": score, "top_k": best_k, "label": best_k[0][0]}
    if spec.score_threshold is not None and score < spec.score_threshold:
        fields["label"], fields["index"] = None, None
    return fields


_pair = tuple.__new__


def _fields(best: int, score: float, best_k: tuple[ClassScore, ...], spec: PostprocessSpec,
            labels: tuple[str, ...]) -> dict[str, Any]:
    fields: dict[str, Any] = {"index": best, "score": score, "top_k": best_k,
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


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, limit: int) -> list[int]:
    """Greedy non-maximum suppression over (x0, y0, x1, y1) boxes; indices best first."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        x0 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y0 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x1 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y1 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        iou = inter / np.maximum(areas[best] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return keep


def _label(labels: tuple[str, ...], index: int) -> str:
    return labels[index] if 0 <= index < len(labels) else str(index)


def _rows(array: np.ndarray, rank: int) -> np.ndarray:
    """Drop a leading batch dimension of 1 (outputs of one input)."""
    return array.reshape(array.shape[1:]) if array.ndim == rank + 1 and array.shape[0] == 1 else array


def detection_classes(spec: PostprocessSpec, shapes: list[tuple[int, ...]]) -> int | None:
    """Check that outputs of these shapes (batch dimension included, -1 for dynamic) fit
    the spec's detection format, and say how many classes they carry.

    Returns:
        The number of classes, or None where the outputs do not tell (SSD op outputs).

    Raises:
        ShapeError: the outputs do not have the layout the format describes.
    """
    from edgekit.errors import ShapeError

    body = [tuple(s[1:]) if len(s) >= 2 else tuple(s) for s in shapes]
    fmt = spec.detection_format
    if fmt == "ssd" and len(shapes) == 4:
        return None
    if fmt == "ssd" and len(shapes) == 2:
        boxes, scores = body
        if len(boxes) != 2 or boxes[-1] != 4 or len(scores) != 2 or scores[0] != boxes[0] or scores[-1] < 1:
            raise ShapeError("ssd detection outputs", expected="boxes (N, 4) as ymin, xmin, ymax, xmax, then class "
                             "scores (N, classes), in this order", found=f"outputs of shapes {body}")
        return scores[-1]
    if fmt == "ssd":
        raise ShapeError("ssd detection outputs", expected="4 outputs (boxes, classes, scores, count) of the "
                         "detection postprocess op, or 2 (boxes (N, 4), class scores (N, classes))",
                         found=f"{len(shapes)} outputs of shapes {body}")
    rows = body[0] if body else ()
    values = (rows[-1] if fmt == "yolo" else rows[0]) if len(rows) == 2 else -1  # per candidate
    if values < 5:
        layout = "(N, 5 + classes) rows" if fmt == "yolo" else "(4 + classes, N), classes >= 1"
        raise ShapeError(f"{fmt} detection output", expected=f"a first output of {layout}",
                         found=f"outputs of shapes {body}")
    return values - 5 if fmt == "yolo" else values - 4


def _select(boxes: np.ndarray, best: np.ndarray, conf: np.ndarray, spec: PostprocessSpec,
            labels: tuple[str, ...]) -> tuple[Any, ...]:
    """Per-class non-maximum suppression over candidates (normalized x0, y0, x1, y1 boxes)."""
    keep: list[int] = []
    for cls in np.unique(best):
        members = np.flatnonzero(best == cls)
        keep += [int(members[i]) for i in nms(boxes[members], conf[members], spec.iou_threshold, spec.max_detections)]
    keep.sort(key=lambda i: -conf[i])
    return tuple(Detection(_label(labels, int(best[i])), int(best[i]), float(conf[i]),
                           tuple(float(v) for v in np.clip(boxes[i], 0.0, 1.0)))  # type: ignore[arg-type]
                 for i in keep[: spec.max_detections])


def detect(outputs: list[np.ndarray], spec: PostprocessSpec, labels: tuple[str, ...],
           input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Detections from SSD-style outputs or raw YOLO outputs (with NMS).

    ``ssd`` takes the four outputs of TFLite's detection postprocess op (boxes, classes,
    scores, count), or two raw outputs in this order: boxes ``(N, 4)`` as normalized
    ymin, xmin, ymax, xmax and class scores ``(N, classes)`` (softmax applied when the
    spec says so; ``background_labels`` never detected), which get per-class NMS.
    Boxes come out as normalized (x0, y0, x1, y1). Raw YOLO boxes in pixels (any value
    above 1.5) are normalized by the input size.
    """
    threshold = spec.score_threshold if spec.score_threshold is not None else 0.25
    if spec.detection_format == "ssd" and len(outputs) == 2:
        detection_classes(spec, [o.shape for o in outputs])
        yxyx = _rows(outputs[0], 2).astype(np.float64)
        scores = _rows(outputs[1], 2).astype(np.float64)
        if spec.apply_softmax:
            scores = softmax(scores)
        background = [i for i, name in enumerate(labels[: scores.shape[1]]) if name in spec.background_labels]
        if background:
            scores = scores.copy()
            scores[:, background] = -np.inf
        best = np.argmax(scores, axis=1)
        conf = scores[np.arange(len(scores)), best]
        mask = conf >= threshold
        boxes = yxyx[mask][:, [1, 0, 3, 2]]  # ymin, xmin, ymax, xmax -> x0, y0, x1, y1
        return {"detections": _select(boxes, best[mask], conf[mask], spec, labels)}
    if spec.detection_format == "ssd":
        if len(outputs) < 4:
            raise ValueError(f"ssd detection expects 4 outputs (boxes, classes, scores, count) or 2 (boxes, class "
                             f"scores), got {len(outputs)}")
        found: list[Detection] = []
        boxes, classes, scores, count = (o.reshape(o.shape[1:]) if o.shape and o.shape[0] == 1 else o
                                         for o in outputs[:4])
        n = int(np.asarray(count).reshape(-1)[0]) if np.asarray(count).size else len(scores)
        for i in range(min(n, len(scores))):
            if float(scores[i]) >= threshold:
                y0, x0, y1, x1 = (float(v) for v in boxes[i])  # TFLite order: ymin, xmin, ymax, xmax
                index = int(round(float(classes[i])))
                found.append(Detection(_label(labels, index), index, float(scores[i]), (x0, y0, x1, y1)))
        found.sort(key=lambda d: -d.score)
        return {"detections": tuple(found[: spec.max_detections])}

    raw = outputs[0].reshape(outputs[0].shape[-2:]) if outputs[0].ndim == 3 else outputs[0]
    raw = raw.astype(np.float64)
    if spec.detection_format == "yolov8":
        raw = raw.T  # (4 + C, N) -> (N, 4 + C)
        xywh, class_scores = raw[:, :4], raw[:, 4:]
        best = np.argmax(class_scores, axis=1)
        conf = class_scores[np.arange(len(raw)), best]
    else:
        xywh, objectness, class_scores = raw[:, :4], raw[:, 4], raw[:, 5:]
        best = np.argmax(class_scores, axis=1) if class_scores.shape[1] else np.zeros(len(raw), int)
        conf = objectness * (class_scores[np.arange(len(raw)), best] if class_scores.shape[1] else 1.0)
    mask = conf >= threshold
    xywh, best, conf = xywh[mask], best[mask], conf[mask]
    boxes = np.stack([xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2,
                      xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3] / 2], axis=1) if len(xywh) else np.zeros((0, 4))
    if len(boxes) and input_size is not None and np.max(boxes) > 1.5:
        h, w = input_size
        boxes = boxes / np.array([w, h, w, h], np.float64)
    return {"detections": _select(boxes, best, conf, spec, labels)}


def postprocess(inputs: np.ndarray, outputs: list[np.ndarray], spec: PostprocessSpec,
                labels: tuple[str, ...]) -> dict[str, Any]:
    """Result fields for one input (already dequantized outputs, batch 1)."""
    if spec.kind is PostprocessKind.CLASSIFICATION:
        return classify(outputs, spec, labels)
    if spec.kind is PostprocessKind.ANOMALY:
        return anomaly(inputs, outputs, spec)
    if spec.kind is PostprocessKind.DETECTION:
        size = None
        if inputs.ndim == 4:  # NHWC, or NCHW when the channel axis comes first
            nchw = inputs.shape[1] in (1, 3) and inputs.shape[3] not in (1, 3)
            size = tuple(inputs.shape[2:4]) if nchw else tuple(inputs.shape[1:3])
        return detect(outputs, spec, labels, size)  # type: ignore[arg-type]
    if spec.kind is PostprocessKind.GENERATION:
        return generate(outputs)
    return {"values": tuple(float(v) for v in np.concatenate([o.reshape(-1) for o in outputs]))}


def generate(outputs: list[np.ndarray]) -> dict[str, Any]:
    """A generator's result: its (first) output tensor, float32, without the batch dimension."""
    first = outputs[0]
    tensor = first.reshape(first.shape[1:]) if first.ndim >= 2 and first.shape[0] == 1 else first
    return {"output": np.asarray(tensor, dtype=np.float32)}


class PosteriorSmoother:
    """Keyword-spotting decisions over a stream of classification scores.

    Averages the class scores of the results within `smoothing_ms`. The result's top
    class (`label`, `index`, `score`) and `top_k` are those of the smoothed scores, as
    `ranked` gives them. The keyword is the best class not in `background_labels` (the
    first of equal scores); a detection fires (`detected`) when its smoothed score
    (`keyword_score`) reaches `score_threshold` (default 0.5), and no other detection fires
    for `suppression_ms` after it.

    A stream at a 20 ms hop updates it 50 times a second with a 500 ms window of 25
    results, so the scores of the window are rows ``rows[lo:hi]`` of one array (their
    times in `times`) rather than a list of arrays made into an array on every update;
    the mean is numpy's, over the same rows in the same order.
    """

    def __init__(self, spec: PostprocessSpec, labels: tuple[str, ...]) -> None:
        self.spec = spec
        self.labels = labels
        self.times: collections.deque[float] = collections.deque()  # of the rows[lo:hi], oldest first
        self.rows = np.empty((0, 0))
        self.lo = self.hi = 0
        self.last_detection_ms = -float("inf")
        self.background = {i for i, name in enumerate(labels) if name in spec.background_labels}
        self._threshold = spec.score_threshold if spec.score_threshold is not None else 0.5
        self._smoothing = spec.smoothing_ms
        self._width = 0  # the columns of `rows`

    def update(self, time_ms: float, scores: np.ndarray) -> dict[str, Any]:
        """Add one result's class scores (float64, one per class) at `time_ms`; the fields
        of the smoothed scores."""
        width = scores.size
        rows, hi = self.rows, self.hi
        if hi == len(rows) or width != self._width:
            self._grow(width)
            rows, hi = self.rows, self.hi
        rows[hi] = scores  # one row (a (1, width) array broadcasts into it)
        self.hi = hi = hi + 1
        times = self.times
        times.append(time_ms)
        oldest = time_ms - self._smoothing
        lo = self.lo
        while times[0] < oldest:  # the newest time stays: smoothing_ms > 0
            times.popleft()
            lo += 1
        self.lo = lo
        smoothed = np.add.reduce(rows[lo:hi], axis=0)  # np.mean's sum and division, without its checks
        smoothed /= hi - lo
        values = smoothed.tolist()
        order = sorted(range(width), key=values.__getitem__, reverse=True)  # stable: ties by index
        fields = ranked_values(values, self.spec, self.labels, order)
        fields["detected"] = False
        background = self.background
        for best in order:  # the best keyword, the first of equal scores (the order is stable)
            if best not in background:
                break
        else:  # every class is background: nothing to spot
            return fields
        score = values[best]
        fields["keyword"] = self.labels[best] if best < len(self.labels) else str(best)
        fields["keyword_score"] = score
        if score >= self._threshold and time_ms - self.last_detection_ms >= self.spec.suppression_ms:
            fields["detected"] = True
            self.last_detection_ms = time_ms
        return fields

    def _grow(self, width: int) -> None:
        """Room for one more row: the window's rows moved to the front of a new array (of
        `width` columns; a result of another width starts the window again)."""
        kept = self.rows[self.lo : self.hi] if self._width == width else np.empty((0, width))
        if not len(kept):
            self.times.clear()
        self.rows = np.empty((max(64, 2 * len(kept) + 1), width))
        self._width = width
        self.rows[: len(kept)] = kept
        self.lo, self.hi = 0, len(kept)
