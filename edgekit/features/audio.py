"""Audio front end in numpy with the semantics of ``tf.signal`` (and librosa's where a spec asks).

`features` computes, for a clip, exactly what the training-side TensorFlow front end
computes from the same `AudioPreprocess` spec: ``tf.signal.frame`` framing, periodic
(or symmetric) Hann/Hamming windows, ``tf.signal.stft`` magnitudes,
``linear_to_mel_weight_matrix`` (HTK mel scale, DC bin zeroed) or librosa's Slaney
filterbank, ``log(x + log_offset)``, log10 or librosa's dB, and
``mfccs_from_log_mel_spectrograms`` (DCT-II scaled by ``1/sqrt(2 * num_mel_bins)``).
The test suite checks the agreement against TensorFlow and librosa
(``tools/frontend_parity.py`` prints the measured differences).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import math
import struct
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgekit._optional import install_hint
from edgekit.errors import InputError
from edgekit.spec import AudioPreprocess


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(hz / 700.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700.0 * np.expm1(mel / 1127.0)


def _slaney_hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """librosa's ``hz_to_mel(htk=False)``: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    mel = hz / (200.0 / 3)
    log = hz >= 1000.0
    return np.where(log, 15.0 + np.log(np.maximum(hz, 1e-300) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@functools.lru_cache(maxsize=16)
def mel_weight_matrix(num_mel_bins: int, num_spectrogram_bins: int, sample_rate: int,
                      lower_edge_hz: float, upper_edge_hz: float, mel_scale: str = "htk",
                      mel_norm: str = "none") -> np.ndarray:
    """The mel filterbank in float64: shape (spectrogram bins, mel bins).

    ``htk``: ``tf.signal.linear_to_mel_weight_matrix`` (triangles in mel, DC bin zeroed).
    ``slaney``: ``librosa.filters.mel(htk=False)`` (triangles in Hz between Slaney mel
    edges). `mel_norm` ``slaney`` divides each triangle by half its width in Hz, as
    librosa's ``norm="slaney"`` (constant energy per band).
    """
    nyquist = sample_rate / 2.0
    if mel_scale == "htk":
        linear = np.linspace(0.0, nyquist, num_spectrogram_bins)[1:]
        bins_mel = _hz_to_mel(linear)[:, None]
        edges = np.linspace(_hz_to_mel(np.float64(lower_edge_hz)), _hz_to_mel(np.float64(upper_edge_hz)),
                            num_mel_bins + 2)
        lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
        lower_slopes = (bins_mel - lower) / (center - lower)
        upper_slopes = (upper - bins_mel) / (upper - center)
        weights = np.pad(np.maximum(0.0, np.minimum(lower_slopes, upper_slopes)), [[1, 0], [0, 0]])
        edges_hz = _mel_to_hz(edges)
    else:
        freqs = np.linspace(0.0, nyquist, num_spectrogram_bins)
        edges_hz = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(lower_edge_hz), _slaney_hz_to_mel(upper_edge_hz),
                                                 num_mel_bins + 2))
        widths = np.diff(edges_hz)
        ramps = edges_hz[:, None] - freqs[None, :]
        lower = -ramps[:-2] / widths[:-1, None]
        upper = ramps[2:] / widths[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper)).T
    if mel_norm == "slaney":
        weights = weights * (2.0 / (edges_hz[2:] - edges_hz[:-2]))[None, :]
    return weights


@functools.lru_cache(maxsize=16)
def _window(kind: str, length: int, periodic: bool = True) -> np.ndarray:
    if kind == "none":
        return np.ones(length)
    period = length if periodic else length - 1  # symmetric: numpy.hanning / scipy sym=True
    if period < 1:
        return np.ones(length)
    n = np.arange(length)
    a = 0.5 if kind == "hann" else 0.54
    return a - (1.0 - a) * np.cos(2.0 * np.pi * n / period)


@functools.lru_cache(maxsize=16)
def _dct_matrix(num_mel_bins: int, num_mfcc: int) -> np.ndarray:
    n = np.arange(num_mel_bins)[:, None]
    k = np.arange(num_mfcc)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2.0 * num_mel_bins)) / np.sqrt(2.0 * num_mel_bins)


