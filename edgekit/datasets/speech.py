"""Speech for the ``kws`` dataset: eSpeak NG as the system program, or its library from PyPI.

Two engines speak the same voices, speeds and pitches the same way:

- `ProgramEngine`: the ``espeak-ng`` program (``sudo apt-get install espeak-ng``), one
  process per call (``-v VOICE -s WPM -p PITCH [-m] --stdout TEXT``), several at a time.
- `LibraryEngine`: ``libespeak-ng`` and its voice data as shipped by the registry package
  ``espeakng-loader`` (``pip install espeakng-loader``, part of the ``train`` extra, no
  root needed), driven through ctypes (``espeak_SetVoiceByName``,
  ``espeak_SetParameter(espeakRATE/espeakPITCH)``, ``espeak_Synth`` with the program's
  flags) in a child process per call, like the program, several at a time.

`find_engine` picks one: the program when it is on PATH, else the library, else none
(the caller falls back to the tone stand-in of `edgekit.datasets.keywords`). The
environment variable ``EDGEKIT_SPEECH`` overrides the choice: ``auto`` (the default),
``program``, ``library`` or ``tones`` (no speech).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import InputError

PROGRAM = "espeak-ng"
PACKAGE = "espeakng-loader"
PROGRAM_INSTALL = "sudo apt-get install espeak-ng"
PACKAGE_INSTALL = f"pip install {PACKAGE}"
INSTALL = f"{PROGRAM_INSTALL} (or, without root: {PACKAGE_INSTALL})"
ENV = "EDGEKIT_SPEECH"
CHOICES = ("auto", "program", "library", "tones")


class Engine:
    """A way to run eSpeak NG.

    Attributes:
        id: ``espeak-ng`` (the program) or ``espeakng-loader`` (the library); the
            ``source`` column of the kws ``index.csv``.
        workers: how many calls may run at a time.
    """

    id = ""
    workers = 1

    def speak(self, text: str, voice: str, speed: int, pitch: int, ssml: bool) -> tuple[np.ndarray, int]:
        """`text` spoken: float samples in [-1, 1) and their rate in Hz.

        Raises:
            InputError: the engine failed (an unknown voice, for one).
        """
        raise NotImplementedError

    @property
    def name(self) -> str:
        """For people: what speaks, with its version."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """For ``dataset.json``: the engine and where it lives."""
        raise NotImplementedError


def parse_wav_stream(data: bytes) -> tuple[np.ndarray, int]:
    """16-bit PCM from ``espeak-ng --stdout`` (its header leaves the data size open)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a WAV stream")
    offset, rate, channels, bits = 12, 0, 1, 16
    while offset + 8 <= len(data):
        tag, size = data[offset:offset + 4], struct.unpack("<I", data[offset + 4:offset + 8])[0]
        body = offset + 8
        if tag == b"fmt ":
            _fmt, channels, rate, _rate, _align, bits = struct.unpack("<HHIIHH", data[body:body + 16])
        elif tag == b"data":
            if bits != 16 or rate <= 0:
                raise ValueError(f"{bits}-bit at {rate} Hz")
            pcm = data[body:body + min(size, len(data) - body)]
            pcm = pcm[: len(pcm) // (2 * channels) * 2 * channels]
            samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
            return samples.reshape(-1, channels).mean(axis=1), rate
        offset = body + size + (size & 1)
    raise ValueError("no data chunk")


def _workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(2, min(8, cores))


class ProgramEngine(Engine):
    """The ``espeak-ng`` program, one process per call."""

    id = PROGRAM

    def __init__(self, program: str) -> None:
        self.program = program
        self.workers = _workers()
        self._version: str | None = None

    def speak(self, text: str, voice: str, speed: int, pitch: int, ssml: bool) -> tuple[np.ndarray, int]:
        command = [self.program, *(["-m"] if ssml else []), "-v", voice, "-s", str(speed), "-p", str(pitch),
                   "--stdout", text]
        try:
            proc = subprocess.run(command, capture_output=True, timeout=120, check=False)
            if proc.returncode != 0:
                raise ValueError(f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[:200]}")
            return parse_wav_stream(proc.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError, struct.error) as exc:
            shown = " ".join(command) if len(text) < 80 else " ".join(command[:-1]) + " TEXT"
            raise InputError(f"speech from {shown}", expected="a WAV stream", found=str(exc)) from exc

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = "unknown"
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                text = subprocess.run([self.program, "--version"], capture_output=True, text=True, timeout=10,
                                      check=False).stdout
                self._version = next((t for t in text.replace(":", " ").split() if t[:1].isdigit()), "unknown")
        return self._version

    @property
    def name(self) -> str:
        return f"espeak-ng {self.version}"

    def describe(self) -> dict[str, Any]:
        return {"engine": PROGRAM, "engine_detail": f"the {PROGRAM} program {self.version}",
                "program": self.program}


# A child process per call, like the program: libespeak-ng keeps state between calls
# (pitch flutter, resonators, echo) that no API call resets, so in one process the same
# word came out slightly different after other words; a fresh process with a fixed seed
# for the noise gives the same samples for the same text, voice, speed and pitch. The child needs only the
# standard library (``python -I -S``, about 20 ms to start). Arguments: library, data
# folder, voice (empty: print the library's version), speed, pitch, ssml (0/1); the text
# on stdin; out: the sample rate (4 bytes, little-endian) and 16-bit native samples.
_CHILD = r"""
import ctypes, os, sys
library, data, voice, speed, pitch, ssml = sys.argv[1:7]
lib = ctypes.CDLL(library)
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
rate = lib.espeak_Initialize(2, 0, os.fsencode(data), 0)  # AUDIO_OUTPUT_SYNCHRONOUS
if rate <= 0:
    sys.exit(f"espeak_Initialize with the data in {data} returned {rate}")
if hasattr(lib, "espeak_ng_SetRandSeed"):  # 1.52 seeds its noise with the time: fix it, for repeatable samples
    lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
    lib.espeak_ng_SetRandSeed(1)
if not voice:
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p
    sys.stdout.write((lib.espeak_Info(None) or b"unknown").decode(errors="replace"))
    sys.exit(0)
chunks = []
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
def collect(wav, count, events):
    if wav and count > 0:
        chunks.append(ctypes.string_at(wav, 2 * count))
    return 0
callback = CALLBACK(collect)
lib.espeak_SetSynthCallback.argtypes = [CALLBACK]
lib.espeak_SetSynthCallback(callback)
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
code = lib.espeak_SetVoiceByName(voice.encode())
if code != 0:
    sys.exit(f"espeak_SetVoiceByName({voice!r}) returned {code} (no such voice here)")
lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.espeak_SetParameter(1, int(speed), 0)  # espeakRATE, words per minute (-s)
lib.espeak_SetParameter(3, int(pitch), 0)  # espeakPITCH, 0-99 (-p)
text = sys.stdin.buffer.read() + b"\0"
# the program's flags: espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE, and espeakSSML for -m
flags = 0x100 | 0x1000 | (0x10 if ssml == "1" else 0)
lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                             ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
code = lib.espeak_Synth(text, len(text), 0, 1, 0, flags, None, None)  # POS_CHARACTER
if code != 0:
    sys.exit(f"espeak_Synth returned {code}")
lib.espeak_Synchronize()
sys.stdout.buffer.write(rate.to_bytes(4, "little") + b"".join(chunks))
"""


def _child(library: str, data: str, text: str, voice: str = "", speed: int = 0, pitch: int = 0,
           ssml: bool = False) -> bytes:
    command = [sys.executable, "-I", "-S", "-c", _CHILD, library, data, voice, str(speed), str(pitch),
               "1" if ssml else "0"]
    proc = subprocess.run(command, input=text.encode(), capture_output=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise ValueError(f"exit {proc.returncode}: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    return proc.stdout


class LibraryEngine(Engine):
    """libespeak-ng from the package ``espeakng-loader``, through ctypes, one child process per call."""

    id = PACKAGE

    def __init__(self, library: str, data: str, package_version: str = "unknown") -> None:
        """Raises: OSError: the library does not load or initialize with `data`."""
        self.library, self.data, self.package_version = library, data, package_version
        self.workers = _workers()
        try:
            self.version = _child(library, data, "").decode(errors="replace").strip() or "unknown"
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            raise OSError(str(exc)) from exc

    def speak(self, text: str, voice: str, speed: int, pitch: int, ssml: bool) -> tuple[np.ndarray, int]:
        if not voice:
            raise InputError("voice", expected="a voice name", found="''")
        try:
            out = _child(self.library, self.data, text, voice, speed, pitch, ssml)
            if len(out) < 4:
                raise ValueError(f"{len(out)} bytes")
            rate = int.from_bytes(out[:4], "little")
            pcm = out[4: 4 + (len(out) - 4) // 2 * 2]
            return np.frombuffer(pcm, np.int16).astype(np.float32) / 32768.0, rate
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            shown = text if len(text) < 80 else "TEXT"
            raise InputError(f"speech from libespeak-ng ({PACKAGE}) -v {voice} -s {speed} -p {pitch} {shown}",
                             expected="samples", found=str(exc)) from exc

    @property
    def name(self) -> str:
        return f"espeak-ng {self.version} (library from {PACKAGE} {self.package_version})"

    def describe(self) -> dict[str, Any]:
        return {"engine": PACKAGE, "engine_detail": f"libespeak-ng {self.version} from the Python package "
                f"{PACKAGE} {self.package_version}, through ctypes", "library": self.library, "data": self.data}


def program_engine() -> tuple[ProgramEngine | None, str]:
    """The ``espeak-ng`` program on PATH, or None and why not."""
    program = shutil.which(PROGRAM)
    return (ProgramEngine(program), "") if program else (None, f"{PROGRAM} not found on PATH")


def library_engine() -> tuple[LibraryEngine | None, str]:
    """libespeak-ng from ``espeakng-loader``, or None and why not."""
    try:
        loader = importlib.import_module("espeakng_loader")
    except ImportError:
        return None, f"the Python package {PACKAGE} is not installed"
    try:
        library, data = str(loader.get_library_path()), str(loader.get_data_path())
        if not Path(library).is_file():
            raise OSError(f"{library} is missing")
        try:
            version = importlib.metadata.version(PACKAGE)
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        return LibraryEngine(library, data, version), ""
    except (OSError, RuntimeError, AttributeError) as exc:
        return None, f"{PACKAGE} is installed but its libespeak-ng did not load ({exc})"


def choice() -> str:
    """``EDGEKIT_SPEECH`` (``auto`` when unset).

    Raises:
        InputError: a value outside `CHOICES`.
    """
    value = os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in CHOICES:
        raise InputError(f"environment variable {ENV}", expected=" or ".join(CHOICES), found=repr(value))
    return value


def find_engine(which: str | None = None) -> tuple[Engine | None, str]:
    """The engine to speak with, and a note: why there is none, or why the library stands in.

    Args:
        which: ``auto`` (the program, else the library), ``program``, ``library`` or
            ``tones`` (none); default `choice`.
    """
    which = which or choice()
    if which == "tones":
        return None, f"{ENV}=tones"
    program, program_why = program_engine() if which in ("auto", "program") else (None, "")
    if program is not None:
        return program, ""
    if which == "program":
        return None, f"{program_why} ({ENV}=program)"
    library, library_why = library_engine()
    if library is not None:
        return library, program_why
    return None, "; ".join(why for why in (program_why, library_why) if why)
