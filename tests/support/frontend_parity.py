"""Each audio front-end option against a reference implementation, and numpy against TensorFlow.

A case is one spec option, a spec that uses it, and a reference written with the library
the option imitates (``tf.signal``, librosa, scipy, the DCASE 2020 task 2 baseline's
own loop), independent of edgekit's code. `measure` gives the largest absolute
difference of edgekit's numpy front end (`edgekit.features.audio.features`) from the
reference and from the TensorFlow front end (`edgekit.train.pipeline.audio_features`),
each also as a fraction of the reference's feature range. ``tests/features/
test_frontend_parity.py`` asserts both fractions are at most 1e-4;
``tools/frontend_parity.py`` prints them.

Needs TensorFlow, librosa and scipy (the dev extra).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable

import numpy as np

from edgekit.spec import AudioPreprocess

TOLERANCE = 1e-4  # of the reference's feature range


def parity_clip(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A gliding harmonic tone with syllable gating, noise bursts, a quiet stretch and a
    -60 dBFS floor: every band sees energy, and the dB floor and top_db are exercised."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 150 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voiced = sum(np.sin(k * phase) / k for k in range(1, 20))
    gate = 0.5 + 0.5 * np.tanh(6 * np.sin(2 * np.pi * 2.5 * t))
    bursts = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 1.3 * t + 1) > 0.8)
    clip = 0.2 * voiced * gate + 0.05 * bursts + 1e-3 * rng.standard_normal(t.size)
    clip[int(0.4 * t.size) : int(0.5 * t.size)] = 1e-3 * rng.standard_normal(int(0.5 * t.size) - int(0.4 * t.size))
    return clip.astype(np.float32)


# -- references (no edgekit code) ---------------------------------------------------


def _tf_mel(clip: np.ndarray, spec: AudioPreprocess, window: Callable | None = None) -> np.ndarray:
    """``tf.signal`` STFT, spectrum and HTK mel filterbank (before the log), float32."""
    import tensorflow as tf

    window = window or {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}[spec.window]
    spectrum = tf.abs(tf.signal.stft(clip, spec.frame_length, spec.frame_step, spec.fft_length, window_fn=window,
                                     pad_end=spec.pad_end))
    if spec.spectrum == "power":
        spectrum = spectrum**2
    if spec.feature == "spectrogram":
        return spectrum.numpy()
    weights = tf.signal.linear_to_mel_weight_matrix(spec.num_mel_bins, spec.fft_length // 2 + 1, spec.sample_rate,
                                                    spec.lower_edge_hz, spec.upper_edge_hz)
    return tf.tensordot(spectrum, weights, 1).numpy()


def _librosa_mel(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """``librosa.feature.melspectrogram`` (Slaney scale), float64, (frames, mels)."""
    import librosa

    return librosa.feature.melspectrogram(
        y=clip.astype(np.float64), sr=spec.sample_rate, n_fft=spec.fft_length, hop_length=spec.frame_step,
        win_length=spec.frame_length, window="hann", center=spec.center != "none",
        pad_mode=spec.center if spec.center != "none" else "constant",
        power=2.0 if spec.spectrum == "power" else 1.0, n_mels=spec.num_mel_bins, fmin=spec.lower_edge_hz,
        fmax=spec.upper_edge_hz, htk=False, norm="slaney" if spec.mel_norm == "slaney" else None).T


def _log_mel(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    return np.log(_tf_mel(clip, spec) + spec.log_offset)


def ref_preemphasis(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    from scipy.signal import lfilter

    return _log_mel(lfilter([1.0, -spec.preemphasis], [1.0], clip.astype(np.float64)).astype(np.float32), spec)


def ref_symmetric_window(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    import tensorflow as tf

    numpy_window = {"hann": np.hanning, "hamming": np.hamming}[spec.window]

    def window(length: int, dtype: object) -> object:
        return tf.constant(numpy_window(int(length)), dtype)

    log_mel = np.log(_tf_mel(clip, spec, window) + spec.log_offset)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., : spec.num_mfcc].numpy()


def ref_power_per_fft_length(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    return _tf_mel(clip, spec) / spec.fft_length


def ref_log10(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    return np.log10(_tf_mel(clip, spec) + spec.log_offset)


def ref_power_to_db(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    import librosa

    ref = np.max if spec.db_ref == "max" else spec.db_ref
    return librosa.power_to_db(_librosa_mel(clip, spec), ref=ref, amin=spec.db_amin, top_db=spec.db_top_db)


def ref_amplitude_to_db(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    import librosa

    ref = np.max if spec.db_ref == "max" else spec.db_ref
    return librosa.amplitude_to_db(_librosa_mel(clip, spec), ref=ref, amin=spec.db_amin, top_db=spec.db_top_db)


def ref_slaney_log(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    return np.log(_librosa_mel(clip, spec) + spec.log_offset)


def ref_affine_clip(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    import librosa

    db = librosa.power_to_db(_librosa_mel(clip, spec), ref=1.0, amin=spec.db_amin)
    return np.clip((db + spec.offset) * spec.scale, spec.clip_min, spec.clip_max)


def ref_per_bin_normalization(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    return (_log_mel(clip, spec) - np.asarray(spec.mean)) / np.asarray(spec.std)


def ref_dcase2020_baseline(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """The DCASE 2020 task 2 baseline's ``file_to_vector_array`` (librosa of its time: centred
    frames, reflect padding), on a clip instead of a file."""
    import librosa

    n_mels, frames, power = 128, 5, 2.0
    mel = librosa.feature.melspectrogram(y=clip.astype(np.float64), sr=16000, n_fft=1024, hop_length=512,
                                         n_mels=n_mels, power=power, pad_mode="reflect")
    log_mel = 20.0 / power * np.log10(mel + sys.float_info.epsilon)
    size = len(log_mel[0, :]) - frames + 1
    vectors = np.zeros((size, n_mels * frames))
    for t in range(frames):
        vectors[:, n_mels * t : n_mels * (t + 1)] = log_mel[:, t : t + size].T
    return vectors


def ref_mlperf_tiny_kws(clip: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """MLPerf Tiny's keyword spotting features (``get_dataset.py``: ``tf.signal`` MFCC of
    30 ms / 20 ms Hann frames, ``fft_length=None``, 40 mel bands 20-4000 Hz, 10 MFCC)."""
    import tensorflow as tf

    stfts = tf.signal.stft(clip, frame_length=480, frame_step=320, fft_length=None, window_fn=tf.signal.hann_window)
    spectrograms = tf.abs(stfts)
    weights = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(spectrograms, weights, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()


@dataclasses.dataclass(frozen=True)
class Case:
    option: str
    spec: AudioPreprocess
    reference: Callable[[np.ndarray, AudioPreprocess], np.ndarray] | None
    reference_name: str


def cases() -> list[Case]:
    from edgekit.presets import preset_spec

    log_mel = AudioPreprocess(feature="log_mel", frame_length=512, frame_step=256, fft_length=512,
                              num_mel_bins=40, lower_edge_hz=20, upper_edge_hz=8000)
    slaney = dataclasses.replace(log_mel, spectrum="power", mel_scale="slaney", mel_norm="slaney",
                                 num_mel_bins=64, lower_edge_hz=0.0)
    return [
        Case("preemphasis: 0.97", dataclasses.replace(log_mel, preemphasis=0.97), ref_preemphasis,
             "scipy lfilter + tf.signal"),
        Case("window_periodic: false", AudioPreprocess(window="hamming", window_periodic=False, num_mfcc=13),
             ref_symmetric_window, "numpy.hamming + tf.signal"),
        Case("spectrum: power, spectrum_scale: 1/fft_length",
             dataclasses.replace(log_mel, feature="spectrogram", spectrum="power", spectrum_scale="1/fft_length"),
             ref_power_per_fft_length, "tf.signal"),
        Case("log: log10", dataclasses.replace(log_mel, log="log10"), ref_log10, "tf.signal + numpy.log10"),
        Case("log: none", dataclasses.replace(log_mel, log="none"), _tf_mel, "tf.signal"),
        Case("mel_scale: slaney, mel_norm: none, center: constant",
             dataclasses.replace(slaney, mel_norm="none", center="constant"), ref_slaney_log,
             "librosa melspectrogram(htk=False, norm=None)"),
        Case("mel_scale: slaney, mel_norm: slaney, log: db (power, db_ref: max, db_top_db: 80)",
             dataclasses.replace(slaney, log="db", db_ref="max", db_top_db=80.0), ref_power_to_db,
             "librosa power_to_db"),
        Case("log: db (magnitude, db_ref: 1, db_amin: 1e-5)",
             dataclasses.replace(slaney, spectrum="magnitude", log="db", db_amin=1e-5), ref_amplitude_to_db,
             "librosa amplitude_to_db"),
        Case("offset: 52, scale: 1/64, clip_min: 0, clip_max: 1",
             dataclasses.replace(slaney, log="db", offset=52.0, scale=1 / 64, clip_min=0.0, clip_max=1.0),
             ref_affine_clip, "librosa power_to_db + numpy"),
        Case("normalize: global, per-bin mean/std",
             dataclasses.replace(log_mel, normalize="global", mean=tuple(np.linspace(-8, -2, 40)),
                                 std=tuple(np.linspace(1, 3, 40))), ref_per_bin_normalization, "tf.signal + numpy"),
        Case("mel_scale: htk, mel_norm: slaney", dataclasses.replace(log_mel, mel_norm="slaney"), None, "-"),
        Case("preset dcase2020-t2-logmel (center: reflect, stack_frames: 5)", preset_spec("dcase2020-t2-logmel"),
             ref_dcase2020_baseline, "DCASE 2020 task 2 baseline (librosa)"),
        Case("preset speech-commands-mfcc", preset_spec("speech-commands-mfcc"), ref_mlperf_tiny_kws,
             "MLPerf Tiny KWS (tf.signal)"),
    ]


@dataclasses.dataclass(frozen=True)
class Figures:
    option: str
    reference_name: str
    shape: tuple[int, ...]
    feature_range: float
    vs_reference: float | None  # max abs difference, None without a reference
    vs_tensorflow: float

    def fraction(self, value: float | None) -> float | None:
        return None if value is None else value / self.feature_range


def measure(case: Case) -> Figures:
    """Run one case on `parity_clip` (the spec's clip length)."""
    from edgekit.features import audio
    from edgekit.train import pipeline

    clip = parity_clip(case.spec.clip_samples / case.spec.sample_rate, case.spec.sample_rate)
    ours = audio.features(clip, case.spec)
    training = pipeline.audio_features(clip[None], case.spec).numpy()[0]
    reference = None if case.reference is None else np.asarray(case.reference(clip, case.spec), np.float64)
    basis = reference if reference is not None else ours.astype(np.float64)
    if reference is not None and reference.shape != ours.shape:
        raise AssertionError(f"{case.option}: reference shape {reference.shape}, ours {ours.shape}")
    if training.shape != ours.shape:
        raise AssertionError(f"{case.option}: TensorFlow shape {training.shape}, numpy {ours.shape}")
    return Figures(
        option=case.option, reference_name=case.reference_name, shape=ours.shape,
        feature_range=float(basis.max() - basis.min()) or 1.0,
        vs_reference=None if reference is None else float(np.max(np.abs(ours - reference))),
        vs_tensorflow=float(np.max(np.abs(ours.astype(np.float64) - training))),
    )


def audio_ops_difference() -> tuple[float, float, float]:
    """The ``speech-commands-mfcc`` preset against TensorFlow's ``audio_ops`` MFCC (the
    speech_commands example's ``AudioSpectrogram`` + ``Mfcc`` kernels), which it imitates
    but does not match exactly (docs/preprocess.md says why).

    Returns:
        The largest and the median absolute difference, and the feature range of ``audio_ops``.
    """
    import tensorflow as tf

    from edgekit.features import audio
    from edgekit.presets import preset_spec

    clip = parity_clip(1.0)
    ours = audio.features(clip, preset_spec("speech-commands-mfcc"))
    spectrogram = tf.raw_ops.AudioSpectrogram(input=clip[:, None], window_size=480, stride=320,
                                              magnitude_squared=True)
    reference = tf.raw_ops.Mfcc(spectrogram=spectrogram, sample_rate=16000, upper_frequency_limit=4000.0,
                                lower_frequency_limit=20.0, filterbank_channel_count=40,
                                dct_coefficient_count=10).numpy()[0]
    difference = np.abs(ours - reference)
    return float(difference.max()), float(np.median(difference)), float(reference.max() - reference.min())
