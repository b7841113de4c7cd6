"""``wav:FILE``: a WAV file (other formats with soundfile, as `read_audio` reads them) in chunks (``chunk_ms=100``), as fast as possible or at real-time
pace (``?realtime=1``), once or endlessly (``?loop=1``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from edgekit.runtime.sources.base import Item, Source, SourcePlugin, loop_option, passes


class WavSource(Source):
    """A WAV file in chunks, as fast as possible or at real-time pace (``?realtime=1``), once
    or endlessly (``?loop=1``: the file is heard again and again, time running on)."""

    def __init__(self, path: str, options: dict[str, str]) -> None:
        super().__init__()
        from edgekit.features.audio import read_audio

        self.loop = loop_option(options, f"source wav:{path}")
        self.samples, self.rate = read_audio(Path(path))  # as predict reads a file: mono, the file's rate
        self.realtime = options.get("realtime", "0") not in ("0", "", "false")
        self.chunk = max(1, int(self.rate * float(options.get("chunk_ms", "100")) / 1000.0))
        self.name = Path(path).name

    def __iter__(self) -> Iterator[Item]:
        start = time.monotonic()
        epoch = time.time()
        if not len(self.samples):
            return
        for number in passes(self.loop):
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
                # the same at any reading speed; named by where the chunk starts in the file
                yield Item((chunk, self.rate), epoch + (heard + offset + len(chunk)) / self.rate,
                           f"{self.name}@{offset / self.rate:.3f}s")


PLUGIN = SourcePlugin(form="wav:FILE[?realtime=1&chunk_ms=100&loop=1]",
                      help="a WAV file in chunks, as fast as possible or at real-time pace", open=WavSource)
