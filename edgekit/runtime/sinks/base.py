"""What every result sink shares: the `Sink` base class, the `SinkPlugin` a registry entry
holds, the JSON-lines writer (`LinesSink`) and the callback sink for embedding apps.

Plugin modules import from here, never from the package, so that the registry
(``edgekit.runtime.sinks``) can import them without a cycle.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import TextIO

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


@dataclasses.dataclass(frozen=True)
class SinkPlugin:
    """One kind of sink, as the registry keys it by the scheme of its spec.

    Attributes:
        form: the spec's syntax, as errors list it (``jsonl:FILE``).
        help: one line saying where results go.
        open: makes the sink, from the text after ``SCHEME:`` (the whole spec for a
            `url` plugin).
        url: the spec is a URL (``SCHEME://...``), given whole to `open`.
    """

    form: str
    help: str
    open: Callable[[str], Sink]
    url: bool = False


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
