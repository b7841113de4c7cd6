"""Offline synthetic datasets for every recipe: ``edgekit datasets synth TASK -o DIR``.

Each task is one function in `TASKS`, a registry keyed by task name, with a frozen
config dataclass (every config has `samples`, per class, and `seed`). A task writes
real files in the formats `edgekit.datasets.loaders` reads:

- ``kws``: WAV folders, one per class (16 kHz mono 16-bit, 1 s): the ten keywords
  spoken by eSpeak NG across voices, speeds and pitches, mixed with generated noise,
  plus ``_silence_`` and ``_unknown_``. eSpeak NG is the ``espeak-ng`` program, or,
  without it, libespeak-ng from the Python package ``espeakng-loader`` (`speech`);
  the tone stand-in of `keywords` when neither is there (with one warning).
  ``dataset.json`` names the engine (``generator.engine``).
- ``shapes``: PNG folders, one per class (`shapes`).
- ``har``: IMU windows (accelerometer and gyroscope) in ``windows.npz`` (``x``, ``y``)
  and a continuous ``stream.csv`` of a held-out subject.
- ``anomaly``: machine-vibration feature vectors (`machine`): ``train.npz`` (normal
  only) and ``test.npz`` (normal and injected faults, labelled).
- ``tabular``: summary features of IMU windows (the ``har`` signals) for a dense
  classifier: ``features.npz`` (``x`` (N, 44), ``y``, ``subject``, ``feature_names``).
- ``demand``: hourly electricity demand and temperature of several sites (`demand`),
  cut into forecasting windows: ``windows.npz`` (``x`` (N, window, 2), ``y`` the demand
  ahead, ``group`` the site) and a held-out site's ``series.csv`` (regression).
- ``defects``: textured parts, normal or with a surface defect (`textures`), as PNG
  folders ``normal/`` and ``anomaly/`` with ``defects.csv`` (anomaly detection).

Every dataset also has ``labels.txt`` (class order of the labels; not for ``demand``,
a regression without classes) and ``dataset.json`` (task, seed, samples, classes,
counts, generator details, seconds). A dataset is written into a temp folder next to
DIR and renamed at the end, so DIR is either absent or complete; a re-run on a
complete DIR with the same options reuses it. The data files are identical, byte for
byte, for the same options and seed on the same machine (``dataset.json`` also records
the time it took).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import dataclasses
import datetime
import io
import json
import logging
import os
import secrets
import shutil
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import numpy as np

from edgekit import __version__
from edgekit.bundle.atomic import fsync_dir, pid_alive
from edgekit.datasets import demand, keywords, machine, shapes, speech, textures
from edgekit.errors import InputError
from edgekit.features import audio
from edgekit.progress import Log, Progress, no_progress

logger = logging.getLogger(__name__)

MANIFEST = "dataset.json"
LABELS = "labels.txt"
SCHEMA = "edgekit.dataset/1"
ESPEAK = speech.PROGRAM
ESPEAK_INSTALL = speech.INSTALL



def _quiet(_message: str) -> None:
    pass


# ---------------------------------------------------------------------------
# Configs and the registry


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """Options every task has.

    Attributes:
        samples: samples per class (``demand``: the most windows per site; ``defects``:
            normal images).
        seed: the seed; the same options and seed give the same files.
    """

    samples: int = 200
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.samples, bool) or not isinstance(self.samples, int) or self.samples < 1:
            raise InputError("--samples", expected="a whole number >= 1 (samples per class)", found=repr(self.samples))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError("--seed", expected="a whole number >= 0", found=repr(self.seed))


TaskFunction = Callable[[Any, Path, Log, Progress], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class SynthTask:
    """One registered task.

    Attributes:
        name: the task name on the command line.
        summary: one line for ``--help`` and listings.
        config: the task's config class (a `SynthConfig`).
        write: ``write(config, folder, log, progress) -> manifest fields``; writes the
            files into `folder` and returns at least ``classes``, ``counts``,
            ``layout`` and ``generator``.
    """

    name: str
    summary: str
    config: type[SynthConfig]
    write: TaskFunction


TASKS: dict[str, SynthTask] = {}


def register(name: str, config: type[SynthConfig], summary: str) -> Callable[[TaskFunction], TaskFunction]:
    """Decorator that adds a task function to `TASKS`."""

    def add(function: TaskFunction) -> TaskFunction:
        TASKS[name] = SynthTask(name=name, summary=summary, config=config, write=function)
        return function

    return add


def task_names() -> tuple[str, ...]:
    return tuple(sorted(TASKS))


def get_task(name: str) -> SynthTask:
    """The registered task `name`.

    Raises:
        InputError: no such task; the message lists the valid ones.
    """
    task = TASKS.get(name)
    if task is None:
        raise InputError(f"unknown dataset task {name!r}", expected=f"one of {list(task_names())}", found=repr(name))
    return task


def make_config(task: str, *, samples: int | None = None, seed: int = 0, **options: Any) -> SynthConfig:
    """The config of `task` with its defaults, `samples` (per class) when given, `seed` and `options`.

    Raises:
        InputError: unknown task, unknown option, or a bad value.
    """
    config_class = get_task(task).config
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise InputError(f"options of dataset task {task!r}", expected=f"some of {sorted(names - {'samples', 'seed'})}",
                         found=str(unknown))
    values = dict(options, seed=seed)
    if samples is not None:
        values["samples"] = samples
    return config_class(**values)


# ---------------------------------------------------------------------------
# Result, manifest and the atomic folder


@dataclasses.dataclass(frozen=True)
class SynthResult:
    """What `synthesize` made (or found).

    Attributes:
        path: the dataset folder.
        task: the task name.
        manifest: the contents of ``dataset.json``.
        reused: True when a complete dataset with the same options was already there.
        seconds: wall time of this call.
    """

    path: Path
    task: str
    manifest: dict[str, Any]
    reused: bool
    seconds: float

    def summary(self) -> str:
        counts = self.manifest.get("counts", {})
        total = self.manifest.get("samples_total", "?")
        made = self.manifest.get("seconds", 0.0)
        state = (f"reused (made in {made:.1f} s; checked in {self.seconds:.2f} s)" if self.reused
                 else f"written in {self.seconds:.1f} s")
        classes = self.manifest.get("classes", [])
        kind = f"{len(classes)} classes" if classes else "regression"
        lines = [f"{self.task} dataset {self.path}: {total} samples, {kind}, seed {self.manifest.get('seed')}, {state}",
                 f"  classes: {', '.join(classes)}" if classes
                 else f"  target: {self.manifest.get('target', {}).get('description', '?')}",
                 f"  counts: {json.dumps(counts)}",
                 f"  generator: {self.manifest.get('generator', {}).get('name', '?')}"]
        lines += [f"  {line}" for line in self.manifest.get("notes", [])]
        return "\n".join(lines)


def _config_dict(config: SynthConfig) -> dict[str, Any]:
    """The config as JSON would give it back (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def read_manifest(path: Path) -> dict[str, Any]:
    """``dataset.json`` of the dataset folder `path` (or the file itself).

    Raises:
        InputError: missing or not a dataset manifest.
    """
    file = path / MANIFEST if path.is_dir() else path
    try:
        data = json.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"dataset manifest {file}", expected=f"a readable {MANIFEST} written by edgekit datasets synth",
                         found=f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise InputError(f"dataset manifest {file}", expected=f"schema {SCHEMA!r}",
                         found=repr(data.get("schema")) if isinstance(data, dict) else type(data).__name__)
    return data


def _count_files(folder: Path) -> int:
    return sum(len(files) for _root, _dirs, files in os.walk(folder)) - int((folder / MANIFEST).is_file())


def _describe(manifest: dict[str, Any]) -> str:
    return (f"a {manifest.get('task')!r} dataset (seed {manifest.get('seed')}, "
            f"{manifest.get('samples_per_class')} per class)")


def _existing(out: Path, task: str, config: SynthConfig, force: bool) -> tuple[dict[str, Any] | None, bool]:
    """``(manifest to reuse or None, whether an old dataset is to be replaced)``.

    Raises:
        InputError: `out` is a file, a folder with other content (or a ``dataset.json``
            edgekit did not write), or a different or damaged dataset without `force`.
    """
    if not out.exists():
        if out.is_symlink():
            raise InputError(f"output {out}", expected="a new or empty folder", found="a dangling symbolic link")
        return None, False
    if not out.is_dir():
        raise InputError(f"output {out}", expected="a new or empty folder, or a dataset folder made by edgekit",
                         found="an existing file", hint="choose another -o")
    if not (out / MANIFEST).is_file():
        if any(out.iterdir()):
            raise InputError(f"output {out}", expected=f"a new or empty folder, or a dataset folder with {MANIFEST}",
                             found=f"a folder with other content and no {MANIFEST}",
                             hint="choose another -o (edgekit never deletes files it did not make)")
        return None, False
    manifest = read_manifest(out)  # only a folder edgekit made is ever reused or replaced
    if force:
        return None, True
    same = manifest.get("task") == task and manifest.get("config") == _config_dict(config)
    if same and manifest.get("files") == _count_files(out):
        return manifest, False
    found = f"{_describe(manifest)} with files missing or added" if same else _describe(manifest)
    raise InputError(f"output {out}", expected=f"a new folder, or a complete dataset with the same task and options "
                     f"({task!r}, seed {config.seed}, {config.samples} per class) to reuse", found=found,
                     hint="pass --force to replace it, or choose another -o")


def _remove_stale(out: Path) -> None:
    """Temp folders of killed runs for `out` (``.NAME.PID.HEX.tmp``/``.old``)."""
    prefix = f".{out.name}."
    with contextlib.suppress(OSError):
        for candidate in out.parent.iterdir():
            parts = candidate.name[len(prefix):].split(".")
            if (candidate.name.startswith(prefix) and len(parts) == 3 and parts[2] in ("tmp", "old")
                    and parts[0].isdigit() and not pid_alive(int(parts[0]))):
                shutil.rmtree(candidate, ignore_errors=True)


def _commit(staging: Path, out: Path, replace: bool) -> None:
    """Rename `staging` to `out` (absent or an empty folder; an old dataset when `replace`)."""
    old = None
    if replace:
        old = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.old")
        os.replace(out, old)
    try:
        os.replace(staging, out)  # POSIX: replaces an empty folder, fails on a non-empty one
    except OSError:
        if old is not None:
            os.replace(old, out)
        raise
    fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def synthesize(task: str, output_dir: Path, config: SynthConfig | None = None, *, force: bool = False,
               log: Log = _quiet, progress: Progress = no_progress) -> SynthResult:
    """Write the synthetic dataset `task` to `output_dir` (or reuse it when complete).

    Args:
        task: a name in `TASKS`.
        output_dir: the dataset folder; absent, empty, or a dataset made earlier.
        config: the task's config (default: its defaults).
        force: rebuild even when a dataset made earlier is there (with these or other
            options, or damaged); folders edgekit did not make are never touched.
        log: one line per stage.
        progress: wraps long loops (the loaders' `Progress` protocol).

    Returns:
        The dataset folder, its manifest, and whether it was reused.

    Raises:
        InputError: unknown task, bad options, an output that is a file or another
            folder, or a dataset with other options there (without `force`).
    """
    spec = get_task(task)
    config = config if config is not None else spec.config()
    if not isinstance(config, spec.config):
        raise TypeError(f"task {task!r} takes a {spec.config.__name__}, got {type(config).__name__}")
    out = Path(output_dir)
    start = time.perf_counter()
    manifest, replace = _existing(out, task, config, force)
    if manifest is not None:
        result = SynthResult(out, task, manifest, True, time.perf_counter() - start)
        log(f"{out}: complete {task} dataset with the same options already there; reusing it "
            f"({manifest.get('samples_total')} samples, {manifest.get('generator', {}).get('name', '?')})")
        if task == "kws" and "stand-in" in str(manifest.get("generator", {}).get("name")):
            with contextlib.suppress(InputError):
                engine, _note = speech.find_engine()
                if engine is not None:
                    log(f"{out}: made with the tone stand-in, and {engine.name} is available now: "
                        "pass --force to remake it with speech")
        return result
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(out)
        staging = out.with_name(f".{out.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        staging.mkdir()
    except OSError as exc:
        raise InputError(f"output {out}", expected="a folder edgekit can create",
                         found=exc.strerror or str(exc)) from exc
    try:
        log(f"{task}: {spec.summary}; {config.samples} per class, seed {config.seed}")
        fields = spec.write(config, staging, log, progress)
        classes = list(fields.pop("classes"))
        if classes:  # a regression (demand) has no classes and no labels file
            (staging / LABELS).write_text("".join(f"{name}\n" for name in classes), "utf-8")
        manifest = {
            "schema": SCHEMA,
            "task": task,
            "summary": spec.summary,
            "seed": config.seed,
            "samples_per_class": config.samples,
            "classes": classes,
            **fields,
            "config": _config_dict(config),
            "files": _count_files(staging),
            "edgekit": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "seconds": round(time.perf_counter() - start, 3),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        try:
            _commit(staging, out, replace)
        except OSError as exc:
            # Another run may have finished the same dataset first: then reuse it.
            again, _ = _existing(out, task, config, force=False)
            if again is None:
                raise InputError(f"output {out}", expected="a folder edgekit can rename the dataset into",
                                 found=exc.strerror or str(exc)) from exc
            log(f"{out}: another run wrote the same dataset first; reusing it")
            return SynthResult(out, task, again, True, time.perf_counter() - start)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - start
    log(f"{out}: {manifest['samples_total']} samples in {seconds:.1f} s")
    return SynthResult(out, task, manifest, False, seconds)


# ---------------------------------------------------------------------------
# File writers (deterministic bytes)


def png_bytes(image: np.ndarray) -> bytes:
    """An 8-bit RGB PNG (no filter, zlib level 6): stdlib only, identical bytes for identical pixels."""
    height, width, channels = image.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * channels)], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez_compressed`` but with fixed zip timestamps, so the bytes repeat."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def _rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent stream per (seed, keys): sample i does not depend on how many samples there are."""
    return np.random.default_rng([seed, *keys])


# ---------------------------------------------------------------------------
# kws: spoken keywords

UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one",
                 "two", "three", "four", "five", "six", "seven", "eight", "nine", "learn", "follow", "forward",
                 "backward", "visual")
