"""Hypothesis strategies for specs and manifests."""

from __future__ import annotations

import dataclasses
import string

from hypothesis import strategies as st

from edgekit.bundle import Manifest, Variant, make_provenance
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
)

finite = st.floats(allow_nan=False, allow_infinity=False, width=64, min_value=-1e6, max_value=1e6)
positive = st.floats(min_value=1e-6, max_value=1e3, allow_nan=False)
names = st.text(alphabet=string.ascii_letters + string.digits + "_:/ .", min_size=1, max_size=24)


@st.composite
def quantizations(draw):
    n = draw(st.integers(1, 4))
    return Quantization(
        scale=tuple(draw(st.lists(positive, min_size=n, max_size=n))),
        zero_point=tuple(draw(st.lists(st.integers(-128, 255), min_size=n, max_size=n))),
        axis=draw(st.integers(0, 3)),
    )


@st.composite
def tensors(draw):
    return TensorSpec(
        name=draw(names),
        shape=tuple(draw(st.lists(st.integers(-1, 512), min_size=0, max_size=4))),
        dtype=draw(st.sampled_from(list(DType))),
        quantization=draw(st.none() | quantizations()),
    )


@st.composite
def images(draw):
    channels = draw(st.sampled_from([1, 3]))
    per = draw(st.sampled_from([1, channels]))
    return ImagePreprocess(
        height=draw(st.integers(1, 1024)),
        width=draw(st.integers(1, 1024)),
        channels=channels,
        color_order="gray" if channels == 1 else draw(st.sampled_from(["rgb", "bgr"])),
        layout=draw(st.sampled_from(ImagePreprocess.LAYOUTS)),
        resize=draw(st.sampled_from(ImagePreprocess.RESIZES)),
        crop=draw(st.sampled_from(ImagePreprocess.CROPS)),
        crop_fraction=draw(st.floats(0.05, 1.0)),
        scale=draw(finite),
        mean=tuple(draw(st.lists(finite, min_size=per, max_size=per))),
        std=tuple(draw(st.lists(positive, min_size=per, max_size=per))),
        letterbox=draw(st.booleans()),
        pad_value=draw(st.floats(0, 255)),
    )


@st.composite
def audios(draw):
    rate = draw(st.sampled_from([8000, 16000, 22050, 44100]))
    frame = draw(st.integers(16, 2048))
    fft = draw(st.sampled_from([n for n in (256, 512, 1024, 2048, 4096) if n >= frame]))
    mel = draw(st.integers(1, 128))
    low = draw(st.floats(0, rate / 4))
    high = draw(st.floats(low + 1, rate / 2))
    bounds = sorted(draw(st.lists(finite, min_size=2, max_size=2)))
    spec = AudioPreprocess(
        sample_rate=rate,
        clip_samples=draw(st.integers(frame, 4 * rate)),
        frame_length=frame,
        frame_step=draw(st.integers(1, frame)),
        fft_length=fft,
        window=draw(st.sampled_from(AudioPreprocess.WINDOWS)),
        pad_end=draw(st.booleans()),
        feature=draw(st.sampled_from(AudioPreprocess.FEATURES)),
        spectrum=draw(st.sampled_from(AudioPreprocess.SPECTRA)),
        num_mel_bins=mel,
        lower_edge_hz=low,
        upper_edge_hz=high,
        log_offset=draw(st.floats(0, 1)),
        num_mfcc=draw(st.integers(1, mel)),
        normalize=draw(st.sampled_from(AudioPreprocess.NORMALIZATIONS)),
        mean=draw(finite),
        std=draw(positive),
        preemphasis=draw(st.sampled_from([0.0, 0.97])),
        center=draw(st.sampled_from(AudioPreprocess.CENTERS)),
        window_periodic=draw(st.booleans()),
        spectrum_scale=draw(st.sampled_from(AudioPreprocess.SPECTRUM_SCALES)),
        mel_scale=draw(st.sampled_from(AudioPreprocess.MEL_SCALES)),
        mel_norm=draw(st.sampled_from(AudioPreprocess.MEL_NORMS)),
        log=draw(st.sampled_from(AudioPreprocess.LOGS)),
        db_ref=draw(st.one_of(positive, st.just("max"))),
        db_amin=draw(positive),
        db_top_db=draw(st.one_of(st.none(), st.floats(0, 120))),
        offset=draw(finite),
        scale=draw(finite),
        clip_min=draw(st.sampled_from([None, bounds[0]])),
        clip_max=draw(st.sampled_from([None, bounds[1]])),
    )
    return dataclasses.replace(spec, stack_frames=draw(st.integers(1, min(spec.frames, 8))))


