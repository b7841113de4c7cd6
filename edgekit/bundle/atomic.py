"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A writer killed at any point leaves either the previous file or the new one, never a
partial file under the final name. A killed writer can leave its temp file behind
(``.NAME.PID.RANDOM.tmp``); the next write to the same path removes temp files whose
process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from edgekit.errors import InputError


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete temp files of dead writers for `path`; returns what was removed."""
    removed = []
    prefix = f".{path.name}."
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    for candidate in candidates:
        name = candidate.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        middle = name[len(prefix) : -len(".tmp")].split(".")
        if len(middle) != 2 or not middle[0].isdigit():
            continue
        if pid_alive(int(middle[0])) and int(middle[0]) != os.getpid():
            continue
        with contextlib.suppress(OSError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def fsync_dir(directory: Path) -> None:
    """Make a rename or new entry in `directory` durable (best effort where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some filesystems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temp file next to `path`; on clean exit it replaces `path` atomically.

    Raises:
        InputError: the directory is missing or not writable, or the disk is full.
    """
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(
            f"output directory {target.parent}",
            expected="an existing directory",
            found="no such directory",
            hint="create it first",
        )
    remove_stale_temps(target)
    temp = _temp_name(target)
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as exc:
        raise InputError(f"cannot write {target}", expected="a writable directory",
                         found=exc.strerror or str(exc)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        if isinstance(exc, OSError):
            raise InputError(
                f"writing {target} failed; the previous file (if any) is unchanged",
                expected="the write to complete",
                found=exc.strerror or str(exc),
                hint="free disk space or choose another output path",
            ) from exc
        raise
    try:
        fsync_dir(target.parent)
    except OSError as exc:  # the new file is in place: do not claim the previous one is
        raise InputError(
            f"wrote {target}, but syncing its directory failed, so a power cut could still bring back "
            "the previous file",
            expected="the directory to sync",
            found=exc.strerror or str(exc),
            hint="check the disk",
        ) from exc


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_writer(path) as handle:
        handle.write(data)
