"""Fidelity: every variant against the float source model, on real validation data.

Variants run through the same runtime backends a device uses, one sample at a time,
with inputs quantized and outputs dequantized by the tensor specs in the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from edgekit._native import native_stderr_captured
from edgekit.progress import Progress, no_progress
from edgekit.runtime import open_backend
from edgekit.runtime.tensors import dequantize, quantize
from edgekit.spec import PostprocessSpec, TensorSpec
from edgekit.tasks import TASKS, Task


def detect_task(input_shape: tuple[int, ...], outputs: Sequence[TensorSpec],
                postprocess: PostprocessSpec | None) -> Task:
    """The task of a model: the postprocess spec's kind, else (no spec, or kind raw)
    guessed from shapes: an output the input's size is an autoencoder's (anomaly), several
    values a classifier's, one value a regression's (never generation or detection)."""
    if postprocess is not None and postprocess.kind.value in TASKS:
        return TASKS[postprocess.kind.value]
    out = tuple(outputs[0].shape[1:])
    if out == tuple(input_shape) or (int(np.prod(out)) == int(np.prod(input_shape)) and len(out) > 0):
        return TASKS["anomaly"]
    if out and out[-1] > 1:
        return TASKS["classification"]
    return TASKS["regression"]


def run_variant(fmt: str, data: bytes, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec],
                x: np.ndarray, progress: Progress = no_progress, label: str = "validating") -> list[np.ndarray]:
    """Run a variant on every sample (batch 1); returns dequantized float32 outputs in the
    order of `outputs` (matched by name, as the runtime does)."""
    with native_stderr_captured():  # LiteRT announces its delegate on stderr
        backend = open_backend(fmt, data, threads=1, outputs=[spec.name for spec in outputs])
    collected: list[list[np.ndarray]] = [[] for _ in outputs]
    for i in progress(range(len(x)), label, len(x)):
        sample = quantize(x[i : i + 1], inputs[0])
        result = backend.run([sample])
        for k, (value, spec) in enumerate(zip(result, outputs, strict=True)):
            collected[k].append(dequantize(value, spec))
    return [np.concatenate(c) for c in collected]


def outputs_digest(outputs: Sequence[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in outputs:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class Reference:
    """The float model's outputs and task metric on the validation split.

    Attributes:
        postprocess: detection models: the spec that turns outputs into detections, for
            the detection agreement of each variant.
        input_size: ``(height, width)`` of image inputs, for detections in pixels.
    """

    task: Task
    outputs: list[np.ndarray]
    metric_name: str | None
    metric: float | None
    postprocess: PostprocessSpec | None = None
    input_size: tuple[int, int] | None = None

    targets: np.ndarray | None = None
    mae: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"task": self.task.name, "metric": self.metric_name, "value": self.metric}
        if self.task.targets:
            data["mae"] = self.mae
        return data


def fidelity(reference: Reference, outputs: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray | None,
             class_names: tuple[str, ...] | None) -> dict[str, Any]:
    """Every figure of one variant against the reference, JSON-ready.

    ``drop_pts`` is what the accuracy gate compares, ``drop_basis`` says what it is:

    - ``accuracy`` / ``roc_auc``: the loss in the task metric in points (x100), with labels;
    - ``top1_agreement`` / ``detection_agreement``: the disagreement with the float model
      in points, without labels;
    - ``rmse_increase_pct`` (regression with targets): ``100 * (rmse / float rmse - 1)``,
      the variant's RMSE against the targets as a percentage increase over the float
      model's (negative when it happens to do better);
    - ``output_rmse_pct`` (regression without targets): the RMSE of the variant's
      outputs against the float model's, as a percentage of the float outputs' standard
      deviation;
    - None (generation): no gate basis; judge by ``snr_db`` and the errors.

    Every drop comes with its noise (`edgekit.stats`): ``drop_ci95`` (its 95% confidence
    interval: Newcombe's paired interval for accuracy, Wilson's for a disagreement, a
    seeded paired bootstrap for ROC-AUC and RMSE figures), ``drop_resolution_pts`` (what
    one validation sample is worth, None for bootstrap figures) and ``drop_method``; all
    None where there is no drop. The gate fails a variant only when the interval's lower
    end is above its budget (`edgekit.stats.RULE`).
    """
    ref = np.concatenate([o.reshape(len(o), -1) for o in reference.outputs], axis=1).astype(np.float64)
    got = np.concatenate([o.reshape(len(o), -1) for o in outputs], axis=1).astype(np.float64)
    err = got - ref
    noise = float(np.sum(err**2))
    signal = float(np.sum(ref**2))
    result: dict[str, Any] = {
        "samples": int(len(x)),
        "max_abs_error": float(np.max(np.abs(err))) if err.size else 0.0,
        "mean_abs_error": float(np.mean(np.abs(err))) if err.size else 0.0,
        "snr_db": (10.0 * math.log10(signal / noise)) if noise > 0 and signal > 0 else None,
        "identical": noise == 0.0,
        "outputs_sha256": outputs_digest(outputs),
    }
    result.update(reference.task.fidelity(reference, outputs, x, labels, class_names))
    return result
