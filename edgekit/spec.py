"""The contract shared by training, conversion, the bundle and the runtime.

Tensor specs describe model inputs and outputs (with quantization parameters);
preprocessing specs carry every parameter the runtime needs to reproduce
training-time features; the postprocessing spec says how raw outputs become results.
All specs are frozen dataclasses with a JSON-ready `to_dict` and a validating
`from_dict`; `from_dict` raises `InputError` naming the offending field.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from edgekit.errors import InputError


class DType(str, enum.Enum):
    """Tensor element types a bundle may declare."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    INT8 = "int8"
    UINT8 = "uint8"
    INT16 = "int16"
    INT32 = "int32"
    INT64 = "int64"
    BOOL = "bool"

    @classmethod
    def parse(cls, value: Any, field: str = "dtype") -> DType:
        """Accept a DType, a string, or a numpy dtype/type."""
        if isinstance(value, cls):
            return value
        name = getattr(value, "__name__", None) or str(value)
        name = {"float": "float32", "half": "float16", "bool_": "bool"}.get(name, name)
        try:
            return cls(name)
        except ValueError:
            raise InputError(
                f"unrecognized {field}={value!r}",
                expected=f"one of {[d.value for d in cls]}",
                found=repr(value),
            ) from None


class PreprocessKind(str, enum.Enum):
    NONE = "none"
    IMAGE = "image"
    AUDIO = "audio"
    SENSOR = "sensor"


