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

Adding a source: a module beside these with a `SourcePlugin` (shared types come from
`edgekit.runtime.sources.base`), and one line in `SOURCES`.
"""

from __future__ import annotations

from edgekit.errors import InputError
from edgekit.runtime.sources import camera, images, mic, sensor, serial, wav
from edgekit.runtime.sources.base import Counters, Item, Source, SourcePlugin, parse_options
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

__all__ = ["FORMS", "SOURCES", "Counters", "Item", "LinesSource", "SerialSource", "Source", "SourcePlugin",
           "open_source"]


def open_source(spec: str) -> Source:
    """Open a source from its spec string.

    Raises:
        InputError: an unknown form (listing the valid ones) or a missing file.
    """
    scheme, _, rest = spec.partition(":")
    plugin = SOURCES.get(scheme)
    if plugin is not None and plugin.url and rest.startswith("//"):
        url, _, query = spec.partition("?")
        source = plugin.open(url, parse_options(query))
        source.spec = spec
        return source
    if "?" in scheme:  # a form without an argument but with options: mic?rate=8000
        scheme, _, query = scheme.partition("?")
        rest = f"?{query}{':' + rest if rest else ''}"
    rest, _, query = rest.partition("?")
    plugin = SOURCES.get(scheme)
    if plugin is None or plugin.url:  # a URL scheme without its "//"
        raise InputError(f"unrecognized source {spec!r}", expected=f"one of {FORMS}", found=repr(spec))
    source = plugin.open(rest, parse_options(query))
    source.spec = spec
    return source
