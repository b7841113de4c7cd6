"""The two callables library functions take to report what they do, so that the command
line (or an embedding application) decides how it is shown.

`Log` receives one line of progress text. `Progress` wraps an iterable with a label and a
total and yields its items (the CLI draws a bar; `no_progress` draws nothing). The bench's
per-unit callback is `edgekit.bench.harness.UnitProgress`, a different thing."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

Log = Callable[[str], None]
Progress = Callable[[Iterable[T], str, int], Iterator[T]]


def no_progress(items: Iterable[T], _label: str, _total: int) -> Iterator[T]:
    """A `Progress` that shows nothing."""
    yield from items
