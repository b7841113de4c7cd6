"""Specs: validation with clear messages, and dict round trips."""

from __future__ import annotations

import pytest

from edgekit.errors import InputError
from edgekit.spec import (
    AudioPreprocess,
    DType,
    ImagePreprocess,
    NoPreprocess,
    PostprocessKind,
    PostprocessSpec,
    Quantization,
    SensorPreprocess,
    TensorSpec,
    preprocess_from_dict,
)


@pytest.mark.parametrize(
    "spec",
    [
        NoPreprocess(),
        ImagePreprocess(height=96, width=96, channels=3, color_order="bgr", layout="nchw", crop="center",
                        crop_fraction=0.875, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)),
        ImagePreprocess(height=28, width=28, channels=1, color_order="gray"),
        AudioPreprocess(),
        AudioPreprocess(feature="log_mel", spectrum="power", normalize="global", mean=-3.0, std=2.5, pad_end=True),
        SensorPreprocess(channels=("ax", "ay", "az", "gx", "gy", "gz"), window=128, stride=64,
                         mean=(0.0,) * 6, std=(1.0,) * 6),
    ],
)
def test_preprocess_round_trip(spec):
    assert preprocess_from_dict(spec.to_dict()) == spec


def test_audio_frames_match_tf_signal_frame_counting():
    spec = AudioPreprocess(clip_samples=16000, frame_length=640, frame_step=320)
    assert spec.num_frames == 49  # the MLPerf Tiny DS-CNN input: 49 x 10 MFCC
    assert spec.num_features == 10
    padded = AudioPreprocess(clip_samples=16000, frame_length=640, frame_step=320, pad_end=True)
    assert padded.num_frames == 50


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "image", "height": 32}, "missing field(s) ['width']"),
        ({"kind": "image", "height": 32, "width": 32, "colour": "rgb"}, "unknown field(s) ['colour']"),
        ({"kind": "image", "height": 32, "width": 32, "layout": "hwc"}, "expected one of ['nhwc', 'nchw']"),
        ({"kind": "image", "height": 32, "width": 32, "channels": 3, "std": [0.0]}, "non-zero"),
        ({"kind": "image", "height": 32, "width": 32, "mean": [0.1, 0.2]}, "expected 1 or 3 values"),
        ({"kind": "audio", "frame_length": 2048, "fft_length": 1024}, "expected >= frame_length"),
        ({"kind": "audio", "upper_edge_hz": 9000}, "Nyquist"),
        ({"kind": "audio", "num_mfcc": 50}, "num_mfcc"),
        ({"kind": "sensor", "channels": ["a", "a"], "window": 4, "stride": 1}, "distinct names"),
        ({"kind": "sensor", "channels": ["a"], "window": 4, "stride": 0}, "expected >= 1"),
        ({"kind": "video"}, "expected one of ['none', 'image', 'audio', 'sensor']"),
        ({"kind": "image", "height": True, "width": 3}, "expected an integer"),
    ],
)
def test_bad_preprocess_says_what_is_wrong(data, fragment):
    with pytest.raises(InputError) as info:
        preprocess_from_dict(data)
    assert fragment in str(info.value)


def test_tensor_spec_round_trip_with_per_channel_quantization():
    spec = TensorSpec("w", (-1, 3, 3, 16), "int8", Quantization(tuple([0.01] * 16), tuple([0] * 16), axis=3))
    again = TensorSpec.from_dict(spec.to_dict())
    assert again == spec
    assert again.quantization.per_channel
    assert again.dtype is DType.INT8


def test_dtype_parse_lists_valid_names():
    with pytest.raises(InputError) as info:
        DType.parse("complex64")
    assert "float32" in str(info.value) and "complex64" in str(info.value)


def test_quantization_needs_matching_lengths():
    with pytest.raises(InputError, match="as many zero points as scales"):
        Quantization((0.1, 0.2), (0,))


def test_postprocess_round_trip_and_validation():
    spec = PostprocessSpec(kind=PostprocessKind.ANOMALY, anomaly_threshold=0.25)
    assert PostprocessSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(InputError, match="top_k"):
        PostprocessSpec.from_dict({"kind": "classification", "top_k": 0})
