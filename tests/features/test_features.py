"""Numpy front ends: the same features as the TensorFlow side, real file formats."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgekit.errors import InputError
from edgekit.features import audio, image, sensor
from edgekit.spec import AudioPreprocess, ImagePreprocess, SensorPreprocess


def speech_like(seconds: float = 1.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """Speech-like audio: a gliding voice pitch whose harmonics pass three formants
    (700, 1700, 2800 Hz), syllable-rate gating, fricative noise bursts, and the -60 dBFS
    noise floor every real microphone has."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 110 + 40 * np.sin(2 * np.pi * 1.5 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    formants = ((700, 130, 1.0), (1700, 170, 0.5), (2800, 250, 0.25))
    voiced = np.zeros_like(t)
    for k in range(1, int(0.45 * rate / 110)):
        gain = sum(a * np.exp(-(((k * pitch) - f) / bw) ** 2 / 2) for f, bw, a in formants) + 0.02 / k
        voiced += gain * np.sin(k * phase)
    syllables = 0.5 + 0.5 * np.tanh(8 * np.sin(2 * np.pi * 3 * t))
    fricatives = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 2 * t + 1) > 0.7)
    floor = 1e-3 * rng.standard_normal(t.size)
    return (0.2 * voiced * syllables + 0.05 * fricatives + floor).astype(np.float32)


AUDIO_SPECS = [
    AudioPreprocess(),  # MFCC 49x10, the DS-CNN front end
    AudioPreprocess(feature="log_mel", num_mel_bins=40),
    AudioPreprocess(feature="log_mel", spectrum="power", frame_length=400, frame_step=160, fft_length=512,
                    num_mel_bins=64, lower_edge_hz=125, upper_edge_hz=7500, pad_end=True),
    AudioPreprocess(feature="mfcc", window="hamming", num_mfcc=13, num_mel_bins=32, sample_rate=8000,
                    clip_samples=8000, frame_length=256, frame_step=128, fft_length=256, upper_edge_hz=4000),
    AudioPreprocess(feature="spectrogram", frame_length=256, frame_step=128, fft_length=256),
]


@pytest.mark.tf
@pytest.mark.parametrize("spec", AUDIO_SPECS, ids=lambda s: f"{s.feature}-{s.spectrum}-{s.num_mel_bins}")
def test_audio_features_match_tf_signal(spec):
    import tensorflow as tf

    clip = speech_like(spec.clip_samples / spec.sample_rate, spec.sample_rate)
    ours = audio.features(clip, spec)
    window = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}[spec.window]
    stft = tf.signal.stft(clip, spec.frame_length, spec.frame_step, spec.fft_length, window_fn=window,
                          pad_end=spec.pad_end)
    magnitude = tf.abs(stft)
    if spec.spectrum == "power":
        magnitude = magnitude**2
    if spec.feature == "spectrogram":
        reference = magnitude
    else:
        weights = tf.signal.linear_to_mel_weight_matrix(spec.num_mel_bins, spec.fft_length // 2 + 1, spec.sample_rate,
                                                        spec.lower_edge_hz, spec.upper_edge_hz)
        reference = tf.math.log(tf.tensordot(magnitude, weights, 1) + spec.log_offset)
        if spec.feature == "mfcc":
            reference = tf.signal.mfccs_from_log_mel_spectrograms(reference)[..., : spec.num_mfcc]
    reference = reference.numpy()
    assert ours.shape == reference.shape == (spec.num_frames, spec.num_features)
    feature_range = float(reference.max() - reference.min())
    assert np.max(np.abs(ours - reference)) <= 1e-4 * feature_range


@pytest.mark.tf
def test_digital_silence_gives_the_log_offset_on_both_sides():
    import tensorflow as tf

    spec = AudioPreprocess(feature="log_mel")
    ours = audio.features(np.zeros(8000, np.float32), spec)  # padded to 16000 zeros
    np.testing.assert_allclose(ours, np.log(spec.log_offset), rtol=1e-6)
    stft = tf.signal.stft(np.zeros(16000, np.float32), 640, 320, 1024)
    assert float(tf.reduce_max(tf.abs(stft))) == 0.0


def test_audio_batch_equals_clip_by_clip():
    spec = AudioPreprocess()
    clips = np.stack([speech_like(seed=i) for i in range(3)])
    batch = audio.features(clips, spec)
    for i in range(3):
        np.testing.assert_allclose(batch[i], audio.features(clips[i], spec), rtol=1e-6, atol=1e-6)


def test_short_clips_are_padded_and_long_ones_cut():
    spec = AudioPreprocess()
    short = audio.features(speech_like(0.5), spec)
    long = audio.features(speech_like(2.0), spec)
    assert short.shape == long.shape == (49, 10)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_round_trip_all_sample_widths(tmp_path, width):
    import wave

    rate = 16000
    samples = (0.5 * np.sin(2 * np.pi * 440 * np.arange(800) / rate)).astype(np.float32)
    path = tmp_path / f"w{width}.wav"
    scale = {1: 127, 2: 32767, 3: 8388607, 4: 2147483647}[width]
    ints = np.round(np.stack([samples, samples], 1) * scale).astype(np.int64)
    if width == 1:
        raw = (ints + 128).astype(np.uint8).tobytes()
    elif width == 3:
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.reshape(-1))
    else:
        raw = ints.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(width)
        handle.setframerate(rate)
        handle.writeframes(raw)
    read, got_rate = audio.read_wav(path)
    assert got_rate == rate
    assert np.max(np.abs(read - samples)) < 2.0 / scale + 1e-2 * (width == 1)


