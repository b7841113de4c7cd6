"""Input sources, from spec strings (registry keyed by scheme).

Implemented here: ``images:DIR``, ``wav:FILE`` (``?realtime=1``, ``chunk_ms=``),
``csv:FILE``, ``stdin`` (CSV or JSON lines) and ``serial:PORT``; cameras and video live in
`camera`, the microphone in `microphone`. Each source counts what it had to drop. The file
sources (images, wav, csv) replay endlessly with ``?loop=1``; ``csv:FILE?rate=HZ`` paces
the rows.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import json
import math
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgekit.errors import InputError


@dataclasses.dataclass(frozen=True)
class Item:
    """One thing a source produced: the payload, when it was captured, and its name."""

    payload: Any
    timestamp: float
    name: str | None = None


@dataclasses.dataclass
class Counters:
    dropped: int = 0
    malformed: int = 0
    reconnects: int = 0
    overruns: int = 0  # input overflows reported by an audio driver

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class Source(abc.ABC):
    """Iterable of `Item`; `counters` says what was dropped or skipped."""

    spec: str = ""

    def __init__(self) -> None:
        self.counters = Counters()

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Item]:
        """Yield items until the source ends or is closed."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release devices and threads (sources that hold none need not override)."""


def _options(query: str) -> dict[str, str]:
    return {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def _loop(options: dict[str, str], what: str) -> bool:
    """``?loop=1``: replay a file source endlessly (kiosks, demos, soak runs; stop with --limit)."""
    value = options.get("loop", "0").lower()
    if value not in ("0", "1", "true", "false"):
        raise InputError(what, expected="loop=0 or loop=1", found=f"loop={options['loop']}")
    return value in ("1", "true")


def _passes(loop: bool) -> Iterator[int]:
    return itertools.count() if loop else iter((0,))


class ImagesSource(Source):
    """Every image file of a folder, in name order (over and over with ``?loop=1``)."""

    def __init__(self, folder: str, options: dict[str, str]) -> None:
        super().__init__()
        from edgekit.features.image import IMAGE_SUFFIXES

        self.loop = _loop(options, f"source images:{folder}")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"source images:{folder}", expected="an existing folder", found="no such folder")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"source images:{folder}", expected="image files (.png, .jpg, ...)", found="none")

    def __iter__(self) -> Iterator[Item]:
        from edgekit.features.image import decode_image

        for _ in _passes(self.loop):
            decoded = 0
            for path in self.files:
                try:
                    image = decode_image(path)
                except InputError:
                    self.counters.malformed += 1
                    continue
                decoded += 1
                yield Item(image, time.time(), str(path.relative_to(self.folder)))
            if not decoded:  # nothing readable: looping would spin without yielding
                return


class WavSource(Source):
    """A WAV file in chunks, as fast as possible or at real-time pace (``?realtime=1``), once
    or endlessly (``?loop=1``: the file is heard again and again, time running on)."""

    def __init__(self, path: str, options: dict[str, str]) -> None:
        super().__init__()
        from edgekit.features.audio import read_wav

        self.loop = _loop(options, f"source wav:{path}")
        self.samples, self.rate = read_wav(Path(path))
        self.realtime = options.get("realtime", "0") not in ("0", "", "false")
        self.chunk = max(1, int(self.rate * float(options.get("chunk_ms", "100")) / 1000.0))
        self.name = Path(path).name

    def __iter__(self) -> Iterator[Item]:
        start = time.monotonic()
        epoch = time.time()
        if not len(self.samples):
            return
        for number in _passes(self.loop):
            heard = number * len(self.samples)  # samples played before this pass
            for offset in range(0, len(self.samples), self.chunk):
                if self.realtime:
                    due = start + (heard + offset) / self.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                chunk = self.samples[offset : offset + self.chunk]
                # stamped with audio time (when the chunk's last sample would have been heard,
                # counted from the start of the run), so smoothing and suppression windows mean
                # the same at any reading speed
                yield Item((chunk, self.rate), epoch + (heard + offset + len(chunk)) / self.rate,
                           f"{self.name}@{offset / self.rate:.3f}s")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite(values: Any) -> Any:
    """Refuse NaN and infinities ("nan", "1e999", or beyond float32 as "1e39"): one would
    poison every window it is in."""
    if not all(math.isfinite(v) and abs(v) <= _FLOAT32_MAX for v in values):
        raise ValueError("a value that is not a finite float32 number")
    return values


