"""The training-side front ends and ``tf.data`` pipelines.

The feature front ends here are TensorFlow ops that run inside the input pipeline
(parallel map over batches), computing from a preprocessing spec what
`edgekit.features` computes in numpy on the device; ``tests/train/test_train.py`` checks
that the two agree. Augmentations act on raw data before the front end, on the
training split only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgekit.keras_env import import_keras
from edgekit.spec import (
    AudioPreprocess,
    ImagePreprocess,
    NoPreprocess,
    PreprocessSpec,
    SensorPreprocess,
)

import_keras()  # quiets TensorFlow's logging before the import
import tensorflow as tf  # noqa: E402 - this module is only imported to train

# ---------------------------------------------------------------------------
# front ends


def audio_features(waves: Any, spec: AudioPreprocess) -> Any:
    """``tf.signal`` features of a batch of clips ``(N, clip_samples)``: ``(N, frames, features)`` float32.

    The steps and their order are `AudioPreprocess`'s, as `edgekit.features.audio.features`.
    The HTK filterbank is ``tf.signal``'s own; the Slaney one (and the Slaney area
    normalization) is the device's numpy matrix as a constant, which the tests check
    against librosa.
    """
    from edgekit.features import audio as numpy_audio

    x = tf.cast(waves, tf.float32)
    if spec.preemphasis:
        x = tf.concat([x[:, :1], x[:, 1:] - spec.preemphasis * x[:, :-1]], axis=1)
    if spec.center != "none":
        half = spec.frame_length // 2
        x = tf.pad(x, [[0, 0], [half, half]], mode=spec.center.upper())
    window = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window, "none": None}[spec.window]
    if window is not None and not spec.window_periodic:
        window = functools.partial(window, periodic=False)
    stft = tf.signal.stft(x, spec.frame_length, spec.frame_step, spec.fft_length, window_fn=window,
                          pad_end=spec.pad_end)
    out = tf.abs(stft)
    if spec.spectrum == "power":
        out = tf.square(out)
    if spec.spectrum_scale == "1/fft_length":
        out = out / float(spec.fft_length)
    if spec.feature != "spectrogram":
        bins = spec.fft_length // 2 + 1
        if spec.mel_scale == "htk" and spec.mel_norm == "none":
            weights = tf.signal.linear_to_mel_weight_matrix(spec.num_mel_bins, bins, spec.sample_rate,
                                                            spec.lower_edge_hz, spec.upper_edge_hz)
        else:
            weights = tf.constant(numpy_audio.mel_weight_matrix(
                spec.num_mel_bins, bins, spec.sample_rate, spec.lower_edge_hz, spec.upper_edge_hz, spec.mel_scale,
                spec.mel_norm), tf.float32)
        out = tf.tensordot(out, weights, 1)
        if spec.log == "log":
            out = tf.math.log(out + spec.log_offset)
        elif spec.log == "log10":
            out = tf.math.log(out + spec.log_offset) / math.log(10.0)
        elif spec.log == "db":
            out = _to_db(out, spec)
        if spec.feature == "mfcc":
            out = tf.signal.mfccs_from_log_mel_spectrograms(out)[..., : spec.num_mfcc]
    if spec.normalize == "per_clip":
        # float64 statistics, as the numpy front end: in float32 the mean of a constant clip
        # (digital silence) is off by an ulp (~1e-6 at log(1e-6)), which the 1e-6 floor on
        # the std blew up to features of +-1 where the device computes 0
        wide = tf.cast(out, tf.float64)
        mean, variance = tf.nn.moments(wide, axes=[1, 2], keepdims=True)
        out = tf.cast((wide - mean) / tf.maximum(tf.sqrt(variance), 1e-6), tf.float32)
    elif spec.normalize == "global":
        out = (out - tf.constant(spec.mean, tf.float32)) / tf.constant(spec.std, tf.float32)
    if spec.offset != 0 or spec.scale != 1:
        out = (out + spec.offset) * spec.scale
    if spec.clip_min is not None:
        out = tf.maximum(out, spec.clip_min)
    if spec.clip_max is not None:
        out = tf.minimum(out, spec.clip_max)
    if spec.stack_frames > 1:
        vectors = spec.frames - spec.stack_frames + 1
        out = tf.concat([out[:, t : t + vectors, :] for t in range(spec.stack_frames)], axis=-1)
    return out


def _to_db(x: Any, spec: AudioPreprocess) -> Any:
    """librosa's ``power_to_db`` / ``amplitude_to_db`` per clip, as `edgekit.features.audio.to_db`."""
    factor = 10.0 if spec.spectrum == "power" else 20.0

    def log10(v: Any) -> Any:
        return tf.math.log(v) / math.log(10.0)

    db = factor * log10(tf.maximum(x, spec.db_amin))
    if spec.db_ref == "max":
        ref = tf.reduce_max(x, axis=[-2, -1], keepdims=True)
        db = db - factor * log10(tf.maximum(ref, spec.db_amin))
    else:
        db = db - factor * math.log10(max(spec.db_amin, float(spec.db_ref)))
    if spec.db_top_db is not None:
        db = tf.maximum(db, tf.reduce_max(db, axis=[-2, -1], keepdims=True) - spec.db_top_db)
    return db


