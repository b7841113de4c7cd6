"""The eval figures and how labelled data map to a bundle's task (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.datasets.loaders import RawSamples
from edgekit.errors import InputError
from edgekit.eval import metrics
from edgekit.eval.run import truth_of
from edgekit.spec import PostprocessKind


def samples(y, names=None, targets=None) -> RawSamples:
    n = len(y) if y is not None else len(targets)
    return RawSamples(tuple(np.zeros(2) for _ in range(n)), None if y is None else np.asarray(y, np.int64),
                      names, targets, tuple(f"index:{i}" for i in range(n)), "data.npz", "arrays")


def test_roc_auc_counts_ties_half_and_is_undefined_for_one_class():
    assert metrics.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert metrics.roc_auc(np.array([0, 0, 1, 1]), np.array([0.4, 0.3, 0.2, 0.1])) == 0.0
    assert metrics.roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert metrics.roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.3, 0.35, 0.8])) == 0.75
    assert np.isnan(metrics.roc_auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_classification_figures_and_their_intervals():
    truth = np.array([0] * 10 + [1] * 10 + [2] * 10)
    predicted = truth.copy()
    predicted[10:14] = 2  # four of class 1 taken for class 2
    predicted[29] = -1  # one answer below the score threshold
    figures = metrics.classification(truth, predicted, ("a", "b", "c"))
    assert figures["accuracy"]["value"] == pytest.approx(25 / 30) and figures["accuracy"]["n"] == 30
    low, high = figures["accuracy"]["ci95"]
    assert low < 25 / 30 < high
    per = {c["label"]: c for c in figures["per_class"]}
    assert per["b"]["recall"]["value"] == 0.6 and per["b"]["precision"]["value"] == 1.0
    assert per["c"]["precision"]["value"] == pytest.approx(9 / 13) and per["c"]["predicted"] == 13
    assert per["a"]["f1"]["value"] == 1.0 and per["a"]["f1"]["ci95"] == [1.0, 1.0]
    assert figures["confusion_matrix"]["rows"][2] == [0, 0, 9, 1]  # the last column: no answer
    # the same predictions always give the same bootstrap interval
    assert metrics.classification(truth, predicted, ("a", "b", "c"))["macro_f1"] == figures["macro_f1"]


def test_recording_segments_vote_by_majority():
    truth = np.array([0, 0, 0, 1, 1, 0, 0])
    predicted = np.array([0, 1, 0, 1, 0, 1, 1])
    groups = ("r1",) * 5 + ("r2",) * 2
    figures = metrics.recording_accuracy(truth, predicted, groups, 2)
    # segments: r1 idle (0,1,0 -> 0 right), r1 walk (1,0 -> tie, first class 0: wrong), r2 idle (1,1: wrong)
    assert figures["segments"] == 3 and figures["accuracy"]["value"] == pytest.approx(1 / 3)


def test_regression_and_anomaly_figures():
    targets = np.array([[1.0], [2.0], [3.0], [4.0]])
    figures = metrics.regression(targets, targets + np.array([[1.0], [-1.0], [1.0], [-3.0]]))
    assert figures["rmse"]["value"] == pytest.approx(np.sqrt(3.0)) and figures["mae"]["value"] == 1.5
    anomaly = metrics.anomaly(np.array([0, 0, 1, 1]), np.array([0.1, 0.5, 0.4, 0.9]),
                              np.array([False, True, False, True]), 0.45)
    assert anomaly["roc_auc"]["value"] == 0.75
    assert anomaly["threshold_precision"]["value"] == 0.5 and anomaly["threshold_recall"]["value"] == 0.5
    none = metrics.anomaly(np.array([0, 1]), np.array([0.1, 0.9]), None, None)
    assert none["threshold_precision"] is None and none["threshold"] is None


def test_data_map_to_the_bundles_labels_or_are_refused():
    labels = ("cat", "dog")
    truth = truth_of(samples([0, 1, 1], ("dog", "cat")), PostprocessKind.CLASSIFICATION, labels)
    assert truth.values.tolist() == [1, 0, 0]  # folder order -> the bundle's order
    with pytest.raises(InputError, match=r"expected the bundle's labels \['cat', 'dog'\].*'fox'"):
        truth_of(samples([0, 1], ("cat", "fox")), PostprocessKind.CLASSIFICATION, labels)
    with pytest.raises(InputError, match="class indices 0..1"):
        truth_of(samples([0, 2]), PostprocessKind.CLASSIFICATION, labels)
    unlabelled = RawSamples((np.zeros(2),), None, None, None, ("index:0",), "data.npy", "arrays")
    with pytest.raises(InputError, match="eval needs labels"):
        truth_of(unlabelled, PostprocessKind.CLASSIFICATION, labels)


def test_anomaly_folders_normal_and_anomaly_map_to_0_and_1():
    truth = truth_of(samples([0, 1, 1, 0], ("anomaly", "normal")), PostprocessKind.ANOMALY, ())
    assert truth.values.tolist() == [1, 0, 0, 1]
    assert truth_of(samples([0, 1], ("good", "Defect")), PostprocessKind.ANOMALY, ()).values.tolist() == [0, 1]
    with pytest.raises(InputError, match="folder named normal"):
        truth_of(samples([0, 1], ("normal", "scratch")), PostprocessKind.ANOMALY, ())
    with pytest.raises(InputError, match="normal and anomalous samples"):
        truth_of(samples([0, 0], ("normal", "anomaly")), PostprocessKind.ANOMALY, ())
    with pytest.raises(InputError, match="0 \\(normal\\) and 1"):
        truth_of(samples([0, 2]), PostprocessKind.ANOMALY, ())
    with pytest.raises(InputError, match="regression targets"):
        truth_of(samples([0, 1]), PostprocessKind.REGRESSION, ())
