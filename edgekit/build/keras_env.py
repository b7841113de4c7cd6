"""Importing Keras/TensorFlow with the settings edgekit relies on, and keeping them quiet."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from types import ModuleType

from edgekit._optional import require


def verbose() -> bool:
    """True when the user asked for detail (``edgekit -v`` sets EDGEKIT_VERBOSE)."""
    return os.environ.get("EDGEKIT_VERBOSE", "") not in ("", "0")


@contextlib.contextmanager
def native_stderr_captured() -> Iterator[None]:
    """Capture what native code writes to file descriptor 2 (TensorFlow's C++ logging,
    which ignores TF_CPP_MIN_LOG_LEVEL before absl initializes, and the converters'
    chatter). It is replayed when the block raises or with ``-v``.
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
            if failed or verbose():
                sink.seek(0)
                text = sink.read().decode("utf-8", "replace")
                if text.strip():
                    sys.stderr.write(text)


def import_keras() -> ModuleType:
    """Import Keras 3 on the TensorFlow backend, without TensorFlow's import-time log lines.

    Raises:
        MissingDependencyError: TensorFlow or Keras is not installed (names the extra).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" not in sys.modules:
        with native_stderr_captured():
            require("tensorflow", "training and exporting models")
    return require("keras", "training and exporting models")


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send library chatter printed on stdout (Keras export prints) to stderr.

    Also silences the FutureWarnings the bundled tf2onnx emits on numpy 2.
    """
    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield
