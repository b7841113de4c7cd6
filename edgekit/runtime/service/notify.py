"""The systemd notify protocol (sd_notify(3)) over ``NOTIFY_SOCKET``, with the stdlib.

systemd starts a ``Type=notify`` service with ``NOTIFY_SOCKET`` set to a datagram socket
(a path, or ``@NAME`` for the abstract namespace) and, with ``WatchdogSec=``,
``WATCHDOG_USEC`` (and ``WATCHDOG_PID``). The service sends newline-separated
``KEY=VALUE`` assignments: ``READY=1`` when it serves, ``WATCHDOG=1`` at least every
``WATCHDOG_USEC`` (we ping at half of it), ``STATUS=...`` for ``systemctl status``, and
``STOPPING=1`` when it shuts down. Without ``NOTIFY_SOCKET`` every call does nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time


class Notifier:
    """Sends notify messages to the socket named by the environment (nothing when unset).

    The variables are taken out of `os.environ` (as sd_notify's ``unset_environment``), so
    that child processes (the model probe) do not inherit them.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        if environ is None:
            for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
                os.environ.pop(name, None)
        path = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if path.startswith("@"):
            self.address = b"\0" + path[1:].encode()  # the abstract namespace
        elif path.startswith("/"):
            self.address = path
        self.watchdog_s: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_s = int(usec) / 1e6
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False when not under systemd or the
        socket is gone (systemd restarting: the service goes on)."""
        if self.address is None:
            return False
        message = "\n".join(a.replace("\n", " ") for a in assignments).encode()
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._socket.sendto(message, self.address)
            except OSError:
                return False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def stopping(self, status: str) -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def watchdog_due(self) -> bool:
        """Whether half of the watchdog interval has passed since the last ping."""
        return self.watchdog_s is not None and time.monotonic() - self._last_ping >= self.watchdog_s / 2

    def watchdog(self) -> None:
        """Ping the watchdog if half of its interval has passed (call it from the inference
        loop, so a loop that stops completing inferences stops the pings)."""
        if self.watchdog_due():
            self._last_ping = time.monotonic()
            self.send("WATCHDOG=1")

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None
