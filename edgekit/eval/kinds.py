"""What eval measures for each task kind: one small object per kind, in one registry.

A `Measure` says what the data must carry (labels or targets), turns the data's labels
into the expected answers (`truth`), the runtime's results into figures (`figures`), and
the figures into the columns of the summary table (`summary`). Adding a task kind to eval
is one class and one line in `MEASURES`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from edgekit.datasets.loaders import RawSamples
from edgekit.errors import InputError
from edgekit.eval import metrics
from edgekit.eval.table import number, percent
from edgekit.tasks.anomaly import ANOMALY_NAMES as TRAINING_ANOMALY_NAMES

# Class folders (or label values) of anomaly data: these names are normal (0) ...
NORMAL_NAMES = ("normal", "good", "ok")
# ... and these anomalous (1): training's names and "defective". Any other name is refused,
# so that a typo is not scored.
ANOMALY_NAMES = (*TRAINING_ANOMALY_NAMES, "defective")


def _need_labels(samples: RawSamples, kind: str) -> np.ndarray:
    """The integer labels of `samples`, or one line saying why there are none."""
    source = samples.source
    if samples.y is None and samples.targets is not None:
        raise InputError(f"labels in {source}", expected=f"integer class labels (a {kind} model)",
                         found=f"float targets of {samples.targets.dtype}",
                         hint="float y are regression targets: eval a regression bundle on them")
    if samples.y is None:
        raise InputError(f"data {source}", expected="labelled samples (class folders, an .npz with y, or a label "
                         "column)", found=f"{len(samples)} unlabelled samples",
                         hint="eval needs labels: put each class's files in a folder named after the label")
    return samples.y


class Measure:
    """The figures of one task kind.

    Attributes:
        kind: the postprocess kind it measures.
        need: what the data must carry: ``label`` or ``target`` (`raw_samples`).
        per_class: the report adds a per-class table and a confusion matrix per variant.
    """

    kind: ClassVar[str]
    need: ClassVar[str] = "label"
    per_class: ClassVar[bool] = False

    def truth(self, samples: RawSamples, labels: tuple[str, ...]) -> np.ndarray:
        """The expected answer of every sample, in the bundle's terms.

        Raises:
            InputError: data without what this kind needs, or labels the bundle lacks.
        """
        raise NotImplementedError

    def figures(self, truth: np.ndarray, groups: tuple[str, ...] | None, results: list[Any], model: Any,
                source: str) -> dict[str, Any]:
        """The figures of one variant from its results (one per sample of `truth`)."""
        raise NotImplementedError

    def summary(self, variants: list[Any]) -> tuple[list[str], list[list[str]]]:
        """The summary table's task columns and one row of cells per variant."""
        raise NotImplementedError

    def notes(self, variants: list[Any]) -> list[str]:
        """Lines under the tables."""
        return []


class Classification(Measure):
    kind = "classification"
    per_class = True

    def truth(self, samples: RawSamples, labels: tuple[str, ...]) -> np.ndarray:
        y = _need_labels(samples, self.kind)
        source = samples.source
        if not labels:
            raise InputError("bundle labels", expected="a classification bundle with labels", found="no labels",
                             hint="convert it again with --labels FILE")
        if samples.class_names is None:  # integer labels in the model's output order
            if y.min() < 0 or y.max() >= len(labels):
                raise InputError(f"labels in {source}", expected=f"class indices 0..{len(labels) - 1} "
                                 f"(the bundle's labels {list(labels)})", found=f"{y.min()}..{y.max()}",
                                 hint="store y in the bundle's label order, or add a classes array naming them")
            return y
        unknown = sorted(set(samples.class_names) - set(labels))
        if unknown:
            raise InputError(f"classes in {source}", expected=f"the bundle's labels {list(labels)}",
                             found=f"{unknown[:10]} not among them",
                             hint="name the class folders (or label values) after the bundle's labels; "
                                  "edgekit inspect BUNDLE lists them")
        mapping = np.array([labels.index(n) for n in samples.class_names], np.int64)
        return mapping[y]

    def figures(self, truth: np.ndarray, groups: tuple[str, ...] | None, results: list[Any], model: Any,
                source: str) -> dict[str, Any]:
        labels = tuple(model.labels)
        predicted = np.array([-1 if r.index is None else int(r.index) for r in results], np.int64)
        figures = metrics.classification(truth, predicted, labels)
        figures["recordings"] = None
        if groups is not None:
            figures["recordings"] = metrics.recording_accuracy(truth, predicted, groups, len(labels))
        return figures

    def summary(self, variants: list[Any]) -> tuple[list[str], list[list[str]]]:
        recordings = any(v.metrics and v.metrics.get("recordings") for v in variants)
        header = ["accuracy", "macro F1"] + (["recording accuracy", "recordings"] if recordings else [])
        rows = []
        for v in variants:
            m = v.metrics or {}
            row = [percent(m.get("accuracy")), number(m.get("macro_f1"))]
            if recordings:
                rec = m.get("recordings") or {}
                row += [percent(rec.get("accuracy")), str(rec.get("segments", "-"))]
            rows.append(row)
        return header, rows


