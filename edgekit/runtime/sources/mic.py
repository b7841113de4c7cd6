"""Microphone source through sounddevice (PortAudio): ``mic[:DEVICE]``.

``DEVICE`` is an input device index or a part of its name (``edgekit devices`` does
not list audio devices; ``python -m sounddevice`` does); empty means the default input.

PortAudio calls back from its own thread with a block of 16-bit samples (the native
format of nearly every microphone, so PortAudio converts nothing). The callback only
converts the block to mono float32 in [-1, 1] and appends it to a bounded buffer (``buffer_s``
seconds); when inference falls behind, the oldest blocks are dropped and counted, so
latency stays bounded. PortAudio's own input overflows are counted as overruns. A
watchdog reopens the stream with backoff (0.5 s doubling to ``backoff_max``) when it
stops (device unplugged, driver error) or delivers nothing for ``timeout`` seconds;
reconnects are counted and logged.

Options (query string): ``rate=16000`` (falls back to the device's default rate when
the device refuses it; the runtime resamples), ``channels=1`` (averaged to mono),
``block_ms=100``, ``buffer_s=2``, ``timeout=2``, ``backoff_max=8``,
``max_reconnects=0`` (0: no limit).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgekit.errors import InputError, MissingDependencyError
from edgekit.runtime.sources.base import InputKind, Item, Option, Source, SourcePlugin

log = logging.getLogger("edgekit.microphone")


def _sounddevice() -> Any:
    from edgekit._optional import require

    try:
        return require("sounddevice", "reading a microphone")
    except OSError as exc:  # the module imports but PortAudio itself is missing
        raise MissingDependencyError(
            "microphone input needs the PortAudio library", expected="libportaudio2 installed",
            found=str(exc), hint="run: sudo apt-get install libportaudio2") from exc


class MicrophoneSource(Source):
    """Yields ``(samples, rate)`` chunks of mono float32 audio as `Item`s."""

    unit = "blocks"

    def __init__(self, device: str, options: dict[str, Any]) -> None:
        super().__init__()
        self.sd = _sounddevice()
        self.device: int | str | None = int(device) if device.isdigit() else (device or None)
        self.rate = int(options["rate"])
        self.channels = int(options["channels"])
        self.block_ms = float(options["block_ms"])
        self.buffer_s = float(options["buffer_s"])
        self.timeout = float(options["timeout"])
        self.backoff_max = float(options["backoff_max"])
        self.max_reconnects = int(options["max_reconnects"])
        self._condition = threading.Condition()
        self._blocks: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        self._buffered = 0
        self._last_block = time.monotonic()
        self._closed = False
        self._ended = False
        self._samples_seen = 0
        self.stream = self._open(first=True)
        self._watchdog = threading.Thread(target=self._watch, name="edgekit-mic-watchdog", daemon=True)
        self._watchdog.start()

    # PortAudio side ------------------------------------------------------------------

    def _open(self, first: bool = False) -> Any:
        """Open and start an input stream, at `rate` or else the device's default rate."""
        sd = self.sd
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as exc:
            if not first:
                raise
            inputs = [f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
            raise InputError(f"source mic:{self.device if self.device is not None else ''}",
                             expected=f"an input device among {inputs or 'none (no input device found)'}",
                             found=str(exc).splitlines()[0],
                             hint="name a device by index or part of its name, e.g. mic:0") from exc
        channels = min(self.channels, int(info["max_input_channels"])) or 1
        last_error: Exception | None = None
        for rate in dict.fromkeys((self.rate, int(info["default_samplerate"]))):
            self.stream_rate = rate  # read by the callback, so set before the stream starts
            try:
                stream = sd.InputStream(device=self.device, samplerate=rate, channels=channels, dtype="int16",
                                        blocksize=max(1, int(rate * self.block_ms / 1000.0)), callback=self._callback)
            except sd.PortAudioError as exc:
                last_error = exc
                continue
            self._last_block = time.monotonic()
            try:
                stream.start()
            except sd.PortAudioError as exc:
                self._release(stream)
                last_error = exc
                continue
            if rate != self.rate and first:
                log.warning("microphone %r refuses %d Hz; capturing at %d Hz (the runtime resamples)",
                            info["name"], self.rate, rate)
            self.device_name = info["name"]
            return stream
        if first:
            raise InputError(f"source mic:{info['name']}", expected=f"a stream at {self.rate} Hz or the device's "
                             f"default rate", found=str(last_error), hint="check that no other program holds the device")
        raise last_error  # type: ignore[misc]

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, status: Any) -> None:
        """PortAudio's thread: copy the block as mono float32 into the bounded buffer."""
        if status.input_overflow:
            self.counters.overruns += 1
        mono = (indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1)).astype(np.float32) * (1.0 / 32768.0)
        capacity = int(self.buffer_s * self.stream_rate)
        with self._condition:
            self._blocks.append((mono, time.time()))
            self._buffered += frames
            while self._buffered > capacity and len(self._blocks) > 1:
                dropped, _ = self._blocks.popleft()
                self._buffered -= len(dropped)
                self.counters.dropped += 1
            self._last_block = time.monotonic()
            self._condition.notify()

    def _watch(self) -> None:
        """Reopen the stream when it stopped or went silent for `timeout` seconds."""
        backoff = 0.5
        failures = 0
        while not self._closed:
            with self._condition:
                self._condition.wait(min(0.25, self.timeout / 4))
                if self._closed:
                    return
                silent = time.monotonic() - self._last_block
            stream = self.stream
            if stream is not None and stream.active and silent < self.timeout:
                continue
            why = "stopped" if stream is not None and not stream.active else f"delivered nothing for {silent:.1f} s"
            self._release(stream)
            self.stream = None
            while not self._closed:
                failures += 1
                if self.max_reconnects and failures > self.max_reconnects:
                    log.warning("microphone stream %s; giving up after %d attempt(s)", why, failures - 1)
                    with self._condition:
                        self._ended = True
                        self._condition.notify_all()
                    return
                log.warning("microphone stream %s; reopening in %.1f s (attempt %d)", why, backoff, failures)
                with self._condition:
                    self._condition.wait(backoff)
                if self._closed:
                    return
                try:
                    self.stream = self._open()
                except (self.sd.PortAudioError, ValueError) as exc:
                    why = f"cannot be reopened ({str(exc).splitlines()[0]})"
                    backoff = min(backoff * 2, self.backoff_max)
                    continue
                self.counters.reconnects += 1
                failures = 0
                backoff = 0.5
                break

    @staticmethod
    def _release(stream: Any) -> None:
        """Abort and close a stream without ever hanging the caller (a driver stuck in a
        read can block PortAudio's stop; the daemon thread is then left behind)."""
        if stream is None:
            return
        closer = threading.Thread(target=lambda: (stream.abort(ignore_errors=True), stream.close(ignore_errors=True)),
                                  name="edgekit-mic-close", daemon=True)
        closer.start()
        closer.join(2.0)

    # consumer side -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Item]:
        while True:
            with self._condition:
                while not self._blocks and not self._closed and not self._ended:
                    self._condition.wait(0.5)
                if not self._blocks:
                    return
                block, stamp = self._blocks.popleft()
                self._buffered -= len(block)
                rate = self.stream_rate
            name = f"mic@{self._samples_seen / rate:.3f}s"
            self._samples_seen += len(block)
            yield Item((block, rate), stamp, name)

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._release(self.stream)
        self.stream = None


PLUGIN = SourcePlugin(form="mic[:DEVICE][?rate=16000]", help="a microphone through PortAudio (sounddevice), "
                      "newest audio kept when inference falls behind", open=MicrophoneSource, kind=InputKind.AUDIO,
                      options=(Option.integer("rate", 16000, "samples per second"),
                               Option.integer("channels", 1, "averaged to mono"),
                               Option.number("block_ms", 100.0, "milliseconds per block"),
                               Option.number("buffer_s", 2.0, "seconds of audio kept when inference falls behind"),
                               Option.number("timeout", 2.0, "seconds of silence before the stream is reopened"),
                               Option.number("backoff_max", 8.0, "longest wait between reopening attempts, seconds"),
                               Option.integer("max_reconnects", 0, "attempts in a row before giving up; 0: no limit",
                                              minimum=0)))
