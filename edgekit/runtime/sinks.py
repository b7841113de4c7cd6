"""Result sinks, from spec strings: ``stdout`` (JSON lines), ``jsonl:FILE``, and Python callbacks."""

from __future__ import annotations

import abc
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from edgekit.errors import InputError
from edgekit.runtime.results import Result


class Sink(abc.ABC):
    """Where results go. `dropped` counts results that could not be delivered."""

    spec: str = ""

    def __init__(self) -> None:
        self.dropped = 0

    @abc.abstractmethod
    def write(self, result: Result) -> None:
        """Deliver one result (or buffer it); never blocks inference for long."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Flush and release (sinks that hold nothing need not override)."""


class LinesSink(Sink):
    """One JSON object per line, flushed per result."""

    def __init__(self, handle: TextIO, owned: bool) -> None:
        super().__init__()
        self.handle = handle
        self.owned = owned

    def write(self, result: Result) -> None:
        self.handle.write(result.to_json() + "\n")
        self.handle.flush()

    def close(self) -> None:
        if self.owned:
            self.handle.close()


class CallbackSink(Sink):
    """Calls a Python function with every result (for apps embedding the runtime)."""

    def __init__(self, callback: Callable[[Result], None]) -> None:
        super().__init__()
        self.callback = callback

    def write(self, result: Result) -> None:
        self.callback(result)


def _jsonl(path: str) -> Sink:
    try:
        handle = Path(path).open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"sink jsonl:{path}", expected="a writable file", found=exc.strerror or str(exc)) from exc
    return LinesSink(handle, owned=True)


def _mqtt(spec: str) -> Sink:
    from edgekit.runtime.mqtt import MqttSink

    return MqttSink(spec)


SINKS: dict[str, Callable[[str], Sink]] = {
    "stdout": lambda _rest: LinesSink(sys.stdout, owned=False),
    "jsonl": _jsonl,
    "mqtt": _mqtt,
    "mqtts": _mqtt,
}
FORMS = ["stdout", "jsonl:FILE", "mqtt://[USER:PASS@]HOST:PORT/TOPIC[?qos=1&buffer=1000]", "mqtts://..."]


def open_sink(spec: str) -> Sink:
    """Open a sink from its spec string.

    Raises:
        InputError: an unknown form (listing the valid ones) or an unwritable file.
    """
    scheme, _, rest = spec.partition(":")
    if scheme not in SINKS:
        raise InputError(f"unrecognized sink {spec!r}", expected=f"one of {FORMS}", found=repr(spec))
    sink = SINKS[scheme](spec if scheme in ("mqtt", "mqtts") else rest)
    sink.spec = spec
    return sink
