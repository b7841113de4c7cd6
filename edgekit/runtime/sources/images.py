"""``images:DIR``: every image file of a folder, in name order (``?loop=1``: over and over).

Decoding needs Pillow (the device extras bring it) or OpenCV; without either the source
refuses to open (one line naming the extra, exit 1) instead of counting every file as
malformed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

from edgekit._optional import available
from edgekit.errors import InputError, MissingDependencyError
from edgekit.runtime.sources.base import Item, Source, SourcePlugin, loop_option, passes


class ImagesSource(Source):
    """Every image file of a folder, in name order (over and over with ``?loop=1``);
    files that do not decode are counted as malformed and skipped."""

    def __init__(self, folder: str, options: dict[str, str]) -> None:
        super().__init__()
        from edgekit.features.image import IMAGE_SUFFIXES, missing_decoder

        if not (available("PIL") or available("cv2")):
            raise missing_decoder()
        self.loop = loop_option(options, f"source images:{folder}")
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"source images:{folder}", expected="an existing folder", found="no such folder")
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"source images:{folder}", expected="image files (.png, .jpg, ...)", found="none")

    def __iter__(self) -> Iterator[Item]:
        from edgekit.features.image import decode_image

        for _ in passes(self.loop):
            decoded = 0
            for path in self.files:
                try:
                    image = decode_image(path)
                except MissingDependencyError:  # the install, not the file: never "malformed"
                    raise
                except InputError:
                    self.counters.malformed += 1
                    continue
                decoded += 1
                yield Item(image, time.time(), str(path.relative_to(self.folder)))
            if not decoded:  # nothing readable: looping would spin without yielding
                return


PLUGIN = SourcePlugin(form="images:DIR[?loop=1]", help="every image file of a folder, in name order",
                      open=ImagesSource)
