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


_AUDIO_FORMS = ("a path to an audio file (or its bytes), mono samples (samples,) at {rate} Hz, "
                "or (samples, rate)")


def _audio(raw: Any, spec: AudioPreprocess) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate from what `predict` takes for audio.

    Raises:
        ShapeError: not one of the accepted forms (the message says which ones and how).
        InputError: a file that cannot be read or decoded (`read_audio`).
    """
    forms = _AUDIO_FORMS.format(rate=spec.sample_rate)
    if isinstance(raw, (str, os.PathLike, bytes)):
        return audio_features.read_audio(raw if isinstance(raw, bytes) else Path(raw))
    if isinstance(raw, tuple):
        if len(raw) != 2 or isinstance(raw[1], (bool, np.bool_)) or not isinstance(raw[1], (int, float, np.number)):
            found = f"a tuple of {len(raw)}" if len(raw) != 2 else f"a rate of type {type(raw[1]).__name__}"
            raise ShapeError("audio", expected=f"{forms}, the rate a number", found=found)
        samples, rate = raw[0], int(raw[1])
        if rate <= 0:
            raise ShapeError("audio", expected="a positive sample rate", found=f"{rate} Hz")
    else:
        samples, rate = raw, spec.sample_rate
    try:
        array = np.asarray(samples)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ShapeError("audio", expected=forms, found=f"{type(samples).__name__} ({exc})") from None
    if array.dtype.kind not in "uif":
        raise ShapeError("audio", expected=forms, found=f"{type(samples).__name__} of dtype {array.dtype}",
                         hint="for a file, pass its path (str or pathlib.Path)" if array.dtype.kind in "US" else None)
    if array.ndim == 2 and 1 in array.shape:
        array = array.reshape(-1)
    if array.ndim != 1:
        raise ShapeError("audio", expected=forms, found=f"shape {array.shape}",
                         hint="average the channels of (samples, channels) audio: x.mean(axis=1)")
    return array.astype(np.float32, copy=False), rate


def _numeric(raw: Any, what: str, expected: str, kinds: str = "uif") -> np.ndarray:
    """`raw` as a numeric array, or one `ShapeError` naming what it is instead (an audio
    chunk ``(samples, rate)`` given to an image model makes numpy raise a ValueError about
    an inhomogeneous shape).

    Raises:
        ShapeError: ragged, not numeric, or a tuple that is not an array.
    """
    try:
        array = np.asarray(raw)
    except (ValueError, TypeError):
        array = None
    if array is None or array.dtype.kind not in kinds:
        if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], (int, np.integer)):
            found = f"a tuple of {np.size(raw[0])} values and the number {raw[1]} (audio samples and their rate?)"
        elif array is None or array.dtype == object:
            found = f"{type(raw).__name__} of values that are not one array"
        else:
            found = f"{type(raw).__name__} of dtype {array.dtype}"
        raise ShapeError(what, expected=expected, found=found,
                         hint="check that the input is what the bundle's preprocessing takes (edgekit inspect BUNDLE)")
    return array


def _quantized_table(spec: ImagePreprocess, tensor: TensorSpec) -> np.ndarray | None:
    """Every pixel value's model input: `pixel_table` quantized as `quantize` quantizes
    features, ``(256, channels)`` in the input's dtype; None where that is not one value
    per pixel and channel (a per-axis quantization along another axis)."""
    q = tensor.quantization
    if q is not None and q.per_channel and q.axis not in (-1, len(tensor.shape) - 1):
        return None
    table = image_features.pixel_table(spec)
    if q is not None and q.per_channel and len(q.scale) != table.shape[1]:
        return None
    ndim = max(2, len(tensor.shape))  # per-axis parameters broadcast along the input's last axis
    quantized = np.ascontiguousarray(quantize(table.reshape((1,) * (ndim - 2) + table.shape), tensor).reshape(table.shape))
    quantized.setflags(write=False)
    return quantized


class Preprocessor:
    """Turns one raw input into the model's input tensor (batch 1, the input dtype).

    One exception: audio features of several rows (frames, or stacked-frame vectors) for
    a model whose input is one row give one input per row (``(rows, *input)``); the
    runtime runs them one by one and reduces the outputs to one result per clip.

    Images take a lean path (`tensor_and_features`): the geometric steps give uint8 pixels,
    and one look-up in a table of the 256 pixel values, normalized and quantized once when
    the preprocessor is made, gives the model input (the same bits as normalizing and
    quantizing every pixel); a uint8 input whose table is the identity takes the pixels as
    they are.
    """

    def __init__(self, spec: PreprocessSpec, tensor: TensorSpec) -> None:
        self.spec = spec
        self.tensor = tensor
        # audio: the shape of a clip's features for a model whose input is one row of them (e.g.
        # 5 stacked frames): one input per row, which the model runs one by one and reduces
        # (docs/preprocess.md); None where the input is the whole clip
        self.per_row: tuple[int, ...] | None = None
        if isinstance(spec, AudioPreprocess):
            row = [1 if d < 0 else d for d in tensor.shape[1:]]
            if spec.num_frames > 1 and int(np.prod(row)) == spec.num_features:
                self.per_row = (spec.num_frames, *row)
        self._table: np.ndarray | None = None  # images: pixel value -> model input
        self._identity = False  # images: the model input is the pixels themselves
        if isinstance(spec, ImagePreprocess):
            self._table = _quantized_table(spec, tensor)
            self._identity = (self._table is not None and self._table.dtype == np.uint8
                              and bool((self._table == np.arange(256, dtype=np.uint8)[:, None]).all()))

    @staticmethod
    def _pixels(raw: Any, spec: ImagePreprocess) -> np.ndarray:
        """An image input, decoded, cropped, resized and in the spec's colour order (uint8
        for uint8 pixels, as decoding gives them)."""
        if isinstance(raw, (str, os.PathLike, bytes)):
            raw = image_features.decode_image(raw if isinstance(raw, bytes) else Path(raw))
        array = _numeric(raw, "image", "pixels as a numeric (H, W, 3) array, a path or encoded bytes")
        return image_features.prepare(array, spec)

    def features(self, raw: Any) -> np.ndarray:
        """Float features for `raw` (before quantization), shaped like the model input."""
        spec = self.spec
        if isinstance(spec, ImagePreprocess):
            x = image_features.normalize(self._pixels(raw, spec), spec)
        elif isinstance(spec, AudioPreprocess):
            samples, rate = _audio(raw, spec)
            x = audio_features.features(audio_features.resample(samples, rate, spec.sample_rate), spec)[None]
            if self.per_row is not None:
                return x.reshape(self.per_row)
        elif isinstance(spec, SensorPreprocess):
            if isinstance(raw, Mapping):
                missing = [c for c in spec.channels if c not in raw]
                if missing:
                    raise ShapeError("sensor window", expected=f"channels {list(spec.channels)}",
                                     found=f"missing {missing}")
                raw = np.stack([np.asarray(raw[c], np.float32) for c in spec.channels], axis=-1)
            x = sensor_features.normalize(np.asarray(raw, np.float32), spec)
        else:
            if isinstance(raw, Mapping):  # a CSV row under a header, a JSON object: named values
                raise ShapeError("input", expected="a row of numbers in the model's input order",
                                 found=f"named values {sorted(map(str, raw))[:8]}",
                                 hint="a bundle without preprocessing has no channel names: drop the header, or give "
                                      "the bundle a sensor preprocessing spec (docs/preprocess.md)")
            array = _numeric(raw, "input", "a numeric array", kinds="uifb")
            x = array.astype(np.float32, copy=False)
            x = x[None] if x.ndim == len(self.tensor.shape) - 1 else x
        return fit(x, self.tensor.shape, "input")

    def tensor_and_features(self, raw: Any, features: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
        """The model input for `raw` and (with `features`) its float features, else None.

        Images take the lean path (see the class): bit for bit what ``quantize(features(raw))``
        gives. Other inputs: `features`, then `quantize`.
        """
        spec = self.spec
        if not isinstance(spec, ImagePreprocess):
            x = self.features(raw)
            return quantize(x, self.tensor), x
        pixels = self._pixels(raw, spec)
        if (self._table is None or pixels.dtype != np.uint8
                or pixels.shape != (spec.height, spec.width, spec.channels)):  # normalize says what is wrong
            x = fit(image_features.normalize(pixels, spec), self.tensor.shape, "input")
            return quantize(x, self.tensor), x
        tensor = pixels if self._identity else image_features.look_up(pixels, self._table)
        if spec.layout == "nchw":
            tensor = np.ascontiguousarray(tensor.transpose(2, 0, 1))
        tensor = fit(tensor[None], self.tensor.shape, "input")
        if not features:
            return tensor, None
        if tensor.dtype == np.float32 and self.tensor.quantization is None:
            return tensor, tensor  # a float32 input: the features are the input
        return tensor, fit(image_features.normalize(pixels, spec), self.tensor.shape, "input")

    def __call__(self, raw: Any) -> np.ndarray:
        return self.tensor_and_features(raw, features=False)[0]
