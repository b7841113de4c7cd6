"""Sensor rows as text lines: ``csv:FILE`` (``?loop=1``, ``?rate=HZ``) and ``stdin``.

A row is CSV (the first line may be a header naming the channels), a JSON object of
``{channel: value}`` or a JSON array of values in the model's channel order; lines that are not a row of finite numbers are counted as malformed
and skipped. A model that names its channels (`LinesSource.want`) gets those columns by
name and the others are ignored, so a recording with ``label``, ``timestamp`` or
``subject`` columns replays as recorded. `LinesSource` is also the serial source's line
reader.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from edgekit.errors import InputError
from edgekit.runtime.sources.base import LOOP, InputKind, Item, Option, Source, SourcePlugin, passes

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite(values: Any) -> Any:
    """Refuse NaN and infinities ("nan", "1e999", or beyond float32 as "1e39"): one would
    poison every window it is in."""
    if not all(math.isfinite(v) and abs(v) <= _FLOAT32_MAX for v in values):
        raise ValueError("a value that is not a finite float32 number")
    return values


def _numbers(values: Any) -> list[float]:
    """JSON values as finite floats.

    Raises:
        ValueError: a value that is not a number, or not a finite float32 one.
    """
    try:
        return _finite([float(v) for v in values])
    except OverflowError:  # an integer with hundreds of digits
        raise ValueError("a JSON value too large for a float") from None


def _parse_row(line: str, header: list[str] | None, wanted: tuple[str, ...] | None = None) -> Any:
    """One sensor row: ``{channel: value}`` (JSON, or CSV under a header) or the values.

    With `wanted` channel names, a named row (JSON or CSV under a header) keeps only those
    keys, and only their values need be numbers (a ``label`` column may hold text); a
    wanted channel the row lacks is left out for the model to judge.

    Raises:
        ValueError: anything that is not a row of numbers (the source counts it as malformed).
    """
    line = line.strip()
    if line.startswith(("{", "[")):
        try:
            value = json.loads(line)
        except RecursionError:  # a line of 100,000 nested brackets
            raise ValueError("JSON line nested too deeply") from None
        if isinstance(value, list):  # an array: the channels' values in the model's order
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise ValueError("JSON array of something other than numbers")
            return np.asarray(_numbers(value), np.float32)
        if not isinstance(value, dict):
            raise ValueError("JSON line is neither an object nor an array")
        named = {str(k): v for k, v in value.items()
                 if not isinstance(v, (dict, list)) and (wanted is None or k in wanted)}
        return dict(zip(named, _numbers(named.values()), strict=True))
    cells = line.split(",")
    if header is not None:
        if len(cells) != len(header):
            raise ValueError(f"{len(cells)} values for {len(header)} columns")
        named = zip(header, cells, strict=True)
        if wanted is not None:
            named = ((k, c) for k, c in named if k in wanted)
        row = {k: float(c) for k, c in named}
        _finite(row.values())
        return row
    return np.asarray(_finite([float(x) for x in cells]), np.float32)


class LinesSource(Source):
    """Sensor rows from CSV (first line may be a header) or JSON lines; bad lines are counted
    and skipped. A seekable file is read again from the top while `loop` is set, and `rate`
    paces the rows (per second), replaying a recording as the sensor gave it."""

    unit = "lines"

    def __init__(self, handle: TextIO | Iterator[str], name: str, loop: bool = False,
                 rate: float | None = None) -> None:
        super().__init__()
        self.handle = handle
        self.name = name
        self.loop = loop
        self.rate = rate
        self.wanted: tuple[str, ...] | None = None

    def want(self, channels: tuple[str, ...]) -> None:
        """Read only these channels (by name) from named rows; other columns are ignored."""
        self.wanted = tuple(channels)

    def __iter__(self) -> Iterator[Item]:
        start = time.monotonic()
        sent = 0
        for number in passes(self.loop):
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
            if number == 1 and not line.lstrip().startswith(("{", "[")):
                cells = [c.strip() for c in line.split(",")]
                try:
                    [float(c) for c in cells]
                except ValueError:
                    header = cells
                    continue
            try:
                row = _parse_row(line, header, self.wanted)
            except (ValueError, TypeError) as exc:
                self.counters.malformed += 1
                self.problem = f"{self.name}:{number}: {exc}"
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


def _csv(path: str, options: dict[str, Any]) -> Source:
    try:
        handle = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115 - closed by close()
    except OSError as exc:
        raise InputError(f"source csv:{path}", expected="a readable file", found=exc.strerror or str(exc)) from exc
    return LinesSource(handle, Path(path).name, loop=bool(options["loop"]), rate=options["rate"])


def _stdin(_rest: str, _options: dict[str, Any]) -> Source:
    return LinesSource(_stdin_lines(), "stdin")


CSV = SourcePlugin(form="csv:FILE[?loop=1&rate=HZ]", help="sensor rows from a CSV or JSON-lines file", open=_csv,
                   kind=InputKind.ROWS, options=(LOOP, Option.number("rate", None, "rows per second")))
STDIN = SourcePlugin(form="stdin", help="sensor rows (CSV or JSON lines) from standard input", open=_stdin,
                     kind=InputKind.ROWS)