class Anomaly(Measure):
    kind = "anomaly"

    def truth(self, samples: RawSamples, labels: tuple[str, ...]) -> np.ndarray:
        y = _need_labels(samples, self.kind)
        source = samples.source
        if samples.class_names is None:
            if y.min() < 0 or y.max() > 1:
                raise InputError(f"labels in {source}", expected="0 (normal) and 1 (anomalous)",
                                 found=f"labels {y.min()}..{y.max()}")
            truth = y.astype(np.int64)
        else:
            other = sorted(n for n in samples.class_names if n.lower() not in NORMAL_NAMES + ANOMALY_NAMES)
            if other:
                raise InputError(f"classes in {source}", expected=f"normal samples named {list(NORMAL_NAMES)} and "
                                 f"anomalous ones named {list(ANOMALY_NAMES)}", found=f"{other[:10]}",
                                 hint="put the normal samples in a folder named normal and the anomalous ones in "
                                      "a folder named anomaly")
            mapping = np.array([int(n.lower() in ANOMALY_NAMES) for n in samples.class_names], np.int64)
            truth = mapping[y]
        if truth.min() == truth.max():
            raise InputError(f"data {source}", expected="normal and anomalous samples (ROC-AUC needs both)",
                             found=f"{len(truth)} samples, all {'anomalous' if truth[0] else 'normal'}")
        return truth

    def figures(self, truth: np.ndarray, groups: tuple[str, ...] | None, results: list[Any], model: Any,
                source: str) -> dict[str, Any]:
        scores = np.array([r.anomaly_score for r in results], np.float64)
        threshold = model.postprocess_spec.anomaly_threshold
        flagged = None if threshold is None else np.array([bool(r.is_anomaly) for r in results])
        return metrics.anomaly(truth, scores, flagged, threshold)

    def summary(self, variants: list[Any]) -> tuple[list[str], list[list[str]]]:
        rows = []
        for v in variants:
            m = v.metrics or {}
            threshold = m.get("threshold")
            rows.append([number(m.get("roc_auc")), "-" if threshold is None else f"{threshold:.4g}",
                         percent(m.get("threshold_precision")), percent(m.get("threshold_recall"))])
        return ["ROC-AUC", "threshold", "precision at threshold", "recall at threshold"], rows

    def notes(self, variants: list[Any]) -> list[str]:
        if variants and variants[0].metrics and variants[0].metrics["threshold"] is None:
            return ["the bundle has no postprocess.anomaly_threshold: only ROC-AUC is measured"]
        return []


class Regression(Measure):
    kind = "regression"
    need = "target"

    def truth(self, samples: RawSamples, labels: tuple[str, ...]) -> np.ndarray:
        if samples.targets is None:
            raise InputError(f"data {samples.source}",
                             expected="regression targets (an .npz y array, or a target column)",
                             found="inputs without targets", hint="eval needs labelled data")
        targets = samples.targets.astype(np.float64)
        return targets.reshape(len(targets), -1)

    def figures(self, truth: np.ndarray, groups: tuple[str, ...] | None, results: list[Any], model: Any,
                source: str) -> dict[str, Any]:
        values = np.array([np.asarray(r.values, np.float64).reshape(-1) for r in results])
        if values.shape[1] != truth.shape[1]:
            raise InputError(f"targets in {source}",
                             expected=f"{values.shape[1]} value(s) per sample (the model's outputs)",
                             found=f"{truth.shape[1]} per sample")
        return metrics.regression(truth, values)

    def summary(self, variants: list[Any]) -> tuple[list[str], list[list[str]]]:
        rows = [[number((v.metrics or {}).get("rmse"), None), number((v.metrics or {}).get("mae"), None)]
                for v in variants]
        return ["RMSE", "MAE"], rows


MEASURES: dict[str, Measure] = {m.kind: m for m in (Classification(), Anomaly(), Regression())}
