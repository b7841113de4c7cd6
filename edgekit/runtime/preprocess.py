"""Raw inputs to model tensors, from the bundle's preprocessing spec (numpy only)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ShapeError
from edgekit.features import audio as audio_features
from edgekit.features import image as image_features
from edgekit.features import same_but_singletons
from edgekit.features import sensor as sensor_features
from edgekit.runtime.tensors import quantize
from edgekit.spec import (
    AudioPreprocess,
    ImagePreprocess,
    PreprocessSpec,
    SensorPreprocess,
    TensorSpec,
)


def fit(x: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Reshape `x` to the model input `shape` (batch 1), allowing only singleton dimensions to differ.

    Raises:
        ShapeError: the element layout does not match.
    """
    target = tuple(1 if d < 0 else d for d in shape)
    if x.shape == target:
        return x
    if same_but_singletons(x.shape, target):
        return x.reshape(target)
    raise ShapeError(what, expected=f"shape {tuple(shape[1:])} (the model input, without the batch)",
                     found=f"shape {tuple(x.shape)}")


class Preprocessor:
    """Turns one raw input into the model's input tensor (batch 1, the input dtype).

    One exception: audio features of several rows (frames, or stacked-frame vectors) for
    a model whose input is one row give one input per row (``(rows, *input)``); the
    runtime runs them one by one and reduces the outputs to one result per clip.
    """

    def __init__(self, spec: PreprocessSpec, tensor: TensorSpec) -> None:
        self.spec = spec
        self.tensor = tensor

    def features(self, raw: Any) -> np.ndarray:
        """Float features for `raw` (before quantization), shaped like the model input."""
        spec = self.spec
        if isinstance(spec, ImagePreprocess):
            if isinstance(raw, (str, os.PathLike, bytes)):
                raw = image_features.decode_image(raw if isinstance(raw, bytes) else Path(raw))
            array = np.asarray(raw)
            if array.dtype.kind not in "uif":
                raise ShapeError("image", expected="pixels as a numeric (H, W, 3) array, a path or encoded bytes",
                                 found=f"dtype {array.dtype}")
            x = image_features.normalize(image_features.prepare(array, spec), spec)
        elif isinstance(spec, AudioPreprocess):
            samples, rate = (raw if isinstance(raw, tuple) else (raw, spec.sample_rate))
            samples = np.asarray(samples, dtype=np.float32)
            if samples.ndim != 1:
                raise ShapeError("audio", expected=f"a mono waveform (samples,) at {spec.sample_rate} Hz",
                                 found=f"shape {samples.shape}")
            x = audio_features.features(audio_features.resample(samples, int(rate), spec.sample_rate), spec)[None]
            row = [1 if d < 0 else d for d in self.tensor.shape[1:]]
            if spec.num_frames > 1 and int(np.prod(row)) == spec.num_features:
                # the model takes one vector (e.g. 5 stacked frames): one input per vector of
                # the clip, which the model runs one by one and reduces (docs/preprocess.md)
                return x.reshape((spec.num_frames, *row))
        elif isinstance(spec, SensorPreprocess):
            if isinstance(raw, Mapping):
                missing = [c for c in spec.channels if c not in raw]
                if missing:
                    raise ShapeError("sensor window", expected=f"channels {list(spec.channels)}",
                                     found=f"missing {missing}")
                raw = np.stack([np.asarray(raw[c], np.float32) for c in spec.channels], axis=-1)
            x = sensor_features.normalize(np.asarray(raw, np.float32), spec)
        else:
            array = np.asarray(raw)
            if array.dtype.kind not in "uifb":
                raise ShapeError("input", expected="a numeric array", found=f"dtype {array.dtype}")
            x = array.astype(np.float32, copy=False)
            x = x[None] if x.ndim == len(self.tensor.shape) - 1 else x
        return fit(x, self.tensor.shape, "input")

    def __call__(self, raw: Any) -> np.ndarray:
        return quantize(self.features(raw), self.tensor)
