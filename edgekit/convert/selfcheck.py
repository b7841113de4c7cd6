"""The self-check sample `edgekit convert` stores in every bundle (`edgekit.bundle.selfcheck`).

A few raw inputs, from the data convert was given when there is data (evenly spaced over
it, the first and the last...), else seeded random ones, go through the runtime's own
front end (`edgekit.runtime.preprocess.Preprocessor`, what `Model.predict` runs on a
device) to model input tensors; every produced variant then runs them through the
interpreter convert validated it with (`edgekit.convert.fidelity.run_variant`, batch 1,
inputs quantized and outputs dequantized by the variant's tensor specs), and its outputs
are the expected ones. Tolerances: one quantization step for a quantized output, 1e-5 of
the largest magnitude for a float one (the arm parity rules).
"""

from __future__ import annotations

import dataclasses
import io
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.bundle.selfcheck import (
    SELF_CHECK_DIR,
    Expectation,
    SelfCheckSpec,
    array_bytes,
    output_tolerance,
    relative_tolerance,
)
from edgekit.convert.fidelity import run_variant
from edgekit.errors import EdgekitError, InputError
from edgekit.spec import (
    AudioPreprocess,
    NoPreprocess,
    PreprocessSpec,
    TensorSpec,
)

SAMPLES = 2  # raw samples stored
MAX_ROWS = 4  # model runs per raw sample at most (a clip of stacked-frame vectors gives many)


@dataclasses.dataclass(frozen=True)
class ProducedVariant:
    """What the self-check needs of a produced variant."""

    name: str
    format: str
    data: bytes
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclasses.dataclass(frozen=True)
class Sample:
    raws: list[Any]  # what predict takes, one per sample: arrays, or WAV file bytes for audio
    ids: list[str]
    source: str  # "data" or "random"
    note: str | None = None  # why the data could not give the sample


def _data_sample(data: Path, spec: PreprocessSpec) -> Sample:
    """`SAMPLES` raw inputs of `data`, evenly spaced over it, as arrays.

    Raises:
        EdgekitError: the data cannot be listed or read raw.
    """
    from edgekit.datasets.loaders import raw_samples
    from edgekit.features import audio as audio_features
    from edgekit.features import image as image_features

    listed = raw_samples(data, spec, need=None)
    if len(listed) == 0:
        raise InputError(f"data {data}", expected="at least one sample", found="none")
    picks = np.unique(np.linspace(0, len(listed) - 1, min(SAMPLES, len(listed))).round().astype(int))
    raws = []
    for i in picks:
        raw = listed.inputs[i]
        if isinstance(raw, Path):
            if isinstance(spec, AudioPreprocess):
                raw = audio_features.read_audio(raw, sample_rate=spec.sample_rate)[0]
            else:
                raw = image_features.decode_image(raw)
        raws.append(_wav_bytes(raw, spec.sample_rate) if isinstance(spec, AudioPreprocess) else np.asarray(raw))
    return Sample(raws, [listed.ids[i] for i in picks], "data")


def _wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """Mono samples in [-1, 1] as a 16-bit PCM WAV file (what `read_audio` reads back exactly,
    at half the size of float32; the device's WAV reader is then part of the check)."""
    pcm = (np.clip(np.asarray(samples, np.float64).reshape(-1), -1.0, 1.0) * 32767.0).round().astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(rate))
        wav.writeframes(pcm.tobytes())
    return buffer.getvalue()


def _random_sample(spec: PreprocessSpec, input_shape: tuple[int, ...], seed: int, note: str | None) -> Sample:
    """Seeded random raw inputs of the kinds `random_samples` makes (no --data)."""
    from edgekit.datasets.loaders import random_raw

    raws: list[Any] = list(random_raw(spec, input_shape, SAMPLES, seed))
    if isinstance(spec, AudioPreprocess):  # audio is kept as the WAV file a device reads
        raws = [_wav_bytes(clip, spec.sample_rate) for clip in raws]
    return Sample(raws, [f"random:{i} (seed {seed})" for i in range(SAMPLES)], "random", note)


def _tensors(sample: Sample, spec: PreprocessSpec, tensor: TensorSpec) -> tuple[np.ndarray, list[int]]:
    """The model input rows of each raw input, through the runtime's front end."""
    from edgekit.runtime.preprocess import Preprocessor

    front = Preprocessor(spec, tensor)
    rows, counts = [], []
    row_shape = tuple(1 if d < 0 else d for d in tensor.shape[1:])
    for raw in sample.raws:
        features = np.asarray(front.features(raw), np.float32).reshape(-1, *row_shape)[:MAX_ROWS]
        rows.append(features)
        counts.append(len(features))
    return np.concatenate(rows), counts


def build_self_check(spec: PreprocessSpec, data: Path | None, input_shape: tuple[int, ...], seed: int,
                     variants: Sequence[ProducedVariant]) -> tuple[SelfCheckSpec, dict[str, bytes], str | None]:
    """The manifest's ``self_check`` section, its ``selfcheck/`` members, and a note when
    there was data but the sample had to be random.

    Args:
        spec: the bundle's preprocessing.
        data: what convert was given as --data (None: random raw inputs).
        input_shape: the model input without the batch dimension.
        seed: convert's seed (random raw inputs).
        variants: the produced variants, in the bundle's order.
    """
    tensor = variants[0].inputs[0]
    sample = None
    note = None
    if data is not None:
        try:
            sample = _data_sample(data, spec)
            x, counts = _tensors(sample, spec, tensor)
        except (EdgekitError, ValueError) as exc:  # a layout the raw reader does not take: say so, go random
            note = f"the self-check sample is random: {data} could not be read raw ({exc})"
            sample = None
    if sample is None:
        sample = _random_sample(spec, input_shape, seed, note)
        x, counts = _tensors(sample, spec, tensor)

    payloads: dict[str, bytes] = {}
    input_name = f"{SELF_CHECK_DIR}/input.npy"
    payloads[input_name] = array_bytes(x)
    raw_names: list[str] = []
    if not isinstance(spec, NoPreprocess):  # with no front end the raw input is the tensor
        for i, raw in enumerate(sample.raws):
            raw_names.append(f"{SELF_CHECK_DIR}/raw-{i}" + (".wav" if isinstance(raw, bytes) else ".npy"))
            payloads[raw_names[-1]] = raw if isinstance(raw, bytes) else array_bytes(np.asarray(raw))
    expectations = {}
    for variant in variants:
        outputs = run_variant(variant.format, variant.data, variant.inputs, variant.outputs, x)
        names, tolerances, bases = [], [], []
        for k, (values, out_spec) in enumerate(zip(outputs, variant.outputs, strict=True)):
            names.append(f"{SELF_CHECK_DIR}/{variant.name}/output-{k}.npy")
            payloads[names[-1]] = array_bytes(np.asarray(values, np.float32))
            tolerance, basis = output_tolerance(values, out_spec)
            tolerances.append(tolerance)
            bases.append(basis)
        expectations[variant.name] = Expectation(tuple(names), tuple(tolerances), tuple(bases))
    section = SelfCheckSpec(
        input=input_name, source=sample.source, variants=expectations, ids=tuple(sample.ids),
        raw=tuple(raw_names), rows=tuple(counts) if raw_names else (),
        input_tolerance=relative_tolerance(x) if raw_names else None)
    return section, payloads, note
