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
from edgekit.eval.kinds import MEASURES
from edgekit.eval.report import EvalReport, VariantResult
from edgekit.progress import Progress, no_progress
from edgekit.spec import AudioPreprocess, PostprocessKind


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


def truth_of(samples: RawSamples, task: PostprocessKind, labels: tuple[str, ...]) -> Truth:
    """The expected answers of `samples` for a bundle of `task` with `labels`.

    Raises:
        InputError: unlabelled data; classes that are not the bundle's; anomaly data
            without both kinds; regression data without targets.
    """
    return Truth(task, MEASURES[task.value].truth(samples, labels), samples.groups)


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
    """The figures of the samples the runtime could read (`kept`)."""
    groups = tuple(truth.groups[i] for i in kept) if truth.groups is not None else None
    return MEASURES[truth.task.value].figures(truth.values[np.asarray(kept, np.int64)], groups, results, model,
                                              source)


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
    if task.value not in MEASURES:
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
                          need=MEASURES[task.value].need)
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
