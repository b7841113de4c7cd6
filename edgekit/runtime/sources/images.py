"""``images:DIR``: every image file of a folder, in name order (``?loop=1``: over and over).

Decoding needs Pillow (the device extras bring it) or OpenCV; without either the source
refuses to open (one line naming the extra, exit 1) instead of counting every file as
malformed. A file that does not decode is counted as malformed, skipped, and named in one
log line with the reason (once per file, however often a loop passes it)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit._optional import available
from edgekit.errors import InputError, MissingDependencyError
from edgekit.runtime.sources.base import LOOP, InputKind, Item, Source, SourcePlugin, passes

log = logging.getLogger("edgekit.images")


class ImagesSource(Source):
    """Every image file of a folder, in name order (over and over with ``?loop=1``);
    files that do not decode are counted as malformed, skipped and named once in the log."""

    unit = "files"

    def __init__(self, folder: str, options: dict[str, Any]) -> None:
        super().__init__()
        from edgekit.features.image import IMAGE_SUFFIXES, missing_decoder

        if not (available("PIL") or available("cv2")):
            raise missing_decoder()
        self.loop = bool(options.get("loop", False))
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"source images:{folder}", expected="an existing folder", found="no such folder")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"source images:{folder}", expected="image files (.png, .jpg, ...)", found="none")
        self.reported: set[Path] = set()  # files whose failure was said (or is waiting to be)
        self.waiting: list[str] = []  # failures before the first image that decodes (see `_skipped`)
        self.decoded_any = False

    def __iter__(self) -> Iterator[Item]:
        from edgekit.features.image import decode_image

        for _ in passes(self.loop):
            decoded = 0
            for path in self.files:
                try:
                    image = decode_image(path)
                except MissingDependencyError:  # the install, not the file: never "malformed"
                    raise
                except InputError as exc:
                    self.counters.malformed += 1
                    self._skipped(path, exc)
                    continue
                decoded += 1
                if not self.decoded_any:
                    self.decoded_any = True
                    for why in self.waiting:
                        self._say(why)
                    self.waiting.clear()
                yield Item(image, time.time(), str(path.relative_to(self.folder)))
            if not decoded:  # nothing readable: looping would spin without yielding
                return

    def _skipped(self, path: Path, exc: InputError) -> None:
        """Say once per file which one was skipped and why. Until an image has decoded, the
        lines wait: a folder where none decodes ends the run with one line (`problem` names
        the last file), not with a line per file before it."""
        why = str(exc) if path.name in str(exc) else f"{path.relative_to(self.folder)}: {exc}"
        self.problem = why
        if path in self.reported:
            return
        self.reported.add(path)
        if self.decoded_any:
            self._say(why)
        else:
            self.waiting.append(why)

    def _say(self, why: str) -> None:
        log.warning("source %s: skipped (counted as malformed) %s", self.spec or f"images:{self.folder}", why)


PLUGIN = SourcePlugin(form="images:DIR[?loop=1]", help="every image file of a folder, in name order",
                      open=ImagesSource, kind=InputKind.IMAGE, options=(LOOP,))
