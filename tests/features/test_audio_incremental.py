"""Incremental audio features (edgekit.features.audio_stream) equal a full recompute of
each window, for every option of the audio spec, over random hops, chunk sizes and
stream lengths."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from edgekit.features import audio
from edgekit.features.audio_stream import AudioFeatureStream
from edgekit.spec import AudioPreprocess

SMALL = {"sample_rate": 8000, "clip_samples": 4000, "frame_length": 200, "frame_step": 80, "fft_length": 256,
         "num_mel_bins": 16, "lower_edge_hz": 50.0, "upper_edge_hz": 3500.0, "num_mfcc": 8}

SPECS = {
    "mfcc (the default)": {},
    "log-mel": {"feature": "log_mel"},
    "spectrogram, power, 1/fft_length": {"feature": "spectrogram", "spectrum": "power", "spectrum_scale": "1/fft_length"},
    "mfcc per_clip": {"normalize": "per_clip"},
    "log10 mel, global normalize, offset, scale, clip": {
        "feature": "log_mel", "log": "log10", "normalize": "global", "mean": -2.0, "std": 3.0, "offset": 0.5,
        "scale": 2.0, "clip_min": -4.0, "clip_max": 4.0},
    "dB, ref max, top_db (librosa)": {"feature": "log_mel", "log": "db", "spectrum": "power", "db_ref": "max",
                                      "db_top_db": 40.0, "mel_scale": "slaney", "mel_norm": "slaney"},
    "dB, fixed ref (per frame)": {"feature": "mfcc", "log": "db", "db_ref": 2.0},
    "dB top_db then mfcc per_clip": {"feature": "mfcc", "log": "db", "db_top_db": 30.0, "normalize": "per_clip"},
    "pre-emphasis, reflect centre, hamming symmetric": {"preemphasis": 0.97, "center": "reflect",
                                                        "window": "hamming", "window_periodic": False},
    "constant centre, pad_end, no log": {"center": "constant", "pad_end": True, "feature": "log_mel", "log": "none"},
    "stacked frames": {"feature": "log_mel", "stack_frames": 4, "preemphasis": 0.5},
    "odd fft_length": {"fft_length": 255},
}


def _windows(samples: np.ndarray, clip: int, hop: int, chunks: list[int]):
    """The windows a stream cuts (as Model.stream does: one per hop once a clip has
    arrived), fed chunk by chunk: (window, stream position of its first sample)."""
    consumed, next_end = 0, clip
    for size in chunks:
        consumed += size
        while consumed >= next_end:
            yield samples[next_end - clip : next_end], next_end - clip
            next_end += hop


@pytest.mark.parametrize("name", list(SPECS))
def test_incremental_features_equal_a_full_recompute(name):
    spec = AudioPreprocess(**{**SMALL, **SPECS[name]})
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for trial in range(4):
        length = int(rng.integers(spec.clip_samples, 3 * spec.clip_samples))
        # speech-like: noise with a loud part and a near-silent part (a wide dB range)
        samples = (rng.standard_normal(length) * np.where(np.arange(length) % 3000 < 1500, 0.3, 1e-4)).astype(
            np.float32)
        # the first trial at one frame step a hop: one new frame a hop (audio.FrameKernel)
        hop = spec.frame_step if trial == 0 else int(
            rng.choice([spec.frame_step, 2 * spec.frame_step, int(rng.integers(1, 3 * spec.frame_step))]))
        chunks = list(np.diff([0, *sorted(rng.choice(np.arange(1, length), size=int(rng.integers(1, 30)),
                                                       replace=False)), length]))
        stream = AudioFeatureStream(spec)
        count = 0
        for window, start in _windows(samples, spec.clip_samples, hop, chunks):
            got = stream.window(window, start)
            want = audio.features(window, spec)
            assert got.shape == want.shape == (spec.num_frames, spec.num_features)
            assert got.dtype == np.float32
            scale = float(np.max(np.abs(want)))
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * scale, err_msg=f"{name}, hop {hop}")
            count += 1
        assert count == (length - spec.clip_samples) // hop + 1, (trial, hop)


def test_a_hop_of_one_frame_step_computes_one_new_frame():
    """What makes streaming cheap: after the first window, each hop of one frame step
    computes one frame (plus the frames tied to the window's bounds, here the first one,
    whose pre-emphasis starts from zero)."""
    spec = AudioPreprocess(**SMALL)
    samples = np.random.default_rng(0).standard_normal(3 * spec.clip_samples).astype(np.float32)
    stream = AudioFeatureStream(spec)
    windows = list(_windows(samples, spec.clip_samples, spec.frame_step, [len(samples)]))
    stream.window(*windows[0])
    assert stream.computed == spec.frames
    for window, start in windows[1:]:
        stream.window(window, start)
    assert stream.computed == spec.frames + len(windows) - 1

    emphasized = AudioFeatureStream(AudioPreprocess(**{**SMALL, "preemphasis": 0.97}))
    for window, start in windows:
        emphasized.window(window, start)
    assert emphasized.computed == spec.frames + 2 * (len(windows) - 1)


def test_a_hop_off_the_frame_grid_reuses_frames_of_the_same_alignment():
    """A hop that is not a multiple of frame_step alternates the windows' frame
    alignment (250 ms hops at 20 ms frame steps: 2 alignments): each window reuses the
    frames of the last window of its alignment, and the values stay exact."""
    spec = AudioPreprocess(**SMALL)
    samples = np.random.default_rng(1).standard_normal(4 * spec.clip_samples).astype(np.float32)
    hop = spec.frame_step * 5 // 2  # half-step offset every other window
    stream = AudioFeatureStream(spec)
    windows = list(_windows(samples, spec.clip_samples, hop, [len(samples)]))
    for window, start in windows:
        np.testing.assert_array_equal(stream.window(window, start), audio.features(window, spec))
    full = spec.frames * len(windows)
    assert stream.computed < 0.7 * full


@pytest.mark.parametrize("name", ["mfcc (the default)", "spectrogram, power, 1/fft_length", "dB, fixed ref (per frame)",
                                  "odd fft_length"])
def test_the_one_frame_kernel_without_numpys_fft_ufuncs(name):
    """numpy 1.x has no FFT ufuncs: the one-frame kernel then calls numpy.fft.rfft (the
    same values)."""
    spec = AudioPreprocess(**{**SMALL, **SPECS[name]})
    samples = np.random.default_rng(2).standard_normal(2 * spec.clip_samples).astype(np.float32)
    stream = AudioFeatureStream(spec)
    stream._kernel._rfft = None
    for window, start in _windows(samples, spec.clip_samples, spec.frame_step, [len(samples)]):
        want = audio.features(window, spec)
        np.testing.assert_allclose(stream.window(window, start), want, rtol=1e-6,
                                   atol=1e-6 * float(np.max(np.abs(want))))
