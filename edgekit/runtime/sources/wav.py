"""``wav:FILE``: a WAV file (other formats with soundfile, as `read_audio` reads them) in chunks (``chunk_ms=100``), as fast as possible or at real-time
pace (``?realtime=1``), once or endlessly (``?loop=1``).

A file shorter than the model's window (told by `Source.expect`) is padded with zeros to
one window, as `Model.predict` pads a clip, so it gives the one result predict gives;
the padding is said in one log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.runtime.sources.base import LOOP, InputKind, Item, Option, Source, SourcePlugin, passes

log = logging.getLogger("edgekit.wav")


class WavSource(Source):
    """A WAV file in chunks, as fast as possible or at real-time pace (``?realtime=1``), once
    or endlessly (``?loop=1``: the file is heard again and again, time running on)."""

    unit = "chunks"

    def __init__(self, path: str, options: dict[str, Any]) -> None:
        super().__init__()
        from edgekit.features.audio import read_audio

        self.loop = bool(options["loop"])
        self.samples, self.rate = read_audio(Path(path))  # as predict reads a file: mono, the file's rate
        self.realtime = bool(options["realtime"])
        self.chunk_ms = float(options["chunk_ms"])
        self.chunk = max(1, int(self.rate * self.chunk_ms / 1000.0))
        self.name = Path(path).name

    def expect(self, preprocess: Any) -> None:
        """A file shorter than an audio model's window, played once: resampled to the model's
        rate and padded with zeros to one window, as `Model.predict` does with a clip (the
        stream would otherwise never fill a window and give nothing)."""
        from edgekit.features.audio import fit_clip, resample
        from edgekit.spec import AudioPreprocess

        if not isinstance(preprocess, AudioPreprocess) or self.loop or not len(self.samples):
            return
        clip, rate = preprocess.clip_samples, preprocess.sample_rate
        if len(self.samples) * rate >= clip * self.rate:  # at least one window at the model's rate
            return
        seconds = len(self.samples) / self.rate
        padded = fit_clip(resample(self.samples, self.rate, rate), preprocess)
        log.warning("source %s: %.2f s of audio (%d samples at %d Hz), shorter than the model's %.2f s window: "
                    "padded with zeros to one window, as predict pads a clip", self.spec or f"wav:{self.name}",
                    seconds, len(self.samples), self.rate, clip / rate)
        self.samples, self.rate = padded, rate
        self.chunk = max(1, int(self.rate * self.chunk_ms / 1000.0))

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
                      help="a WAV file in chunks, as fast as possible or at real-time pace", open=WavSource,
                      kind=InputKind.AUDIO,
                      options=(Option.flag("realtime", "read at real-time pace"),
                               Option.number("chunk_ms", 100.0, "milliseconds of audio per chunk"), LOOP))
