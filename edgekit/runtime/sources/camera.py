"""Camera and video sources through OpenCV: ``camera:INDEX``, ``video:FILE``,
``rtsp://...`` and ``http://...`` (MJPEG).

A capture thread reads frames as fast as the camera delivers them and keeps only the
newest (no queue that grows); a frame replaced before inference took it counts as
dropped. A watchdog notices a stall or a disconnect within ``timeout`` seconds and
reconnects with exponential backoff (0.5 s doubling to ``backoff_max``); reconnects are
counted and logged. Files are read frame by frame (none dropped) and end the stream at
their end; live sources run until closed or until ``max_reconnects`` attempts in a row
have failed.

A source that never delivered a frame (no such camera, a wrong URL, a file OpenCV cannot
open) is not waited for: it keeps trying (quietly, unless ``-v``) for ``timeout``
seconds, then iterating it raises one `InputError` (``edgekit run``: one line, exit 1).
``retry=forever`` waits for it instead, with the backoff above (a camera plugged in
later, a stream server that boots after the device). OpenCV's and FFmpeg's own log
lines are turned down unless ``-v`` (`edgekit._native`).

Options (query string): ``timeout=5``, ``backoff_max=8``, ``max_reconnects=0`` (0: no
limit), ``retry=forever``, ``width=``, ``height=``, ``fps=`` (requests to the camera).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from edgekit._native import quiet_native_logs, quiet_opencv, verbose
from edgekit._optional import require
from edgekit.errors import InputError
from edgekit.runtime.sources.base import InputKind, Item, Option, Source, SourcePlugin

log = logging.getLogger("edgekit.camera")


class CameraSource(Source):
    """Newest-frame capture with a watchdog; yields RGB frames as `Item`s."""

    unit = "frames"

    def __init__(self, target: int | str, options: dict[str, Any], live: bool = True) -> None:
        super().__init__()
        quiet_native_logs()  # OpenCV reads its log levels when it loads
        self.cv2 = require("cv2", "reading cameras and video")
        quiet_opencv(self.cv2)
        self.target = target
        self.live = live
        self.timeout = float(options.get("timeout", 5.0))
        self.backoff_max = float(options.get("backoff_max", 8.0))
        self.max_reconnects = int(options.get("max_reconnects", 0))
        self.requests = {k: float(options[k]) for k in ("width", "height", "fps") if options.get(k) is not None}
        self.retry_forever = options.get("retry") == "forever"
        self._started = time.monotonic()
        self._delivered = False  # a frame came: from now on a failure is a drop, reconnected
        self._never_opened: str | None = None  # why the source ended before its first frame
        self._condition = threading.Condition()
        self._frame: Any = None
        self._frame_seq = 0
        self._taken_seq = 0
        self._stamp = 0.0
        self._closed = False
        self._ended = False
        self._failures = 0
        self.frames_captured = 0
        self._thread = threading.Thread(target=self._capture_loop, name="edgekit-capture", daemon=True)
        self._thread.start()

    # capture thread ------------------------------------------------------------------

    def _open(self) -> Any:
        cv2 = self.cv2
        ms = int(self.timeout * 1000)
        if isinstance(self.target, int):
            capture = cv2.VideoCapture(self.target)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            capture = cv2.VideoCapture(self.target, cv2.CAP_FFMPEG, params)
        props = {"width": cv2.CAP_PROP_FRAME_WIDTH, "height": cv2.CAP_PROP_FRAME_HEIGHT, "fps": cv2.CAP_PROP_FPS}
        for key, value in self.requests.items():
            capture.set(props[key], value)
        return capture

    def _capture_loop(self) -> None:
        backoff = 0.5
        while not self._closed:
            capture = self._open()
            if not capture.isOpened():
                capture.release()
                if not self._retry(f"cannot open {self.target!r}", backoff):
                    return
                backoff = min(backoff * 2, self.backoff_max)
                continue
            last_frame = time.monotonic()
            while not self._closed:
                ok, frame = capture.read()
                if ok and frame is not None:
                    backoff = 0.5
                    self._failures = 0
                    last_frame = time.monotonic()
                    self._publish(frame)
                    continue
                if not self.live:  # end of a file
                    capture.release()
                    self._end()
                    return
                if time.monotonic() - last_frame >= self.timeout or not capture.isOpened() or not ok:
                    break
            capture.release()
            if self._closed:
                return
            if not self._retry(f"stream {self.target!r} stalled or disconnected", backoff):
                return
            backoff = min(backoff * 2, self.backoff_max)

    def _retry(self, why: str, delay: float) -> bool:
        self._failures += 1
        first = not self._delivered  # not opened yet: give up after `timeout`, quietly until then
        if first and not self.retry_forever:
            left = self.timeout - (time.monotonic() - self._started)
            if left <= 0 or not self.live:
                self._never_opened = f"{why} ({self._failures} attempt(s) in {self.timeout:g} s)"
                self._end()
                return False
            delay = min(delay, left)  # the last attempt at the timeout, not after it
        if not self.live or (self.max_reconnects and self._failures > self.max_reconnects):
            log.warning("%s; giving up after %d attempt(s)", why, self._failures)
            if first:
                self._never_opened = f"{why} ({self._failures} attempt(s))"
            self._end()
            return False
        self.counters.reconnects += 1
        level = logging.DEBUG if first and not self.retry_forever and not verbose() else logging.WARNING
        log.log(level, "%s; reconnecting in %.1f s (attempt %d)", why, delay, self._failures)
        deadline = time.monotonic() + delay
        with self._condition:
            while not self._closed and time.monotonic() < deadline:
                self._condition.wait(deadline - time.monotonic())
        return not self._closed

    def _publish(self, frame: Any) -> None:
        rgb = self.cv2.cvtColor(frame, self.cv2.COLOR_BGR2RGB)
        with self._condition:
            # Files: every frame is inferred (wait for the consumer); live: newest frame wins.
            while not self.live and not self._closed and self._frame is not None and self._taken_seq < self._frame_seq:
                self._condition.wait(0.5)
            if self._frame is not None and self._taken_seq < self._frame_seq:
                self.counters.dropped += 1  # replaced before anyone took it
            self._frame = rgb
            self._delivered = True
            self._frame_seq += 1
            self._stamp = time.time()
            self.frames_captured += 1
            self._condition.notify_all()

    def _end(self) -> None:
        with self._condition:
            self._ended = True
            self._condition.notify_all()

    # consumer side -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Item]:
        while True:
            with self._condition:
                while not self._closed and self._taken_seq == self._frame_seq and not self._ended:
                    self._condition.wait(0.5)  # wakes up regularly: never a hang on close
                if self._closed or (self._ended and self._taken_seq == self._frame_seq):
                    if self._never_opened is not None and not self._closed:
                        raise self._not_opened_error()
                    return
                frame, seq, stamp = self._frame, self._frame_seq, self._stamp
                self._taken_seq = seq
                self._condition.notify_all()
            yield Item(frame, stamp, f"frame {seq}")

    def _not_opened_error(self) -> InputError:
        spec = self.spec or (f"camera:{self.target}" if isinstance(self.target, int) else str(self.target))
        if not self.live:
            return InputError(f"source {spec}", expected="a video file OpenCV can open",
                              found=str(self._never_opened), hint="check the file's format (ffprobe FILE)")
        where = "ls /dev/video*" if isinstance(self.target, int) else "the URL"
        return InputError(f"source {spec}", expected=f"a camera or stream that delivers frames within "
                          f"timeout={self.timeout:g} s", found=f"none: {self._never_opened}",
                          hint=f"check {where}, raise ?timeout=, or add ?retry=forever to wait for it")

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()
        self._thread.join(timeout=self.timeout + 2)


def camera(rest: str, options: dict[str, Any]) -> Source:
    try:
        index = int(rest or "0")
    except ValueError:
        raise InputError(f"source camera:{rest}", expected="camera:INDEX (e.g. camera:0)", found=rest) from None
    return CameraSource(index, options)


def video(rest: str, options: dict[str, Any]) -> Source:
    from pathlib import Path

    if not Path(rest).is_file():
        raise InputError(f"source video:{rest}", expected="an existing video file", found="no such file")
    return CameraSource(rest, options, live=False)


OPTIONS: tuple[Option, ...] = (
    Option.number("timeout", 5.0, "seconds without a frame before reconnecting"),
    Option.number("backoff_max", 8.0, "longest wait between reconnection attempts, seconds"),
    Option.integer("max_reconnects", 0, "attempts in a row before giving up; 0: no limit", minimum=0),
    Option.choice("retry", ("forever",), meaning="keep waiting for a source that never delivered a frame"),
    Option.number("width", None, "requested of the camera, pixels"),
    Option.number("height", None, "requested of the camera, pixels"),
    Option.number("fps", None, "requested of the camera, frames per second"),
)
CAMERA_OPTIONS = tuple(option.name for option in OPTIONS)


def stream_url(url: str, options: dict[str, Any]) -> Source:
    """A network stream: `options` are its spec's query, typed; edgekit's own are taken out
    and the others (text) go back into the URL (the stream's own query)."""
    own = "&".join(f"{k}={v}" for k, v in options.items() if k not in CAMERA_OPTIONS)
    return CameraSource(url + (f"?{own}" if own else ""), {k: v for k, v in options.items() if k in CAMERA_OPTIONS})


CAMERA = SourcePlugin(form="camera:INDEX[?timeout=5&retry=forever]",
                      help="a camera by index through OpenCV, newest frame kept", open=camera,
                      kind=InputKind.IMAGE, options=OPTIONS)
VIDEO = SourcePlugin(form="video:FILE", help="a video file through OpenCV, every frame", open=video,
                     kind=InputKind.IMAGE, options=OPTIONS)
RTSP = SourcePlugin(form="rtsp://...", help="an RTSP stream through OpenCV's FFmpeg, reconnecting",
                    open=stream_url, kind=InputKind.IMAGE, options=OPTIONS, url=True)
HTTP = SourcePlugin(form="http://... (MJPEG)", help="an MJPEG stream over HTTP or HTTPS, reconnecting",
                    open=stream_url, kind=InputKind.IMAGE, options=OPTIONS, url=True)
