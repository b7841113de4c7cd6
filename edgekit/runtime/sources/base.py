"""What every input source shares: `Item`, `Counters`, the `Source` base class, the
`SourcePlugin` a registry entry holds, the kinds of input (`InputKind`, and which ones a
bundle's preprocessing takes), and the declared query options (`Option`) every spec's
options are checked against.

Plugin modules import from here, never from the package, so that the registry
(``edgekit.runtime.sources``) can import them without a cycle.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import enum
import itertools
import math
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from edgekit.errors import InputError
from edgekit.spec import PreprocessKind


class InputKind(str, enum.Enum):
    """What a source's items are: pixels, audio samples, or rows of numbers."""

    IMAGE = "images"
    AUDIO = "audio"
    ROWS = "rows of numbers"


# what a bundle's preprocessing kind takes (a bundle without preprocessing takes ready
# tensors: a row of numbers, or pixels of exactly its input's shape; never audio chunks,
# whose length is the source's, not the model's)
TAKES: dict[PreprocessKind, tuple[InputKind, ...]] = {
    PreprocessKind.IMAGE: (InputKind.IMAGE,),
    PreprocessKind.AUDIO: (InputKind.AUDIO,),
    PreprocessKind.SENSOR: (InputKind.ROWS,),
    PreprocessKind.NONE: (InputKind.ROWS, InputKind.IMAGE),
}


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
    """Iterable of `Item`; `counters` says what was dropped or skipped.

    Attributes:
        spec: the spec string it was opened from (set by `open_source`).
        kind: what its items are (`InputKind`); None for a source made outside the
            registry (no check against the bundle).
        unit: what one item is, as the run's summary counts malformed ones ("lines").
        problem: the last malformed item and why (a run that gave nothing says it).
    """

    spec: str = ""
    kind: InputKind | None = None
    unit: str = "items"
    problem: str | None = None

    def __init__(self) -> None:
        self.counters = Counters()

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Item]:
        """Yield items until the source ends or is closed."""

    def expect(self, preprocess: Any) -> None:  # noqa: B027 - an optional hook, not abstract
        """Told, before the first item, the bundle's preprocessing spec (`edgekit.spec`): a
        source may fit what it gives to it (a WAV file shorter than one window is padded)."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Release devices and threads (sources that hold none need not override)."""