def image_normalize(images: Any, spec: ImagePreprocess) -> Any:
    """``(pixel * scale - mean) / std`` per channel, in the spec's layout: as `edgekit.features.image.normalize`."""
    out = (tf.cast(images, tf.float32) * spec.scale - tf.constant(spec.mean, tf.float32)) / tf.constant(spec.std, tf.float32)
    if spec.layout == "nchw":
        out = tf.transpose(out, [0, 3, 1, 2])
    return out


def sensor_normalize(windows: Any, spec: SensorPreprocess) -> Any:
    out = tf.cast(windows, tf.float32)
    if spec.mean:
        out = out - tf.constant(spec.mean, tf.float32)
    if spec.std:
        out = out / tf.constant(spec.std, tf.float32)
    return out


def front_end(batch: Any, spec: PreprocessSpec, input_shape: tuple[int, ...]) -> Any:
    """Raw batch -> model inputs of `input_shape` (without batch)."""
    if isinstance(spec, AudioPreprocess):
        out = audio_features(batch, spec)
    elif isinstance(spec, ImagePreprocess):
        out = image_normalize(batch, spec)
    elif isinstance(spec, SensorPreprocess):
        out = sensor_normalize(batch, spec)
    else:
        out = tf.cast(batch, tf.float32)
    return tf.reshape(out, [-1, *input_shape])


