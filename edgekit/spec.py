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

    The network input is ``(pixel * scale - mean) / std`` per channel, computed after
    resizing to `height` x `width` (after a centre crop of `crop_fraction` when
    `crop` is ``"center"``).
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

    kind: ClassVar[PreprocessKind] = PreprocessKind.IMAGE
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

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, **_plain(self)}

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
        )


@dataclasses.dataclass(frozen=True)
class AudioPreprocess:
    """Audio front end with the semantics of ``tf.signal``.

    Clip: resample to `sample_rate`, pad or cut to `clip_samples`. Frames of
    `frame_length` samples every `frame_step` (``pad_end`` as in ``tf.signal.frame``),
    `window` (periodic Hann/Hamming as ``tf.signal.hann_window``), an rfft of
    `fft_length`, then `spectrum` (magnitude or power), a mel filterbank of
    `num_mel_bins` between `lower_edge_hz` and `upper_edge_hz` (HTK mel scale, as
    ``tf.signal.linear_to_mel_weight_matrix``), ``log(x + log_offset)``, and for
    ``feature == "mfcc"`` the first `num_mfcc` coefficients of an orthonormal DCT-II
    (``tf.signal.mfccs_from_log_mel_spectrograms``). `normalize` is ``none``,
    ``per_clip`` (zero mean, unit variance over the clip) or ``global`` (fixed `mean`
    and `std`).
    """

    sample_rate: int = 16000
    clip_samples: int = 16000
    frame_length: int = 640
    frame_step: int = 320
    fft_length: int = 1024
    window: str = "hann"
    pad_end: bool = False
    feature: str = "mfcc"  # spectrogram | log_mel | mfcc
    spectrum: str = "magnitude"  # magnitude | power
    num_mel_bins: int = 40
    lower_edge_hz: float = 20.0
    upper_edge_hz: float = 4000.0
    log_offset: float = 1e-6
    num_mfcc: int = 10
    normalize: str = "none"  # none | per_clip | global
    mean: float = 0.0
    std: float = 1.0

    kind: ClassVar[PreprocessKind] = PreprocessKind.AUDIO
    WINDOWS: ClassVar[tuple[str, ...]] = ("hann", "hamming", "none")
    FEATURES: ClassVar[tuple[str, ...]] = ("spectrogram", "log_mel", "mfcc")
    SPECTRA: ClassVar[tuple[str, ...]] = ("magnitude", "power")
    NORMALIZATIONS: ClassVar[tuple[str, ...]] = ("none", "per_clip", "global")

    def __post_init__(self) -> None:
        where = "preprocess (audio)"
        if self.frame_length > self.fft_length:
            raise InputError(f"{where}.fft_length", expected=f">= frame_length ({self.frame_length})",
                             found=str(self.fft_length))
        if self.frame_step < 1 or self.frame_length < 1:
            raise InputError(f"{where} framing", expected="frame_length and frame_step >= 1",
                             found=f"{self.frame_length}/{self.frame_step}")
        if not self.pad_end and self.clip_samples < self.frame_length:
            raise InputError(f"{where}.clip_samples", expected=f">= frame_length ({self.frame_length})",
                             found=str(self.clip_samples))
        nyquist = self.sample_rate / 2.0
        if not 0.0 <= self.lower_edge_hz < self.upper_edge_hz <= nyquist:
            raise InputError(f"{where} mel range",
                             expected=f"0 <= lower_edge_hz < upper_edge_hz <= {nyquist:g} (Nyquist)",
                             found=f"{self.lower_edge_hz:g}..{self.upper_edge_hz:g} Hz")
        if self.feature == "mfcc" and not 1 <= self.num_mfcc <= self.num_mel_bins:
            raise InputError(f"{where}.num_mfcc", expected=f"1..num_mel_bins ({self.num_mel_bins})",
                             found=str(self.num_mfcc))
        if self.normalize == "global" and self.std == 0:
            raise InputError(f"{where}.std", expected="non-zero", found="0")

    @property
    def num_frames(self) -> int:
        """Frames per clip, as ``tf.signal.frame`` counts them."""
        if self.pad_end:
            return -(-self.clip_samples // self.frame_step)
        return 1 + (self.clip_samples - self.frame_length) // self.frame_step

    @property
    def num_features(self) -> int:
        if self.feature == "mfcc":
            return self.num_mfcc
        if self.feature == "log_mel":
            return self.num_mel_bins
        return self.fft_length // 2 + 1

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, **_plain(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "preprocess") -> AudioPreprocess:
        fields = {f.name for f in dataclasses.fields(cls)}
        _check_keys(data, fields | {"kind"}, set(), where)
        d = cls()
        return cls(
            sample_rate=_num(data, "sample_rate", where, integer=True, minimum=1, default=d.sample_rate),
            clip_samples=_num(data, "clip_samples", where, integer=True, minimum=1, default=d.clip_samples),
            frame_length=_num(data, "frame_length", where, integer=True, minimum=1, default=d.frame_length),
            frame_step=_num(data, "frame_step", where, integer=True, minimum=1, default=d.frame_step),
            fft_length=_num(data, "fft_length", where, integer=True, minimum=1, default=d.fft_length),
            window=_choice(data, "window", cls.WINDOWS, where, d.window),
            pad_end=_bool(data, "pad_end", where, d.pad_end),
            feature=_choice(data, "feature", cls.FEATURES, where, d.feature),
            spectrum=_choice(data, "spectrum", cls.SPECTRA, where, d.spectrum),
            num_mel_bins=_num(data, "num_mel_bins", where, integer=True, minimum=1, default=d.num_mel_bins),
            lower_edge_hz=_num(data, "lower_edge_hz", where, minimum=0, default=d.lower_edge_hz),
            upper_edge_hz=_num(data, "upper_edge_hz", where, minimum=0, default=d.upper_edge_hz),
            log_offset=_num(data, "log_offset", where, minimum=0, default=d.log_offset),
            num_mfcc=_num(data, "num_mfcc", where, integer=True, minimum=0, default=d.num_mfcc),
            normalize=_choice(data, "normalize", cls.NORMALIZATIONS, where, d.normalize),
            mean=_num(data, "mean", where, default=d.mean),
            std=_num(data, "std", where, default=d.std),
        )


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
