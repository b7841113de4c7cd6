"""Keeping native libraries' stderr chatter away from the user (stdlib only).

Native libraries log on their own, past Python's logging: OpenCV (its ``[ WARN:0@...]``
lines and FFmpeg's ``[tcp @ ...]`` lines), LiteRT/TensorFlow's C++ logging, ONNX
Runtime. Unless the user asked for detail (``edgekit -v``, EDGEKIT_VERBOSE), edgekit
turns them down where each library offers a setting (`quiet_native_logs` before an
import, `quiet_opencv` after, `onnxruntime_log_level` per session) and captures what
is left around model loading (`native_stderr_captured`). A variable the user has set
is left as it is.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


def verbose() -> bool:
    """True when the user asked for detail (``edgekit -v`` sets EDGEKIT_VERBOSE)."""
    return os.environ.get("EDGEKIT_VERBOSE", "") not in ("", "0")


def quiet_native_logs() -> None:
    """Environment defaults read when a native library loads: call before importing
    OpenCV or a TFLite interpreter. Nothing changes with ``-v`` or where the user has set
    the variable."""
    if verbose():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT/TF C++: errors only
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's av_log, through OpenCV: quiet


def quiet_opencv(cv2: Any) -> None:
    """OpenCV's log level from OPENCV_LOG_LEVEL (ERROR by default, `quiet_native_logs`), set
    through its API too: OpenCV reads the variable only when it is first imported, which
    may have happened before edgekit set it."""
    if verbose():
        return
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:  # a build without the logging API
        return
    name = os.environ.get("OPENCV_LOG_LEVEL", "ERROR").upper()
    level = getattr(logging_api, f"LOG_LEVEL_{'SILENT' if name in ('OFF', 'DISABLED') else name}", None)
    if level is not None:
        logging_api.setLogLevel(level)


def onnxruntime_log_level() -> int:
    """ONNX Runtime's ``log_severity_level`` for a session: errors only (3), or warnings
    and more (0, verbose) with ``-v``."""
    return 0 if verbose() else 3


@contextlib.contextmanager
def native_stderr_captured(replay_on_error: bool = True) -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 (TensorFlow's C++ logging,
    which ignores TF_CPP_MIN_LOG_LEVEL before absl initializes, and the converters'
    chatter). It is replayed with ``-v``, and when the block raises unless
    `replay_on_error` is False (a caller that reports the failure itself, e.g. a
    converter error turned into one line naming the op).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): nothing to capture
        yield
        return
    python_stderr = sys.stderr
    # Python-level writes (progress bars, log lines) keep going to the real stderr.
    real = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        sys.stderr = real
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            real.flush()
            sys.stderr = python_stderr
            real.close()
            os.dup2(saved, 2)
            os.close(saved)
            if (failed and replay_on_error) or verbose():
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace")
                if text.strip():
                    sys.stderr.write(text)