def model_input_shape(spec: PreprocessSpec, raw_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The model input shape (without batch) the front end produces from raw samples of `raw_shape`."""
    if isinstance(spec, AudioPreprocess):
        return (spec.num_frames, spec.num_features, 1)
    if isinstance(spec, ImagePreprocess):
        return (spec.channels, spec.height, spec.width) if spec.layout == "nchw" else (spec.height, spec.width,
                                                                                        spec.channels)
    if isinstance(spec, SensorPreprocess):
        return (spec.window, len(spec.channels))
    return tuple(raw_shape)


def numpy_front_end(raw: np.ndarray, spec: PreprocessSpec, input_shape: tuple[int, ...]) -> np.ndarray:
    """The device's numpy front end over a raw batch (for evaluation and the agreement test)."""
    from edgekit.features import audio, image, sensor

    if isinstance(spec, AudioPreprocess):
        out = audio.features(raw, spec)
    elif isinstance(spec, ImagePreprocess):
        out = image.normalize(raw, spec)
    elif isinstance(spec, SensorPreprocess):
        out = sensor.normalize(raw, spec)
    else:
        out = np.asarray(raw, np.float32)
    return out.reshape((len(raw), *input_shape)).astype(np.float32)


# ---------------------------------------------------------------------------
# augmentation (raw data, training split only)


def augment(batch: Any, spec: PreprocessSpec, options: Mapping[str, Any], seed: Any) -> Any:
    """Random augmentations of a raw batch. `seed` is a ``(2,)`` int tensor (stateless ops)."""
    seeds = tf.random.experimental.stateless_split(seed, 8)
    n = tf.shape(batch)[0]
    if isinstance(spec, AudioPreprocess):
        x = tf.cast(batch, tf.float32)
        shift = int(options.get("time_shift_ms", 0) * spec.sample_rate / 1000)
        if shift:
            length = spec.clip_samples
            padded = tf.pad(x, [[0, 0], [shift, shift]])
            offsets = tf.random.stateless_uniform([n], seeds[0], 0, 2 * shift + 1, dtype=tf.int32)
            index = offsets[:, None] + tf.range(length)[None, :]
            x = tf.gather(padded, index, batch_dims=1)
        gain_db = float(options.get("gain_db", 0))
        if gain_db:
            gain = tf.pow(10.0, tf.random.stateless_uniform([n, 1], seeds[1], -gain_db, gain_db) / 20.0)
            x = x * gain
        noise = float(options.get("noise", 0))
        if noise:
            level = tf.random.stateless_uniform([n, 1], seeds[2], 0.0, noise)
            x = x + level * tf.random.stateless_normal(tf.shape(x), seeds[3])
        return tf.clip_by_value(x, -1.0, 1.0)
    if isinstance(spec, ImagePreprocess):
        x = tf.cast(batch, tf.float32)
        if options.get("flip"):
            flip = tf.random.stateless_uniform([n, 1, 1, 1], seeds[0]) < 0.5
            x = tf.where(flip, tf.reverse(x, [2]), x)
        translate = float(options.get("translate", 0))
        if translate:
            h, w = spec.height, spec.width
            dy, dx = max(1, int(h * translate)), max(1, int(w * translate))
            padded = tf.pad(x, [[0, 0], [dy, dy], [dx, dx], [0, 0]], mode="REFLECT")
            oy = tf.random.stateless_uniform([n], seeds[1], 0, 2 * dy + 1, dtype=tf.int32)
            ox = tf.random.stateless_uniform([n], seeds[2], 0, 2 * dx + 1, dtype=tf.int32)
            rows = tf.gather(padded, oy[:, None] + tf.range(h)[None, :], batch_dims=1)
            x = tf.gather(rows, ox[:, None] + tf.range(w)[None, :], axis=2, batch_dims=1)
        brightness = float(options.get("brightness", 0))
        if brightness:
            x = x + tf.random.stateless_uniform([n, 1, 1, 1], seeds[3], -brightness, brightness) * 255.0
        contrast = float(options.get("contrast", 0))
        if contrast:
            factor = tf.random.stateless_uniform([n, 1, 1, 1], seeds[4], 1 - contrast, 1 + contrast)
            mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
            x = (x - mean) * factor + mean
        return tf.clip_by_value(x, 0.0, 255.0)
    if isinstance(spec, SensorPreprocess):
        x = tf.cast(batch, tf.float32)
        scale = float(options.get("scale", 0))
        if scale:
            x = x * tf.random.stateless_uniform([n, 1, tf.shape(x)[2]], seeds[0], 1 - scale, 1 + scale)
        jitter = float(options.get("jitter", 0))
        if jitter:
            std = tf.math.reduce_std(x, axis=1, keepdims=True)
            x = x + jitter * std * tf.random.stateless_normal(tf.shape(x), seeds[1])
        return x
    noise = float(options.get("noise", 0))
    x = tf.cast(batch, tf.float32)
    if noise:
        x = x + noise * tf.random.stateless_normal(tf.shape(x), seeds[0])
    return x


def has_augmentation(spec: PreprocessSpec, options: Mapping[str, Any]) -> bool:
    keys = {AudioPreprocess: ("time_shift_ms", "gain_db", "noise"),
            ImagePreprocess: ("flip", "translate", "brightness", "contrast"),
            SensorPreprocess: ("scale", "jitter"), NoPreprocess: ("noise",)}[type(spec)]
    return any(options.get(k) for k in keys)


# ---------------------------------------------------------------------------
# datasets


def make_dataset(x: np.ndarray, y: np.ndarray | None, spec: PreprocessSpec, input_shape: tuple[int, ...], *,
                 batch_size: int, training: bool, augment_options: Mapping[str, Any], seed: int,
                 autoencoder: bool = False) -> Any:
    """A batched, prefetched ``tf.data.Dataset`` of (model inputs, targets).

    Training: shuffled each epoch (seeded), augmented on raw data, then the front end.
    Evaluation: the front end once, cached. Targets are the labels, or the inputs for an
    autoencoder. Batches are mapped in parallel (``AUTOTUNE``); the dataset is sharded by
    data under a multi-worker strategy.
    """
    autotune = tf.data.AUTOTUNE
    labels = np.zeros(len(x), np.int64) if y is None else y
    ds = tf.data.Dataset.from_tensor_slices((x, labels))
    if training and has_augmentation(spec, augment_options):
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True).batch(batch_size)
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(start=seed * 1_000_003)))

        def augmented(batch: Any, step: Any) -> Any:
            raw, target = batch
            seed_pair = tf.stack([tf.cast(step, tf.int64), tf.constant(seed, tf.int64)])
            inputs = front_end(augment(raw, spec, augment_options, seed_pair), spec, input_shape)
            return inputs, inputs if autoencoder else target

        ds = ds.map(augmented, num_parallel_calls=autotune, deterministic=True)
    else:
        def plain(raw: Any, target: Any) -> Any:
            inputs = front_end(raw, spec, input_shape)
            return inputs, inputs if autoencoder else target

        # the front end once, over batches in parallel; every later epoch reads the cache
        ds = ds.batch(256).map(plain, num_parallel_calls=autotune, deterministic=True).unbatch()
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(x))).cache()
        if training:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(autotune)


def steps(count: int, batch_size: int) -> int:
    return max(1, math.ceil(count / batch_size))
