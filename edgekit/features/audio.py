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
import re
import struct
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from edgekit._optional import install_hint
from edgekit.errors import InputError, MissingDependencyError, text_head
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
        centred /= max(math.sqrt(np.vdot(centred, centred) / out.size), 1e-6)  # vdot: dot of the flattened
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
    """Read a WAV file as mono float32: PCM (8 to 32-bit) or IEEE float (32/64-bit), any
    channel count, plain or ``WAVE_FORMAT_EXTENSIBLE`` (what ffmpeg and sox write for 24
    and 32-bit audio). Needs only numpy and the standard library.

    PCM comes out in [-1, 1]; float samples as they are stored (usually in [-1, 1]).

    Returns:
        ``(samples, sample_rate)``.

    Raises:
        InputError: unreadable, empty, truncated, not WAV, an encoding other than PCM or
            float (A-law, ADPCM...: `read_audio` reads those with soundfile), or float
            samples that are NaN or infinite. One line, naming the file.
    """
    label = "WAV data" if isinstance(source, bytes) else f"WAV file {source}"
    data = source if isinstance(source, bytes) else _read_file(Path(source), label)
    return _parse_wav(data, label)


def read_audio(source: str | Path | bytes, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """An audio file (or its bytes) as mono float32 in [-1, 1], the form `predict` takes.

    WAV (PCM or float) is read with numpy and the standard library (`read_wav`); other
    formats (FLAC, OGG, MP3, A-law WAV...) through the optional ``soundfile`` package
    (libsndfile) when it is installed. Channels are averaged to mono, as the ``wav:``
    source does.

    Args:
        source: a path, or the file's bytes.
        sample_rate: resample to this rate (`resample`); None keeps the file's.

    Returns:
        ``(samples, rate)``: ``model.predict(read_audio(path))`` resamples to the model's rate.

    Raises:
        InputError: unreadable, empty, truncated, or not audio (one line naming the file).
        MissingDependencyError: a format that needs soundfile, which is not installed (the
            line names the pip command, and the ffmpeg command that converts to WAV).
    """
    if isinstance(source, bytes):
        data, label = source, "audio data"
    else:
        label = f"audio file {source}"
        data = _read_file(Path(source), label)
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        label = label.replace("audio", "WAV", 1)
        try:
            samples, rate = _parse_wav(data, label)
        except _WavEncodingError as exc:  # A-law, ADPCM...: soundfile, or one line naming it
            samples, rate = _decode(data, label, what=f"WAV with {exc.found}")
        # a damaged WAV is refused here with or without soundfile, so that a device and a
        # workstation read the same files the same way
    elif not data:
        raise InputError(label, expected="an audio file", found="an empty file (0 bytes)",
                         hint="record or export it again")
    else:
        samples, rate = _decode(data, label)
    if sample_rate is not None and int(sample_rate) != rate:
        samples, rate = resample(samples, rate, int(sample_rate)), int(sample_rate)
    return samples, rate


def _read_file(path: Path, label: str) -> bytes:
    """A file's bytes, all in memory (so that a header claiming gigabytes of samples reads
    what is there), or one line saying why not."""
    try:
        return path.read_bytes()
    except IsADirectoryError as exc:
        found = "the current folder (no file name was given)" if str(path) == "." else "a directory"
        raise InputError(label, expected="an audio file", found=found,
                         hint="give the path of a file, e.g. wav:clip.wav") from exc
    except FileNotFoundError as exc:
        raise InputError(label, expected="a readable file", found="no such file", hint="check the path") from exc
    except PermissionError as exc:
        raise InputError(label, expected="a file this user may read", found="permission denied",
                         hint="check the file's permissions") from exc
    except OSError as exc:
        raise InputError(label, expected="a readable file", found=(exc.strerror or str(exc)).lower(),
                         hint="check the path and the device it is on") from exc


# RIFF/WAVE is read here, not by the standard library's `wave`, which refuses
# WAVE_FORMAT_EXTENSIBLE (ffmpeg's 24 and 32-bit PCM) and float, and whose errors name
# neither the file nor the problem in words.
_WAVE_PCM, _WAVE_FLOAT, _WAVE_EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
# KSDATAFORMAT_SUBTYPE_*: the format tag in the first two bytes, then this fixed tail
_WAVE_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_WAVE_ENCODINGS = {0x0002: "Microsoft ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM",
                   0x0031: "GSM 6.10", 0x0055: "MP3", 0x0161: "WMA", 0x2000: "AC-3"}
_CUT_SHORT = "the file is truncated (a copy or recording that did not finish); record or copy it again"


class _WavEncodingError(InputError):
    """A well-formed WAV file whose samples are neither PCM nor float (soundfile may read it)."""


def _parse_wav(data: bytes, label: str) -> tuple[np.ndarray, int]:
    """The samples of a RIFF/WAVE file's bytes, as mono float32, and its rate."""
    size = len(data)
    if size == 0:
        raise InputError(label, expected="a WAV file", found="an empty file (0 bytes)", hint="record or export it again")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        if data[:4] == b"RIFF" and size < 12:
            raise InputError(label, expected="a WAV file", found=f"a RIFF header cut short ({size} bytes)", hint=_CUT_SHORT)
        raise InputError(label, expected="a WAV file (RIFF/WAVE)", found=_sniff(data)[0],
                         hint="read other formats with edgekit.runtime.read_audio (soundfile), or convert: "
                              "ffmpeg -i IN -ac 1 OUT.wav")
    fmt = raw = None
    pos, last = 12, None
    while pos + 8 <= size and (fmt is None or raw is None):
        chunk, length = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = memoryview(data)[pos + 8 : pos + 8 + length]  # what is there: a streamed file claims 0xFFFFFFFF
        if chunk == b"fmt ":
            fmt = _wav_format(body, length, label, size)
        elif chunk == b"data":
            raw = body
        last = chunk
        pos += 8 + length + (length & 1)  # chunks are padded to an even length
    if fmt is None or raw is None:
        missing = "format (fmt) chunk" if fmt is None else "audio (data) chunk"
        if pos == size:  # the chunks end where the file does
            raise InputError(label, expected="a WAV file with format and data chunks",
                             found=f"no {missing} in its {size} bytes", hint="export the audio again")
        inside = f", inside its {last.decode('latin-1').strip()!r} chunk" if pos > size and last else ""
        raise InputError(label, expected="a complete WAV file",
                         found=f"a file cut short at {size} bytes{inside}, before its {missing}", hint=_CUT_SHORT)
    tag, channels, rate, bits = fmt
    width = (bits + 7) // 8
    stored = len(raw)
    usable = stored // (width * channels) * width * channels
    raw = raw[:usable]
    if tag == _WAVE_PCM:
        if width == 1:
            samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 2:
            samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        elif width == 3:  # each sample in the top three bytes of an int32
            wide = np.zeros((usable // 3, 4), np.uint8)
            wide[:, 1:] = np.frombuffer(raw, np.uint8).reshape(-1, 3)
            samples = wide.view("<i4")[:, 0].astype(np.float32) / 2147483648.0
        else:
            samples = np.frombuffer(raw, "<i4").astype(np.float32) / 2147483648.0
    else:
        samples = np.frombuffer(raw, "<f4" if width == 4 else "<f8")
        bad = int(np.count_nonzero(~np.isfinite(samples)))
        if bad:
            raise InputError(label, expected="finite float samples", found=f"{bad} NaN or infinite sample(s)",
                             hint="export the audio again (or as 16-bit PCM: ffmpeg -i IN -c:a pcm_s16le OUT.wav)")
    if samples.size == 0:
        found = (f"{stored} byte(s) of audio, less than one frame of {channels} channel(s)" if stored else
                 "an empty audio (data) chunk")
        raise InputError(label, expected="at least one sample", found=found,
                         hint="record or export it again")
    return samples.reshape(-1, channels).mean(axis=1).astype(np.float32), rate


def _wav_format(body: memoryview, length: int, label: str, size: int) -> tuple[int, int, int, int]:
    """``(PCM or float tag, channels, rate, bits)`` from a fmt chunk (`length`: the size it
    claims), or one line saying why its samples cannot be read here."""
    extensible = len(body) >= 2 and int.from_bytes(body[:2], "little") == _WAVE_EXTENSIBLE
    needed = 40 if extensible else 16
    if len(body) < needed:
        if len(body) < length:
            raise InputError(label, expected="a complete WAV file",
                             found=f"a file cut short at {size} bytes, inside its format (fmt) chunk", hint=_CUT_SHORT)
        raise InputError(label, expected=f"a format (fmt) chunk of at least {needed} bytes",
                         found=f"{len(body)} bytes", hint="the header is damaged; export the audio again")
    tag, channels, rate, _byte_rate, _block_align, bits = struct.unpack_from("<HHIIHH", body)
    name = "format"
    if extensible:
        guid = bytes(body[24:40])
        if guid[2:] != _WAVE_GUID_TAIL:
            raise _WavEncodingError(label, expected="PCM or float samples", found=f"samples in an unknown sub-format ({guid.hex()})",
                                    hint="convert it: ffmpeg -i IN -c:a pcm_s16le OUT.wav")
        tag, name = int.from_bytes(guid[:2], "little"), "sub-format"
    if channels == 0 or rate == 0:
        raise InputError(label, expected="a sample rate and channel count above 0",
                         found=f"{rate} Hz, {channels} channel(s) in its header",
                         hint="the header is damaged; export the audio again")
    if tag == _WAVE_PCM and 1 <= bits <= 32:
        return tag, channels, rate, bits
    if tag == _WAVE_FLOAT and bits in (32, 64):
        return tag, channels, rate, bits
    if tag in (_WAVE_PCM, _WAVE_FLOAT):
        kind = "PCM" if tag == _WAVE_PCM else "float"
        raise _WavEncodingError(label, expected="8 to 32-bit PCM, or 32 or 64-bit float",
                                found=f"{bits}-bit {kind} samples", hint="convert it: ffmpeg -i IN -c:a pcm_s16le OUT.wav")
    encoding = _WAVE_ENCODINGS.get(tag, f"{name} 0x{tag:04x}")
    raise _WavEncodingError(label, expected="PCM or float samples", found=f"{encoding} samples",
                            hint="convert it: ffmpeg -i IN -c:a pcm_s16le OUT.wav")


def _decode(data: bytes, label: str, what: str | None = None) -> tuple[np.ndarray, int]:
    """Formats other than PCM and float WAV, through soundfile (libsndfile) when it is
    installed (`what`: the format in words, when the caller knows it)."""
    what, known = (what, True) if what is not None else _sniff(data)
    try:
        import soundfile
    except (ImportError, OSError) as exc:  # OSError: the module is there, libsndfile is not
        missing = ("soundfile is not installed" if isinstance(exc, ImportError)
                   else "soundfile cannot load libsndfile (install it: sudo apt install libsndfile1)")
        if not known:
            raise InputError(label, expected="an audio file (WAV; FLAC, OGG or MP3 with soundfile)", found=what,
                             hint="check that the path names an audio file") from exc
        raise MissingDependencyError(label, expected="PCM WAV or float WAV (read without extra packages)",
                                     found=f"{what}, which needs soundfile (libsndfile): {missing}",
                                     hint=f"convert it to WAV (ffmpeg -i IN -ac 1 OUT.wav) or {install_hint('soundfile')}"
                                     ) from exc
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, ValueError, TypeError) as exc:  # soundfile's errors are RuntimeErrors
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no reason given"
        reason = re.sub(r"^Error opening <[^>]*>: ", "", reason).rstrip(".")
        raise InputError(label, expected="an audio file libsndfile decodes (WAV, FLAC, OGG, MP3...)",
                         found=f"{what} (libsndfile: {reason})",
                         hint="check that it is a complete audio file, or convert it: ffmpeg -i IN -ac 1 OUT.wav"
                         ) from exc
    if samples.size == 0 or rate <= 0:
        raise InputError(label, expected="at least one sample", found="none", hint="record or export it again")
    return samples.mean(axis=1).astype(np.float32), int(rate)


def _sniff(data: bytes) -> tuple[str, bool]:
    """What the first bytes of a file say it is, in words, and whether that is a format
    (audio, or a container of it) rather than text or unknown data."""
    for magic, name in ((b"fLaC", "FLAC data"), (b"OggS", "Ogg data"), (b"ID3", "MP3 data"),
                        (b"\xff\xfb", "MP3 data"), (b"\xff\xf3", "MP3 data"), (b"RF64", "RF64 (large WAV) data"),
                        (b"RIFX", "big-endian WAV (RIFX) data"), (b"FORM", "AIFF data")):
        if data.startswith(magic):
            return name, True
    if data.startswith(b"RIFF"):
        return f"a RIFF file of type {data[8:12].decode('latin-1')!r}, not WAVE", True
    if not data:
        return "an empty file", True
    text = text_head(data)
    if text is not None:
        return (f"text ({text[:20]!r}...)" if len(data) > 24 else f"text ({text!r})"), False
    return "data that is not a known audio format", False


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
