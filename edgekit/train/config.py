"""What `edgekit train` takes: its frozen config and its fixed choices (light: the command
line reads them to build its options)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgekit.choices import Choice


class Precision(Choice):
    """``--precision``: the float format training computes in (the saved model is float32 either way)."""

    AUTO = "auto", "mixed float16 on GPUs, float32 on CPUs"
    FLOAT32 = "float32", "float32 everywhere"
    MIXED = "mixed", "mixed float16 (slow on a CPU, but trains and exports the same)"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Options of `edgekit train` (see the README).

    Attributes:
        recipe: a recipe name or the path of a recipe YAML file.
        output: the output folder (default ``out/train/RECIPE``).
        data: the data (folder or file); None synthesizes the recipe's dataset into
            ``OUTPUT/data`` (reused on the next run).
        test_data: the user's own test set (same layout as `data`): the held-out figures,
            ``heldout.npz`` and the export's validation use it, and `data` is only split
            into training and validation (early stopping); None carves a test split out
            of `data` (``train.test_split``).
        epochs, batch_size, learning_rate, seed: overrides of the recipe's ``train`` keys.
        overrides: ``KEY.PATH=VALUE`` overrides of any recipe key.
        export: also convert the trained model into this bundle with the recipe's
            variants and gate, validated on the held-out split.
        resume: continue an interrupted run from its last checkpoint.
        synth_samples: samples per class when synthesizing (default: the recipe's).
        precision: ``auto`` (mixed float16 on GPUs, float32 on CPUs), ``mixed`` or ``float32``;
            the saved model is float32 either way.
        progress_bar: a progress bar per epoch on stderr.
        command: the command line, for the report and the bundle's provenance.
        prune_bench_seconds: with a recipe that prunes channels, seconds per model in the
            bench run that measures the latency before and after.
        qat: then fine-tune with quantization-aware training (the recipe's ``qat``
            section; `edgekit qat`); the export converts the QAT model's int8 variants.
    """

    recipe: str
    output: Path | None = None
    data: Path | None = None
    test_data: Path | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    seed: int | None = None
    overrides: tuple[str, ...] = ()
    export: Path | None = None
    resume: bool = False
    synth_samples: int | None = None
    precision: str = "auto"
    progress_bar: bool = True
    command: str | None = None
    prune_bench_seconds: float = 2.0
    qat: bool = False


@dataclasses.dataclass(frozen=True)
class QatConfig:
    """Options of `edgekit qat` (see the README): quantization-aware fine-tuning of a trained model.

    Attributes:
        model: the trained ``.keras`` (or ``.h5``) model.
        data: the training data (as for `edgekit train --data`); None: the data the
            training report next to `model` names.
        output: the QAT model to write, a SavedModel folder (default ``MODEL-qat`` next to
            MODEL); its contract is ``OUTPUT.preprocess.yaml``, its report ``OUTPUT.qat.json``.
        epochs: fine-tuning epochs (None: the recipe's ``qat.epochs``).
        learning_rate: fine-tuning learning rate (None: the recipe's ``qat.learning_rate``,
            else a tenth of its training rate).
        recipe: a recipe name or YAML path; None: the training report's recipe.
        export: also convert the QAT model into this bundle (its int8 variants).
        variants: the int8 variants of that bundle.
        max_accuracy_drop: the bundle's gate (points against the QAT model's own outputs;
            None: no gate, the figures only).
        seed: overrides the recipe's seed.
        trust_model_code: load a model that carries code (as `edgekit convert`).
        progress_bar: a progress bar per epoch on stderr.
        command: the command line, for the report and the provenance.
    """

    model: Path
    data: Path | None = None
    output: Path | None = None
    epochs: int | None = None
    learning_rate: float | None = None
    recipe: str | None = None
    export: Path | None = None
    variants: tuple[str, ...] = ("tflite-int8", "onnx-int8")
    max_accuracy_drop: float | None = 1.0
    seed: int | None = None
    trust_model_code: bool = False
    progress_bar: bool = True
    command: str | None = None
