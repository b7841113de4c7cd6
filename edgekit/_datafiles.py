"""Where edgekit's shipped YAML folders (``devices/``, ``models/``) are found.

They live at the repository root, outside the package, and are installed as data files
(``PREFIX/share/edgekit/NAME``, declared in ``pyproject.toml``). Lookup order, first match
of a name wins: folders the caller passes, an environment variable's folders
(``os.pathsep``-separated), the folder of a source checkout, the installed copy.
Standard library only.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from edgekit._optional import DISTRIBUTION


def checkout_dir(name: str) -> Path | None:
    """``NAME/`` of a source checkout (the repository root holds pyproject.toml)."""
    root = Path(__file__).resolve().parent.parent
    folder = root / name
    return folder if folder.is_dir() and (root / "pyproject.toml").is_file() else None


def installed_dir(name: str) -> Path | None:
    """Where pip put ``share/edgekit/NAME``, found through this distribution's file list
    (the distribution is ``edgekit-ml``; a registry project called ``edgekit`` is not ours)."""
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        parts = Path(str(entry)).parts
        if entry.name.endswith(".yaml") and parts[-4:-1] == ("share", "edgekit", name):
            return Path(str(entry.locate())).resolve().parent
    folder = Path(sysconfig.get_path("data")) / "share" / "edgekit" / name
    return folder if folder.is_dir() else None


def search_path(name: str, env_var: str, dirs: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The folders searched, in order, without repeats."""
    found = [Path(d) for d in dirs]
    found += [Path(d) for d in os.environ.get(env_var, "").split(os.pathsep) if d]
    found += [d for d in (checkout_dir(name), installed_dir(name)) if d is not None]
    return list(dict.fromkeys(found))