@st.composite
def sensors(draw):
    channels = draw(st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=6), min_size=1, max_size=9,
                             unique=True))
    n = len(channels)
    return SensorPreprocess(
        channels=tuple(channels),
        window=draw(st.integers(1, 1024)),
        stride=draw(st.integers(1, 1024)),
        sample_rate_hz=draw(st.floats(0, 10000)),
        mean=tuple(draw(st.lists(finite, min_size=n, max_size=n) | st.just([]))),
        std=tuple(draw(st.lists(positive, min_size=n, max_size=n) | st.just([]))),
    )


preprocesses = st.one_of(st.just(NoPreprocess()), images(), audios(), sensors())

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9), finite, st.text(max_size=12))
json_values = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
metric_dicts = st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=12), json_values, max_size=4)


@st.composite
def manifests(draw):
    """A manifest plus payloads for its variants (labels never contradict outputs)."""
    count = draw(st.integers(1, 3))
    variant_names = draw(st.lists(st.from_regex(r"[a-z0-9][a-z0-9-]{0,15}", fullmatch=True), min_size=count,
                                  max_size=count, unique=True))
    post = PostprocessSpec(
        kind=draw(st.sampled_from([k for k in PostprocessKind if k is not PostprocessKind.CLASSIFICATION])),
        apply_softmax=draw(st.booleans()),
        top_k=draw(st.integers(1, 10)),
        score_threshold=draw(st.none() | finite),
        anomaly_threshold=draw(st.none() | finite),
        smoothing_ms=draw(st.floats(0, 5000)),
        suppression_ms=draw(st.floats(0, 5000)),
        background_labels=tuple(draw(st.lists(st.text(max_size=10), max_size=3))),
        detection_format=draw(st.sampled_from(PostprocessSpec.DETECTION_FORMATS)),
        iou_threshold=draw(st.floats(0.01, 1.0)),
        max_detections=draw(st.integers(1, 300)),
    )
    variants = []
    payloads = {}
    for name in variant_names:
        fmt = draw(st.sampled_from(["tflite", "onnx"]))
        file = f"models/{name}.{fmt}"
        payloads[file] = draw(st.binary(min_size=0, max_size=64))
        variants.append(Variant(
            name=name, format=fmt, file=file, precision=draw(st.sampled_from(["fp32", "fp16", "int8", "int16x8"])),
            inputs=tuple(draw(st.lists(tensors(), min_size=1, max_size=2))),
            outputs=tuple(draw(st.lists(tensors(), min_size=1, max_size=2))),
            metrics=draw(metric_dicts),
        ))
    manifest = Manifest(
        name=draw(st.text(min_size=1, max_size=30)),
        variants=tuple(variants),
        preprocess=draw(preprocesses),
        labels=tuple(draw(st.lists(st.text(max_size=10), max_size=12))),
        postprocess=post,
        provenance=make_provenance(source={"path": draw(st.none() | st.text(max_size=20)), "sha256": None,
                                           "format": "keras"}, command=draw(st.none() | st.text(max_size=30))),
        metrics=draw(metric_dicts),
        created="2026-11-21T00:00:00Z",
    )
    return manifest, payloads
