"""The release directory on a device (the issue 19 contract, shared with `edgekit serve`).

``APP_DIR = $XDG_DATA_HOME/edgekit/APP`` (``~/.local/share/edgekit/APP`` by default)::

    APP_DIR/releases/ID/bundle.edgekit   ID: the first 16 hex digits of the bundle file's sha256
    APP_DIR/releases/.tmp-ID-XXXXXX/     an upload in progress (removed by the next deploy)
    APP_DIR/current  -> releases/ID      relative links, switched by renaming a new link over them
    APP_DIR/previous -> releases/ID      the release served before (the rollback target)
    APP_DIR/serve.json                   written by `edgekit serve`
    APP_DIR/.deploy.lock/owner           a deploy in progress ("HOST PID TOKEN" of the deploying machine)

Standard library only (this is the device side).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from edgekit.errors import InputError

RELEASES = "releases"
CURRENT = "current"
PREVIOUS = "previous"
BUNDLE_NAME = "bundle.edgekit"
STATE_NAME = "serve.json"
TEMP_PREFIX = ".tmp-"
LOCK = ".deploy.lock"
LOCK_STALE_S = 1800  # a lock this old is taken over (its deploy died on another machine)
ID_DIGITS = 16
_APP_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$")


def data_dir() -> Path:
    """``$XDG_DATA_HOME/edgekit``, else ``~/.local/share/edgekit``."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "edgekit"


def check_app_name(name: str) -> str:
    """`name` when it can be a folder name on the device.

    Raises:
        InputError: empty, too long, a path, or characters other than letters, digits, ``._-``.
    """
    if not _APP_NAME.match(name or ""):
        raise InputError(f"app name {name!r}", expected="1-64 letters, digits, '.', '_' or '-', not starting with '.'"
                         " or '-'", found=repr(name), hint="pass --app NAME")
    return name


def release_id(sha256_hex: str) -> str:
    """The release ID of a bundle file with this sha256."""
    return sha256_hex[:ID_DIGITS]


def link_release(app_dir: Path, name: str) -> str | None:
    """The release ID that ``APP_DIR/NAME`` (current, previous) points at, or None."""
    try:
        target = os.readlink(app_dir / name)
    except OSError:
        return None
    return Path(target).name or None


def releases(app_dir: Path) -> list[str]:
    """Release IDs under ``APP_DIR/releases``, newest first (by the folder's time)."""
    folder = app_dir / RELEASES
    try:
        entries = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:
        return []
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.name for p in entries]


def apps(base: Path | None = None) -> list[Path]:
    """The app folders under the data directory (those with a ``releases`` folder or ``current`` link)."""
    base = base or data_dir()
    try:
        found = [p for p in base.iterdir() if p.is_dir() and ((p / RELEASES).is_dir() or (p / CURRENT).is_symlink())]
    except OSError:
        return []
    return sorted(found)