class PostprocessKind(str, enum.Enum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"
    ANOMALY = "anomaly"
    DETECTION = "detection"
    GENERATION = "generation"  # the output is the product (a generator's image, a decoder's signal)
    RAW = "raw"


# ---------------------------------------------------------------------------
# small validating readers, shared by every from_dict


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InputError(where, expected="a mapping", found=type(data).__name__)
    return data


def _check_keys(data: Mapping[str, Any], allowed: set[str], required: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InputError(
            f"{where}: unknown field(s) {unknown}",
            expected=f"only {sorted(allowed)}",
            found=str(unknown),
            hint="check the spelling",
        )
    missing = sorted(required - set(data))
    if missing:
        raise InputError(f"{where}: missing field(s) {missing}", expected=str(sorted(required)))


def _num(data: Mapping[str, Any], key: str, where: str, *, integer: bool = False,
         minimum: float | None = None, default: Any = dataclasses.MISSING) -> Any:
    if key not in data or data[key] is None:
        if default is dataclasses.MISSING:
            raise InputError(f"{where}.{key}", expected="a number", found="nothing")
        return default
    value = data[key]
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or (isinstance(value, float) and not math.isfinite(value)):
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"{where}.{key}", expected=kind, found=repr(value))
    if minimum is not None and value < minimum:
        raise InputError(f"{where}.{key}", expected=f">= {minimum}", found=repr(value))
    return int(value) if integer else float(value)


def _floats(data: Mapping[str, Any], key: str, where: str, default: tuple = ()) -> tuple[float, ...]:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InputError(f"{where}.{key}", expected="a list of numbers", found=repr(value))
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InputError(f"{where}.{key}", expected="finite numbers", found=repr(v))
        out.append(float(v))
    return tuple(out)


def _choice(data: Mapping[str, Any], key: str, choices: Sequence[str], where: str,
            default: str | None = None) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise InputError(
            f"unrecognized {where}.{key}={value!r}",
            expected=f"one of {list(choices)}",
            found=repr(value),
        )
    return str(value)


def _text(data: Mapping[str, Any], key: str, where: str, default: Any = dataclasses.MISSING) -> str:
    value = data.get(key, default)
    if value is dataclasses.MISSING:
        raise InputError(f"{where}.{key}", expected="a string", found="nothing")
    if not isinstance(value, str):
        raise InputError(f"{where}.{key}", expected="a string", found=repr(value))
    return value


def _strings(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = data.get(key, ())
    if not isinstance(value, Sequence) or isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}.{key}", expected="a list of strings", found=repr(value))
    return tuple(value)


def _bool(data: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InputError(f"{where}.{key}", expected="true or false", found=repr(value))
    return value


def _without_defaults(out: dict[str, Any], keys: Sequence[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """`out` without the `keys` that hold their default (keys added after a spec's first
    release: a spec that does not use them serializes byte for byte as before)."""
    return {k: v for k, v in out.items()
            if not (k in keys and v == defaults[k] and type(v) is type(defaults[k]))}


def _plain(value: Any) -> Any:
    """Convert dataclasses, enums and tuples to JSON-ready builtins."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------
# tensors


@dataclasses.dataclass(frozen=True)
class Quantization:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per axis."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    def __post_init__(self) -> None:
        if not self.scale or len(self.scale) != len(self.zero_point):
            raise InputError(
                "quantization parameters",
                expected="as many zero points as scales (at least one)",
                found=f"{len(self.scale)} scales and {len(self.zero_point)} zero points",
            )

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "quantization") -> Quantization:
        data = _mapping(data, where)
        _check_keys(data, {"scale", "zero_point", "axis"}, {"scale", "zero_point"}, where)
        zps = data["zero_point"]
        if not isinstance(zps, Sequence) or isinstance(zps, str) or not all(
            isinstance(z, int) and not isinstance(z, bool) for z in zps
        ):
            raise InputError(f"{where}.zero_point", expected="a list of integers", found=repr(zps))
        return cls(
            scale=_floats(data, "scale", where),
            zero_point=tuple(int(z) for z in zps),
            axis=_num(data, "axis", where, integer=True, default=0),
        )


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One model input or output. A dimension of -1 is dynamic (usually the batch)."""

    name: str
    shape: tuple[int, ...]
    dtype: DType
    quantization: Quantization | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", DType.parse(self.dtype))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if any(d < -1 for d in self.shape):
            raise InputError(f"tensor {self.name!r} shape", expected="dimensions >= -1",
                             found=str(list(self.shape)))

    @property
    def is_quantized(self) -> bool:
        return self.quantization is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype.value,
            "quantization": self.quantization.to_dict() if self.quantization else None,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "tensor") -> TensorSpec:
        data = _mapping(data, where)
        _check_keys(data, {"name", "shape", "dtype", "quantization"}, {"name", "shape", "dtype"}, where)
        shape = data["shape"]
        if not isinstance(shape, Sequence) or isinstance(shape, str) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape
        ):
            raise InputError(f"{where}.shape", expected="a list of integers", found=repr(shape))
        q = data.get("quantization")
        return cls(
            name=_text(data, "name", where),
            shape=tuple(shape),
            dtype=DType.parse(data["dtype"], f"{where}.dtype"),
            quantization=Quantization.from_dict(q, f"{where}.quantization") if q is not None else None,
        )


# ---------------------------------------------------------------------------
# preprocessing


@dataclasses.dataclass(frozen=True)
class NoPreprocess:
    """The model takes a ready tensor; the runtime only casts/quantizes it."""

    kind: ClassVar[PreprocessKind] = PreprocessKind.NONE

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "preprocess") -> NoPreprocess:
        _check_keys(data, {"kind"}, set(), where)
        return cls()


@dataclasses.dataclass(frozen=True)
class ImagePreprocess:
    """Decode, resize, crop, colour order, layout and normalization of an image.

    In order: a centre crop of `crop_fraction` (when `crop` is ``"center"``); a resize to
    `height` x `width` (with `letterbox`: keeping the aspect ratio, the rest padded
    evenly on both sides with `pad_value`, a pixel value 0..255); the colour order; then
    ``(pixel * scale - mean) / std`` per channel, in the `layout`.
    """

    height: int
    width: int
    channels: int = 3
    color_order: str = "rgb"  # rgb | bgr | gray
    layout: str = "nhwc"  # nhwc | nchw
    resize: str = "bilinear"  # bilinear | nearest | area | bicubic
    crop: str = "none"  # none | center
    crop_fraction: float = 1.0
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    letterbox: bool = False
    pad_value: float = 0.0

    kind: ClassVar[PreprocessKind] = PreprocessKind.IMAGE
    LATER_KEYS: ClassVar[tuple[str, ...]] = ("letterbox", "pad_value")  # as AudioPreprocess.LATER_KEYS
    COLOR_ORDERS: ClassVar[tuple[str, ...]] = ("rgb", "bgr", "gray")
    LAYOUTS: ClassVar[tuple[str, ...]] = ("nhwc", "nchw")
    RESIZES: ClassVar[tuple[str, ...]] = ("bilinear", "nearest", "area", "bicubic")
    CROPS: ClassVar[tuple[str, ...]] = ("none", "center")

    def __post_init__(self) -> None:
        where = "preprocess (image)"
        if self.height < 1 or self.width < 1:
            raise InputError(f"{where} size", expected="height and width >= 1",
                             found=f"{self.height}x{self.width}")
        if self.channels not in (1, 3):
            raise InputError(f"{where}.channels", expected="1 or 3", found=str(self.channels))
        if (self.color_order == "gray") != (self.channels == 1):
            raise InputError(f"{where}.color_order", expected="'gray' exactly when channels is 1",
                             found=f"color_order={self.color_order!r}, channels={self.channels}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) not in (1, self.channels):
                raise InputError(f"{where}.{name}", expected=f"1 or {self.channels} values",
                                 found=f"{len(values)} values")
        if any(s == 0 for s in self.std):
            raise InputError(f"{where}.std", expected="non-zero values", found=str(list(self.std)))
        if not 0.0 < self.crop_fraction <= 1.0:
            raise InputError(f"{where}.crop_fraction", expected="in (0, 1]", found=str(self.crop_fraction))
        if not 0.0 <= self.pad_value <= 255.0:
            raise InputError(f"{where}.pad_value", expected="a pixel value in [0, 255]", found=str(self.pad_value))

    def to_dict(self) -> dict[str, Any]:
        return _without_defaults({"kind": self.kind.value, **_plain(self)}, self.LATER_KEYS,
                                 {"letterbox": False, "pad_value": 0.0})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "preprocess") -> ImagePreprocess:
        fields = {f.name for f in dataclasses.fields(cls)}
        _check_keys(data, fields | {"kind"}, {"height", "width"}, where)
        return cls(
            height=_num(data, "height", where, integer=True, minimum=1),
            width=_num(data, "width", where, integer=True, minimum=1),
            channels=_num(data, "channels", where, integer=True, default=3),
            color_order=_choice(data, "color_order", cls.COLOR_ORDERS, where, "rgb"),
            layout=_choice(data, "layout", cls.LAYOUTS, where, "nhwc"),
            resize=_choice(data, "resize", cls.RESIZES, where, "bilinear"),
            crop=_choice(data, "crop", cls.CROPS, where, "none"),
            crop_fraction=_num(data, "crop_fraction", where, default=1.0),
            scale=_num(data, "scale", where, default=1.0 / 255.0),
            mean=_floats(data, "mean", where, (0.0,)),
            std=_floats(data, "std", where, (1.0,)),
            letterbox=_bool(data, "letterbox", where, False),
            pad_value=_num(data, "pad_value", where, default=0.0),
        )


@dataclasses.dataclass(frozen=True)
class AudioPreprocess:
    """Audio front end; with the defaults, the semantics of ``tf.signal``.

    The order of operations (docs/preprocess.md has each key's unit and an example):

    1. resample to `sample_rate`; pad with zeros or cut to `clip_samples`;
    2. pre-emphasis ``y[n] = x[n] - preemphasis * x[n-1]`` (``x[-1] = 0``; 0 is off);
    3. `center`: pad ``frame_length // 2`` samples at both ends (``reflect`` or
       ``constant``, as librosa's ``center=True``); frames of `frame_length` every
       `frame_step` (``pad_end`` as ``tf.signal.frame``);
    4. `window` (Hann/Hamming, periodic as ``tf.signal`` or symmetric as ``numpy.hanning``
       when `window_periodic` is false), an rfft of `fft_length`, `spectrum`
       (magnitude or power), divided by `fft_length` when `spectrum_scale` is
       ``1/fft_length``;
    5. for ``log_mel`` and ``mfcc``: a mel filterbank of `num_mel_bins` between
       `lower_edge_hz` and `upper_edge_hz` (`mel_scale` ``htk``: as
       ``tf.signal.linear_to_mel_weight_matrix``; ``slaney``: as
       ``librosa.filters.mel(htk=False)``; `mel_norm` ``slaney``: area-normalized
       triangles), then `log`: ``log`` ``ln(x + log_offset)``, ``log10``
       ``log10(x + log_offset)``, ``db`` (librosa ``power_to_db`` for a power spectrum,
       ``amplitude_to_db`` for a magnitude one, with `db_ref`, `db_amin`, `db_top_db`)
       or ``none``; for ``mfcc``, the first `num_mfcc` coefficients of the DCT-II of
       ``tf.signal.mfccs_from_log_mel_spectrograms``;
    6. `normalize`: ``per_clip`` (zero mean, unit variance over the clip) or ``global``
       (`mean` and `std`: one number, or one per feature bin);
    7. ``x = (x + offset) * scale``, then clipped to [`clip_min`, `clip_max`] when set;
    8. `stack_frames` consecutive frames concatenated into one vector (hop one frame):
       ``(frames - stack_frames + 1, stack_frames * bins)``.
    """

    sample_rate: int = 16000
    clip_samples: int = 16000
    preemphasis: float = 0.0
    center: str = "none"  # none | reflect | constant
    frame_length: int = 640
    frame_step: int = 320
    fft_length: int = 1024
    window: str = "hann"
    window_periodic: bool = True
    pad_end: bool = False
    feature: str = "mfcc"  # spectrogram | log_mel | mfcc
    spectrum: str = "magnitude"  # magnitude | power
    spectrum_scale: str = "none"  # none | 1/fft_length
    num_mel_bins: int = 40
    lower_edge_hz: float = 20.0
    upper_edge_hz: float = 4000.0
    mel_scale: str = "htk"  # htk | slaney
    mel_norm: str = "none"  # none | slaney
    log: str = "log"  # log | log10 | db | none
    log_offset: float = 1e-6
    db_ref: float | str = 1.0  # a number, or "max"
    db_amin: float = 1e-10
    db_top_db: float | None = None
    num_mfcc: int = 10
    normalize: str = "none"  # none | per_clip | global
    mean: float | tuple[float, ...] = 0.0
    std: float | tuple[float, ...] = 1.0
    offset: float = 0.0
    scale: float = 1.0
    clip_min: float | None = None
    clip_max: float | None = None
    stack_frames: int = 1

    kind: ClassVar[PreprocessKind] = PreprocessKind.AUDIO
    WINDOWS: ClassVar[tuple[str, ...]] = ("hann", "hamming", "none")
    CENTERS: ClassVar[tuple[str, ...]] = ("none", "reflect", "constant")
    FEATURES: ClassVar[tuple[str, ...]] = ("spectrogram", "log_mel", "mfcc")
    SPECTRA: ClassVar[tuple[str, ...]] = ("magnitude", "power")
    SPECTRUM_SCALES: ClassVar[tuple[str, ...]] = ("none", "1/fft_length")
    MEL_SCALES: ClassVar[tuple[str, ...]] = ("htk", "slaney")
    MEL_NORMS: ClassVar[tuple[str, ...]] = ("none", "slaney")
    LOGS: ClassVar[tuple[str, ...]] = ("log", "log10", "db", "none")
    NORMALIZATIONS: ClassVar[tuple[str, ...]] = ("none", "per_clip", "global")
    # Keys added after the first release: written to a manifest only when not at their
    # default, so a spec that does not use them serializes exactly as before.
    LATER_KEYS: ClassVar[tuple[str, ...]] = (
        "preemphasis", "center", "window_periodic", "spectrum_scale", "mel_scale", "mel_norm", "log", "db_ref",
        "db_amin", "db_top_db", "offset", "scale", "clip_min", "clip_max", "stack_frames")

    def __post_init__(self) -> None:
        where = "preprocess (audio)"
        for name in ("mean", "std"):  # lists become tuples, a one-value list a number
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, float(value[0]) if len(value) == 1 else tuple(float(v) for v in value))
        if self.frame_length > self.fft_length:
            raise InputError(f"{where}.fft_length", expected=f">= frame_length ({self.frame_length})",
                             found=str(self.fft_length))
        if self.frame_step < 1 or self.frame_length < 1:
            raise InputError(f"{where} framing", expected="frame_length and frame_step >= 1",
                             found=f"{self.frame_length}/{self.frame_step}")
        if not self.pad_end and self.padded_samples < self.frame_length:
            raise InputError(f"{where}.clip_samples", expected=f">= frame_length ({self.frame_length})",
                             found=str(self.clip_samples))
        if self.center == "reflect" and self.clip_samples <= self.frame_length // 2:
            raise InputError(f"{where}.center", expected="clip_samples > frame_length // 2 for reflect padding",
                             found=f"clip_samples={self.clip_samples}, frame_length={self.frame_length}")
        nyquist = self.sample_rate / 2.0
        if not 0.0 <= self.lower_edge_hz < self.upper_edge_hz <= nyquist:
            raise InputError(f"{where} mel range",
                             expected=f"0 <= lower_edge_hz < upper_edge_hz <= {nyquist:g} (Nyquist)",
                             found=f"{self.lower_edge_hz:g}..{self.upper_edge_hz:g} Hz")
        if self.feature == "mfcc" and not 1 <= self.num_mfcc <= self.num_mel_bins:
            raise InputError(f"{where}.num_mfcc", expected=f"1..num_mel_bins ({self.num_mel_bins})",
                             found=str(self.num_mfcc))
        if not 0.0 <= self.preemphasis < 1.0:
            raise InputError(f"{where}.preemphasis", expected="in [0, 1) (0 is off)", found=str(self.preemphasis))
        if isinstance(self.db_ref, str) and self.db_ref != "max":
            raise InputError(f"{where}.db_ref", expected="a positive number or 'max'", found=repr(self.db_ref))
        if not isinstance(self.db_ref, str) and not self.db_ref > 0:
            raise InputError(f"{where}.db_ref", expected="a positive number or 'max'", found=repr(self.db_ref))
        if not self.db_amin > 0:
            raise InputError(f"{where}.db_amin", expected="> 0", found=str(self.db_amin))
        if self.db_top_db is not None and self.db_top_db < 0:
            raise InputError(f"{where}.db_top_db", expected=">= 0 or null (off)", found=str(self.db_top_db))
        if self.log == "log" or self.log == "log10":
            if self.log_offset < 0:
                raise InputError(f"{where}.log_offset", expected=">= 0", found=str(self.log_offset))
        for name in ("mean", "std"):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != self.num_bins:
                raise InputError(f"{where}.{name}", expected=f"one number or {self.num_bins} (one per feature bin)",
                                 found=f"{len(value)} values")
        std = self.std if isinstance(self.std, tuple) else (self.std,)
        if self.normalize == "global" and any(s == 0 for s in std):
            raise InputError(f"{where}.std", expected="non-zero", found=str(self.std))
        if self.clip_min is not None and self.clip_max is not None and self.clip_min > self.clip_max:
            raise InputError(f"{where} clipping", expected="clip_min <= clip_max",
                             found=f"{self.clip_min} > {self.clip_max}")
        if not 1 <= self.stack_frames <= max(self.frames, 1):
            raise InputError(f"{where}.stack_frames", expected=f"1..{self.frames} (the frames of a clip)",
                             found=str(self.stack_frames))

    @property
    def padded_samples(self) -> int:
        """Samples a clip has once `center` padded it."""
        return self.clip_samples + (2 * (self.frame_length // 2) if self.center != "none" else 0)

    @property
    def frames(self) -> int:
        """Frames per clip, as ``tf.signal.frame`` counts them (before stacking)."""
        if self.pad_end:
            return -(-self.padded_samples // self.frame_step)
        return 1 + (self.padded_samples - self.frame_length) // self.frame_step

    @property
    def num_frames(self) -> int:
        """Rows of the features: frames per clip, or stacked vectors when `stack_frames` > 1."""
        return self.frames - self.stack_frames + 1

    @property
    def num_bins(self) -> int:
        """Features per frame (before stacking)."""
        if self.feature == "mfcc":
            return self.num_mfcc
        if self.feature == "log_mel":
            return self.num_mel_bins
        return self.fft_length // 2 + 1

    @property
    def num_features(self) -> int:
        """Columns of the features: `num_bins`, times `stack_frames`."""
        return self.num_bins * self.stack_frames

    def to_dict(self) -> dict[str, Any]:
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        return _without_defaults({"kind": self.kind.value, **_plain(self)}, self.LATER_KEYS, defaults)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "preprocess") -> AudioPreprocess:
        fields = {f.name for f in dataclasses.fields(cls)}
        _check_keys(data, fields | {"kind"}, set(), where)
        d = cls()
        db_ref = data.get("db_ref", d.db_ref)
        return cls(
            sample_rate=_num(data, "sample_rate", where, integer=True, minimum=1, default=d.sample_rate),
            clip_samples=_num(data, "clip_samples", where, integer=True, minimum=1, default=d.clip_samples),
            preemphasis=_num(data, "preemphasis", where, minimum=0, default=d.preemphasis),
            center=_choice(data, "center", cls.CENTERS, where, d.center),
            frame_length=_num(data, "frame_length", where, integer=True, minimum=1, default=d.frame_length),
            frame_step=_num(data, "frame_step", where, integer=True, minimum=1, default=d.frame_step),
            fft_length=_num(data, "fft_length", where, integer=True, minimum=1, default=d.fft_length),
            window=_choice(data, "window", cls.WINDOWS, where, d.window),
            window_periodic=_bool(data, "window_periodic", where, d.window_periodic),
            pad_end=_bool(data, "pad_end", where, d.pad_end),
            feature=_choice(data, "feature", cls.FEATURES, where, d.feature),
            spectrum=_choice(data, "spectrum", cls.SPECTRA, where, d.spectrum),
            spectrum_scale=_choice(data, "spectrum_scale", cls.SPECTRUM_SCALES, where, d.spectrum_scale),
            num_mel_bins=_num(data, "num_mel_bins", where, integer=True, minimum=1, default=d.num_mel_bins),
            lower_edge_hz=_num(data, "lower_edge_hz", where, minimum=0, default=d.lower_edge_hz),
            upper_edge_hz=_num(data, "upper_edge_hz", where, minimum=0, default=d.upper_edge_hz),
            mel_scale=_choice(data, "mel_scale", cls.MEL_SCALES, where, d.mel_scale),
            mel_norm=_choice(data, "mel_norm", cls.MEL_NORMS, where, d.mel_norm),
            log=_choice(data, "log", cls.LOGS, where, d.log),
            log_offset=_num(data, "log_offset", where, minimum=0, default=d.log_offset),
            db_ref="max" if db_ref == "max" else _num(data, "db_ref", where, default=d.db_ref),
            db_amin=_num(data, "db_amin", where, default=d.db_amin),
            db_top_db=_num(data, "db_top_db", where, minimum=0, default=None),
            num_mfcc=_num(data, "num_mfcc", where, integer=True, minimum=0, default=d.num_mfcc),
            normalize=_choice(data, "normalize", cls.NORMALIZATIONS, where, d.normalize),
            mean=_number_or_floats(data, "mean", where, d.mean),
            std=_number_or_floats(data, "std", where, d.std),
            offset=_num(data, "offset", where, default=d.offset),
            scale=_num(data, "scale", where, default=d.scale),
            clip_min=_num(data, "clip_min", where, default=None),
            clip_max=_num(data, "clip_max", where, default=None),
            stack_frames=_num(data, "stack_frames", where, integer=True, minimum=1, default=d.stack_frames),
        )


def _number_or_floats(data: Mapping[str, Any], key: str, where: str, default: float) -> float | tuple[float, ...]:
    """One number, or a list of numbers (a one-value list is the number)."""
    value = data.get(key, default)
    if isinstance(value, (list, tuple)):
        if not value:
            raise InputError(f"{where}.{key}", expected="a number or a non-empty list of numbers", found="[]")
        values = _floats(data, key, where)
        return values[0] if len(values) == 1 else values
    return _num(data, key, where, default=default)


@dataclasses.dataclass(frozen=True)
class SensorPreprocess:
    """Windows over multichannel sensor streams (IMU and the like).

    `channels` names the columns in the order the model expects; the runtime reorders
    incoming columns by name. Each window of `window` samples advances by `stride`;
    channel c is normalized as ``(x - mean[c]) / std[c]``.
    """

    channels: tuple[str, ...]
    window: int
    stride: int
    sample_rate_hz: float = 50.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    kind: ClassVar[PreprocessKind] = PreprocessKind.SENSOR

    def __post_init__(self) -> None:
        where = "preprocess (sensor)"
        object.__setattr__(self, "channels", tuple(self.channels))
        if not self.channels or len(set(self.channels)) != len(self.channels):
            raise InputError(f"{where}.channels", expected="a non-empty list of distinct names",
                             found=str(list(self.channels)))
        if self.window < 1 or not 1 <= self.stride:
            raise InputError(f"{where} windowing", expected="window >= 1 and stride >= 1",
                             found=f"window={self.window}, stride={self.stride}")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if values and len(values) != len(self.channels):
                raise InputError(f"{where}.{name}", expected=f"0 or {len(self.channels)} values",
                                 found=f"{len(values)} values")
        if any(s == 0 for s in self.std):
            raise InputError(f"{where}.std", expected="non-zero values", found=str(list(self.std)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, **_plain(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "preprocess") -> SensorPreprocess:
        fields = {f.name for f in dataclasses.fields(cls)}
        _check_keys(data, fields | {"kind"}, {"channels", "window", "stride"}, where)
        channels = data["channels"]
        if not isinstance(channels, Sequence) or isinstance(channels, str) or not all(
            isinstance(c, str) for c in channels
        ):
            raise InputError(f"{where}.channels", expected="a list of names", found=repr(channels))
        return cls(
            channels=tuple(channels),
            window=_num(data, "window", where, integer=True, minimum=1),
            stride=_num(data, "stride", where, integer=True, minimum=1),
            sample_rate_hz=_num(data, "sample_rate_hz", where, minimum=0, default=50.0),
            mean=_floats(data, "mean", where),
            std=_floats(data, "std", where),
        )


PreprocessSpec = NoPreprocess | ImagePreprocess | AudioPreprocess | SensorPreprocess

PREPROCESSORS: dict[str, type] = {
    PreprocessKind.NONE.value: NoPreprocess,
    PreprocessKind.IMAGE.value: ImagePreprocess,
    PreprocessKind.AUDIO.value: AudioPreprocess,
    PreprocessKind.SENSOR.value: SensorPreprocess,
}


def preprocess_from_dict(data: Any, where: str = "preprocess") -> PreprocessSpec:
    """Build the preprocessing spec named by ``data["kind"]``."""
    data = _mapping(data, where)
    kind = _choice(data, "kind", list(PREPROCESSORS), where)
    return PREPROCESSORS[kind].from_dict(data, where)


# ---------------------------------------------------------------------------
# postprocessing


@dataclasses.dataclass(frozen=True)
class PostprocessSpec:
    """How raw outputs become results.

    Attributes:
        kind: classification, regression, anomaly, detection, generation (the output
            tensor is the result, e.g. a generator's image) or raw.
        apply_softmax: the model outputs logits and the runtime applies softmax.
        top_k: how many labelled scores a classification result carries.
        score_threshold: results below this score are reported as no detection.
        anomaly_threshold: reconstruction error above which a sample is anomalous.
        smoothing_ms: streams only: average class posteriors over this window (keyword
            spotting); 0 disables smoothing.
        suppression_ms: streams only: after a detection, suppress further detections
            for this long.
        background_labels: labels that never count as a detection (e.g. ``_silence_``,
            ``_unknown_``).
        detection_format: for ``kind: detection``: ``ssd`` (the four outputs of TFLite's
            detection postprocess op: boxes, classes, scores, count), ``yolo`` (raw
            ``(N, 5 + classes)`` rows: cx, cy, w, h, objectness, class scores) or
            ``yolov8`` (raw ``(4 + classes, N)``: cx, cy, w, h, class scores).
        iou_threshold: non-maximum suppression overlap for raw YOLO outputs.
        max_detections: at most this many detections per input.
    """

    kind: PostprocessKind = PostprocessKind.RAW
    apply_softmax: bool = False
    top_k: int = 1
    score_threshold: float | None = None
    anomaly_threshold: float | None = None
    smoothing_ms: float = 0.0
    suppression_ms: float = 0.0
    background_labels: tuple[str, ...] = ()
    detection_format: str = "ssd"
    iou_threshold: float = 0.45
    max_detections: int = 100

    DETECTION_FORMATS: ClassVar[tuple[str, ...]] = ("ssd", "yolo", "yolov8")

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", PostprocessKind(self.kind))
        object.__setattr__(self, "background_labels", tuple(self.background_labels))
        if self.top_k < 1:
            raise InputError("postprocess.top_k", expected=">= 1", found=str(self.top_k))
        if self.detection_format not in self.DETECTION_FORMATS:
            raise InputError(f"unrecognized postprocess.detection_format={self.detection_format!r}",
                             expected=f"one of {list(self.DETECTION_FORMATS)}", found=repr(self.detection_format))
        if not 0.0 < self.iou_threshold <= 1.0 or self.max_detections < 1:
            raise InputError("postprocess detection settings", expected="0 < iou_threshold <= 1, max_detections >= 1",
                             found=f"iou_threshold={self.iou_threshold}, max_detections={self.max_detections}")
        if self.smoothing_ms < 0 or self.suppression_ms < 0:
            raise InputError("postprocess smoothing/suppression", expected="durations >= 0 ms",
                             found=f"{self.smoothing_ms}/{self.suppression_ms}")

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "postprocess") -> PostprocessSpec:
        data = _mapping(data, where)
        fields = {f.name for f in dataclasses.fields(cls)}
        _check_keys(data, fields, set(), where)
        return cls(
            kind=PostprocessKind(_choice(data, "kind", [k.value for k in PostprocessKind], where, "raw")),
            apply_softmax=_bool(data, "apply_softmax", where, False),
            top_k=_num(data, "top_k", where, integer=True, minimum=1, default=1),
            score_threshold=_num(data, "score_threshold", where, default=None),
            anomaly_threshold=_num(data, "anomaly_threshold", where, default=None),
            smoothing_ms=_num(data, "smoothing_ms", where, minimum=0, default=0.0),
            suppression_ms=_num(data, "suppression_ms", where, minimum=0, default=0.0),
            background_labels=_strings(data, "background_labels", where),
            detection_format=_choice(data, "detection_format", cls.DETECTION_FORMATS, where, "ssd"),
            iou_threshold=_num(data, "iou_threshold", where, default=0.45),
            max_detections=_num(data, "max_detections", where, integer=True, minimum=1, default=100),
        )
