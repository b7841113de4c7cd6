"""``serial:PORT``: sensor lines from a serial port through pyserial
(``serial:/dev/ttyUSB0?baud=115200``), CSV or JSON lines as `sensor` reads them,
reconnecting when the device goes away."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from edgekit.errors import InputError
from edgekit.runtime.sources.base import InputKind, Option, SourcePlugin
from edgekit.runtime.sources.sensor import LinesSource

MAX_LINE_BYTES = 64 * 1024  # a device that never sends a newline must not fill the memory


class SerialSource(LinesSource):
    """Sensor lines from a serial port (pyserial): CSV or JSON lines, reconnecting when the
    device goes away (``serial:/dev/ttyUSB0?baud=115200``)."""

    def __init__(self, port: str, options: dict[str, Any]) -> None:
        from edgekit._optional import require

        self.serial = require("serial", "reading serial ports")
        self.baud = int(options.get("baud", 115200))
        self.port = port
        self.closed = False
        self.device = self._open(first=True)
        super().__init__(self._lines(), f"serial:{port}")

    def _open(self, first: bool = False) -> Any:
        try:
            return self.serial.Serial(self.port, self.baud, timeout=0.5)
        except (self.serial.SerialException, OSError, ValueError) as exc:
            if first:
                raise InputError(f"source serial:{self.port}", expected="a serial port that opens",
                                 found=str(exc), hint="check the device path and permissions (dialout group)") from exc
            return None

    def _lines(self) -> Iterator[str]:
        buffer = b""
        backoff = 0.5
        while not self.closed:
            if self.device is None:
                time.sleep(backoff)
                self.device = self._open()
                backoff = min(backoff * 2, 8.0)
                if self.device is not None:
                    self.counters.reconnects += 1
                    backoff = 0.5
                continue
            try:
                chunk = self.device.read(4096)
            except (self.serial.SerialException, OSError):
                self.device.close()
                self.device = None
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line.decode("utf-8", "replace")
            if len(buffer) > MAX_LINE_BYTES:  # no newline in sight: drop it, count one malformed line
                buffer = b""
                self.counters.malformed += 1

    def close(self) -> None:
        self.closed = True
        if self.device is not None:
            self.device.close()


PLUGIN = SourcePlugin(form="serial:/dev/ttyUSB0?baud=115200",
                      help="sensor lines (CSV or JSON) from a serial port, reconnecting", open=SerialSource,
                      kind=InputKind.ROWS, options=(Option.integer("baud", 115200, "bits per second"),))