class OptionType(str, enum.Enum):
    FLAG = "flag"  # 0, 1, true, false
    NUMBER = "number"  # a finite float above `minimum` (or at it, with `inclusive`)
    INTEGER = "integer"  # an integer at least `minimum`
    CHOICE = "choice"  # one of `choices`


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a source spec's query string (``?chunk_ms=100``): its type, range and default.

    Attributes:
        meaning: what the value is, as errors say it ("milliseconds of audio per chunk").
    """

    name: str
    type: OptionType
    default: Any
    meaning: str = ""
    minimum: float | None = None  # NUMBER: above it; INTEGER: at least it
    choices: tuple[str, ...] = ()

    @classmethod
    def flag(cls, name: str, meaning: str = "") -> Option:
        """0, 1, true or false; default false."""
        return cls(name, OptionType.FLAG, False, meaning)

    @classmethod
    def number(cls, name: str, default: float | None, meaning: str, minimum: float = 0.0) -> Option:
        """A finite number above `minimum`; None: not set."""
        return cls(name, OptionType.NUMBER, default, meaning, minimum)

    @classmethod
    def integer(cls, name: str, default: int | None, meaning: str, minimum: int = 1) -> Option:
        """An integer at least `minimum`."""
        return cls(name, OptionType.INTEGER, default, meaning, minimum)

    @classmethod
    def choice(cls, name: str, choices: tuple[str, ...], default: str | None = None, meaning: str = "") -> Option:
        """One of `choices`."""
        return cls(name, OptionType.CHOICE, default, meaning, choices=choices)

    def expected(self) -> str:
        """What a value must be, as an error says it."""
        if self.type is OptionType.FLAG:
            return f"{self.name}=0 or {self.name}=1 (or true/false)"
        if self.type is OptionType.CHOICE:
            return " or ".join(f"{self.name}={c}" for c in self.choices)
        if self.type is OptionType.INTEGER:
            bound = "" if self.minimum is None else f" >= {self.minimum:g}"
            return f"{self.name}= an integer{bound}" + (f" ({self.meaning})" if self.meaning else "")
        bound = "" if self.minimum is None else f" > {self.minimum:g}"
        return f"{self.name}= a number{bound}" + (f" ({self.meaning})" if self.meaning else "")

    def read(self, text: str) -> Any:
        """The typed value of `text`.

        Raises:
            ValueError: not of the type, or out of range.
        """
        value = text.strip()
        if self.type is OptionType.FLAG:
            if value.lower() not in ("0", "1", "true", "false"):
                raise ValueError(value)
            return value.lower() in ("1", "true")
        if self.type is OptionType.CHOICE:
            if value not in self.choices:
                raise ValueError(value)
            return value
        if self.type is OptionType.INTEGER:
            number: float = int(value)
        else:
            number = float(value)
            if not math.isfinite(number):
                raise ValueError(value)
        if self.minimum is not None and (number < self.minimum or (
                number == self.minimum and self.type is OptionType.NUMBER)):
            raise ValueError(value)
        return number


LOOP = Option.flag("loop", "replay the file endlessly")


@dataclasses.dataclass(frozen=True)
class SourcePlugin:
    """One kind of source, as the registry keys it by the scheme of its spec.

    Attributes:
        form: the spec's syntax, as errors list it (``wav:FILE[?realtime=1&chunk_ms=100&loop=1]``).
        help: one line saying what it reads.
        open: makes the source. Called with the text after ``SCHEME:`` (query removed) and
            the query's options, checked and typed (`read_options`: every declared option,
            with its default when the spec does not set it); for a `url` plugin, with the
            URL (query removed) and the options (the undeclared ones as text: they belong
            to the URL).
        kind: what its items are (`InputKind`); `edgekit run` and `serve` refuse a bundle
            that takes another kind before the source is opened.
        options: the query options it takes; any other key is refused (except by a
            `url` plugin, whose other keys are the stream's own query).
        url: the spec is a URL (``SCHEME://...``): only that form is this plugin's.
    """

    form: str
    help: str
    open: Callable[[str, dict[str, Any]], Source]
    kind: InputKind
    options: tuple[Option, ...] = ()
    url: bool = False


def parse_options(query: str) -> dict[str, str]:
    """A spec's query string as options (the last of repeated keys wins; blanks kept)."""
    return {k: v[-1] for k, v in urllib.parse.parse_qs(query, keep_blank_values=True).items()}


def read_options(plugin: SourcePlugin, options: Mapping[str, str], spec: str) -> dict[str, Any]:
    """A spec's options checked against the plugin's declared ones: every declared option,
    typed (its default where the spec does not set it), plus, for a `url` plugin, the
    undeclared ones as text.

    Raises:
        InputError: an unknown option (listing the known ones) or a value of the wrong type
            or out of range; one line, naming the option and what it takes.
    """
    declared = {option.name: option for option in plugin.options}
    unknown = [key for key in options if key not in declared]
    if unknown and not plugin.url:
        close = difflib.get_close_matches(unknown[0], list(declared), n=1)
        known = f"options among: {', '.join(declared)}" if declared else "no options"
        raise InputError(f"source {spec}", expected=f"{known} ({plugin.form})",
                         found=f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
                         hint=f"did you mean {close[0]}=?" if close else "remove it")
    typed: dict[str, Any] = {name: option.default for name, option in declared.items()}
    for key, text in options.items():
        option = declared.get(key)
        if option is None:
            typed[key] = text  # a URL's own query
            continue
        try:
            typed[key] = option.read(text)
        except ValueError:
            raise InputError(f"source {spec}", expected=option.expected(), found=f"{key}={text}" if text else
                             f"{key}= with no value") from None
    return typed


def passes(loop: bool) -> Iterator[int]:
    """The pass numbers over a file source: 0 only, or 0, 1, 2, ... when looping."""
    return itertools.count() if loop else iter((0,))
