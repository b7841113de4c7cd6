"""What a task kind is: the one object that owns what differs between classification,
detection, anomaly detection, regression and generation.

Training, pruning and conversion ask the recipe's (or the model's) task object instead of
comparing task names: the loss and metrics it compiles with, how its data is labelled, how
its held-out split is evaluated, the figure convert measures each variant by (its fidelity
figure, the basis and unit of its drop and so the gate rule) and the postprocessing a bundle
gets by default. Adding a task kind is one module with a `Task` subclass and one line in
`edgekit.tasks.TASKS`.

Nothing here imports TensorFlow: the methods that build Keras objects take the ``keras``
module from their caller (`edgekit.keras_env.import_keras`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from edgekit.contract import Contract
from edgekit.progress import Log
from edgekit.spec import PostprocessKind, PostprocessSpec
from edgekit.stats import NO_DROP_METRICS, Drop


def with_drop(figures: dict[str, Any], drop: Drop | None) -> dict[str, Any]:
    """`figures` with the drop's interval keys; ``drop_pts`` becomes the Drop's value (the
    same figure, computed from the same per-sample outcomes)."""
    if drop is None or figures.get("drop_pts") is None:
        figures.update(NO_DROP_METRICS)
        return figures
    figures["drop_pts"] = drop.value
    figures.update(drop.to_metrics())
    return figures


#: ``features(part)``: a data split through the device's numpy front end.
Features = Callable[[Any], np.ndarray]
#: ``predict(model, x)``: the Keras model's float32 outputs.
Predict = Callable[[Any, np.ndarray], np.ndarray]


class Task:
    """One task kind. Subclasses set the class attributes and override what differs.

    Attributes:
        name: the task's name in recipes, contracts and reports (a `PostprocessKind` value).
        class_labels: the data's ``y`` are integer class labels and the labels name the
            model's classes (data loaders require them, their count must match the outputs).
        named_classes: the contract's labels name classes the model reports (classification,
            detection): convert checks their number against the outputs.
        integer_labels: float ``y`` are refused (they would be regression targets).
        targets: the data's ``y`` are float targets the model predicts (regression).
        normal_only: trained on normal data only; anomalies go to the test split.
        autoencoder: the training target is the input itself.
        adversarial: trained by the GAN loop with a discriminator, not ``model.fit``.
        trainable: a recipe can train it (`edgekit train`).
        data_kinds: the recipe data kinds it can learn from (None: any).
        detects: outputs are decoded into detections by the contract's postprocess spec,
            which convert requires and checks against the outputs.
        counts_accuracy: the training loop counts correct argmax predictions.
        distills: pruning may distil the unpruned model's outputs into the targets.
        fine_tunable: `edgekit prune` can fine-tune it on its data.
        has_drop_basis: variants of this task can have a drop figure (labels, targets or agreement).
        explain_drop: convert's report always says what its drop means.
        drop_bases: drop bases this task uses whose unit is not points, with what they mean.
        metric_title: the title of convert's table column for the task's metric.
    """

    name: ClassVar[str] = ""
    class_labels: ClassVar[bool] = False
    named_classes: ClassVar[bool] = False
    integer_labels: ClassVar[bool] = False
    targets: ClassVar[bool] = False
    normal_only: ClassVar[bool] = False
    autoencoder: ClassVar[bool] = False
    adversarial: ClassVar[bool] = False
    detects: ClassVar[bool] = False
    trainable: ClassVar[bool] = True
    data_kinds: ClassVar[tuple[str, ...] | None] = None
    counts_accuracy: ClassVar[bool] = False
    distills: ClassVar[bool] = False
    fine_tunable: ClassVar[bool] = True
    has_drop_basis: ClassVar[bool] = True
    explain_drop: ClassVar[bool] = False
    drop_bases: ClassVar[Mapping[str, str]] = {}
    metric_title: ClassVar[str] = "metric"

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- training ---------------------------------------------------------------------

    def outputs(self, train_y: np.ndarray, class_names: Sequence[str]) -> int:
        """The size of the model's head."""
        return len(class_names)

    def private_options(self, recipe: Any, train_y: np.ndarray) -> dict[str, Any]:
        """Values fitted on the training split that the model carries (see `edgekit.train.architectures`)."""
        return {}

    def compile(self, keras: Any, model: Any, recipe: Any, optimizer: Any) -> None:
        """Compile `model` with this task's loss and metrics."""
        raise NotImplementedError(f"a {self.name} model is not compiled for model.fit")

    def per_example_loss(self, keras: Any, recipe: Any) -> Any:
        """The unreduced loss the multi-worker training loop sums."""
        raise NotImplementedError(f"a {self.name} model has no per-example loss")

    def evaluate(self, model: Any, recipe: Any, parts: Any, features: Features, predict: Predict,
                 log: Log) -> dict[str, Any]:
        """The report's ``test`` and ``validation`` sections, on the held-out splits."""
        raise NotImplementedError(f"a {self.name} model is not trained by edgekit train")

    def threshold(self, evaluation: Mapping[str, Any]) -> float | None:
        """A decision threshold calibrated by `evaluate`, that the bundle carries."""
        return None

    def headline(self, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        """The held-out figure that says whether pruning cost anything, with its direction."""
        raise NotImplementedError(f"a {self.name} model is not fine-tuned by edgekit prune")

    def contract(self, recipe: Any, class_names: Sequence[str], evaluation: Mapping[str, Any]) -> Contract:
        """The model contract (`edgekit.contract`) a trained model is saved with."""
        return Contract(recipe.preprocess, recipe.postprocess)

    def heldout(self, model: Any, recipe: Any, parts: Any) -> dict[str, np.ndarray]:
        """The arrays of ``heldout.npz``, the data `edgekit convert` validates the variants on."""
        return {"x": parts.test.x, "y": parts.test.y}

    def calibration(self, model: Any, recipe: Any, parts: Any) -> dict[str, np.ndarray]:
        """The arrays of ``calibration.npz``, what `train --export` calibrates int8 variants on
        (the validation split), so that every sample of ``heldout.npz`` validates them."""
        return {"x": parts.validation.x}

    # -- conversion ---------------------------------------------------------------------

    def metric(self, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
               class_names: Sequence[str] | None, targets: np.ndarray | None = None) -> tuple[str | None, float | None]:
        """The task's metric on validation data; ``(None, None)`` without labels or targets."""
        return None, None

    def agreement(self, reference: Any, outputs: Sequence[np.ndarray],
                  class_names: Sequence[str] | None) -> dict[str, float]:
        """How often a variant agrees with the float model, when no labels say who is right."""
        return {}

    def fidelity(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
                 class_names: Sequence[str] | None) -> dict[str, Any]:
        """The task's figures of one variant against the float model: its metric, and the
        drop the gate compares (``drop_pts``) with what it is (``drop_basis``): the loss in
        the metric in points when there are labels, else the disagreement in points. The
        drop's noise comes with it (`with_drop`): ``drop_ci95``, ``drop_resolution_pts``
        (what one sample is worth) and ``drop_method``."""
        figures: dict[str, Any] = dict(self.agreement(reference, outputs, class_names))
        name, value = self.metric(outputs, x, labels, class_names)
        if name is not None and value is not None and reference.metric is not None:
            figures[name] = value
            figures["drop_pts"] = (reference.metric - value) * 100.0
            figures["drop_basis"] = name
        elif figures:
            basis = next(iter(figures))
            figures["drop_pts"] = (1.0 - figures[basis]) * 100.0
            figures["drop_basis"] = basis
        else:
            figures["drop_pts"] = None
            figures["drop_basis"] = None
        drop = self.drop(reference, outputs, x, labels, class_names, figures["drop_basis"])
        return with_drop(figures, drop)

    def drop(self, reference: Any, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
             class_names: Sequence[str] | None, basis: str | None) -> Drop | None:
        """The drop on `basis` with its 95% confidence interval (`edgekit.stats`), from the
        per-sample outcomes; None where the task has no basis."""
        return None

    def drop_words(self, drop: float, basis: str | None) -> str:
        """A drop in words for warnings, in the units its basis has."""
        return f"loses {drop:.1f} points ({basis}) against the float model"

    def metric_column(self, figures: Mapping[str, Any]) -> tuple[float | None, str]:
        """A variant's value in convert's `metric_title` column, and its format (``pct`` or ``g``)."""
        basis = figures.get("drop_basis")
        value = figures.get(basis or "") if basis not in ("top1_agreement", "detection_agreement") else None
        return value, "pct"

    def default_postprocess(self, reference_outputs: Sequence[np.ndarray], classes: int | None) -> PostprocessSpec:
        """The postprocessing a bundle gets when the contract names none."""
        return PostprocessSpec(kind=PostprocessKind(self.name))
