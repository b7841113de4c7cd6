"""Saving the tiny Keras models the tests build."""

from __future__ import annotations

import sys
from pathlib import Path


def save_keras(model, path: Path) -> None:
    """model.save without Keras's stdout chatter."""
    import contextlib

    with contextlib.redirect_stdout(sys.stderr):
        model.save(path)