# English voices and variants (``espeak-ng --voices=en``, ``voices/!v``): accents, male, female, klatt.
ESPEAK_VOICES = ("en-us", "en-us+f3", "en-us+m3", "en-us+f2", "en-us+klatt2", "en-us+Annie", "en-us+Andy",
                 "en", "en+f4", "en+m1", "en+linda", "en-gb-scotland", "en-gb-scotland+f1", "en-gb-x-rp+m5",
                 "en-gb-x-gbclan+steph", "en-gb-x-gbcwmd+m7", "en-029+max", "en-us-nyc+f5")
NOISE_KINDS = ("white", "pink", "brown", "hum", "fan")
SILENCE, UNKNOWN = "_silence_", "_unknown_"


@dataclasses.dataclass(frozen=True)
class KwsConfig(SynthConfig):
    """Spoken keywords.

    Attributes:
        words: the keyword classes.
        unknown_words: words spoken for ``_unknown_``.
        sample_rate: Hz of the WAV files.
        clip_seconds: clip length; utterances are padded at a random offset or cut.
        voices: espeak-ng voices (``-v``); voices that produce no audio here are skipped.
        speeds_wpm: espeak-ng speeds (``-s``).
        pitches: espeak-ng pitches (``-p``, 0-99).
        tempo: range of speed perturbation applied to each take (resampling).
        snr_db: range of speech-to-noise ratios.
        noise: kinds of generated background noise.
    """

    samples: int = 200
    words: tuple[str, ...] = keywords.DEFAULT_WORDS
    unknown_words: tuple[str, ...] = UNKNOWN_WORDS
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    voices: tuple[str, ...] = ESPEAK_VOICES
    speeds_wpm: tuple[int, ...] = (120, 145, 170, 195, 220)
    pitches: tuple[int, ...] = (25, 40, 55, 70, 85)
    tempo: tuple[float, float] = (0.9, 1.1)
    snr_db: tuple[float, float] = (5.0, 30.0)
    noise: tuple[str, ...] = NOISE_KINDS

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("words", "unknown_words", "voices", "speeds_wpm", "pitches", "noise"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
            if not getattr(self, name):
                raise InputError(f"kws option {name}", expected="at least one value", found="none")
        clash = sorted(set(self.words) & ({SILENCE, UNKNOWN} | set(self.unknown_words)))
        if clash or len(set(self.words)) != len(self.words):
            raise InputError("kws words", expected="distinct keywords, not among the unknown words",
                             found=str(clash or list(self.words)))
        bad_noise = sorted(set(self.noise) - set(NOISE_KINDS))
        if bad_noise:
            raise InputError("kws noise", expected=f"some of {list(NOISE_KINDS)}", found=str(bad_noise))
        if self.sample_rate < 4000 or self.clip_seconds <= 0:
            raise InputError("kws clip", expected="sample_rate >= 4000 and clip_seconds > 0",
                             found=f"{self.sample_rate} Hz, {self.clip_seconds} s")


def _noise_bed(kind: str, rng: np.random.Generator, length: int, rate: int) -> np.ndarray:
    """`length` samples of one kind of background noise, unit RMS."""
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    white = rng.standard_normal(length)
    if kind == "white":
        bed = white
    elif kind in ("pink", "brown"):
        shape = 1.0 / np.maximum(freqs, 20.0) ** (0.5 if kind == "pink" else 1.0)
        bed = np.fft.irfft(np.fft.rfft(white) * shape, n=length)
    elif kind == "hum":  # mains hum with harmonics over a little pink noise
        t = np.arange(length) / rate
        mains = rng.choice([50.0, 60.0])
        bed = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi))
                  for k in range(1, 8))
        pink = np.fft.irfft(np.fft.rfft(white) / np.maximum(freqs, 20.0) ** 0.5, n=length)
        bed = bed / np.std(bed) + 0.3 * pink / np.std(pink)
    else:  # fan: band-limited rumble with a slow swell
        band = (freqs > 60) & (freqs < rng.uniform(600, 1500))
        bed = np.fft.irfft(np.fft.rfft(white) * band, n=length)
        t = np.arange(length) / rate
        bed *= 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t)
    return (bed / (np.std(bed) + 1e-12)).astype(np.float32)


