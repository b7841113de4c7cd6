"""Results: small typed objects that serialize to JSON lines."""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, NamedTuple

import numpy as np

SIGNIFICANT_DIGITS = 5  # generated tensors in JSON: digits kept, relative to the largest value


@dataclasses.dataclass(slots=True)
class Latency:
    """Where the time of one result went, in milliseconds (treat as read-only)."""

    preprocess_ms: float
    inference_ms: float
    postprocess_ms: float

    @property
    def total_ms(self) -> float:
        return self.preprocess_ms + self.inference_ms + self.postprocess_ms

    def to_dict(self) -> dict[str, float]:
        return {"preprocess_ms": round(self.preprocess_ms, 4), "inference_ms": round(self.inference_ms, 4),
                "postprocess_ms": round(self.postprocess_ms, 4), "total_ms": round(self.total_ms, 4)}


class ClassScore(NamedTuple):
    """One entry of `Result.top_k`: a class and its score (``label``, ``score``; unpacks as
    a pair). In JSON ``{"label": ..., "score": ...}``, the same names."""

    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": self.score}


@dataclasses.dataclass(frozen=True)
class Detection:
    """One detected object: box corners normalized to [0, 1] as (x0, y0, x1, y1)."""

    label: str
    index: int
    score: float
    box: tuple[float, float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "index": self.index, "score": round(self.score, 6),
                "box": [round(v, 6) for v in self.box]}


@dataclasses.dataclass(slots=True)
class Result:
    """One inference (treat as read-only; not frozen because it is built on the hot path).

    Attributes:
        kind: classification, regression, anomaly, detection, generation or raw.
        label / index / score: the top class (classification): the highest score of
            this result's class scores (in a stream with smoothing, the smoothed ones);
            `label` and `index` are None when the postprocess spec's `score_threshold` is
            above that score (`score` stays).
        top_k: `ClassScore` ``(label, score)`` pairs, best first (classification).
        detected / keyword / keyword_score: keyword spotting (streams whose postprocess
            spec sets `smoothing_ms`): whether a detection fired on this result, the best
            keyword (the best class not in `background_labels`: the one that fired when
            `detected`) and its smoothed score; None elsewhere.
        anomaly_score / is_anomaly: reconstruction error and its verdict (anomaly).
        values: the output values (regression, raw).
        detections: objects found (detection), best first.
        output: the generated tensor (generation), float32, without the batch dimension.
        timestamp: wall-clock time (seconds since the epoch) the input was captured; for
            audio streams, when the window's last sample was (window end).
        sequence: position in the stream (0 for single predictions).
        latency: preprocess / inference / postprocess split.
        variant: which bundle variant produced it.
        source: where the input came from (file name, frame number...), when known.
    """

    kind: str
    latency: Latency
    variant: str
    timestamp: float
    sequence: int = 0
    label: str | None = None
    index: int | None = None
    score: float | None = None
    top_k: tuple[ClassScore, ...] = ()
    detected: bool | None = None
    keyword: str | None = None
    keyword_score: float | None = None
    anomaly_score: float | None = None
    is_anomaly: bool | None = None
    values: tuple[float, ...] | None = None
    detections: tuple[Detection, ...] | None = None
    output: np.ndarray | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "variant": self.variant, "timestamp": round(self.timestamp, 6),
                                "sequence": self.sequence, "latency": self.latency.to_dict()}
        for key in ("label", "index", "score", "detected", "keyword", "keyword_score", "anomaly_score",
                    "is_anomaly", "source"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.top_k:
            data["top_k"] = [ClassScore(*entry).to_dict() for entry in self.top_k]
        if self.values is not None:
            data["values"] = list(self.values)
        if self.detections is not None:
            data["detections"] = [d.to_dict() for d in self.detections]
        if self.output is not None:
            data["output"] = compact_tensor(self.output)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


def compact_tensor(array: np.ndarray) -> dict[str, Any]:
    """A tensor for a JSON line: shape, min, max, mean (of the finite values), and the
    values in C order, rounded to `SIGNIFICANT_DIGITS` digits relative to the largest
    magnitude (values up to 1 keep 4 or 5 decimals, pixels up to 255 keep 2); NaN and
    infinities become null."""
    values = np.asarray(array, dtype=np.float64)
    if values.size == 0:
        return {"shape": list(values.shape), "min": None, "max": None, "mean": None, "values": []}
    finite = np.isfinite(values)
    largest = float(np.max(np.abs(values[finite]))) if finite.any() else 0.0
    decimals = SIGNIFICANT_DIGITS - 1 - (math.floor(math.log10(largest)) if largest > 0 else 0)
    decimals = max(0, decimals)
    rounded = np.round(values, decimals).reshape(-1)
    # JSON has no NaN or infinity: those become null.
    flat = [v if math.isfinite(v) else None for v in rounded.tolist()] if not finite.all() else rounded.tolist()
    kept = values[finite]
    stats = tuple(round(float(f(kept)), decimals) for f in (np.min, np.max, np.mean)) if kept.size else (None,) * 3
    return {"shape": list(values.shape), "min": stats[0], "max": stats[1], "mean": stats[2], "values": flat}
