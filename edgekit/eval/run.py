"""`evaluate`: every variant of a bundle measured on labelled data through the runtime.

Each raw sample (an image file, a WAV clip, a row of an ``.npz``, a window of a CSV
recording) goes through `edgekit.runtime.Model.predict`, i.e. the bundle's own front end,
quantization and postprocessing, exactly as on the device.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.datasets.loaders import RawSamples, raw_samples
from edgekit.errors import InputError, IntegrityError, MissingDependencyError, ShapeError
from edgekit.eval import metrics
from edgekit.eval.report import EvalReport, VariantResult
from edgekit.progress import Progress, no_progress
from edgekit.spec import AudioPreprocess, PostprocessKind

TASKS = (PostprocessKind.CLASSIFICATION, PostprocessKind.ANOMALY, PostprocessKind.REGRESSION)
# Class folders (or label values) of anomaly data: these names are normal (0) ...
NORMAL_NAMES = ("normal", "good", "ok")
# ... and these anomalous (1) (training's names, edgekit.tasks.anomaly, and "defective"). Any
# other name is refused, so that a typo is not scored.
ANOMALY_NAMES = ("anomaly", "anomalous", "abnormal", "fault", "faulty", "defect", "defective")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """What `evaluate` measures.

    Attributes:
        bundle: the ``.edgekit`` bundle.
        data: labelled data, in any layout `edgekit.datasets.loaders.raw_samples` reads.
        variants: the variants to measure, default every variant of the bundle (those that
            cannot run here are reported as failed, and the others measured).
        output_dir: where ``eval.json`` and a confusion-matrix PNG per variant go, or None.
        backend: force an interpreter (as ``edgekit run --backend``).
        threads: interpreter threads.
    """

    bundle: Path
    data: Path
    variants: tuple[str, ...] | None = None
    output_dir: Path | None = None
    backend: str | None = None
    threads: int | None = None


@dataclasses.dataclass(frozen=True)
class Truth:
    """What each sample should give: class indices, 0/1 anomaly labels or targets."""

    task: PostprocessKind
    values: np.ndarray
    groups: tuple[str, ...] | None


def _class_truth(samples: RawSamples, labels: tuple[str, ...], source: str) -> np.ndarray:
    assert samples.y is not None
    if samples.class_names is None:  # integer labels in the model's output order
        if samples.y.min() < 0 or samples.y.max() >= len(labels):
            raise InputError(f"labels in {source}", expected=f"class indices 0..{len(labels) - 1} "
                             f"(the bundle's labels {list(labels)})", found=f"{samples.y.min()}..{samples.y.max()}",
                             hint="store y in the bundle's label order, or add a classes array naming them")
        return samples.y
    unknown = sorted(set(samples.class_names) - set(labels))
    if unknown:
        raise InputError(f"classes in {source}", expected=f"the bundle's labels {list(labels)}",
                         found=f"{unknown[:10]} not among them",
                         hint="name the class folders (or label values) after the bundle's labels; "
                              "edgekit inspect BUNDLE lists them")
    mapping = np.array([labels.index(n) for n in samples.class_names], np.int64)
    return mapping[samples.y]


def _anomaly_truth(samples: RawSamples, source: str) -> np.ndarray:
    assert samples.y is not None
    if samples.class_names is None:
        if samples.y.min() < 0 or samples.y.max() > 1:
            raise InputError(f"labels in {source}", expected="0 (normal) and 1 (anomalous)",
                             found=f"labels {samples.y.min()}..{samples.y.max()}")
        truth = samples.y.astype(np.int64)
    else:
        other = sorted(n for n in samples.class_names if n.lower() not in NORMAL_NAMES + ANOMALY_NAMES)
        if other:
            raise InputError(f"classes in {source}", expected=f"normal samples named {list(NORMAL_NAMES)} and "
                             f"anomalous ones named {list(ANOMALY_NAMES)}", found=f"{other[:10]}",
                             hint="put the normal samples in a folder named normal and the anomalous ones in "
                                  "a folder named anomaly")
        mapping = np.array([int(n.lower() in ANOMALY_NAMES) for n in samples.class_names], np.int64)
        truth = mapping[samples.y]
    if truth.min() == truth.max():
        raise InputError(f"data {source}", expected="normal and anomalous samples (ROC-AUC needs both)",
                         found=f"{len(truth)} samples, all {'anomalous' if truth[0] else 'normal'}")
    return truth


def truth_of(samples: RawSamples, task: PostprocessKind, labels: tuple[str, ...]) -> Truth:
    """The expected answers of `samples` for a bundle of `task` with `labels`.

    Raises:
        InputError: unlabelled data; classes that are not the bundle's; anomaly data
            without both kinds; regression data without targets.
    """
    source = samples.source
    if task is PostprocessKind.REGRESSION:
        if samples.targets is None:
            raise InputError(f"data {source}", expected="regression targets (an .npz y array, or a target column)",
                             found="inputs without targets", hint="eval needs labelled data")
        targets = samples.targets.astype(np.float64)
        return Truth(task, targets.reshape(len(targets), -1), samples.groups)
    if samples.y is None and samples.targets is not None:
        raise InputError(f"labels in {source}", expected=f"integer class labels (a {task.value} model)",
                         found=f"float targets of {samples.targets.dtype}",
                         hint="float y are regression targets: eval a regression bundle on them")
    if samples.y is None:
        raise InputError(f"data {source}", expected="labelled samples (class folders, an .npz with y, or a label "
                         "column)", found=f"{len(samples)} unlabelled samples",
                         hint="eval needs labels: put each class's files in a folder named after the label")
    if task is PostprocessKind.ANOMALY:
        return Truth(task, _anomaly_truth(samples, source), samples.groups)
    if not labels:
        raise InputError("bundle labels", expected="a classification bundle with labels", found="no labels",
                         hint="convert it again with --labels FILE")
    return Truth(task, _class_truth(samples, labels, source), samples.groups)


def _raw_input(item: Any, spec: Any) -> Any:
    """What `Model.predict` takes for one listed sample: image files by path (the runtime
    decodes them), WAV files as ``(samples, rate)`` (the runtime resamples)."""
    if isinstance(item, Path) and isinstance(spec, AudioPreprocess):
        from edgekit.features.audio import read_wav

        return read_wav(item)
    return item


def _predict_all(model: Any, samples: RawSamples, progress: Progress) -> tuple[list[Any], list[int], list[str]]:
    """Results of the samples the runtime could read, their positions, and why the others
    were skipped."""
    results, kept, skipped = [], [], []
    spec = model.manifest.preprocess
    for i, item in enumerate(progress(samples.inputs, f"{model.variant.name}", len(samples))):
        try:
            results.append(model.predict(_raw_input(item, spec), source=samples.ids[i]))
        except MissingDependencyError:
            raise  # no decoder installed: not a bad sample
        except (InputError, ShapeError) as exc:
            skipped.append(f"{samples.ids[i]}: {exc}")
            continue
        kept.append(i)
    return results, kept, skipped


def _figures(truth: Truth, results: list[Any], kept: list[int], model: Any, source: str) -> dict[str, Any]:
    index = np.asarray(kept, np.int64)
    if truth.task is PostprocessKind.CLASSIFICATION:
        labels = tuple(model.labels)
        predicted = np.array([-1 if r.index is None else int(r.index) for r in results], np.int64)
        expected = truth.values[index]
        figures = metrics.classification(expected, predicted, labels)
        figures["recordings"] = None
        if truth.groups is not None:
            groups = tuple(truth.groups[i] for i in kept)
            figures["recordings"] = metrics.recording_accuracy(expected, predicted, groups, len(labels))
        return figures
    if truth.task is PostprocessKind.ANOMALY:
        scores = np.array([r.anomaly_score for r in results], np.float64)
        threshold = model.postprocess_spec.anomaly_threshold
        flagged = None if threshold is None else np.array([bool(r.is_anomaly) for r in results])
        return metrics.anomaly(truth.values[index], scores, flagged, threshold)
    values = np.array([np.asarray(r.values, np.float64).reshape(-1) for r in results])
    targets = truth.values[index]
    if values.shape[1] != targets.shape[1]:
        raise InputError(f"targets in {source}",
                         expected=f"{values.shape[1]} value(s) per sample (the model's outputs)",
                         found=f"{targets.shape[1]} per sample")
    return metrics.regression(targets, values)


def evaluate(config: EvalConfig, progress: Progress = no_progress) -> EvalReport:
    """Measure each variant of `config.bundle` on `config.data` through the runtime.

    Raises:
        IntegrityError: the bundle fails verification (exit 3).
        InputError: not a bundle, a task eval does not measure, unknown variant names,
            data without labels or with classes the bundle does not have, nothing the
            runtime can read, or no variant that runs here (exit 1).
    """
    from edgekit.runtime import load

    first = load(config.bundle, backend=config.backend, threads=config.threads)
    manifest = first.manifest
    task = manifest.postprocess.kind
    if task not in TASKS:
        raise InputError(f"bundle {config.bundle}", expected="a classification, anomaly or regression model",
                         found=f"postprocess kind {task.value!r}",
                         hint="eval measures task figures; use edgekit bench for speed")
    names = [v.name for v in manifest.variants]
    wanted = list(config.variants) if config.variants else names
    unknown = [v for v in wanted if v not in names]
    if unknown:
        raise InputError(f"--variants {','.join(unknown)}", expected=f"variants of the bundle: {names}",
                         found=f"{unknown}")
    samples = raw_samples(config.data, manifest.preprocess,
                          need="target" if task is PostprocessKind.REGRESSION else "label")
    truth = truth_of(samples, task, tuple(manifest.labels))
    results: list[VariantResult] = []
    for name in wanted:
        try:
            model = first if first.variant.name == name else load(config.bundle, variant=name, backend=config.backend,
                                                                  threads=config.threads)
        except IntegrityError:
            raise
        except InputError as exc:
            if config.variants:
                raise  # asked for by name: it must run
            results.append(VariantResult(name, None, 0, (), None, str(exc)))
            continue
        predictions, kept, skipped = _predict_all(model, samples, progress)
        if not predictions:
            raise InputError(f"data {samples.source}", expected=f"samples the runtime can read ({samples.form})",
                             found=f"{len(samples)} sample(s), none decodable, e.g. {skipped[0] if skipped else '-'}")
        results.append(VariantResult(name, model.package, len(kept), tuple(skipped),
                                     _figures(truth, predictions, kept, model, samples.source), None))
    if not any(r.error is None for r in results):
        raise InputError(f"bundle {config.bundle}", expected="a variant that runs here",
                         found="; ".join(f"{r.variant}: {r.error}" for r in results))
    report = EvalReport(bundle=config.bundle, name=manifest.name, task=task.value, labels=tuple(manifest.labels),
                        source=samples.source, form=samples.form, samples=len(samples),
                        recordings=len(set(samples.groups)) if samples.groups is not None else None,
                        variants=tuple(results))
    if config.output_dir is not None:
        report = report.write(config.output_dir)
    return report