def frames(signal: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """``tf.signal.frame`` over the last axis: (..., num_frames, frame_length)."""
    length = signal.shape[-1]
    if spec.pad_end:
        count = -(-length // spec.frame_step)
        needed = (count - 1) * spec.frame_step + spec.frame_length
        signal = np.pad(signal, [(0, 0)] * (signal.ndim - 1) + [(0, max(0, needed - length))])
    else:
        count = 1 + (length - spec.frame_length) // spec.frame_step if length >= spec.frame_length else 0
    index = np.arange(count)[:, None] * spec.frame_step + np.arange(spec.frame_length)[None, :]
    return signal[..., index]


def fit_clip(samples: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """Pad with zeros or cut to `spec.clip_samples`."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.shape[-1] >= spec.clip_samples:
        return samples[..., : spec.clip_samples]
    pad = [(0, 0)] * (samples.ndim - 1) + [(0, spec.clip_samples - samples.shape[-1])]
    return np.pad(samples, pad)


MAX_SAMPLES = 1 << 25  # per clip or resampled chunk: 35 minutes at 16 kHz
MAX_WORK = 1 << 26  # elements of the framed clip, of the mel filterbank and of the stacked features


def check_spec(spec: AudioPreprocess) -> None:
    """Refuse a spec whose arrays no device holds (a bundle's manifest is untrusted: one
    asking for a 2**31-sample clip made `predict` allocate 8 GiB; found by fuzzing).

    Raises:
        InputError: the clip, the framed clip, the filterbank or the stacked features are too large.
    """
    work = {"clip_samples": spec.clip_samples,
            "frames x fft_length": max(spec.frames, 1) * max(spec.frame_length, spec.fft_length),
            "fft bins x num_mel_bins": (spec.fft_length // 2 + 1) * spec.num_mel_bins,
            "vectors x stacked features": max(spec.num_frames, 1) * spec.num_features}
    limits = {"clip_samples": MAX_SAMPLES}
    for what, count in work.items():
        limit = limits.get(what, MAX_WORK)
        if count > limit:
            raise InputError(f"preprocess (audio) {what}", expected=f"at most {limit}", found=str(count),
                             hint="the bundle's preprocessing spec is damaged or was edited by hand; rebuild it")


def preemphasis(x: np.ndarray, coefficient: float) -> np.ndarray:
    """``y[n] = x[n] - coefficient * x[n - 1]`` with ``x[-1] = 0`` (``scipy.signal.lfilter([1, -c], 1, x)``)."""
    if coefficient == 0:
        return x
    return np.concatenate([x[..., :1], x[..., 1:] - coefficient * x[..., :-1]], axis=-1)


def to_db(x: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """librosa's ``power_to_db`` (power spectra) or ``amplitude_to_db`` (magnitudes) per clip
    (the last two axes are one clip: ``db_ref: max`` and ``db_top_db`` act per clip)."""
    factor = 10.0 if spec.spectrum == "power" else 20.0
    db = factor * np.log10(np.maximum(spec.db_amin, x))
    if spec.db_ref == "max":
        ref = np.max(x, axis=(-2, -1), keepdims=True)
    else:
        ref = np.float64(spec.db_ref)
    db = db - factor * np.log10(np.maximum(spec.db_amin, ref))
    if spec.db_top_db is not None:
        db = np.maximum(db, np.max(db, axis=(-2, -1), keepdims=True) - spec.db_top_db)
    return db


def stack(features: np.ndarray, count: int) -> np.ndarray:
    """`count` consecutive frames as one vector, hop one frame (the DCASE 2020 task 2 baseline):
    ``(..., frames, bins)`` -> ``(..., frames - count + 1, count * bins)``, frame-major."""
    if count == 1:
        return features
    vectors = features.shape[-2] - count + 1
    return np.concatenate([features[..., t : t + vectors, :] for t in range(count)], axis=-1)


def features(clips: np.ndarray, spec: AudioPreprocess) -> np.ndarray:
    """Features of one clip ``(samples,)`` or a batch ``(N, samples)`` at `spec.sample_rate`.

    The steps and their order are `AudioPreprocess`'s (docs/preprocess.md).

    Returns:
        float32 ``(num_frames, num_features)``, or ``(N, num_frames, num_features)``.

    Raises:
        InputError: a spec too large to compute (`check_spec`).
    """
    check_spec(spec)
    x = preemphasis(fit_clip(clips, spec).astype(np.float64), spec.preemphasis)
    if spec.center != "none":
        half = spec.frame_length // 2
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(half, half)], mode=spec.center)
    out = run_steps(frames(x, spec), frame_steps(spec))
    return stack(out, spec.stack_frames).astype(np.float32)


# The steps from frames to features, in `AudioPreprocess`'s order: `frame_steps` gives
# them as functions of an array with their constants (window, filterbank, DCT matrix)
# bound, so a stream that runs them on one frame per hop pays no look-ups. Most act on
# each frame alone; two act on a whole clip (`Step.clip_wide`): the dB conversion when
# its reference is the clip's maximum or it has a `db_top_db` floor, and ``normalize:
# per_clip``. `features` runs them all on a clip's frames; a stream
# (`edgekit.features.audio_stream`) runs the per-frame steps before the first clip-wide
# one on the frames a hop adds, keeps their rows, and runs the rest on the window's rows.


@dataclasses.dataclass(frozen=True)
class Step:
    """One step: `run` maps ``(..., frames, bins)`` to ``(..., frames, bins')``."""

    name: str
    run: Callable[[np.ndarray], np.ndarray]
    clip_wide: bool = False


def _spectrum_step(spec: AudioPreprocess, bins: slice = slice(None)) -> Callable[[np.ndarray], np.ndarray]:
    """The magnitude (or power) spectrum of each frame, of the FFT bins `bins` only (those a
    mel filterbank reads: the magnitude of a complex number costs more than its FFT)."""
    window = _window(spec.window, spec.frame_length, spec.window_periodic)
    n, power, scale = spec.fft_length, spec.spectrum == "power", spec.spectrum_scale == "1/fft_length"

    def spectrum(framed: np.ndarray) -> np.ndarray:
        out = np.abs(np.fft.rfft(framed * window, n=n, axis=-1)[..., bins])
        if power:
            out = out**2
        if scale:
            out = out / n
        return out

    return spectrum


def _log_step(spec: AudioPreprocess) -> Callable[[np.ndarray], np.ndarray]:
    offset = spec.log_offset
    if spec.log == "log":
        return lambda mel: np.log(mel + offset)
    if spec.log == "log10":
        return lambda mel: np.log10(mel + offset)
    return lambda mel: to_db(mel, spec)


def _per_clip(out: np.ndarray) -> np.ndarray:
    """Zero mean and unit deviation over each clip's frames and bins (the last two axes),
    in a few numpy calls: a stream runs this every hop."""
    if out.ndim == 2:  # one clip (predict, a stream's window)
        centred = out - np.add.reduce(out, axis=None) / out.size
        flat = centred.reshape(-1)
        centred /= max(math.sqrt(np.dot(flat, flat) / out.size), 1e-6)
        return centred
    flat = out.reshape(*out.shape[:-2], -1)
    count = flat.shape[-1]
    centred = flat - np.add.reduce(flat, axis=-1, keepdims=True) / count
    std = np.sqrt(np.einsum("...i,...i->...", centred, centred)[..., None] / count)
    centred /= np.maximum(std, 1e-6)
    return centred.reshape(out.shape)


def _affine_step(spec: AudioPreprocess) -> Callable[[np.ndarray], np.ndarray]:
    def affine(out: np.ndarray) -> np.ndarray:
        if spec.offset != 0 or spec.scale != 1:
            out = (out + spec.offset) * spec.scale
        if spec.clip_min is not None or spec.clip_max is not None:
            out = np.clip(out, spec.clip_min, spec.clip_max)
        return out

    return affine


@functools.lru_cache(maxsize=16)
def _mel_band(spec: AudioPreprocess) -> tuple[np.ndarray, int, int]:
    """The rows `lo:hi` of the mel filterbank that are not zero (the FFT bins inside its
    range), and those bins: zero rows add nothing, so the spectrum of these bins alone and
    a smaller product give the same mel energies."""
    mel = mel_weight_matrix(spec.num_mel_bins, spec.fft_length // 2 + 1, spec.sample_rate, spec.lower_edge_hz,
                            spec.upper_edge_hz, spec.mel_scale, spec.mel_norm)
    used = np.flatnonzero(mel.any(axis=1))
    lo, hi = (int(used[0]), int(used[-1]) + 1) if used.size else (0, 1)
    return np.ascontiguousarray(mel[lo:hi]), lo, hi


@functools.lru_cache(maxsize=16)
def frame_steps(spec: AudioPreprocess) -> tuple[Step, ...]:
    """The steps `spec` asks for, from framed samples ``(..., frames, frame_length)`` to
    features ``(..., frames, bins)`` (before stacking); made once per spec."""
    if spec.feature == "spectrogram":
        steps = [Step("spectrum", _spectrum_step(spec))]
    else:
        band, lo, hi = _mel_band(spec)
        steps = [Step("spectrum", _spectrum_step(spec, slice(lo, hi))), Step("mel", lambda spectrum: spectrum @ band)]
        if spec.log != "none":
            steps.append(Step(spec.log, _log_step(spec),
                              spec.log == "db" and (spec.db_ref == "max" or spec.db_top_db is not None)))
        if spec.feature == "mfcc":
            dct = _dct_matrix(spec.num_mel_bins, spec.num_mfcc)
            steps.append(Step("dct", lambda log_mel: log_mel @ dct))
    if spec.normalize == "per_clip":
        steps.append(Step("normalize per_clip", _per_clip, True))
    elif spec.normalize == "global":
        mean, std = np.asarray(spec.mean), np.asarray(spec.std)
        steps.append(Step("normalize global", lambda out: (out - mean) / std))
    if spec.offset != 0 or spec.scale != 1 or spec.clip_min is not None or spec.clip_max is not None:
        steps.append(Step("offset, scale, clip", _affine_step(spec)))
    return tuple(steps)


def run_steps(out: np.ndarray, steps: Sequence[Step]) -> np.ndarray:
    for step in steps:
        out = step.run(out)
    return out


try:  # numpy >= 2.0: the FFT ufuncs that numpy.fft.rfft calls, without its Python checks
    from numpy.fft._pocketfft_umath import rfft_n_even as _rfft_even
    from numpy.fft._pocketfft_umath import rfft_n_odd as _rfft_odd
except ImportError:  # numpy 1.x: numpy.fft.rfft
    _rfft_even = _rfft_odd = None


class FrameKernel:
    """The per-frame steps of `frame_steps` for one frame at a time, writing into buffers of
    its own.

    A stream at a 20 ms hop computes one new frame a hop; there each numpy call's fixed cost
    (about a microsecond, more right after the interpreter ran) is most of the work, and
    the steps' arrays made per call are most of the rest. The kernel runs the same
    operations on the same values as the steps (the window product in float64, the FFT
    numpy.fft.rfft runs, the magnitude of the bins the filterbank reads, the filterbank and
    DCT products, the log) with one numpy call each, into preallocated arrays; the steps it
    does not know (``db`` per frame, ``normalize: global``, offset/scale/clip) run as
    steps on the row.

    One kernel per stream: its buffers make it unsafe to share between threads.

    Args:
        spec: the preprocessing spec.
        steps: the leading per-frame steps of ``frame_steps(spec)`` that the stream keeps
            per frame (those before the first clip-wide one).
    """

    def __init__(self, spec: AudioPreprocess, steps: Sequence[Step]) -> None:
        self.window = _window(spec.window, spec.frame_length, spec.window_periodic)
        self.n = spec.fft_length
        self._rfft = _rfft_even if self.n % 2 == 0 else _rfft_odd  # the frame padded to n (the spec has n >= it)
        self._power, self._scale = spec.spectrum == "power", spec.spectrum_scale == "1/fft_length"
        self._framed = np.empty(spec.frame_length)
        self._spectrum = np.empty(self.n // 2 + 1, np.complex128)
        names = [step.name for step in steps]
        self._band: np.ndarray | None = None
        self._offset: float | None = None
        self._log: Callable[..., np.ndarray] | None = None
        self._dct: np.ndarray | None = None
        if names[1:2] == ["mel"]:
            self._band, self._lo, self._hi = _mel_band(spec)
            self._mel = np.empty(spec.num_mel_bins)
            known = 2
            if spec.log in ("log", "log10") and names[2:3] == [spec.log]:
                self._log, self._offset = (np.log if spec.log == "log" else np.log10), spec.log_offset
                known = 3
                if spec.feature == "mfcc" and names[3:4] == ["dct"]:
                    self._dct = _dct_matrix(spec.num_mel_bins, spec.num_mfcc)
                    known = 4
        else:  # a spectrogram: every bin
            self._lo, self._hi = 0, self.n // 2 + 1
            known = 1
        self._magnitude = np.empty(self._hi - self._lo)
        self._rest = tuple(steps[known:])

    def __call__(self, frame: np.ndarray, out: np.ndarray) -> None:
        """Write the row of `frame` (``(frame_length,)`` samples, pre-emphasized when the
        spec says so) into `out` (``(width,)`` float64)."""
        np.multiply(frame, self.window, out=self._framed)
        if self._rfft is not None:
            self._rfft(self._framed, 1, out=self._spectrum)
            spectrum = self._spectrum
        else:
            spectrum = np.fft.rfft(self._framed, n=self.n)
        row = np.abs(spectrum[self._lo : self._hi], out=self._magnitude)
        if self._power:
            np.square(row, out=row)
        if self._scale:
            np.divide(row, self.n, out=row)
        if self._band is not None:
            row = np.dot(row, self._band, out=self._mel)
            if self._log is not None:
                np.add(row, self._offset, out=row)
                self._log(row, out=row)
                if self._dct is not None:
                    if not self._rest:
                        np.dot(row, self._dct, out=out)
                        return
                    row = row @ self._dct
        if self._rest:
            row = run_steps(row[None], self._rest)[0]
        out[...] = row


# ---------------------------------------------------------------------------
# WAV files


def read_wav(source: str | Path | bytes) -> tuple[np.ndarray, int]:
    """Read a PCM WAV file (8/16/24/32-bit, any channel count) as mono float32 in [-1, 1].

    Returns:
        ``(samples, sample_rate)``.

    Raises:
        InputError: not a PCM WAV file, or empty.
    """
    label = "WAV data" if isinstance(source, bytes) else f"WAV file {source}"
    try:
        # From memory, so that a header claiming gigabytes of samples reads what is there
        # (a file object would allocate the claimed size first).
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:
        raise InputError(label, expected="a readable file", found=exc.strerror or str(exc)) from exc
    try:
        with wave.open(io.BytesIO(data), "rb") as wav:
            channels, width, rate, count = wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()
            raw = wav.readframes(count)
    except (wave.Error, EOFError, OSError, RuntimeError, ValueError, struct.error) as exc:
        # the stdlib wave module raises a bare RuntimeError for some malformed chunks
        raise InputError(label, expected="a PCM WAV file", found=f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    if rate <= 0 or channels <= 0:
        raise InputError(label, expected="a positive sample rate and channel count", found=f"{rate} Hz, {channels} ch")
    usable = len(raw) // (width * channels) * width * channels
    raw = raw[:usable]
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        ints = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        ints = np.where(ints & 0x800000, ints - 0x1000000, ints)
        data = ints.astype(np.float32) / 8388608.0
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        raise InputError(label, expected="8, 16, 24 or 32-bit PCM", found=f"{8 * width}-bit samples")
    if data.size == 0:
        raise InputError(label, expected="at least one sample", found="none")
    return data.reshape(-1, channels).mean(axis=1).astype(np.float32), rate


def read_audio(source: str | Path | bytes, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """An audio file (or its bytes) as mono float32 in [-1, 1], the form `predict` takes.

    PCM WAV is read with the standard library (`read_wav`); other formats (FLAC, OGG,
    MP3, float WAV...) through the optional ``soundfile`` package (libsndfile) when it is
    installed. Channels are averaged to mono, as the ``wav:`` source does.

    Args:
        source: a path, or the file's bytes.
        sample_rate: resample to this rate (`resample`); None keeps the file's.

    Returns:
        ``(samples, rate)``: ``model.predict(read_audio(path))`` resamples to the model's rate.

    Raises:
        InputError: unreadable, empty, or not a format that can be decoded here (one line
            naming the decoder to install, or the conversion to WAV).
    """
    label = "audio data" if isinstance(source, bytes) else f"audio file {source}"
    data = source if isinstance(source, bytes) else None
    if data is None:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputError(label, expected="a readable file", found=exc.strerror or str(exc)) from exc
    is_wav = data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    try:
        samples, rate = read_wav(data) if is_wav else _decode(data, label)
    except InputError:
        if not is_wav or not _has_soundfile():
            raise
        samples, rate = _decode(data, label)  # a WAV the standard library cannot read (float, A-law...)
    if sample_rate is not None and int(sample_rate) != rate:
        samples, rate = resample(samples, rate, int(sample_rate)), int(sample_rate)
    return samples, rate


def _has_soundfile() -> bool:
    import importlib.util

    return importlib.util.find_spec("soundfile") is not None


def _decode(data: bytes, label: str) -> tuple[np.ndarray, int]:
    """Formats other than PCM WAV, through soundfile (libsndfile) when it is installed."""
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: the module is there, libsndfile is not
        raise InputError(label, expected="PCM WAV (read without extra packages)",
                         found=f"{_sniff(data)}, and no decoder for it ({type(exc).__name__}: {exc})",
                         hint="convert it to WAV (ffmpeg -i IN -ac 1 OUT.wav) or install soundfile, which "
                              f"reads FLAC, OGG and MP3: {install_hint('soundfile')}") from exc
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError) as exc:  # soundfile's errors are RuntimeErrors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(label, expected="an audio file libsndfile decodes (WAV, FLAC, OGG, MP3...)",
                         found=f"{_sniff(data)} ({reason})") from exc
    if samples.size == 0 or rate <= 0:
        raise InputError(label, expected="at least one sample", found="none")
    return samples.mean(axis=1).astype(np.float32), int(rate)


def _sniff(data: bytes) -> str:
    """What the first bytes of an audio file say it is."""
    for magic, name in ((b"fLaC", "FLAC"), (b"OggS", "Ogg"), (b"ID3", "MP3"), (b"\xff\xfb", "MP3"),
                        (b"RIFF", "a RIFF file"), (b"FORM", "AIFF")):
        if data.startswith(magic):
            return f"{name} data"
    return "data that is not PCM WAV" if data else "an empty file"


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono float samples in [-1, 1] as 16-bit PCM."""
    pcm = (np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0) * 32767.0).round().astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(int(sample_rate))
        wav.writeframes(pcm.tobytes())


def resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Band-limited resampling (FFT method) to `target` Hz.

    Raises:
        InputError: a rate that is not positive, or more than `MAX_SAMPLES` samples out (a
            WAV header claiming 1 Hz would turn a second of audio into hours).
    """
    if rate == target:
        return np.asarray(samples, dtype=np.float32)
    if rate <= 0 or target <= 0:
        raise InputError("audio sample rate", expected="a positive rate", found=f"{rate} Hz to {target} Hz")
    n = samples.shape[-1]
    m = max(1, int(round(n * target / rate)))
    if m > MAX_SAMPLES:
        raise InputError("audio resampling", expected=f"at most {MAX_SAMPLES} samples out",
                         found=f"{n} samples at {rate} Hz, {m} at {target} Hz",
                         hint="check the sample rate in the WAV header or the source")
    spectrum = np.fft.rfft(samples.astype(np.float64))
    keep = min(spectrum.shape[-1], m // 2 + 1)
    out = np.fft.irfft(spectrum[..., :keep], n=m) * (m / n)
    return out.astype(np.float32)
