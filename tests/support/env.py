"""Where the repository is, and skipping (or failing, under ``EDGEKIT_STRICT_TESTS=1``) when
a Python module, a system program or a shared library is missing."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

STRICT = os.environ.get("EDGEKIT_STRICT_TESTS") == "1"
REPO = Path(__file__).resolve().parents[2]


def need_module(module: str, install: str) -> None:
    """Skip (or fail under EDGEKIT_STRICT_TESTS=1) when `module` is not importable."""
    if importlib.util.find_spec(module) is None:
        message = f"needs the Python module {module}: {install}"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)


def need_program(program: str, install: str) -> str:
    """Path of a system program, or skip/fail with its install command."""
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin:/usr/local/sbin")
    if found is None:
        message = f"needs the program {program}: {install}"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FIXTURES = REPO / "tests" / "fixtures"