def test_bad_wav_is_an_input_error(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(InputError, match=r"bad\.wav: expected a complete WAV file, found a file cut short"):
        audio.read_wav(path)


def test_resample_keeps_a_tone():
    rate, target = 44100, 16000
    tone = np.sin(2 * np.pi * 1000 * np.arange(rate) / rate).astype(np.float32)
    out = audio.resample(tone, rate, target)
    assert out.shape == (target,)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * target / len(out) - 1000) < 2


def test_numpy_resize_matches_opencv_within_one_level():
    cv2 = pytest.importorskip("cv2")
    img = (np.random.default_rng(0).random((47, 61, 3)) * 255).astype(np.uint8)
    for h, w in [(32, 32), (96, 96), (20, 70)]:
        ours = image._resize_numpy(img, h, w, "bilinear").astype(int)
        theirs = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR).astype(int)
        assert np.max(np.abs(ours - theirs)) <= 1
        nearest = image._resize_numpy(img, h, w, "nearest")
        np.testing.assert_array_equal(nearest, cv2.resize(img, (w, h), interpolation=cv2.INTER_NEAREST))


def test_image_preprocess_crop_colour_layout(tmp_path):
    cv2 = pytest.importorskip("cv2")
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    decoded = image.decode_image(path)
    assert decoded[0, 0].tolist() == [200, 0, 0]
    spec = ImagePreprocess(height=8, width=8, color_order="bgr", layout="nchw", crop="center", crop_fraction=0.5,
                           scale=1.0, mean=(0.0,), std=(1.0,))
    out = image.preprocess(decoded, spec)
    assert out.shape == (3, 8, 8)
    assert out[2].max() == 200 and out[0].max() == 0  # red is the last channel in BGR
    gray = image.preprocess(decoded, ImagePreprocess(height=4, width=4, channels=1, color_order="gray", scale=1.0))
    assert gray.shape == (4, 4, 1) and abs(float(gray[0, 0, 0]) - round(0.299 * 200)) <= 1


def test_undecodable_image(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError):
        image.decode_image(path)


def test_sensor_windows_and_normalization():
    spec = SensorPreprocess(channels=("ax", "ay"), window=4, stride=2, mean=(1.0, 2.0), std=(2.0, 4.0))
    stream = np.stack([np.arange(10.0), np.arange(10.0) * 10], 1)
    windows = sensor.windows(stream, spec)
    assert windows.shape == (4, 4, 2)
    np.testing.assert_array_equal(windows[1, :, 0], [2, 3, 4, 5])
    normalized = sensor.normalize(windows, spec)
    np.testing.assert_allclose(normalized[0, 0], [(0 - 1) / 2, (0 - 2) / 4])


@pytest.mark.parametrize("payload", [b"RIFF....WAVEnot audio", b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00", b"", b"\x00" * 44])
def test_malformed_wav_headers_are_input_errors(tmp_path, payload):
    path = tmp_path / "m.wav"
    path.write_bytes(payload)
    with pytest.raises(InputError, match=r"m\.wav: expected a (complete )?WAV file"):
        audio.read_wav(path)


def test_letterbox_keeps_the_aspect_ratio_and_pads_evenly():
    wide = np.zeros((40, 80, 3), np.uint8)
    wide[..., 1] = 200  # green
    spec = ImagePreprocess(height=32, width=32, letterbox=True, pad_value=114, scale=1.0)
    out = image.preprocess(wide, spec)
    assert out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out[:8], 114)  # 40x80 scales to 16x32: 8 rows of padding above and below
    np.testing.assert_array_equal(out[24:], 114)
    np.testing.assert_array_equal(out[8:24, :, 1], 200)
    tall = image.prepare(np.full((90, 30, 3), 7, np.uint8), dataclasses.replace(spec, height=30, width=20))
    assert tall.shape == (30, 20, 3)
    np.testing.assert_array_equal(tall[:, :5], 114)  # 10 columns of 30 wide, centred
    np.testing.assert_array_equal(tall[:, 5:15], 7)
    np.testing.assert_array_equal(tall[:, 15:], 114)
    # without letterbox the same image is stretched
    assert (image.preprocess(wide, dataclasses.replace(spec, letterbox=False))[..., 1] == 200).all()


def test_crop_colour_order_layout_and_per_channel_normalization_compose():
    """The geometric steps are `prepare` on both sides; `normalize` handles the rest."""
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    spec = ImagePreprocess(height=10, width=10, color_order="bgr", layout="nchw", crop="center",
                           crop_fraction=0.5, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    out = image.preprocess(rgb, spec)
    prepared = image.prepare(rgb, spec)
    expected = ((prepared.astype(np.float32) / 255 - np.array(spec.mean, np.float32))
                / np.array(spec.std, np.float32)).transpose(2, 0, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
