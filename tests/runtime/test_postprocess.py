"""Postprocessing on known arrays: classification, anomaly, detection (SSD and YOLO with NMS)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgekit.runtime.postprocess import detect, nms, postprocess, softmax
from edgekit.spec import PostprocessKind, PostprocessSpec


def test_softmax_top_k_and_threshold():
    spec = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, apply_softmax=True, top_k=2, score_threshold=0.5)
    fields = postprocess(np.zeros(1), [np.array([[2.0, 0.0, 1.0]])], spec, ("a", "b", "c"))
    expected = softmax(np.array([2.0, 0.0, 1.0]))
    assert fields["label"] == "a" and fields["score"] == pytest.approx(expected[0])
    assert [name for name, _ in fields["top_k"]] == ["a", "c"]  # pairs that unpack...
    assert [entry.label for entry in fields["top_k"]] == ["a", "c"]  # ...with attribute names
    assert fields["top_k"][1].score == pytest.approx(expected[2])
    plain = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, score_threshold=0.5)
    low = postprocess(np.zeros(1), [np.array([[0.4, 0.35, 0.25]])], plain, ("a", "b", "c"))
    assert low["label"] is None and low["score"] == pytest.approx(0.4)


def test_top_k_has_one_shape_in_python_and_json():
    """`Result.top_k` entries are `ClassScore` (label, score) in Python and objects with the
    same two names in JSON."""
    from edgekit.runtime import ClassScore, Latency, Result

    spec = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, top_k=3)
    fields = postprocess(np.zeros(1), [np.array([[0.1, 0.7, 0.2]])], spec, ("a", "b"))  # class 2 unnamed
    assert fields["top_k"] == (ClassScore("b", pytest.approx(0.7)), ClassScore("2", pytest.approx(0.2)),
                               ClassScore("a", pytest.approx(0.1)))
    result = Result(kind="classification", latency=Latency(0, 0, 0), variant="v", timestamp=1.0, **fields)
    first = result.top_k[0]
    assert isinstance(first, ClassScore) and (first.label, first.score) == tuple(first)
    data = json.loads(result.to_json())
    assert data["top_k"] == [{"label": e.label, "score": e.score} for e in result.top_k]
    assert data["top_k"][0] == first.to_dict() == first._asdict()
    many = postprocess(np.zeros(1), [np.arange(100.0)[None]], spec, ())  # the numpy path (> 64 classes)
    assert many["top_k"][0] == ClassScore("99", 99.0) and isinstance(many["top_k"][0], ClassScore)


def test_keyword_spotting_label_is_the_top_class_and_the_keyword_has_its_own_fields():
    """The issue's case: `_unknown_` at 0.69 and `go` at 0.066. The result's label and score
    are the top class (`_unknown_`); the best keyword and its smoothed score are `keyword`
    and `keyword_score`, and `detected` says whether it fired."""
    from edgekit.runtime.postprocess import PosteriorSmoother

    labels = ("_silence_", "_unknown_", "go", "stop")
    spec = PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, top_k=2, smoothing_ms=300, suppression_ms=1000,
                           background_labels=("_silence_", "_unknown_"), score_threshold=0.5)
    smoother = PosteriorSmoother(spec, labels)
    fields = smoother.update(0.0, np.array([0.2, 0.69, 0.066, 0.044]))
    assert (fields["label"], fields["index"], fields["score"]) == ("_unknown_", 1, pytest.approx(0.69))
    assert [e.label for e in fields["top_k"]] == ["_unknown_", "_silence_"]
    assert fields["keyword"] == "go" and fields["keyword_score"] == pytest.approx(0.066)
    assert fields["detected"] is False
    fields = smoother.update(100.0, np.array([0.0, 0.0, 1.0, 0.0]))  # smoothed: go (0.066 + 1) / 2
    assert fields["label"] == "go" and fields["score"] == pytest.approx(0.533)
    assert fields["keyword"] == "go" and fields["keyword_score"] == pytest.approx(0.533) and fields["detected"]
    fields = smoother.update(200.0, np.array([0.3, 0.3, 0.1, 0.3]))  # top below the threshold: no label, as predict
    assert fields["label"] is None and fields["index"] is None and fields["score"] == pytest.approx(1.166 / 3)
    assert fields["keyword"] == "go" and fields["detected"] is False
    only_background = PosteriorSmoother(spec, ("_silence_", "_unknown_")).update(0.0, np.array([0.6, 0.4]))
    assert only_background["label"] == "_silence_" and "keyword" not in only_background


def test_anomaly_score_and_verdict():
    spec = PostprocessSpec(kind=PostprocessKind.ANOMALY, anomaly_threshold=0.5)
    x = np.ones((1, 4))
    assert postprocess(x, [np.ones((1, 4))], spec, ())["is_anomaly"] is False
    far = postprocess(x, [np.zeros((1, 4))], spec, ())
    assert far["anomaly_score"] == pytest.approx(1.0) and far["is_anomaly"] is True


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 1, 1], [0.05, 0.05, 1, 1], [2, 2, 3, 3]], np.float64)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.5, 10) == [0, 2]
    assert nms(boxes, scores, 0.99, 10) == [0, 1, 2]
    assert nms(boxes, scores, 0.5, 1) == [0]


def test_ssd_outputs_of_the_detection_postprocess_op():
    spec = PostprocessSpec(kind=PostprocessKind.DETECTION, detection_format="ssd", score_threshold=0.5)
    boxes = np.array([[[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0], [0.3, 0.3, 0.4, 0.4]]], np.float32)
    classes = np.array([[1.0, 0.0, 2.0]], np.float32)
    scores = np.array([[0.9, 0.3, 0.6]], np.float32)
    count = np.array([3.0], np.float32)
    found = detect([boxes, classes, scores, count], spec, ("person", "cat", "dog"))["detections"]
    assert [(d.label, round(d.score, 2)) for d in found] == [("cat", 0.9), ("dog", 0.6)]
    assert found[0].box == pytest.approx((0.2, 0.1, 0.6, 0.5))  # (x0, y0, x1, y1) from ymin, xmin, ymax, xmax


def test_yolo_raw_rows_in_pixels_with_per_class_nms():
    spec = PostprocessSpec(kind=PostprocessKind.DETECTION, detection_format="yolo", score_threshold=0.3,
                           iou_threshold=0.5)
    rows = np.array([
        [50, 50, 20, 20, 0.9, 0.1, 0.9],  # class 1 at (40..60)
        [52, 50, 20, 20, 0.8, 0.1, 0.9],  # overlaps the first, same class: suppressed
        [52, 50, 20, 20, 0.8, 0.9, 0.1],  # overlaps, but class 0: kept
        [10, 10, 4, 4, 0.2, 0.5, 0.5],    # below threshold
    ], np.float32)[None]
    found = detect([rows], spec, ("a", "b"), input_size=(100, 100))["detections"]
    assert [(d.label, round(d.score, 3)) for d in found] == [("b", 0.81), ("a", 0.72)]
    assert found[0].box == pytest.approx((0.4, 0.4, 0.6, 0.6))


def test_yolov8_transposed_outputs():
    spec = PostprocessSpec(kind=PostprocessKind.DETECTION, detection_format="yolov8", score_threshold=0.5)
    preds = np.array([[0.5, 0.5, 0.2, 0.2, 0.1, 0.95], [0.2, 0.2, 0.1, 0.1, 0.7, 0.1]], np.float32).T[None]
    found = detect([preds], spec, ("a", "b"))["detections"]
    assert [(d.label, round(d.score, 2)) for d in found] == [("b", 0.95), ("a", 0.7)]
    assert found[1].box == pytest.approx((0.15, 0.15, 0.25, 0.25))


def test_bad_detection_settings_are_refused():
    from edgekit.errors import InputError

    with pytest.raises(InputError, match="detection_format"):
        PostprocessSpec(kind=PostprocessKind.DETECTION, detection_format="retinanet")
    with pytest.raises(InputError, match="iou_threshold"):
        PostprocessSpec(kind=PostprocessKind.DETECTION, iou_threshold=0.0)