def _parse_row(line: str, header: list[str] | None) -> Any:
    """One sensor row: ``{channel: value}`` (JSON, or CSV under a header) or the values.

    Raises:
        ValueError: anything that is not a row of numbers (the source counts it as malformed).
    """
    line = line.strip()
    if line.startswith("{"):
        try:
            value = json.loads(line)
        except RecursionError:  # a line of 100,000 nested brackets
            raise ValueError("JSON line nested too deeply") from None
        if not isinstance(value, dict):
            raise ValueError("JSON line is not an object")
        try:
            row = {str(k): float(v) for k, v in value.items() if not isinstance(v, (dict, list))}
        except OverflowError:  # an integer with hundreds of digits
            raise ValueError("a JSON value too large for a float") from None
        _finite(row.values())
        return row
    values = _finite([float(x) for x in line.split(",")])
    if header is not None:
        if len(values) != len(header):
            raise ValueError(f"{len(values)} values for {len(header)} columns")
        return dict(zip(header, values, strict=True))
    return np.asarray(values, np.float32)


class LinesSource(Source):
    """Sensor rows from CSV (first line may be a header) or JSON lines; bad lines are counted
    and skipped. A seekable file is read again from the top while `loop` is set, and `rate`
    paces the rows (per second), replaying a recording as the sensor gave it."""

    def __init__(self, handle: TextIO | Iterator[str], name: str, loop: bool = False,
                 rate: float | None = None) -> None:
        super().__init__()
        self.handle = handle
        self.name = name
        self.loop = loop
        self.rate = rate

    def __iter__(self) -> Iterator[Item]:
        start = time.monotonic()
        sent = 0
        for number in _passes(self.loop):
            if number:
                self.handle.seek(0)  # type: ignore[union-attr]
            rows = 0
            for row, name in self._rows():
                if self.rate is not None:
                    delay = start + sent / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                rows += 1
                sent += 1
                yield Item(row, time.time(), name)
            if not rows:  # nothing readable: looping would spin without yielding
                return

    def _rows(self) -> Iterator[tuple[Any, str]]:
        header: list[str] | None = None
        for number, line in enumerate(self.handle, start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if number == 1 and not line.lstrip().startswith("{"):
                cells = [c.strip() for c in line.split(",")]
                try:
                    [float(c) for c in cells]
                except ValueError:
                    header = cells
                    continue
            try:
                row = _parse_row(line, header)
            except (ValueError, TypeError):
                self.counters.malformed += 1
                continue
            yield row, f"{self.name}:{number}"

    def close(self) -> None:
        if self.handle is not sys.stdin and hasattr(self.handle, "close"):
            self.handle.close()


def _stdin_lines() -> Iterator[str]:
    """Lines of standard input, decoded as UTF-8 with bad bytes replaced (as the csv and
    serial sources do): Python's own stdin decodes strictly, and one byte that is not UTF-8
    would end the run with a traceback instead of one malformed line."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:  # replaced by a text-only object (embedding, tests)
        yield from sys.stdin
        return
    for raw in stream:
        yield raw.decode("utf-8", "replace")


MAX_LINE_BYTES = 64 * 1024  # a device that never sends a newline must not fill the memory


class SerialSource(LinesSource):
    """Sensor lines from a serial port (pyserial): CSV or JSON lines, reconnecting when the
    device goes away (``serial:/dev/ttyUSB0?baud=115200&timeout=5``)."""

    def __init__(self, port: str, options: dict[str, str]) -> None:
        from edgekit._optional import require

        self.serial = require("serial", "reading serial ports")
        try:
            self.baud = int(options.get("baud", "115200"))
            self.timeout = float(options.get("timeout", "5"))
        except ValueError as exc:
            raise InputError(f"source serial:{port}", expected="integer baud and numeric timeout",
                             found=str(exc)) from exc
        self.port = port
        self.closed = False
        self.device = self._open(first=True)
        super().__init__(self._lines(), f"serial:{port}")

    def _open(self, first: bool = False) -> Any:
        try:
            return self.serial.Serial(self.port, self.baud, timeout=0.5)
        except (self.serial.SerialException, OSError, ValueError) as exc:
            if first:
                raise InputError(f"source serial:{self.port}", expected="a serial port that opens",
                                 found=str(exc), hint="check the device path and permissions (dialout group)") from exc
            return None

    def _lines(self) -> Iterator[str]:
        buffer = b""
        backoff = 0.5
        while not self.closed:
            if self.device is None:
                time.sleep(backoff)
                self.device = self._open()
                backoff = min(backoff * 2, 8.0)
                if self.device is not None:
                    self.counters.reconnects += 1
                    backoff = 0.5
                continue
            try:
                chunk = self.device.read(4096)
            except (self.serial.SerialException, OSError):
                self.device.close()
                self.device = None
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode("utf-8", "replace")
            if len(buffer) > MAX_LINE_BYTES:  # no newline in sight: drop it, count one malformed line
                buffer = b""
                self.counters.malformed += 1

    def close(self) -> None:
        self.closed = True
        if self.device is not None:
            self.device.close()


def _csv(path: str, options: dict[str, str]) -> Source:
    what = f"source csv:{path}"
    loop = _loop(options, what)
    try:
        rate = float(options["rate"]) if "rate" in options else None
    except ValueError:
        rate = -1.0
    if rate is not None and not (0 < rate < float("inf")):
        raise InputError(what, expected="rate= rows per second, a positive number", found=f"rate={options['rate']}")
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by close()
    except OSError as exc:
        raise InputError(f"source csv:{path}", expected="a readable file", found=exc.strerror or str(exc)) from exc
    return LinesSource(handle, Path(path).name, loop=loop, rate=rate)


def _microphone(device: str, options: dict[str, str]) -> Source:
    from edgekit.runtime.microphone import MicrophoneSource

    return MicrophoneSource(device, options)


def _camera(kind: str) -> Callable[[str, dict[str, str]], Source]:
    def make(rest: str, options: dict[str, str]) -> Source:
        from edgekit.runtime import camera

        return getattr(camera, kind)(rest, options)

    return make


SOURCES: dict[str, Callable[[str, dict[str, str]], Source]] = {
    "images": ImagesSource,
    "wav": WavSource,
    "csv": _csv,
    "stdin": lambda _rest, _options: LinesSource(_stdin_lines(), "stdin"),
    "serial": SerialSource,
    "mic": _microphone,
    "camera": _camera("camera"),
    "video": _camera("video"),
}
URL_SCHEMES = ("rtsp", "http", "https")
FORMS = ["camera:INDEX", "video:FILE", "rtsp://...", "http://... (MJPEG)", "images:DIR[?loop=1]",
         "wav:FILE[?realtime=1&chunk_ms=100&loop=1]", "mic[:DEVICE][?rate=16000]", "serial:/dev/ttyUSB0?baud=115200",
         "csv:FILE[?loop=1&rate=HZ]", "stdin"]


def open_source(spec: str) -> Source:
    """Open a source from its spec string.

    Raises:
        InputError: an unknown form (listing the valid ones) or a missing file.
    """
    scheme, _, rest = spec.partition(":")
    if scheme in URL_SCHEMES and rest.startswith("//"):
        from edgekit.runtime.camera import stream_url

        url, _, query = spec.partition("?")
        options = _options(query)
        camera_keys = {"timeout", "backoff_max", "max_reconnects", "width", "height", "fps"}
        # keep the URL's own query, minus edgekit's options
        own = "&".join(f"{k}={v}" for k, v in options.items() if k not in camera_keys)
        source = stream_url(url + (f"?{own}" if own else ""), {k: v for k, v in options.items() if k in camera_keys})
        source.spec = spec
        return source
    if "?" in scheme:  # a form without an argument but with options: mic?rate=8000
        scheme, _, query = scheme.partition("?")
        rest = f"?{query}{':' + rest if rest else ''}"
    rest, _, query = rest.partition("?")
    if scheme not in SOURCES:
        raise InputError(f"unrecognized source {spec!r}", expected=f"one of {FORMS}", found=repr(spec))
    source = SOURCES[scheme](rest, _options(query))
    source.spec = spec
    return source
