"""Results: small typed objects that serialize to JSON lines."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


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
        kind: classification, regression, anomaly or raw.
        label / index / score: the top class (classification), or None.
        top_k: ``((label, score), ...)`` best first (classification).
        detected: streams with smoothing: a detection event fired on this result.
        anomaly_score / is_anomaly: reconstruction error and its verdict (anomaly).
        values: the output values (regression, raw).
        detections: objects found (detection), best first.
        timestamp: wall-clock time (seconds since the epoch) the input was captured.
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
    top_k: tuple[tuple[str, float], ...] = ()
    detected: bool | None = None
    anomaly_score: float | None = None
    is_anomaly: bool | None = None
    values: tuple[float, ...] | None = None
    detections: tuple[Detection, ...] | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "variant": self.variant, "timestamp": round(self.timestamp, 6),
                                "sequence": self.sequence, "latency": self.latency.to_dict()}
        for key in ("label", "index", "score", "detected", "anomaly_score", "is_anomaly", "source"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.top_k:
            data["top_k"] = [{"label": label, "score": score} for label, score in self.top_k]
        if self.values is not None:
            data["values"] = list(self.values)
        if self.detections is not None:
            data["detections"] = [d.to_dict() for d in self.detections]
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))
