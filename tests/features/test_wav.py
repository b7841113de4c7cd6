"""The WAV reader (`read_wav`, `read_audio`): the files ffmpeg writes (WAVE_FORMAT_EXTENSIBLE
24/32-bit PCM and float, streamed sizes), the same headers built byte by byte, and one
line naming the file, what was expected, what was found and what to do for every file it
cannot read."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import InputError, MissingDependencyError
from edgekit.features import audio
from tests.support.cli import assert_one_line_error, run_cli
from tests.support.env import REPO, need_module

FFMPEG = REPO / "tests" / "fixtures" / "wav"
AUDIO_BUNDLE = REPO / "tests" / "fuzz" / "seeds" / "bundle" / "audio.edgekit"
GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def _tone(rate: int = 8000, count: int = 1680) -> np.ndarray:
    """What the committed ffmpeg files hold (their README): the mean of the two channels."""
    t = np.arange(count) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 1000 * t)) / 2


def _wav(tag: int, channels: int, rate: int, bits: int, payload: bytes, *, extensible: bool = False,
         valid_bits: int | None = None, before_data: bytes = b"", data_size: int | None = None) -> bytes:
    """A RIFF/WAVE file, byte by byte (plain or WAVE_FORMAT_EXTENSIBLE fmt chunk)."""
    block = channels * ((bits + 7) // 8)
    if extensible:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22,
                          valid_bits or bits, (1 << channels) - 1) + struct.pack("<H", tag) + GUID_TAIL
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
            + b"data" + struct.pack("<I", len(payload) if data_size is None else data_size) + payload)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _one_line(exc: pytest.ExceptionInfo, *fragments: str) -> str:
    """The error is one line: the file, expected, found, a remedy; no exception class names."""
    text = str(exc.value)
    assert "\n" not in text and "expected " in text and ", found " in text and "; " in text, text
    for noise in ("Error:", "EOFError", "<_io", "ModuleNotFound"):
        assert noise not in text, text
    for fragment in fragments:
        assert fragment in text, text
    return text


# ---------------------------------------------------------------------------
# what ffmpeg writes


@pytest.mark.parametrize(("name", "tolerance"), [("ffmpeg-s24le.wav", 1e-6), ("ffmpeg-s32le.wav", 1e-6),
                                                 ("ffmpeg-f32le.wav", 1e-6), ("ffmpeg-f64le.wav", 1e-6),
                                                 ("ffmpeg-s24le-piped.wav", 1e-6)])
def test_ffmpeg_extensible_files_read_without_soundfile(name, tolerance, monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)  # the device extra alone
    for samples, rate in (audio.read_wav(FFMPEG / name), audio.read_audio(FFMPEG / name),
                          audio.read_audio((FFMPEG / name).read_bytes())):
        assert rate == 8000 and samples.dtype == np.float32 and samples.shape == (1680,)
        np.testing.assert_allclose(samples, _tone(), atol=tolerance)


def test_ffmpeg_alaw_needs_soundfile_and_says_so(monkeypatch):
    path = FFMPEG / "ffmpeg-alaw.wav"
    with pytest.raises(InputError) as caught:
        audio.read_wav(path)
    _one_line(caught, "ffmpeg-alaw.wav", "found A-law samples", "ffmpeg -i IN -c:a pcm_s16le OUT.wav")
    if importlib.util.find_spec("soundfile") is not None:
        samples, rate = audio.read_audio(path)
        assert rate == 8000 and np.max(np.abs(samples - _tone())) < 0.01  # A-law is lossy
    monkeypatch.setitem(sys.modules, "soundfile", None)
    with pytest.raises(MissingDependencyError) as caught:
        audio.read_audio(path)
    _one_line(caught, "WAV file", "ffmpeg-alaw.wav", "A-law samples, which needs soundfile", 'pip install "edgekit-ml[audio]"')


def test_cli_runs_a_24_bit_ffmpeg_file_and_refuses_a_truncated_one_in_one_line(tmp_path):
    result = run_cli("run", str(AUDIO_BUNDLE), "--source", f"wav:{FFMPEG / 'ffmpeg-s24le.wav'}")
    assert result.code == 0, result.stderr
    cut = tmp_path / "trunc.wav"
    cut.write_bytes((FFMPEG / "ffmpeg-s24le.wav").read_bytes()[:30])
    assert_one_line_error(run_cli("run", str(AUDIO_BUNDLE), "--source", f"wav:{cut}"), 1,
                          "WAV file", "trunc.wav: expected a complete WAV file, found a file cut short at 30 bytes",
                          "copy it again")


# ---------------------------------------------------------------------------
# the same headers, byte by byte


def test_extensible_pcm_24_bit_in_3_and_4_byte_containers():
    ints = np.array([[0, 8388607], [-8388608, 1], [-1, 4194304]], np.int64)  # frames x 2 channels
    expected = (ints / 8388608.0).mean(axis=1)
    packed3 = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints.reshape(-1))
    packed4 = (ints << 8).astype("<i4").tobytes()  # 24 valid bits, left-justified in 32
    for data in (_wav(1, 2, 16000, 24, packed3, extensible=True), _wav(1, 2, 16000, 24, packed3),
                 _wav(1, 2, 16000, 32, packed4, extensible=True, valid_bits=24)):
        samples, rate = audio.read_wav(data)
        assert rate == 16000
        np.testing.assert_allclose(samples, expected, atol=1e-7)


def test_float_wav_plain_and_extensible_32_and_64_bit():
    values = np.array([0.0, 0.5, -0.25, 1.0, -1.0, 0.125])
    for bits, dtype in ((32, "<f4"), (64, "<f8")):
        for extensible in (False, True):
            samples, rate = audio.read_wav(_wav(3, 1, 22050, bits, values.astype(dtype).tobytes(), extensible=extensible))
            assert rate == 22050 and samples.dtype == np.float32
            np.testing.assert_array_equal(samples, values.astype(np.float32))


def test_eight_bit_extensible_and_padded_chunks_and_streamed_sizes():
    pcm = bytes([128, 255, 0, 192])
    odd = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # odd length: one pad byte
    data = _wav(1, 1, 8000, 8, pcm, extensible=True, before_data=odd, data_size=0xFFFFFFFF)
    samples, _ = audio.read_wav(data)
    np.testing.assert_allclose(samples, [0.0, 127 / 128, -1.0, 0.5])


@pytest.mark.parametrize(("data", "found"), [
    (_wav(3, 1, 8000, 32, np.array([0.1, np.nan, np.inf], "<f4").tobytes()), "found 2 NaN or infinite sample(s)"),
    (_wav(6, 1, 8000, 8, b"\xd5" * 8), "found A-law samples"),
    (_wav(0x11, 1, 8000, 4, b"\x00" * 8), "found IMA ADPCM samples"),
    (_wav(1, 1, 8000, 48, b"\x00" * 12), "found 48-bit PCM samples"),
    (_wav(3, 1, 8000, 16, b"\x00" * 8), "found 16-bit float samples"),
    (_wav(1, 1, 8000, 16, b"\x00" * 4, extensible=True)[:-4 - 8 - 20], "cut short at 40 bytes, inside its format"),
    (_wav(0x1234, 1, 8000, 16, b"\x00" * 4, extensible=True), "found sub-format 0x1234 samples"),
    (_wav(1, 1, 8000, 16, b"\x00" * 4, extensible=True).replace(GUID_TAIL, bytes(14)), "unknown sub-format"),
    (_wav(1, 8, 8000, 16, b"\x00" * 4), "found 4 byte(s) of audio, less than one frame of 8 channel(s)"),
    (_wav(1, 0, 8000, 16, b"\x00" * 4), "found 8000 Hz, 0 channel(s)"),
    (_wav(1, 1, 8000, 16, b""), "found an empty audio (data) chunk"),
    (_wav(1, 1, 8000, 16, b"")[:-8], "found no audio (data) chunk in its 36 bytes"),
], ids=["nan", "alaw", "adpcm", "pcm48", "float16", "fmt-cut", "subformat", "guid", "short-frame", "channels-0", "no-samples",
        "no-data"])
def test_wavs_that_cannot_be_read_here_are_one_line(tmp_path, data, found):
    path = tmp_path / "odd.wav"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        audio.read_wav(path)
    _one_line(caught, f"WAV file {path}: expected", found)


# ---------------------------------------------------------------------------
# files that are not (complete) audio: the new user's review


def test_truncated_header_only_empty_and_text_files(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "soundfile", None)  # the device extra alone: no decoder
    full = (FFMPEG / "ffmpeg-s24le.wav").read_bytes()
    header_only = _wav(1, 1, 16000, 16, b"")[:-8] + b"LIST" + struct.pack("<I", 26)
    cases = {
        "trunc.wav": (full[:30], "found a file cut short at 30 bytes, inside its format (fmt) chunk", "copy it again"),
        "hdronly.wav": (header_only, "found a file cut short at 44 bytes, inside its 'LIST' chunk, "
                                     "before its audio (data) chunk", "copy it again"),
        "empty.wav": (b"", "audio file", "found an empty file (0 bytes); record or export it again"),
        "text.wav": (b"hello world\n", "found text ('hello world'); check that the path names an audio file"),
    }
    for name, (data, *fragments) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InputError) as caught:
            audio.read_audio(path)
        text = _one_line(caught, f"{path}: expected", *fragments)
        assert "soundfile" not in text or name == "text.wav", text  # no decoder to install for a broken WAV


def test_broken_wav_with_soundfile_installed_keeps_our_line(tmp_path):
    need_module("soundfile", 'pip install "edgekit-ml[audio]"')
    path = tmp_path / "trunc.wav"
    path.write_bytes((FFMPEG / "ffmpeg-s24le.wav").read_bytes()[:30])
    with pytest.raises(InputError) as caught:
        audio.read_audio(path)
    _one_line(caught, "trunc.wav", "cut short at 30 bytes")
    text = tmp_path / "notes.flac"
    text.write_bytes(b"fLaC but not really")
    with pytest.raises(InputError) as caught:
        audio.read_audio(text)
    _one_line(caught, "notes.flac", "found FLAC data (libsndfile:")


def test_missing_path_directory_and_no_path(tmp_path, monkeypatch):
    with pytest.raises(InputError) as caught:
        audio.read_audio(tmp_path / "absent.wav")
    _one_line(caught, "absent.wav: expected a readable file, found no such file; check the path")
    with pytest.raises(InputError) as caught:
        audio.read_wav(tmp_path)
    _one_line(caught, "found a directory; give the path of a file")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as caught:
        audio.read_audio(Path(""))  # what `wav:` with nothing after the colon gives
    _one_line(caught, "found the current folder (no file name was given)")
