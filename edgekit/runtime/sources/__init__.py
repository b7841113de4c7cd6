"""Input sources, from spec strings: one registry keyed by the spec's scheme.

    from edgekit.runtime.sources import open_source
    source = open_source("wav:clip.wav?realtime=1")   # an iterable of `Item`
    for name, plugin in SOURCES.items():              # what the command line offers
        print(name, plugin.form, plugin.help)

One file per kind of source: `images`, `wav`, `sensor` (``csv:FILE`` and ``stdin``),
`serial`, `mic`, `camera` (``camera:``, ``video:``, ``rtsp://``, ``http(s)://``). Each
source counts what it had to drop (`Counters`). The file sources (images, wav, csv)
replay endlessly with ``?loop=1``; ``csv:FILE?rate=HZ`` paces the rows. Plugins import
their libraries (OpenCV, sounddevice, pyserial) only when a source is opened.

Each plugin declares what its items are (`InputKind`: images, audio, rows of numbers) and
the query options it takes (`Option`: type, range, default). `parse_source` checks a spec
(its form, its options: an unknown key or a bad value is one `InputError`) without opening
anything; `check_kind` refuses a bundle whose preprocessing takes another kind of input,
before the source is opened (`edgekit run`, `edgekit serve`).

Adding a source: a module beside these with a `SourcePlugin` (shared types come from
`edgekit.runtime.sources.base`), and one line in `SOURCES`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgekit.errors import InputError
from edgekit.runtime.sources import camera, images, mic, sensor, serial, wav
from edgekit.runtime.sources.base import (
    TAKES,
    Counters,
    InputKind,
    Item,
    Option,
    Source,
    SourcePlugin,
    parse_options,
    read_options,
)
from edgekit.runtime.sources.sensor import LinesSource
from edgekit.runtime.sources.serial import SerialSource

# scheme -> plugin, in the order errors list the forms
SOURCES: dict[str, SourcePlugin] = {
    "camera": camera.CAMERA,
    "video": camera.VIDEO,
    "rtsp": camera.RTSP,
    "http": camera.HTTP,
    "https": camera.HTTP,
    "images": images.PLUGIN,
    "wav": wav.PLUGIN,
    "mic": mic.PLUGIN,
    "serial": serial.PLUGIN,
    "csv": sensor.CSV,
    "stdin": sensor.STDIN,
}
FORMS = list(dict.fromkeys(plugin.form for plugin in SOURCES.values()))

__all__ = ["FORMS", "SOURCES", "Counters", "InputKind", "Item", "LinesSource", "Option", "ParsedSource",
           "SerialSource", "Source", "SourcePlugin", "check_kind", "open_source", "parse_source"]


@dataclasses.dataclass(frozen=True)
class ParsedSource:
    """A source spec, checked but not opened: its plugin, the text after ``SCHEME:`` (or
    the URL) and its typed options."""

    spec: str
    plugin: SourcePlugin
    target: str
    options: dict[str, Any]

    def open(self) -> Source:
        """Open it (files are read, devices and streams opened).

        Raises:
            InputError: a missing file, a device that does not open, ...
        """
        source = self.plugin.open(self.target, self.options)
        source.spec = self.spec
        source.kind = self.plugin.kind
        return source


def parse_source(spec: str) -> ParsedSource:
    """Check a source spec without opening anything.

    Raises:
        InputError: an unknown form (listing the valid ones), an unknown option (listing the
            form's options) or an option value of the wrong type or out of range.
    """
    scheme, _, rest = spec.partition(":")
    plugin = SOURCES.get(scheme)
    if plugin is not None and plugin.url and rest.startswith("//"):
        url, _, query = spec.partition("?")
        return ParsedSource(spec, plugin, url, read_options(plugin, parse_options(query), spec))
    if "?" in scheme:  # a form without an argument but with options: mic?rate=8000
        scheme, _, query = scheme.partition("?")
        rest = f"?{query}{':' + rest if rest else ''}"
    rest, _, query = rest.partition("?")
    plugin = SOURCES.get(scheme)
    if plugin is None or plugin.url:  # a URL scheme without its "//"
        raise InputError(f"unrecognized source {spec!r}", expected=f"one of {FORMS}", found=repr(spec))
    return ParsedSource(spec, plugin, rest, read_options(plugin, parse_options(query), spec))


def open_source(spec: str) -> Source:
    """Open a source from its spec string.

    Raises:
        InputError: an unknown form (listing the valid ones), a bad option (`parse_source`)
            or a missing file.
    """
    return parse_source(spec).open()


def forms_of(kind: InputKind) -> list[str]:
    """The forms of the sources whose items are `kind`, in the registry's order."""
    return list(dict.fromkeys(plugin.form for plugin in SOURCES.values() if plugin.kind is kind))


def check_kind(spec: str, kind: InputKind, preprocess: Any, bundle: str) -> None:
    """Refuse a source whose items are not what the bundle's preprocessing takes (an image
    folder streamed into a keyword spotter as audio samples would give confident garbage).

    Args:
        kind: what the source gives (`SourcePlugin.kind`).
        preprocess: the bundle's preprocessing spec (its `kind`, a `PreprocessKind`).
        bundle: the bundle's name, as the error says it.

    Raises:
        InputError: the kinds differ; the message names the sources that fit.
    """
    takes = TAKES[preprocess.kind]
    if kind in takes:
        return
    fits = [form for taken in takes for form in forms_of(taken)]
    what = " or ".join(taken.value for taken in takes)
    raise InputError(f"source {spec}", expected=f"a source of {what}, as bundle {bundle} takes "
                     f"(preprocess: {preprocess.kind.value})", found=f"a source of {kind.value}",
                     hint=f"use {', '.join(fits)}")
