"""Named preprocessing specs for the front ends real models use.

A preset is a plain preprocess mapping (the keys of `edgekit.spec`). Use one with
``edgekit convert --preprocess NAME``, or in a contract YAML as ``preset: NAME`` with
any keys to override (``preset: imagenet`` and ``height: 160``). docs/preprocess.md
says where each preset comes from and where it differs from its source.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

from edgekit.errors import InputError
from edgekit.spec import PreprocessSpec, preprocess_from_dict


@dataclasses.dataclass(frozen=True)
class Preset:
    """One named spec: its help line and its keys."""

    name: str
    help: str
    keys: Mapping[str, Any]


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("speech-commands-mfcc",
           "49 x 10 MFCC of 1 s at 16 kHz, 30 ms / 20 ms frames, 40 mel bands 20-4000 Hz "
           "(TensorFlow speech_commands, MLPerf Tiny KWS DS-CNN)",
           {"kind": "audio", "sample_rate": 16000, "clip_samples": 16000, "frame_length": 480, "frame_step": 320,
            "fft_length": 512, "window": "hann", "feature": "mfcc", "spectrum": "magnitude", "num_mel_bins": 40,
            "lower_edge_hz": 20.0, "upper_edge_hz": 4000.0, "log": "log", "log_offset": 1e-6, "num_mfcc": 10}),
    Preset("dcase2020-t2-logmel",
           "DCASE 2020 task 2 baseline: 10 s at 16 kHz, 128 Slaney log-mel (dB) of n_fft 1024 / hop 512, "
           "5 frames stacked into 640 values",
           {"kind": "audio", "sample_rate": 16000, "clip_samples": 160000, "center": "reflect", "frame_length": 1024,
            "frame_step": 512, "fft_length": 1024, "window": "hann", "feature": "log_mel", "spectrum": "power",
            "num_mel_bins": 128, "lower_edge_hz": 0.0, "upper_edge_hz": 8000.0, "mel_scale": "slaney",
            "mel_norm": "slaney", "log": "log10", "log_offset": sys.float_info.epsilon, "scale": 10.0,
            "stack_frames": 5}),
    Preset("image-0-1", "RGB 224 x 224, pixels scaled to [0, 1]",
           {"kind": "image", "height": 224, "width": 224, "scale": 1.0 / 255.0, "mean": [0.0], "std": [1.0]}),
    Preset("image-minus1-1", "RGB 224 x 224, pixels scaled to [-1, 1] (MobileNet, EfficientNet-Lite)",
           {"kind": "image", "height": 224, "width": 224, "scale": 1.0 / 127.5, "mean": [1.0], "std": [1.0]}),
    Preset("imagenet", "RGB 224 x 224, [0, 1] then the ImageNet mean and std per channel (torchvision)",
           {"kind": "image", "height": 224, "width": 224, "scale": 1.0 / 255.0, "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225]}),
)}


def preset_help() -> str:
    """One line per preset, for ``--help``."""
    return "; ".join(f"{p.name}: {p.help}" for p in PRESETS.values())


def preset_keys(name: Any, where: str = "preset") -> dict[str, Any]:
    """The keys of the preset `name`.

    Raises:
        InputError: no such preset (the message lists the valid names).
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise InputError(f"unknown {where} {name!r}", expected=f"one of {list(PRESETS)}", found=repr(name),
                         hint="or a path to a preprocessing YAML file")
    return dict(PRESETS[name].keys)


def resolve(data: Mapping[str, Any], where: str = "preprocess") -> dict[str, Any]:
    """A preprocess mapping with its ``preset`` expanded (the other keys override the preset's).

    Raises:
        InputError: an unknown preset, or a ``kind`` other than the preset's.
    """
    if "preset" not in data:
        return dict(data)
    overrides = {k: v for k, v in data.items() if k != "preset"}
    keys = preset_keys(data["preset"], f"{where}.preset")
    if "kind" in overrides and overrides["kind"] != keys["kind"]:
        raise InputError(f"{where}.kind", expected=f"{keys['kind']!r} (the kind of preset {data['preset']!r})",
                         found=repr(overrides["kind"]))
    return {**keys, **overrides}


def preset_spec(name: str, **overrides: Any) -> PreprocessSpec:
    """The spec of preset `name`, with `overrides`.

    Raises:
        InputError: an unknown preset or an invalid override (naming the field).
    """
    return preprocess_from_dict(resolve({"preset": name, **overrides}), f"preset {name}")
