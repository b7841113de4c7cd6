"""Classification: one score per class; cross-entropy, accuracy, top-1 agreement."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgekit.contract import Contract
from edgekit.spec import PostprocessKind, PostprocessSpec
from edgekit.stats import Drop, accuracy_drop, disagreement
from edgekit.tasks.base import Features, Log, Predict, Task


def classification_metrics(probabilities: np.ndarray, y: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1, macro F1 and the confusion matrix."""
    predicted = probabilities.argmax(-1)
    k = len(names)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y, predicted), 1)
    per_class = {}
    for i, name in enumerate(names):
        tp = confusion[i, i]
        precision = tp / max(1, confusion[:, i].sum())
        recall = tp / max(1, confusion[i].sum())
        f1 = 2 * precision * recall / max(1e-12, precision + recall)
        per_class[name] = {"precision": round(float(precision), 4), "recall": round(float(recall), 4),
                           "f1": round(float(f1), 4), "support": int(confusion[i].sum())}
    return {"samples": int(len(y)), "accuracy": float(np.mean(predicted == y)),
            "macro_f1": round(float(np.mean([c["f1"] for c in per_class.values()])), 4),
            "per_class": per_class, "confusion_matrix": confusion.tolist(), "classes": list(names)}


class Classification(Task):
    name = "classification"
    class_labels = True
    named_classes = True
    integer_labels = True
    counts_accuracy = True
    distills = True

    def compile(self, keras: Any, model: Any, recipe: Any, optimizer: Any) -> None:
        metrics: list[Any] = [keras.metrics.CategoricalAccuracy(name="accuracy")]
        if "top2" in recipe.values["metrics"]:
            metrics.append(keras.metrics.TopKCategoricalAccuracy(k=2, name="top2"))
        model.compile(optimizer=optimizer, loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=float(recipe.train["label_smoothing"])), metrics=metrics)

    def per_example_loss(self, keras: Any, recipe: Any) -> Any:
        return keras.losses.CategoricalCrossentropy(label_smoothing=float(recipe.train["label_smoothing"]),
                                                    reduction=None)

    def evaluate(self, model: Any, recipe: Any, parts: Any, features: Features, predict: Predict,
                 log: Log) -> dict[str, Any]:
        names = parts.train.class_names
        test = classification_metrics(predict(model, features(parts.test)), parts.test.y, names)
        validation = classification_metrics(predict(model, features(parts.validation)), parts.validation.y, names)
        log(f"  held-out accuracy {test['accuracy']:.2%} ({test['samples']} samples), "
            f"validation {validation['accuracy']:.2%}")
        return {"test": test, "validation": {k: validation[k] for k in ("samples", "accuracy", "macro_f1")}}

    def headline(self, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        test = evaluation["test"]
        return {"metric": "accuracy", "value": float(test["accuracy"]), "higher_is_better": True,
                "samples": int(test["samples"])}

    def contract(self, recipe: Any, class_names: Sequence[str], evaluation: Mapping[str, Any]) -> Contract:
        return dataclasses.replace(super().contract(recipe, class_names, evaluation), labels=tuple(class_names))

    def metric(self, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
               class_names: Sequence[str] | None, targets: np.ndarray | None = None) -> tuple[str | None, float | None]:
        if labels is None or (labels < 0).all():
            return None, None
        return "accuracy", float(np.mean(outputs[0].argmax(-1) == labels))

    def agreement(self, reference: Any, outputs: Sequence[np.ndarray],
                  class_names: Sequence[str] | None) -> dict[str, float]:
        return {"top1_agreement": float(np.mean(outputs[0].argmax(-1) == reference.outputs[0].argmax(-1)))}

    def drop(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
             class_names: Sequence[str] | None, basis: str | None) -> Drop | None:
        """Accuracy: Newcombe's paired interval (the float model and the variant on the same
        labelled samples); top-1 agreement: Wilson's interval of the disagreement."""
        predicted = outputs[0].argmax(-1)
        expected = reference.outputs[0].argmax(-1)
        if basis == "accuracy" and labels is not None:
            return accuracy_drop(expected == labels, predicted == labels)
        if basis == "top1_agreement":
            return disagreement(predicted == expected)
        return None

    def default_postprocess(self, reference_outputs: Sequence[np.ndarray], classes: int | None) -> PostprocessSpec:
        probs = reference_outputs[0]
        looks_like_probabilities = bool(np.all(probs >= -1e-6) and np.allclose(probs.sum(-1), 1.0, atol=1e-3))
        return PostprocessSpec(kind=PostprocessKind.CLASSIFICATION, apply_softmax=not looks_like_probabilities,
                               top_k=min(5, classes or 1))
