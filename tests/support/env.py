"""Where the repository is, and skipping (or failing, under ``EDGEKIT_STRICT_TESTS=1``) when
a Python module, a system program or a shared library is missing."""

from __future__ import annotations

import ctypes.util
import functools
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

STRICT = os.environ.get("EDGEKIT_STRICT_TESTS") == "1"
REPO = Path(__file__).resolve().parents[2]


def _fail_or_skip(message: str) -> None:
    if STRICT:
        pytest.fail(message)
    pytest.skip(message)


def need_module(module: str, install: str) -> None:
    """Skip (or fail under EDGEKIT_STRICT_TESTS=1) when `module` is not importable."""
    if importlib.util.find_spec(module) is None:
        _fail_or_skip(f"needs the Python module {module}: {install}")


def need_program(program: str, install: str) -> str:
    """Path of a system program, or skip/fail with its install command."""
    found = shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin:/usr/local/sbin")
    if found is None:
        _fail_or_skip(f"needs the program {program}: {install}")
    return found


@functools.lru_cache(maxsize=1)
def _ldconfig_sonames() -> frozenset[str]:
    """Sonames in the dynamic linker's cache (``ldconfig -p``); empty where there is none."""
    for ldconfig in ("ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"):
        try:
            out = subprocess.run([ldconfig, "-p"], capture_output=True, text=True, timeout=30, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        return frozenset(line.split()[0] for line in out.splitlines()[1:] if line.strip())
    return frozenset()


def find_library(name: str) -> str | None:
    """A shared library the dynamic linker finds: `name` as ``ctypes.util.find_library``
    takes it (``portaudio``), or an exact soname (``libportaudio.so.2``)."""
    if ".so" in name:
        return name if name in _ldconfig_sonames() else None
    return ctypes.util.find_library(name)


def need_library(name: str, install: str) -> str:
    """The soname of a shared library (`find_library`), or skip/fail with its install command."""
    found = find_library(name)
    if found is None:
        _fail_or_skip(f"needs the shared library {name}: {install}")
    return found


def need_file(path: Path | str, install: str) -> Path:
    """A file a system package provides (data, configuration), or skip/fail with its install command."""
    path = Path(path)
    if not path.exists():
        _fail_or_skip(f"needs {path}: {install}")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FIXTURES = REPO / "tests" / "fixtures"