def _trim(samples: np.ndarray, rate: int) -> np.ndarray:
    """Cut leading and trailing silence, keeping 10 ms before and 30 ms after the sound."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    loud = np.flatnonzero(np.abs(samples) > 0.02 * peak) if peak > 0 else np.empty(0, int)
    if loud.size == 0:
        return samples[:0]
    return samples[max(0, loud[0] - rate // 100): loud[-1] + 3 * rate // 100]


def _engine(engine: speech.Engine | str) -> speech.Engine:
    """An engine, or the path of an ``espeak-ng`` program."""
    return speech.ProgramEngine(engine) if isinstance(engine, str) else engine


def _finish(samples: np.ndarray, source_rate: int, rate: int, what: str) -> np.ndarray:
    samples = _trim(samples, source_rate)
    if samples.size < source_rate // 20:
        raise InputError(f"speech for {what}", expected="audible speech",
                         found=f"{samples.size} samples above the silence threshold")
    out = audio.resample(samples, source_rate, rate)
    return (out / (np.max(np.abs(out)) + 1e-9)).astype(np.float32)


def espeak_utterance(engine: speech.Engine | str, word: str, voice: str, speed: int, pitch: int,
                     rate: int) -> np.ndarray:
    """`word` spoken by eSpeak NG (an engine, or the path of the program), trimmed,
    resampled to `rate`, peak 1.0.

    Raises:
        InputError: eSpeak NG failed or produced no sound.
    """
    samples, source_rate = _engine(engine).speak(word, voice, speed, pitch, ssml=False)
    return _finish(samples, source_rate, rate, repr(word))


def _split(samples: np.ndarray, rate: int, count: int) -> list[np.ndarray] | None:
    """Cut a recording of `count` words separated by long pauses at the pauses (None if they don't add up)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    loud = np.flatnonzero(np.abs(samples) > 0.01 * peak) if peak > 0 else np.empty(0, int)
    if loud.size == 0:
        return None
    gaps = np.flatnonzero(np.diff(loud) > rate // 4)  # pauses of 600 ms; no word has a 250 ms silence inside
    if gaps.size + 1 != count:
        return None
    bounds = [0, *((loud[g] + loud[g + 1]) // 2 for g in gaps), samples.size]
    return [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def espeak_utterances(engine: speech.Engine | str, words: tuple[str, ...], voice: str, speed: int, pitch: int,
                      rate: int) -> list[np.ndarray]:
    """Like `espeak_utterance` for several words, in one eSpeak NG call.

    The words are spoken as separate sentences (so with the intonation of a word said
    alone) with 600 ms pauses, and cut at the pauses; when the cut does not give one
    piece per word, each word is spoken on its own instead. One process per voice,
    speed and pitch instead of one per word: several times faster.
    """
    engine = _engine(engine)
    if len(words) == 1:
        return [espeak_utterance(engine, words[0], voice, speed, pitch, rate)]
    text = "<speak>" + "".join(f'<s>{xml_escape(word)}.</s><break time="600ms"/>' for word in words) + "</speak>"
    samples, source_rate = engine.speak(text, voice, speed, pitch, ssml=True)
    pieces = _split(samples, source_rate, len(words))
    if pieces is None:
        logger.debug("%s -v %s -s %d -p %d: could not cut %d words apart; speaking them one by one",
                     engine.name, voice, speed, pitch, len(words))
        return [espeak_utterance(engine, word, voice, speed, pitch, rate) for word in words]
    return [_finish(piece, source_rate, rate, repr(word)) for piece, word in zip(pieces, words, strict=True)]


def _usable_voices(engine: speech.Engine, voices: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Voices that speak here (mbrola voices, for one, need an extra package)."""

    def probe(voice: str) -> bool:
        try:
            espeak_utterance(engine, "test", voice, 170, 50, 16000)
        except InputError:
            return False
        return True

    with concurrent.futures.ThreadPoolExecutor(engine.workers) as pool:
        ok = list(pool.map(probe, voices))
    return [v for v, good in zip(voices, ok, strict=True) if good], [v for v, good in zip(voices, ok, strict=True)
                                                                      if not good]


@dataclasses.dataclass
class _Take:
    label: str
    index: int
    word: str | None
    rng: np.random.Generator
    voice: str = ""
    speed: int = 0
    pitch: int = 0


def _fit(sound: np.ndarray, length: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Place `sound` at a random offset in `length` samples (or cut a random `length` out of it)."""
    if sound.size >= length:
        start = int(rng.integers(0, sound.size - length + 1))
        return sound[start:start + length], 0
    return sound, int(rng.integers(0, length - sound.size + 1))


def _mix(take: _Take, sound: np.ndarray | None, config: KwsConfig, beds: dict[str, np.ndarray]) -> tuple[np.ndarray, dict]:
    """One clip: the (speed-perturbed) utterance at a random offset and level, over noise."""
    rng, rate = take.rng, config.sample_rate
    length = int(round(rate * config.clip_seconds))
    kind = str(rng.choice(config.noise))
    bed = beds[kind]
    start = int(rng.integers(0, bed.size - length + 1))
    noise = bed[start:start + length].astype(np.float64)
    clip = np.zeros(length)
    info: dict[str, Any] = {"noise": kind}
    if sound is None:  # _silence_: background only, from near silence to loud
        clip += noise * 10 ** rng.uniform(-3.5, -1.3)
        info.update(tempo="", snr_db="")
    else:
        tempo = float(rng.uniform(*config.tempo))
        sound = audio.resample(sound, rate, max(1, int(round(rate / tempo)))).astype(np.float64)
        sound, offset = _fit(sound, length, rng)
        sound = sound / (np.max(np.abs(sound)) + 1e-9) * rng.uniform(0.25, 0.9)
        snr = float(rng.uniform(*config.snr_db))
        speech_rms = float(np.sqrt(np.mean(sound**2)))
        clip[offset:offset + sound.size] = sound
        clip += noise * speech_rms / 10 ** (snr / 20)
        info.update(tempo=round(tempo, 3), snr_db=round(snr, 1))
    peak = float(np.max(np.abs(clip)))
    if peak > 0.99:
        clip *= 0.99 / peak
    return clip.astype(np.float32), info


def _speech_engine(config: KwsConfig, log: Log) -> tuple[speech.Engine | None, list[str], list[str], str]:
    """``(engine, voices it speaks, voices it does not, why there is no engine)``: the
    ``espeak-ng`` program, else (or when it speaks none of the voices) the library of
    ``espeakng-loader``, else none."""
    engine, note = speech.find_engine()
    if engine is None:
        return None, [], [], note
    voices, skipped = _usable_voices(engine, config.voices)
    if not voices:
        note = f"{engine.name} produced no speech with any of the voices {list(config.voices)}"
        library = None
        if engine.id == speech.PROGRAM and speech.choice() == "auto":
            library, _why = speech.library_engine()
        if library is None:
            return None, [], [], note
        engine = library
        voices, skipped = _usable_voices(engine, config.voices)
        if not voices:
            return None, [], [], f"{note}; so did {engine.name}"
    if note:
        log(f"kws: {note}: speaking with {engine.name} instead")
    return engine, voices, skipped, ""


@register("kws", KwsConfig, "spoken keywords (espeak-ng) with background noise, _silence_ and _unknown_, as WAV folders")
def write_kws(config: KwsConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """WAV folders ``CLASS/NNNNN.wav`` for the keywords, ``_silence_`` and ``_unknown_``, and ``index.csv``."""
    rate = config.sample_rate
    engine, voices, skipped, reason = _speech_engine(config, log)
    if engine is None:
        logger.warning("%s: kws clips use the tone-based stand-in (not speech); install it with: %s",
                       reason, ESPEAK_INSTALL)
    elif skipped:
        log(f"kws: skipping voices that produce no audio with {engine.name}: {', '.join(skipped)}")

    classes = sorted([*config.words, SILENCE, UNKNOWN])  # the loaders' default order (sorted folder names)
    takes: list[_Take] = []
    for class_index, label in enumerate(classes):
        for i in range(config.samples):
            rng = _rng(config.seed, 1, class_index, i)
            word = None if label == SILENCE else str(rng.choice(config.unknown_words)) if label == UNKNOWN else label
            take = _Take(label, i, word, rng)
            if word is not None and engine is not None:
                take.voice = str(rng.choice(voices))
                take.speed = int(rng.choice(config.speeds_wpm))
                take.pitch = int(rng.choice(config.pitches))
            takes.append(take)

    sounds: dict[tuple[str, str, int, int], np.ndarray] = {}
    if engine is not None:
        # one eSpeak NG call per (voice, speed, pitch) speaks every word that needs it
        groups: dict[tuple[str, int, int], set[str]] = {}
        for t in takes:
            if t.word is not None:
                groups.setdefault((t.voice, t.speed, t.pitch), set()).add(t.word)
        total = sum(len(words) for words in groups.values())
        log(f"kws: {total} distinct utterances from {engine.name} ({len(voices)} voices) in {len(groups)} calls, "
            f"{engine.workers} at a time")
        with concurrent.futures.ThreadPoolExecutor(engine.workers) as pool:
            futures = {pool.submit(espeak_utterances, engine, tuple(sorted(words)), *key, rate): (key, sorted(words))
                       for key, words in sorted(groups.items())}
            for future in progress(concurrent.futures.as_completed(futures), "espeak-ng calls", len(futures)):
                (voice, speed, pitch), words = futures[future]
                for word, sound in zip(words, future.result(), strict=True):
                    sounds[(word, voice, speed, pitch)] = sound

    bed_length = int(rate * max(4.0, 2 * config.clip_seconds))
    beds = {kind: _noise_bed(kind, _rng(config.seed, 2, k), bed_length, rate) for k, kind in enumerate(NOISE_KINDS)}
    rows = []
    counts: dict[str, int] = {}
    for take in progress(takes, "writing WAV files", len(takes)):
        if take.word is None:
            sound = None
        elif engine is None:
            sound = keywords.utterance(take.word, rate, take.rng).astype(np.float32)
        else:
            sound = sounds[(take.word, take.voice, take.speed, take.pitch)]
        clip, info = _mix(take, sound, config, beds)
        relative = f"{take.label}/{take.index:05d}.wav"
        (folder / take.label).mkdir(exist_ok=True)
        audio.write_wav(folder / relative, clip, rate)
        counts[take.label] = counts.get(take.label, 0) + 1
        source = "noise" if take.word is None else "stand-in" if engine is None else engine.id
        rows.append([relative, take.label, take.word or "", source, take.voice, take.speed or "", take.pitch or "",
                     info["tempo"], info["noise"], info["snr_db"]])
    with open(folder / "index.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label", "word", "source", "voice", "speed_wpm", "pitch", "tempo", "noise", "snr_db"])
        writer.writerows(rows)

    if engine is None:
        generator: dict[str, Any] = {"name": "tone stand-in (edgekit.datasets.keywords), not speech",
                                     "engine": "tones", "reason": reason, "install": ESPEAK_INSTALL}
    else:
        used = sorted({t.voice for t in takes if t.voice})
        generator = {"name": engine.name, **engine.describe(), "voices": used,
                     "voices_skipped": skipped, "speeds_wpm": list(config.speeds_wpm),
                     "pitches": list(config.pitches), "utterances": len(sounds)}
    generator.update(tempo=list(config.tempo), snr_db=list(config.snr_db), noise=list(config.noise),
                     silence_rms_db=[-70, -26], unknown_words=list(config.unknown_words))
    return {
        "classes": classes,
        "counts": counts,
        "samples_total": len(takes),
        "layout": {"format": "wav-folders", "data": ".", "labels": LABELS, "index": "index.csv",
                   "sample_rate": rate, "clip_samples": int(round(rate * config.clip_seconds)),
                   "note": "one folder per class; index.csv lists word, voice, speed, pitch, noise and SNR per file"},
        "generator": generator,
    }


# ---------------------------------------------------------------------------
# shapes: images


@dataclasses.dataclass(frozen=True)
class ShapesConfig(SynthConfig):
    """Images of shapes.

    Attributes:
        image_size: height and width in pixels.
        classes: shape classes (some of `shapes.SHAPE_CLASSES`).
    """

    samples: int = 500
    image_size: int = 32
    classes: tuple[str, ...] = shapes.SHAPE_CLASSES

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", tuple(self.classes))
        unknown = sorted(set(self.classes) - set(shapes.SHAPE_CLASSES))
        if unknown or len(self.classes) < 2 or len(set(self.classes)) != len(self.classes):
            raise InputError("shapes classes", expected=f"two or more distinct of {list(shapes.SHAPE_CLASSES)}",
                             found=str(list(self.classes)))
        if not 8 <= self.image_size <= 1024:
            raise InputError("shapes image_size", expected="8 to 1024 pixels", found=str(self.image_size))


@register("shapes", ShapesConfig, "images of shapes with varied colours, sizes, positions, backgrounds and noise, as PNG folders")
def write_shapes(config: ShapesConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """PNG folders ``CLASS/NNNNN.png`` (RGB, `image_size` square)."""
    classes = sorted(config.classes)
    images, labels, names = shapes.generate(config.samples * len(classes), config.image_size, config.seed,
                                            tuple(classes))
    for name in names:
        (folder / name).mkdir()
    seen = dict.fromkeys(names, 0)
    for image, label in progress(zip(images, labels, strict=True), "writing PNG files", len(images)):
        name = names[int(label)]
        (folder / name / f"{seen[name]:05d}.png").write_bytes(png_bytes(image))
        seen[name] += 1
    return {
        "classes": list(names),
        "counts": seen,
        "samples_total": len(images),
        "layout": {"format": "image-folders", "data": ".", "labels": LABELS,
                   "image": [config.image_size, config.image_size, 3]},
        "generator": {"name": "edgekit.datasets.shapes", "background": "random colour with a gradient",
                      "foreground": "contrasting colour", "radius_fraction": [0.18, 0.38], "noise_std": 8.0},
    }


# ---------------------------------------------------------------------------
# har: IMU windows

HAR_CHANNELS = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
ACTIVITIES = ("idle", "walk", "run", "stairs")
GRAVITY = 9.81


@dataclasses.dataclass(frozen=True)
class HarConfig(SynthConfig):
    """IMU windows for activity recognition.

    Attributes:
        subjects: simulated people (step frequency, amplitude, sensor mounting, noise).
        rate_hz: sampling rate.
        window: samples per window (128 at 50 Hz = 2.56 s).
        stream_seconds: length of ``stream.csv`` (a held-out subject going through the activities).
    """

    samples: int = 300
    subjects: int = 10
    rate_hz: float = 50.0
    window: int = 128
    stream_seconds: float = 120.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.subjects < 1 or self.window < 16 or not 10.0 <= self.rate_hz <= 1000.0 or self.stream_seconds < 0:
            raise InputError("har options", expected="subjects >= 1, window >= 16, 10 <= rate_hz <= 1000, "
                             "stream_seconds >= 0",
                             found=f"subjects={self.subjects}, window={self.window}, rate_hz={self.rate_hz}, "
                                   f"stream_seconds={self.stream_seconds}")


def _rotation(roll: float, pitch: float, yaw: float) -> np.ndarray:
    cr, sr, cp, sp, cy, sy = np.cos(roll), np.sin(roll), np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw)
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclasses.dataclass(frozen=True)
class _Subject:
    cadence: float  # multiplies every activity's step frequency
    amplitude: float  # multiplies motion amplitudes
    yaw: float  # sensor mounting: any rotation about the body's vertical axis
    tilt: tuple[float, float]  # and a small roll/pitch
    asymmetry: float  # left/right step difference
    acc_noise: float
    gyro_noise: float
    acc_bias: np.ndarray
    gyro_bias: np.ndarray


def _subject(rng: np.random.Generator) -> _Subject:
    return _Subject(cadence=float(rng.uniform(0.88, 1.12)), amplitude=float(rng.uniform(0.8, 1.25)),
                    yaw=float(rng.uniform(-np.pi, np.pi)), tilt=(float(rng.normal(0, 0.2)), float(rng.normal(0, 0.2))),
                    asymmetry=float(rng.uniform(0.0, 0.15)), acc_noise=float(rng.uniform(0.03, 0.15)),
                    gyro_noise=float(rng.uniform(0.005, 0.03)), acc_bias=rng.normal(0, 0.1, 3),
                    gyro_bias=rng.normal(0, 0.02, 3))


def _smooth_noise(rng: np.random.Generator, length: int, width: int) -> np.ndarray:
    kernel = np.hanning(max(3, width))
    kernel /= kernel.sum()
    raw = rng.standard_normal((length + kernel.size, 3))
    out = np.stack([np.convolve(raw[:, c], kernel, mode="same")[kernel.size // 2: kernel.size // 2 + length]
                    for c in range(3)], axis=1)
    return out / (out.std(axis=0, keepdims=True) + 1e-12)


def imu_signal(activity: str, subject: _Subject, length: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """``(length, 6)``: accelerometer (m/s^2, gravity included) and gyroscope (rad/s) in the sensor frame."""
    t = np.arange(length) / rate
    acc = np.zeros((length, 3))  # body frame: x forward, y left, z up
    gyro = np.zeros((length, 3))
    posture = (0.0, 0.0)  # body roll and pitch, which set where gravity points
    if activity == "idle":
        choice = rng.integers(0, 3)  # standing, sitting (leaning back), lying
        if choice == 0:
            posture = (rng.normal(0, 0.04), rng.normal(0, 0.06))
        elif choice == 1:
            posture = (rng.normal(0, 0.08), -rng.uniform(0.15, 0.6))
        else:
            posture = (rng.uniform(-np.pi, np.pi), rng.choice([-1, 1]) * rng.uniform(1.3, 1.75))
        acc += _smooth_noise(rng, length, int(rate * 0.5)) * rng.uniform(0.03, 0.15)
        gyro += _smooth_noise(rng, length, int(rate * 0.5)) * rng.uniform(0.01, 0.05)
        if rng.random() < 0.3:  # a fidget
            bump = np.exp(-0.5 * ((t - rng.uniform(0, t[-1] + 1e-9)) / rng.uniform(0.1, 0.3)) ** 2)[:, None]
            acc += bump * rng.normal(0, 0.8, 3)
            gyro += bump * rng.normal(0, 0.3, 3)
    else:
        base, amplitude, forward, gyro_gain = {"walk": (1.9, 2.5, 0.6, 1.0), "run": (2.8, 7.0, 0.5, 2.5),
                                               "stairs": (1.55, 2.2, 0.45, 0.9)}[activity]
        f = base * subject.cadence * rng.uniform(0.93, 1.07)
        a = amplitude * subject.amplitude * rng.uniform(0.75, 1.3)
        phase = rng.uniform(0, 2 * np.pi)
        step = 2 * np.pi * f * t + phase
        stride = step / 2  # left and right: half the step frequency
        legs = 1.0 + subject.asymmetry * np.sin(stride)
        if activity == "walk":
            vertical = np.sin(step) + 0.35 * np.sin(2 * step + 0.6)
            posture = (rng.normal(0, 0.03), rng.uniform(0.0, 0.1))
        elif activity == "run":
            # landing impacts, then a flight phase
            vertical = 2.5 * np.maximum(np.sin(step), 0.0) ** 2 - 0.625
            posture = (rng.normal(0, 0.03), rng.uniform(0.08, 0.25))
        else:
            up = rng.random() < 0.5
            # a step up is a push then a slow settle; a step down lands harder; every other
            # step differs more than on the flat (leading leg)
            vertical = np.sin(step) + (0.5 if up else -0.5) * np.cos(2 * step)
            legs = legs * (1.0 + rng.uniform(0.25, 0.4) * np.tanh(3 * np.sin(stride)))
            posture = (rng.normal(0, 0.03), rng.uniform(0.14, 0.3) if up else rng.uniform(-0.05, 0.08))
        acc[:, 2] = a * vertical * legs
        acc[:, 0] = forward * a * np.sin(step + np.pi / 2 + rng.normal(0, 0.2))
        acc[:, 1] = 0.3 * a * np.sin(stride + rng.normal(0, 0.3))
        gyro[:, 0] = 0.3 * gyro_gain * subject.amplitude * np.sin(stride + rng.normal(0, 0.3))
        gyro[:, 1] = 0.5 * gyro_gain * subject.amplitude * np.sin(step + rng.normal(0, 0.3))
        gyro[:, 2] = 0.25 * gyro_gain * subject.amplitude * np.sin(stride + np.pi / 2 + rng.normal(0, 0.3))
        acc += _smooth_noise(rng, length, 5) * 0.05 * a
    body = _rotation(posture[0], posture[1], 0.0)
    acc += body.T @ np.array([0.0, 0.0, GRAVITY])  # an accelerometer at rest reads +g upwards
    mount = _rotation(subject.tilt[0] + rng.normal(0, 0.03), subject.tilt[1] + rng.normal(0, 0.03),
                      subject.yaw + rng.normal(0, 0.05))
    acc = acc @ mount + subject.acc_bias + rng.normal(0, subject.acc_noise, (length, 3))
    gyro = gyro @ mount + subject.gyro_bias + rng.normal(0, subject.gyro_noise, (length, 3))
    return np.concatenate([acc, gyro], axis=1)


@register("har", HarConfig, "IMU windows (accelerometer + gyroscope) for idle/walk/run/stairs with per-subject variation")
def write_har(config: HarConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """``windows.npz`` (x ``(N, window, 6)`` float32, y, subject, classes, channels) and ``stream.csv``."""
    people = [_subject(_rng(config.seed, 3, s)) for s in range(config.subjects + 1)]  # the last one is held out
    x = np.empty((config.samples * len(ACTIVITIES), config.window, len(HAR_CHANNELS)), np.float32)
    y = np.empty(len(x), np.int64)
    who = np.empty(len(x), np.int64)
    row = 0
    for label, activity in enumerate(ACTIVITIES):
        for i in range(config.samples):
            s = i % config.subjects
            x[row] = imu_signal(activity, people[s], config.window, config.rate_hz, _rng(config.seed, 4, label, i))
            y[row], who[row] = label, s
            row += 1
    _write_npz(folder / "windows.npz", x=x, y=y, subject=who, classes=np.array(ACTIVITIES),
               channels=np.array(HAR_CHANNELS), rate_hz=np.array(config.rate_hz))

    segments, parts, position = [], [], 0
    plan = ("idle", "walk", "stairs", "run", "walk", "idle")
    each = int(round(config.stream_seconds * config.rate_hz / len(plan)))
    for k, activity in enumerate(plan):
        if each == 0:
            break
        parts.append(imu_signal(activity, people[-1], each, config.rate_hz, _rng(config.seed, 5, k)))
        segments.append({"activity": activity, "start": position, "end": position + each})
        position += each
    with open(folder / "stream.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(HAR_CHANNELS) + "\n")
        for values in np.concatenate(parts) if parts else np.empty((0, 6)):
            handle.write(",".join(f"{v:.4f}" for v in values) + "\n")

    mean = x.reshape(-1, x.shape[-1]).mean(axis=0)
    std = x.reshape(-1, x.shape[-1]).std(axis=0)
    preprocess = {"kind": "sensor", "channels": list(HAR_CHANNELS), "window": config.window,
                  "stride": config.window // 2, "sample_rate_hz": config.rate_hz,
                  "mean": [round(float(v), 4) for v in mean], "std": [round(float(v), 4) for v in std]}
    return {
        "classes": list(ACTIVITIES),
        "counts": {name: config.samples for name in ACTIVITIES},
        "samples_total": len(x),
        "layout": {"format": "npz", "data": "windows.npz", "labels": LABELS,
                   "arrays": {"x": f"float32 (N, {config.window}, {len(HAR_CHANNELS)})", "y": "int64 class index",
                              "subject": "int64 subject id (for subject-wise splits)"},
                   "channels": list(HAR_CHANNELS), "units": {"acc": "m/s^2 (gravity included)", "gyro": "rad/s"},
                   "rate_hz": config.rate_hz, "window_seconds": round(config.window / config.rate_hz, 3)},
        "preprocess": preprocess,
        "stream": {"file": "stream.csv", "subject": "held out (not in windows.npz)", "rate_hz": config.rate_hz,
                   "columns": list(HAR_CHANNELS), "segments": segments},
        "generator": {"name": "edgekit.datasets.synth.imu_signal", "subjects": config.subjects,
                      "per_subject": ["step frequency x0.88-1.12", "amplitude x0.8-1.25",
                                      "sensor yaw (any) and tilt", "left/right asymmetry", "noise and bias"],
                      "step_hz": {"walk": 1.9, "run": 2.8, "stairs": 1.55},
                      "idle_postures": ["standing", "sitting", "lying"]},
    }


# ---------------------------------------------------------------------------
# anomaly: machine-vibration features


@dataclasses.dataclass(frozen=True)
class AnomalyConfig(SynthConfig):
    """Machine-vibration feature vectors (normal training data, a labelled test set with faults).

    ``samples`` normal vectors for training; the test set has ``samples // 2`` normal
    vectors and as many faulty ones, spread evenly over `faults`.

    Attributes:
        faults: fault signatures injected into the test set (some of `machine.ALL_FAULTS`).
        mels: mel bins per frame.
        frames: consecutive frames per vector.
    """

    samples: int = 1000
    faults: tuple[str, ...] = ("bearing", "imbalance", "broadband")
    mels: int = 128
    frames: int = 5

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "faults", tuple(self.faults))
        unknown = sorted(set(self.faults) - set(machine.ALL_FAULTS))
        if unknown or not self.faults:
            raise InputError("anomaly faults", expected=f"some of {list(machine.ALL_FAULTS)}", found=str(list(self.faults)))
        if self.mels < 16 or self.frames < 1:
            raise InputError("anomaly options", expected="mels >= 16 and frames >= 1",
                             found=f"mels={self.mels}, frames={self.frames}")


@register("anomaly", AnomalyConfig, "machine-vibration feature vectors: normal training data, a test set with faults")
def write_anomaly(config: AnomalyConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """``train.npz`` (normal only) and ``test.npz`` (x, y 0 normal / 1 anomalous, fault names)."""
    train = machine.vectors(_rng(config.seed, 6, 0), config.samples, None, config.mels, config.frames)
    test_normal = max(1, config.samples // 2)
    faulty = max(len(config.faults), config.samples // 2)
    per_fault = [faulty // len(config.faults) + (i < faulty % len(config.faults)) for i in range(len(config.faults))]
    parts = [machine.vectors(_rng(config.seed, 6, 1), test_normal, None, config.mels, config.frames)]
    names = ["normal"] * test_normal
    for k, (fault, count) in enumerate(zip(config.faults, per_fault, strict=True)):
        parts.append(machine.vectors(_rng(config.seed, 6, 2 + k), count, fault, config.mels, config.frames))
        names += [fault] * count
    order = _rng(config.seed, 6, 99).permutation(len(names))
    x_test = np.concatenate(parts)[order]
    fault_names = np.array(names)[order]
    y_test = (fault_names != "normal").astype(np.int64)
    _write_npz(folder / "train.npz", x=train, y=np.zeros(len(train), np.int64))
    _write_npz(folder / "test.npz", x=x_test, y=y_test, fault=fault_names, classes=np.array(["normal", "anomalous"]))
    return {
        "classes": ["normal", "anomalous"],
        "counts": {"train": {"normal": len(train)},
                   "test": {"normal": test_normal, **dict(zip(config.faults, per_fault, strict=True))}},
        "samples_total": len(train) + len(x_test),
        "layout": {"format": "npz", "train": "train.npz", "test": "test.npz", "labels": LABELS,
                   "arrays": {"x": f"float32 (N, {config.frames * config.mels}) flattened log-mel frames",
                              "y": "int64, 0 normal / 1 anomalous", "fault": "test.npz: fault name or 'normal'"}},
        "generator": {"name": "edgekit.datasets.machine", "faults": list(config.faults), "mels": config.mels,
                      "frames": config.frames},
    }


# ---------------------------------------------------------------------------
# tabular: summary features of IMU windows

WINDOW_STATS = ("mean", "std", "min", "max", "rms", "mean_abs_diff", "dominant_hz")


def imu_feature_names(channels: tuple[str, ...] = HAR_CHANNELS) -> tuple[str, ...]:
    """Names of `imu_features`' columns: ``CHANNEL_STAT`` channel by channel, then ``acc_mag_mean``, ``acc_mag_std``."""
    return (*(f"{c}_{stat}" for c in channels for stat in WINDOW_STATS), "acc_mag_mean", "acc_mag_std")


def imu_features(windows: np.ndarray, rate_hz: float) -> np.ndarray:
    """Summary features of IMU windows ``(N, window, 6)`` (`HAR_CHANNELS` order) -> float64 ``(N, 44)``.

    For each channel in order: mean, standard deviation, minimum, maximum, RMS, mean
    absolute first difference, and the dominant frequency (Hz: the largest bin of the
    mean-removed signal's real FFT, DC excluded); then the mean and standard deviation
    of the acceleration magnitude (the first three channels). `imu_feature_names` names
    the columns.
    """
    x = np.asarray(windows, np.float64)
    if x.ndim != 3 or x.shape[1] < 4 or x.shape[2] < 3:
        raise ValueError(f"expected windows (N, window >= 4, channels >= 3), got shape {x.shape}")
    spectrum = np.abs(np.fft.rfft(x - x.mean(axis=1, keepdims=True), axis=1))
    freqs = np.fft.rfftfreq(x.shape[1], 1.0 / rate_hz)
    dominant = freqs[1:][spectrum[:, 1:].argmax(axis=1)]
    per_channel = np.stack([x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1),
                            np.sqrt((x * x).mean(axis=1)), np.abs(np.diff(x, axis=1)).mean(axis=1), dominant],
                           axis=2)  # (N, channels, stats)
    magnitude = np.linalg.norm(x[:, :, :3], axis=2)
    return np.concatenate([per_channel.reshape(len(x), -1), magnitude.mean(axis=1, keepdims=True),
                           magnitude.std(axis=1, keepdims=True)], axis=1)


@dataclasses.dataclass(frozen=True)
class TabularConfig(SynthConfig):
    """Summary features of IMU windows (the ``har`` signals) for a feed-forward classifier.

    Attributes:
        subjects: simulated people (windows go to subjects in turn).
        window: samples per window.
        rate_hz: sampling rate.
        transitions: fraction of windows that also hold 10-40 % of another activity
            (the window keeps the label of its majority), as windows cut from a
            continuous recording do.
    """

    samples: int = 300
    subjects: int = 10
    window: int = 128
    rate_hz: float = 50.0
    transitions: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.subjects < 1 or self.window < 16 or not 10.0 <= self.rate_hz <= 1000.0
                or not 0.0 <= self.transitions <= 1.0):
            raise InputError("tabular options", expected="subjects >= 1, window >= 16, 10 <= rate_hz <= 1000, "
                             "0 <= transitions <= 1",
                             found=f"subjects={self.subjects}, window={self.window}, rate_hz={self.rate_hz}, "
                                   f"transitions={self.transitions}")


def _imu_window(activity: str, person: _Subject, config: TabularConfig, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """One window of `activity`; with probability ``config.transitions`` its start or end is another activity."""
    signal = imu_signal(activity, person, config.window, config.rate_hz, rng)
    if rng.random() >= config.transitions:
        return signal, ""
    other = str(rng.choice([a for a in ACTIVITIES if a != activity]))
    blend = 8  # samples of cross-fade between the two
    count = max(1, int(round(rng.uniform(0.1, 0.4) * config.window)))
    part = imu_signal(other, person, count + blend, config.rate_hz, rng)
    ramp = np.linspace(0.0, 1.0, blend)[:, None]
    if rng.random() < 0.5:  # the other activity first
        mixed = part[count:] * (1 - ramp) + signal[count:count + blend] * ramp
        return np.concatenate([part[:count], mixed, signal[count + blend:]]), other
    keep = config.window - count
    mixed = signal[keep - blend:keep] * (1 - ramp) + part[:blend] * ramp
    return np.concatenate([signal[:keep - blend], mixed, part[blend:]]), other


@register("tabular", TabularConfig, "summary features of IMU windows (idle/walk/run/stairs) for a dense classifier")
def write_tabular(config: TabularConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """``features.npz``: x float32 ``(N, 44)``, y, classes, feature_names, subject, mixed (the other activity or '')."""
    people = [_subject(_rng(config.seed, 7, s)) for s in range(config.subjects)]
    total = config.samples * len(ACTIVITIES)
    windows = np.empty((total, config.window, len(HAR_CHANNELS)))
    y = np.empty(total, np.int64)
    who = np.empty(total, np.int64)
    mixed = []
    row = 0
    for label, activity in enumerate(ACTIVITIES):
        for i in range(config.samples):
            s = i % config.subjects
            windows[row], other = _imu_window(activity, people[s], config, _rng(config.seed, 8, label, i))
            y[row], who[row] = label, s
            mixed.append(other)
            row += 1
    x = imu_features(windows, config.rate_hz).astype(np.float32)
    names = imu_feature_names()
    _write_npz(folder / "features.npz", x=x, y=y, classes=np.array(ACTIVITIES), feature_names=np.array(names),
               subject=who, mixed=np.array(mixed, dtype="<U8"))
    return {
        "classes": list(ACTIVITIES),
        "counts": {name: config.samples for name in ACTIVITIES},
        "samples_total": total,
        "layout": {"format": "npz", "data": "features.npz", "labels": LABELS,
                   "arrays": {"x": f"float32 (N, {len(names)}) features of one window each",
                              "y": "int64 class index", "classes": "str, the class names in label order",
                              "feature_names": f"str ({len(names)},), the columns of x",
                              "subject": "int64 subject id (for subject-wise splits)",
                              "mixed": "str, the other activity in a transition window, else ''"},
                   "feature_order": "for each channel in order: " + ", ".join(WINDOW_STATS)
                                    + "; then acc_mag_mean, acc_mag_std",
                   "channels": list(HAR_CHANNELS), "rate_hz": config.rate_hz, "window": config.window,
                   "units": {"acc": "m/s^2 (gravity included)", "gyro": "rad/s", "dominant_hz": "Hz"}},
        "feature_stats": {"mean": [float(f"{v:.6g}") for v in x.mean(axis=0)],
                          "std": [float(f"{v:.6g}") for v in x.std(axis=0)]},
        "generator": {"name": "edgekit.datasets.synth.imu_features of imu_signal", "subjects": config.subjects,
                      "transition_windows": sum(1 for m in mixed if m),
                      "per_subject": ["step frequency x0.88-1.12", "amplitude x0.8-1.25",
                                      "sensor yaw (any) and tilt", "left/right asymmetry", "noise and bias"]},
    }


# ---------------------------------------------------------------------------
# demand: hourly demand forecasting (regression)

DEMAND_CHANNELS = ("demand", "temperature")


@dataclasses.dataclass(frozen=True)
class DemandConfig(SynthConfig):
    """Hourly electricity demand of several sites, cut into forecasting windows.

    ``samples`` is the most windows per site: a site's windows start every `stride`
    hours over `days` days (943 at the defaults); when there are more, `samples` of
    them, spread evenly over the days, are kept.

    Attributes:
        window: hours of history per window (the input).
        horizon: hours ahead: y is the demand `horizon` hours after the window's last
            hour (horizon 1), or the next `horizon` hours (horizon > 1).
        sites: sites in ``windows.npz``; one more, held out, is ``series.csv``.
        days: length of every site's series.
        stride: hours between the starts of consecutive windows.
    """

    samples: int = 1000
    window: int = 48
    horizon: int = 1
    sites: int = 6
    days: int = 120
    stride: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.window < 2 or not 1 <= self.horizon <= 168 or not 1 <= self.sites <= 1000
                or not 1 <= self.days <= 3650 or self.stride < 1 or self.days * 24 < self.window + self.horizon):
            raise InputError("demand options", expected="window >= 2, 1 <= horizon <= 168, 1 <= sites <= 1000, "
                             "1 <= days <= 3650, stride >= 1, and days * 24 >= window + horizon",
                             found=f"window={self.window}, horizon={self.horizon}, sites={self.sites}, "
                                   f"days={self.days}, stride={self.stride}")


def _rmse(prediction: np.ndarray, target: np.ndarray, mean: float) -> dict[str, float]:
    rmse = float(np.sqrt(np.mean((prediction - target) ** 2))) if target.size else float("nan")
    return {"rmse_kw": round(rmse, 2), "percent_of_mean": round(100.0 * rmse / mean, 2)}


@register("demand", DemandConfig, "hourly electricity demand and temperature of several sites, "
                                  "windows for forecasting (regression)")
def write_demand(config: DemandConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """``windows.npz`` (x ``(N, window, 2)``, y, group, start, channels) and ``series.csv`` of a held-out site."""
    hours = config.days * 24
    cal = demand.calendar(_rng(config.seed, 9, 0), config.days)
    shared = demand.regional_weather(_rng(config.seed, 9, 1), hours)
    first = int(_rng(config.seed, 9, 4).integers(0, len(demand.SITE_KINDS)))  # the kinds take turns
    places = [demand.site(_rng(config.seed, 9, 2, s), demand.SITE_KINDS[(first + s) % len(demand.SITE_KINDS)])
              for s in range(config.sites + 1)]  # the last is held out
    made = [demand.series(p, cal, hours, shared, _rng(config.seed, 9, 3, s)) for s, p in enumerate(places)]

    every = (hours - config.window - config.horizon) // config.stride + 1
    keep = np.arange(every) if every <= config.samples else np.unique(
        np.round(np.linspace(0, every - 1, config.samples)).astype(np.int64))
    starts = keep * config.stride
    ends = starts + config.window - 1  # the last hour of each window
    ahead = np.arange(1, config.horizon + 1)
    xs, ys, groups, begin, last, yesterday, oracle = [], [], [], [], [], [], []
    for s, run in enumerate(made[:-1]):
        steps = starts[:, None] + np.arange(config.window)[None, :]
        xs.append(np.stack([run.demand[steps], run.temperature[steps]], axis=2))
        targets = ends[:, None] + ahead[None, :]
        ys.append(run.demand[targets])
        groups.append(np.full(len(starts), s, np.int64))
        begin.append(starts)
        last.append(np.repeat(run.demand[ends][:, None], config.horizon, axis=1))
        # the same hour on the latest day the window has seen (-1: not in the series)
        back = targets - 24 * np.ceil(ahead / 24.0).astype(np.int64)[None, :]
        yesterday.append(np.where(back >= 0, run.demand[np.maximum(back, 0)], np.nan))
        oracle.append(run.expected[targets] * (1.0 + demand.NOISE_PHI ** ahead[None, :] * run.noise[ends][:, None]))
    x = np.concatenate(xs).astype(np.float32)
    y_all = np.concatenate(ys)
    y = (y_all[:, 0] if config.horizon == 1 else y_all).astype(np.float32)
    group = np.concatenate(groups)
    _write_npz(folder / "windows.npz", x=x, y=y, group=group, start=np.concatenate(begin),
               channels=np.array(DEMAND_CHANNELS))

    held = made[-1]
    with open(folder / "series.csv", "w", encoding="utf-8", newline="") as handle:
        handle.write("hour,demand,temperature\n")
        for hour, (kw, celsius) in enumerate(zip(held.demand, held.temperature, strict=True)):
            handle.write(f"{hour},{kw:.1f},{celsius:.2f}\n")

    mean_kw = float(y_all.mean())
    known = ~np.isnan(np.concatenate(yesterday))
    baselines = {
        "last_value": {**_rmse(np.concatenate(last), y_all, mean_kw), "windows": len(x)},
        "same_hour_yesterday": {**_rmse(np.concatenate(yesterday)[known], y_all[known], mean_kw),
                                "windows": int(known.all(axis=1).sum())},
        "oracle": {**_rmse(np.concatenate(oracle), y_all, mean_kw), "windows": len(x),
                   "note": "knows the generator's hidden expected demand and noise: a floor no model reaches"},
    }
    notes = [f"naive forecasts, RMSE over windows.npz (mean demand {mean_kw:.0f} kW): "
             + "; ".join(f"{name.replace('_', ' ')} {b['rmse_kw']:.1f} kW ({b['percent_of_mean']:.1f} %)"
                         for name, b in baselines.items())]
    for line in notes:
        log(f"demand: {line}")
    flat_x = x.reshape(-1, x.shape[-1])
    return {
        "classes": [],
        "counts": {f"site {s}": len(starts) for s in range(config.sites)},
        "samples_total": len(x),
        "target": {"description": ("demand (kW) the hour after the window" if config.horizon == 1
                                   else f"demand (kW) of the {config.horizon} hours after the window"),
                   "unit": "kW", "horizon": config.horizon, "mean": round(mean_kw, 3),
                   "std": round(float(y_all.std()), 3)},
        "baselines": baselines,
        "notes": notes,
        "layout": {"format": "npz", "data": "windows.npz", "task": "regression",
                   "arrays": {"x": f"float32 (N, {config.window}, 2): hourly demand (kW) and temperature (C)",
                              "y": "float32 (N,) demand the next hour" if config.horizon == 1
                                   else f"float32 (N, {config.horizon}) demand of the next {config.horizon} hours",
                              "group": "int64 site id (keep sites apart when splitting)",
                              "start": "int64 hour of the window's first step in its site's series",
                              "channels": "str, the channel names of x"},
                   "channels": list(DEMAND_CHANNELS), "units": {"demand": "kW", "temperature": "degrees C"},
                   "window_hours": config.window, "stride_hours": config.stride,
                   "windows_per_site": len(starts), "hours_per_site": hours},
        "preprocess": {"kind": "sensor", "channels": list(DEMAND_CHANNELS), "window": config.window,
                       "stride": 1, "sample_rate_hz": round(1.0 / 3600.0, 9),
                       "mean": [round(float(v), 4) for v in flat_x.mean(axis=0)],
                       "std": [round(float(v), 4) for v in flat_x.std(axis=0)]},
        "stream": {"file": "series.csv", "site": "held out (not in windows.npz)", "hours": hours,
                   "columns": ["hour", "demand", "temperature"], "kind": places[-1].kind},
        "generator": {
            "name": "edgekit.datasets.demand",
            "calendar": {"start_day_of_year": cal.start_day_of_year, "start_weekday": cal.start_weekday,
                         "holidays": list(cal.holidays)},
            "sites": [{"kind": p.kind, "base_kw": round(p.base_kw, 1), "mean_kw": round(float(r.demand.mean()), 1),
                       "trend_per_year": round(p.trend_per_year, 3),
                       "heating_kw_per_c": round(p.heating_kw_per_c, 2),
                       "cooling_kw_per_c": round(p.cooling_kw_per_c, 2),
                       "temperature_c": [round(float(r.temperature.min()), 1), round(float(r.temperature.max()), 1)],
                       "events": len(r.events)} for p, r in zip(places, made, strict=True)],
            "comfort_band_c": [demand.HEATING_BELOW, demand.COOLING_ABOVE],
            "noise": {"ar1_phi": demand.NOISE_PHI, "innovation": demand.NOISE_STEP, "kind": "multiplicative"},
        },
    }


# ---------------------------------------------------------------------------
# defects: image anomaly detection


@dataclasses.dataclass(frozen=True)
class DefectsConfig(SynthConfig):
    """Textured parts, normal or with one surface defect (MVTec-like, grayscale).

    ``samples`` is the number of normal images; the anomalous ones number
    ``round(samples * anomaly_fraction / (1 - anomaly_fraction))`` (at least one), the
    defect kinds taking turns.

    Attributes:
        image_size: height and width in pixels.
        anomaly_fraction: share of anomalous images in the dataset (0 < f < 1).
        defects: defect kinds (some of `textures.DEFECT_KINDS`).
        texture: the part's texture (one of `textures.TEXTURES`).
    """

    samples: int = 600
    image_size: int = 32
    anomaly_fraction: float = 0.25
    defects: tuple[str, ...] = textures.DEFECT_KINDS
    texture: str = "woven"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "defects", tuple(self.defects))
        unknown = sorted(set(self.defects) - set(textures.DEFECT_KINDS))
        if unknown or not self.defects or len(set(self.defects)) != len(self.defects):
            raise InputError("defects kinds", expected=f"one or more distinct of {list(textures.DEFECT_KINDS)}",
                             found=str(list(self.defects)))
        if self.texture not in textures.TEXTURES:
            raise InputError("defects texture", expected=f"one of {list(textures.TEXTURES)}", found=repr(self.texture))
        if not 16 <= self.image_size <= 1024:
            raise InputError("defects image_size", expected="16 to 1024 pixels", found=str(self.image_size))
        if not 0.0 < self.anomaly_fraction <= 0.9:
            raise InputError("defects anomaly_fraction", expected="more than 0 and at most 0.9",
                             found=str(self.anomaly_fraction))


DEFECT_CLASSES = ("normal", "anomaly")


@register("defects", DefectsConfig, "textured parts, normal or with a scratch, hole, stain or missing patch, "
                                    "as PNG folders (anomaly detection)")
def write_defects(config: DefectsConfig, folder: Path, log: Log, progress: Progress) -> dict[str, Any]:
    """PNG folders ``normal/NNNNN.png`` and ``anomaly/NNNNN.png`` (RGB, equal channels) and ``defects.csv``."""
    fraction = config.anomaly_fraction
    anomalies = max(1, int(round(config.samples * fraction / (1.0 - fraction))))
    plan = [("normal", i, None) for i in range(config.samples)]
    plan += [("anomaly", i, config.defects[i % len(config.defects)]) for i in range(anomalies)]
    for name in DEFECT_CLASSES:
        (folder / name).mkdir()
    rows = []
    for label, i, kind in progress(plan, "writing PNG files", len(plan)):
        image, box = textures.part(config.texture, config.image_size,
                                   _rng(config.seed, 10, DEFECT_CLASSES.index(label), i), kind)
        relative = f"{label}/{i:05d}.png"
        (folder / relative).write_bytes(png_bytes(image))
        rows.append([relative, label, kind or "", *(box if box else ("", "", "", ""))])
    with open(folder / "defects.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label", "defect", "x0", "y0", "x1", "y1"])
        writer.writerows(rows)
    per_kind = {kind: sum(1 for row in rows if row[2] == kind) for kind in config.defects}
    return {
        "classes": list(DEFECT_CLASSES),
        "counts": {"normal": config.samples, "anomaly": anomalies},
        "defects": per_kind,
        "samples_total": len(plan),
        "layout": {"format": "image-folders", "data": ".", "labels": LABELS, "index": "defects.csv",
                   "image": [config.image_size, config.image_size, 3],
                   "note": "grayscale stored as RGB with three equal channels; class 0 normal, 1 anomaly; "
                           "defects.csv: the defect kind and its bounding box (x0, y0, x1, y1; end exclusive) "
                           "per anomalous image"},
        "generator": {"name": "edgekit.datasets.textures", "texture": config.texture, "defects": list(config.defects),
                      "variation": ["phase", "rotation about 3 degrees", "period +-5 %", "brightness", "contrast",
                                    "illumination gradient", "sensor noise 2-5 levels"]},
    }
