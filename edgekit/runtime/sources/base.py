"""What every input source shares: `Item`, `Counters`, the `Source` base class, the
`SourcePlugin` a registry entry holds, and the helpers that read a spec's options.

Plugin modules import from here, never from the package, so that the registry
(``edgekit.runtime.sources``) can import them without a cycle.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

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


@dataclasses.dataclass(frozen=True)
class SourcePlugin:
    """One kind of source, as the registry keys it by the scheme of its spec.

    Attributes:
        form: the spec's syntax, as errors list it (``wav:FILE[?realtime=1&chunk_ms=100&loop=1]``).
        help: one line saying what it reads.
        open: makes the source. Called with the text after ``SCHEME:`` (query removed) and
            the query's options; for a `url` plugin, with the URL (query removed) and the
            query's options.
        url: the spec is a URL (``SCHEME://...``): only that form is this plugin's.
    """

    form: str
    help: str
    open: Callable[[str, dict[str, str]], Source]
    url: bool = False


def parse_options(query: str) -> dict[str, str]:
    """A spec's query string as options (the last of repeated keys wins; blanks kept)."""
    return {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def loop_option(options: dict[str, str], what: str) -> bool:
    """``?loop=1``: replay a file source endlessly (kiosks, demos, soak runs; stop with --limit).

    Raises:
        InputError: a value other than 0, 1, true or false.
    """
    value = options.get("loop", "0").lower()
    if value not in ("0", "1", "true", "false"):
        raise InputError(what, expected="loop=0 or loop=1", found=f"loop={options['loop']}")
    return value in ("1", "true")


def passes(loop: bool) -> Iterator[int]:
    """The pass numbers over a file source: 0 only, or 0, 1, 2, ... when looping."""
    return itertools.count() if loop else iter((0,))
