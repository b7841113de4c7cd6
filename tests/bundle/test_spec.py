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
        ImagePreprocess(height=64, width=64, letterbox=True, pad_value=114),
        AudioPreprocess(feature="log_mel", preemphasis=0.97, center="reflect", window_periodic=False,
                        spectrum="power", spectrum_scale="1/fft_length", mel_scale="slaney", mel_norm="slaney",
                        log="db", db_ref="max", db_amin=1e-5, db_top_db=80.0, normalize="global",
                        mean=tuple(range(40)), std=2.0, offset=52.0, scale=1 / 64, clip_min=0.0, clip_max=1.0,
                        stack_frames=5),
        AudioPreprocess(log="log10", db_ref=2.0, clip_max=3.0),
    ],
)
def test_preprocess_round_trip(spec):
    assert preprocess_from_dict(spec.to_dict()) == spec


def test_specs_without_the_new_keys_serialize_as_before():
    """A manifest written before the new keys existed reads and writes back unchanged."""
    old_audio = ["kind", "sample_rate", "clip_samples", "frame_length", "frame_step", "fft_length", "window",
                 "pad_end", "feature", "spectrum", "num_mel_bins", "lower_edge_hz", "upper_edge_hz", "log_offset",
                 "num_mfcc", "normalize", "mean", "std"]
    assert list(AudioPreprocess().to_dict()) == old_audio
    assert preprocess_from_dict(AudioPreprocess().to_dict()).to_dict() == AudioPreprocess().to_dict()
    assert list(ImagePreprocess(height=8, width=8).to_dict()) == [
        "kind", "height", "width", "channels", "color_order", "layout", "resize", "crop", "crop_fraction", "scale",
        "mean", "std"]
    assert "stack_frames" in AudioPreprocess(stack_frames=2).to_dict()


def test_stacked_frames_shape():
    spec = AudioPreprocess(feature="log_mel", stack_frames=5)
    assert (spec.frames, spec.num_frames, spec.num_bins, spec.num_features) == (49, 45, 40, 200)
    centred = AudioPreprocess(clip_samples=160000, frame_length=1024, frame_step=512, fft_length=1024,
                              center="reflect")
    assert centred.frames == 313  # librosa's 1 + len // hop


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
        ({"kind": "image", "height": 3, "width": 3, "pad_value": 300}, "pad_value"),
        ({"kind": "image", "height": 3, "width": 3, "letterbox": "yes"}, "letterbox"),
        ({"kind": "audio", "preemphasis": 1.0}, "preemphasis"),
        ({"kind": "audio", "center": "both"}, "center"),
        ({"kind": "audio", "center": "reflect", "clip_samples": 320, "frame_length": 640, "pad_end": True}, "center"),
        ({"kind": "audio", "window_periodic": 1}, "window_periodic"),
        ({"kind": "audio", "spectrum_scale": "1/N"}, "spectrum_scale"),
        ({"kind": "audio", "mel_scale": "mel"}, "mel_scale"),
        ({"kind": "audio", "mel_norm": "area"}, "mel_norm"),
        ({"kind": "audio", "log": "ln"}, "log"),
        ({"kind": "audio", "db_ref": "min"}, "db_ref"),
        ({"kind": "audio", "db_ref": 0}, "db_ref"),
        ({"kind": "audio", "db_amin": 0}, "db_amin"),
        ({"kind": "audio", "db_top_db": -1}, "db_top_db"),
        ({"kind": "audio", "mean": [1.0, 2.0]}, "one per feature bin"),
        ({"kind": "audio", "std": []}, "std"),
        ({"kind": "audio", "std": ["a"]}, "std"),
        ({"kind": "audio", "normalize": "global", "std": [1.0] * 9 + [0.0]}, "non-zero"),
        ({"kind": "audio", "clip_min": 1, "clip_max": 0}, "clip_min <= clip_max"),
        ({"kind": "audio", "offset": float("nan")}, "offset"),
        ({"kind": "audio", "stack_frames": 50}, "stack_frames"),
        ({"kind": "audio", "stack_frames": 0}, "stack_frames"),
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


def test_presets_with_overrides_and_a_clear_line_for_an_unknown_name():
    from edgekit.contract import contract_from_dict
    from edgekit.presets import PRESETS, preset_spec

    for name in PRESETS:
        assert preprocess_from_dict(preset_spec(name).to_dict()) == preset_spec(name)
    spec = contract_from_dict({"preset": "imagenet", "height": 96, "width": 96}, "x.yaml").preprocess
    assert (spec.height, spec.mean) == (96, (0.485, 0.456, 0.406))
    section = contract_from_dict({"preprocess": {"preset": "speech-commands-mfcc", "num_mfcc": 13}}, "x.yaml")
    assert section.preprocess.num_mfcc == 13 and section.preprocess.frame_length == 480
    with pytest.raises(InputError) as info:
        contract_from_dict({"preset": "imagenett"}, "x.yaml")
    assert "imagenett" in str(info.value) and all(name in str(info.value) for name in PRESETS)
    with pytest.raises(InputError, match="the kind of preset"):
        contract_from_dict({"preset": "imagenet", "kind": "audio"}, "x.yaml")
    with pytest.raises(InputError, match="height"):
        contract_from_dict({"preset": "imagenet", "height": 0}, "x.yaml")


def test_preprocess_option_takes_a_preset_name_or_a_file(tmp_path, monkeypatch):
    from pathlib import Path

    from edgekit.contract import read_contract

    monkeypatch.chdir(tmp_path)
    assert read_contract(Path("dcase2020-t2-logmel")).preprocess.num_features == 640
    (tmp_path / "imagenet").write_text("kind: image\nheight: 32\nwidth: 32\n")
    assert read_contract(Path("imagenet")).preprocess.height == 32  # a file of that name wins
    with pytest.raises(InputError, match="speech-commands-mfcc"):
        read_contract(Path("mfcc"))


def test_convert_lists_the_presets_and_refuses_an_unknown_one_in_one_line(tmp_path):
    from edgekit.presets import PRESETS
    from tests.support.cli import run_cli

    help_text = " ".join(run_cli("convert", "--help").stdout.split())
    assert all(name in help_text.replace("- ", "-") for name in PRESETS)
    model = tmp_path / "m.keras"
    model.write_bytes(b"x")
    result = run_cli("convert", str(model), "-o", str(tmp_path / "o.edgekit"), "--preprocess", "nosuch",
                     "--allow-random-calibration")
    assert result.code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "imagenet" in result.stderr and "nosuch" in result.stderr
