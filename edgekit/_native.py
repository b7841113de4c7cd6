"""Keeping native libraries' stderr chatter away from the user (stdlib only)."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


def verbose() -> bool:
    """True when the user asked for detail (``edgekit -v`` sets EDGEKIT_VERBOSE)."""
    return os.environ.get("EDGEKIT_VERBOSE", "") not in ("", "0")


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
