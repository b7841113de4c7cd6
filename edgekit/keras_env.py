"""Importing Keras/TensorFlow with the settings edgekit relies on, and keeping them quiet."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator
from types import ModuleType

from edgekit._native import native_stderr_captured
from edgekit._optional import require


def save_model(model: object, path: os.PathLike[str] | str) -> None:
    """``model.save(path)`` without a half-written file at `path`: Keras writes in place,
    so it writes a staged ``.keras`` file next to it, then renames it over `path`."""
    from pathlib import Path

    path = Path(path)
    staged = path.with_name(f".{path.stem}.{os.getpid()}.keras")
    try:
        model.save(staged)  # type: ignore[attr-defined]
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


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
