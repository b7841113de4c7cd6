"""An app directory laid out as `edgekit deploy` leaves it on a device (releases/ID, the
`current` link), for the serve tests and tools/serve_soak.py."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from edgekit.deploy.layout import BUNDLE_NAME, CURRENT, RELEASES, release_id


def release(app: Path, bundle: Path) -> str:
    """Put a bundle in APP/releases/ID as deploy does; returns ID."""
    data = bundle.read_bytes()
    rid = release_id(hashlib.sha256(data).hexdigest())
    folder = app / RELEASES / rid
    folder.mkdir(parents=True)
    (folder / BUNDLE_NAME).write_bytes(data)
    return rid


def switch(app: Path, rid: str) -> None:
    """The atomic switch of the contract: a new link renamed over `current`."""
    new = app / ".current.new"
    if new.is_symlink():
        new.unlink()
    os.symlink(f"{RELEASES}/{rid}", new)
    os.replace(new, app / CURRENT)
