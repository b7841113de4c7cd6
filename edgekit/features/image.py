"""Image preprocessing from an `ImagePreprocess` spec: decode, crop, resize, colour, normalize.

The host and the device must compute the same pixels whatever is installed there, so:

- decoding uses Pillow (in the device extras ``litert`` and ``onnx``, and in ``train``)
  when it is installed, OpenCV only where Pillow is not; both give the same RGB pixels
  for the formats edgekit reads (both apply the EXIF orientation, and 16-bit images keep
  their high byte), which tests/features/test_decoder_parity.py checks;
- ``bilinear`` and ``nearest`` resizing (the spec's default is ``bilinear``) are always
  edgekit's numpy implementation of OpenCV's ``INTER_LINEAR`` and ``INTER_NEAREST``
  (half-pixel centres, no antialiasing), never the library's, whose fixed-point
  arithmetic rounds about one pixel value in ten differently; ``area`` and ``bicubic``
  need OpenCV (the ``camera`` extra) on every side.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from edgekit._optional import DISTRIBUTION, available, extra_install
from edgekit.errors import InputError, MissingDependencyError, ShapeError
from edgekit.spec import ImagePreprocess

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")


MAX_IMAGE_PIXELS = 1 << 26  # 64 megapixels: 192 MiB of RGB, before any copy


def _u16(data: bytes, at: int, order: str = "little") -> int:
    return int.from_bytes(data[at : at + 2], order)


def _u32(data: bytes, at: int, order: str = "little") -> int:
    return int.from_bytes(data[at : at + 4], order)


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG whose chunks all fit in the data (OpenCV 5 allocates a
    chunk's declared length before it reads it: 2 GB for a 268-byte file)."""
    at, size = 8, None
    while at + 8 <= len(data):
        length, kind = _u32(data, at, "big"), data[at + 4 : at + 8]
        if length > len(data) - at - 12:
            raise ValueError(f"a {kind!r} chunk of {length} bytes where {max(0, len(data) - at - 12)} remain")
        if kind == b"IHDR" and length >= 8:
            size = (_u32(data, at + 8, "big"), _u32(data, at + 12, "big"))
        if kind == b"IEND":
            break
        at += 12 + length
    if size is None:
        raise ValueError("no IHDR chunk")
    return size


def _jpeg_size(data: bytes) -> tuple[int, int]:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            raise ValueError(f"no marker at byte {at}")
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        length = _u16(data, at + 2, "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC) and at + 9 <= len(data):
            return _u16(data, at + 7, "big"), _u16(data, at + 5, "big")
        if marker == 0xDA or length < 2:
            break
        at += 2 + length
    raise ValueError("no frame header (SOF) before the image data")


def _pnm_size(data: bytes) -> tuple[int, int]:
    tokens: list[bytes] = []
    for line in data[2:4096].split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 2:
            return int(tokens[0]), int(tokens[1])
    raise ValueError("no width and height")


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L" and len(data) >= 25:
        bits = _u32(data, 21)
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(data) >= 30:
        return _u16(data, 26) & 0x3FFF, _u16(data, 28) & 0x3FFF
    raise ValueError(f"an unknown WebP chunk {chunk!r}")


def _bmp_size(data: bytes) -> tuple[int, int]:
    if len(data) < 26:
        raise ValueError("a header cut short")
    if _u32(data, 14) == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return _u16(data, 18), _u16(data, 20)
    return abs(int.from_bytes(data[18:22], "little", signed=True)), abs(int.from_bytes(data[22:26], "little", signed=True))


def _tiff_size(data: bytes) -> tuple[int, int]:
    order = "little" if data[:2] == b"II" else "big"
    ifd = _u32(data, 4, order)
    if ifd + 2 > len(data):
        raise ValueError("the first directory lies beyond the data")
    width = height = None
    for i in range(_u16(data, ifd, order)):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(data):
            raise ValueError("the first directory is cut short")
        tag, kind = _u16(data, entry, order), _u16(data, entry + 2, order)
        value = _u16(data, entry + 8, order) if kind == 3 else _u32(data, entry + 8, order)
        if tag == 256:
            width = value
        elif tag == 257:
            height = value
    if width is None or height is None:
        raise ValueError("no ImageWidth and ImageLength")
    return width, height


# magic -> (format, reader of the header's width and height)
_HEADERS = (
    (b"\x89PNG\r\n\x1a\n", "PNG", _png_size),
    (b"\xff\xd8", "JPEG", _jpeg_size),
    (b"BM", "BMP", lambda d: _bmp_size(d)),
    (b"II*\x00", "TIFF", _tiff_size),
    (b"MM\x00*", "TIFF", _tiff_size),
    *((f"P{n}".encode(), "PNM", _pnm_size) for n in range(1, 7)),
)


def check_image_header(data: bytes, label: str = "image data") -> tuple[str, int, int]:
    """The format and size an image's header declares, checked before a native decoder runs.

    OpenCV decodes whatever format it recognizes, and allocates what a header asks for
    before it reads the pixels: a few hundred bytes could take gigabytes. Only the formats
    edgekit documents (`IMAGE_SUFFIXES`) pass, with at most `MAX_IMAGE_PIXELS` pixels.

    Raises:
        InputError: another format, a damaged header, or too many pixels.
    """
    expected = "a PNG, JPEG, BMP, PNM (PPM/PGM/PBM), WebP or TIFF image"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        fmt, reader = "WebP", _webp_size
    else:
        fmt, reader = next(((f, r) for magic, f, r in _HEADERS if data.startswith(magic)), (None, None))
    if fmt is None or reader is None:
        raise InputError(label, expected=expected, found=f"another format (first bytes {data[:8].hex()})")
    try:
        width, height = reader(data)
    except (ValueError, IndexError) as exc:
        raise InputError(label, expected=f"{expected} with a complete header", found=f"a damaged {fmt} header ({exc})",
                         hint="the file is truncated or corrupt") from exc
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
        raise InputError(label, expected=f"an image of 1 to {MAX_IMAGE_PIXELS} pixels",
                         found=f"a {fmt} header that declares {width} x {height} pixels")
    return fmt, width, height


def missing_decoder() -> MissingDependencyError:
    """The error for an install without an image decoder (neither Pillow nor OpenCV)."""
    return MissingDependencyError(
        "decoding images needs Pillow", expected="Pillow (or OpenCV) importable", found="neither is installed",
        hint=f'install it with: {extra_install("litert")} (or "{DISTRIBUTION}[onnx]"; both bring Pillow)')


def _decode_pillow(data: bytes, label: str) -> np.ndarray:
    import io
    import struct

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            # as OpenCV's IMREAD_COLOR does; in place: without it, a copy even when upright
            ImageOps.exif_transpose(image, in_place=True)
            if image.mode.startswith("I"):  # 16-bit (or 32-bit) gray: the high byte, as OpenCV
                wide = np.asarray(image).astype(np.int64)
                gray = np.clip(wide >> 8, 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=-1)
            return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))  # RGB: no converted copy
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
            ZeroDivisionError, struct.error, Image.DecompressionBombError) as exc:  # what Pillow's plugins raise on bad data
        raise InputError(label, expected="an image Pillow can decode (PNG, JPEG, BMP, ...)",
                         found=" ".join(str(exc).split())[:200] or type(exc).__name__) from exc


def decode_image(source: str | Path | bytes) -> np.ndarray:
    """Decode an image file or encoded bytes to RGB uint8 ``(H, W, 3)``, with Pillow when
    it is installed, else with OpenCV (the same pixels either way).

    Raises:
        InputError: the data is not a decodable image.
        MissingDependencyError: neither Pillow nor OpenCV is installed.
    """
    label = "image data" if isinstance(source, bytes) else f"image {source}"
    try:
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
    except OSError as exc:  # gone since it was listed, a folder named x.png, no permission
        raise InputError(label, expected="a readable image file", found=exc.strerror or str(exc)) from exc
    if not data:
        raise InputError(label, expected="a non-empty image file", found="0 bytes")
    check_image_header(data, label)
    if available("PIL"):
        return _decode_pillow(data, label)
    if available("cv2"):
        import cv2

        try:
            decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:  # a decoder's own checks (e.g. a header's size over OpenCV's limits)
            raise InputError(label, expected="an image OpenCV can decode (PNG, JPEG, BMP, ...)",
                             found="a header OpenCV refuses: " + " ".join(str(exc).split()).split("error: ", 1)[-1][:200]
                             ) from exc
        if decoded is None:
            raise InputError(label, expected="an image OpenCV can decode (PNG, JPEG, BMP, ...)",
                             found="undecodable data")
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    raise missing_decoder()


def _axis(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source positions of `dst` half-pixel centres over `src`: lower index, upper index,
    float32 fraction (OpenCV's ``INTER_LINEAR`` geometry, clamped at the edges)."""
    pos = (np.arange(dst) + 0.5) * (src / dst) - 0.5
    pos = np.clip(pos, 0, src - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (pos - lo).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class _BilinearPlan:
    """Index and weight tables for one (source, target, channels) size: built once, then
    every frame of that size is a few gathers and float32 products, no index maths. The
    tables are separable (rows, and columns within a row), so they stay small: a few
    kilobytes for any frame size."""

    rows: np.ndarray  # (rows used,): the source rows the output needs, ascending
    cols0: np.ndarray  # (width * channels,): the left pixel's value within a row of width * channels
    cols1: np.ndarray  # ... and the right one's
    wa: np.ndarray  # (width * channels,) float32: 1 - fc (weight of the left pixel)
    wb: np.ndarray  # fc
    pos0: np.ndarray  # (height,): the upper row of each output row, as an index into the rows used
    pos1: np.ndarray  # the lower row (the upper one where its weight fr is 0)
    va: np.ndarray  # (height, 1) float32: 1 - fr
    vb: np.ndarray  # fr
    across: bool  # some fc is not 0: the right pixels count
    down: bool  # some fr is not 0: the lower rows count
    pick: bool  # the output rows are not simply the rows used, in order
    every_row: bool  # the rows used are all the source rows


@functools.lru_cache(maxsize=16)
def _bilinear_plan(src_h: int, src_w: int, height: int, width: int, channels: int) -> _BilinearPlan:
    r0, r1, fr = _axis(height, src_h)
    c0, c1, fc = _axis(width, src_w)
    # A lower row whose weight fr is 0 adds exactly +0 (a finite pixel times 0): it need not
    # be interpolated across, and the upper row stands in for it (odd integer ratios such
    # as 480 -> 96, or an unchanged height, need half the rows).
    rows = np.unique(np.concatenate([r0, r1[fr != 0]])).astype(np.intp)  # each interpolated across once
    lanes = np.arange(channels)
    pos0 = np.searchsorted(rows, r0).astype(np.intp)
    pos1 = np.where(fr != 0, np.searchsorted(rows, r1), pos0).astype(np.intp)
    plan = _BilinearPlan(
        rows=rows, cols0=(c0[:, None] * channels + lanes).reshape(-1).astype(np.intp),
        cols1=(c1[:, None] * channels + lanes).reshape(-1).astype(np.intp),
        wa=np.repeat(1 - fc, channels), wb=np.repeat(fc, channels), pos0=pos0, pos1=pos1,
        va=(1 - fr)[:, None], vb=fr[:, None], across=bool(fc.any()), down=bool(fr.any()),
        pick=not np.array_equal(pos0, np.arange(len(rows))), every_row=len(rows) == src_h)
    for field in dataclasses.fields(plan):
        value = getattr(plan, field.name)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)  # shared by every caller of this size
    return plan


def _bilinear_uint8(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of uint8 pixels, bit for bit what `_bilinear_reference` computes.

    The same float32 operations on the same values in the same order (left * (1 - fc) +
    right * fc across each row, then upper * (1 - fr) + lower * fr down the columns,
    rounded to nearest even), so the result does not depend on the implementation: each
    source row used is copied out once and interpolated across once (not once per output
    row that uses it), the gathers use precomputed indices, and terms whose weight is
    exactly 0 (x * 1 + y * 0 == x for finite y >= 0) are left out. The sum of two weights
    exceeds 1 by at most an ulp, so no value passes 255.5 and the clip the reference does
    is a no-op here.
    """
    src_h, src_w, channels = image.shape
    plan = _bilinear_plan(src_h, src_w, height, width, channels)
    if plan.every_row and image.flags.c_contiguous:
        used = image.reshape(src_h, src_w * channels)
    else:  # only the rows used, contiguous (a crop's view is not copied whole)
        used = image[plan.rows].reshape(len(plan.rows), src_w * channels)
    left = used[:, plan.cols0]
    if not plan.across and not plan.down:  # every weight 0 or 1: the pixels themselves
        return (left[plan.pos0] if plan.pick else left).reshape(height, width, channels)
    if plan.across:
        across = np.multiply(left, plan.wa)  # uint8 * float32 -> float32, as astype first
        across += np.multiply(used[:, plan.cols1], plan.wb)
    else:
        across = left.astype(np.float32)
    if plan.down:
        out = np.multiply(across[plan.pos0], plan.va)
        out += np.multiply(across[plan.pos1], plan.vb)
    else:
        out = across[plan.pos0] if plan.pick else across
    np.rint(out, out=out)
    return out.astype(np.uint8).reshape(height, width, channels)


def _bilinear_reference(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize in float32 straight from the definition (any pixel dtype); the
    specification `_bilinear_uint8` follows bit for bit."""
    src_h, src_w = image.shape[:2]
    r0, r1, fr = _axis(height, src_h)
    c0, c1, fc = _axis(width, src_w)
    upper, lower = image[r0], image[r1]  # only the rows used, before any float copy
    top = upper[:, c0].astype(np.float32) * (1 - fc)[None, :, None] + upper[:, c1].astype(np.float32) * fc[None, :, None]
    bottom = lower[:, c0].astype(np.float32) * (1 - fc)[None, :, None] + lower[:, c1].astype(np.float32) * fc[None, :, None]
    out = top * (1 - fr)[:, None, None] + bottom * fr[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if image.dtype == np.uint8 else out.astype(image.dtype)


@functools.lru_cache(maxsize=16)
def _nearest_plan(src_h: int, src_w: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.minimum((np.arange(height) * src_h / height).astype(np.intp), src_h - 1)
    cols = np.minimum((np.arange(width) * src_w / width).astype(np.intp), src_w - 1)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def _resize_numpy(image: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    """OpenCV's ``INTER_NEAREST`` exactly, and ``INTER_LINEAR`` in float32 (within one
    level of OpenCV's fixed-point result)."""
    src_h, src_w = image.shape[:2]
    if method == "nearest":
        rows, cols = _nearest_plan(src_h, src_w, height, width)
        return image.take(rows, axis=0).take(cols, axis=1)
    if image.dtype == np.uint8 and image.ndim == 3:
        return _bilinear_uint8(image, height, width)
    return _bilinear_reference(image, height, width)


def resize(image: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """Resize ``(H, W, C)`` to ``(height, width, C)``: ``bilinear`` and ``nearest`` with
    edgekit's own implementation whatever is installed (so that the host and a device
    without OpenCV compute the same pixels), ``area`` and ``bicubic`` with OpenCV.

    Raises:
        MissingDependencyError: ``area`` or ``bicubic`` without OpenCV.
        ShapeError: a size OpenCV cannot represent.
    """
    if image.shape[0] == height and image.shape[1] == width:
        return image
    if method in ("bilinear", "nearest"):
        return _resize_numpy(image, height, width, method)
    if not available("cv2"):
        raise MissingDependencyError(f"resize={method!r} (the bundle's preprocessing) needs OpenCV",
                                     expected="cv2 importable", found="not installed",
                                     hint=f"install it with: {extra_install('camera')}")
    import cv2

    flags = {"area": cv2.INTER_AREA, "bicubic": cv2.INTER_CUBIC}[method]
    try:
        out = cv2.resize(image, (width, height), interpolation=flags)
    except cv2.error as exc:  # sizes OpenCV cannot represent (a damaged spec)
        raise ShapeError("image resize", expected=f"a size OpenCV can resize to, not {height}x{width}",
                         found=" ".join(str(exc).split()).split("error: ", 1)[-1][:200]) from exc
    return out[..., None] if out.ndim == 2 else out


def center_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    if fraction >= 1.0:
        return image
    h, w = image.shape[:2]
    ch, cw = max(1, int(round(h * fraction))), max(1, int(round(w * fraction)))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


def letterbox(image: np.ndarray, height: int, width: int, method: str = "bilinear",
              pad_value: float = 0.0) -> np.ndarray:
    """Resize ``(H, W, C)`` into ``(height, width, C)`` keeping the aspect ratio; the rest is
    `pad_value`, split evenly (the extra row or column at the bottom or right)."""
    h, w = image.shape[:2]
    ratio = min(height / h, width / w)
    inner_h = min(height, max(1, int(round(h * ratio))))
    inner_w = min(width, max(1, int(round(w * ratio))))
    inner = resize(image, inner_h, inner_w, method)
    fill = np.rint(pad_value) if image.dtype.kind in "ui" else pad_value
    out = np.full((height, width, image.shape[-1]), fill, dtype=image.dtype)
    top, left = (height - inner_h) // 2, (width - inner_w) // 2
    out[top : top + inner_h, left : left + inner_w] = inner
    return out


def to_color_order(rgb: np.ndarray, order: str) -> np.ndarray:
    """Convert RGB ``(H, W, 3)`` to the spec's colour order (gray by ITU-R BT.601 luma)."""
    if order == "rgb":
        return rgb
    if order == "bgr":
        return rgb[..., ::-1]
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]


def prepare(rgb: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """Crop, resize (or letterbox) and colour-convert one RGB image: uint8 ``(height, width, channels)``.

    Training reads images through this same function (`edgekit.train.data`), so the
    geometric steps are one implementation on both sides; the TensorFlow front end then
    does what `normalize` does.

    Raises:
        ShapeError: not an image, or a spec size above `MAX_IMAGE_PIXELS` (a damaged
            bundle's manifest; it would make `resize` allocate that much).
    """
    if spec.height * spec.width > MAX_IMAGE_PIXELS:
        raise ShapeError("preprocess (image) size", expected=f"at most {MAX_IMAGE_PIXELS} pixels",
                         found=f"{spec.height} x {spec.width}")
    image = np.asarray(rgb)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4) or 0 in image.shape:
        raise ShapeError("image", expected="(H, W, 3) RGB pixels, at least one", found=f"shape {image.shape}")
    if image.shape[-1] == 4:
        image = image[..., :3]
    elif image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if spec.crop == "center":
        image = center_crop(image, spec.crop_fraction)
    if spec.letterbox:
        image = letterbox(image, spec.height, spec.width, spec.resize, spec.pad_value)
    else:
        image = resize(image, spec.height, spec.width, spec.resize)
    return to_color_order(image, spec.color_order)


@functools.lru_cache(maxsize=32)
def pixel_table(spec: ImagePreprocess) -> np.ndarray:
    """``(pixel * scale - mean) / std`` for every pixel value: float32 ``(256, channels)``,
    row v the normalized value of a pixel v in each channel (read-only).

    The same float32 operations `normalize` applies to an image, so looking pixels up in
    it gives the same bits as computing them; a front end can also quantize the table once
    instead of every frame (`edgekit.runtime.preprocess`).
    """
    values = np.arange(256, dtype=np.float32)[:, None]
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    table = (values * np.float32(spec.scale) - mean) / std
    table = np.ascontiguousarray(np.broadcast_to(table, (256, spec.channels)))
    table.setflags(write=False)
    return table


def look_up(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[pixel, channel]`` for uint8 ``(..., channels)`` pixels and a ``(256, channels)`` table."""
    channels = table.shape[1]
    if channels == 1 or (table == table[:, :1]).all():  # one table for all channels: no index maths
        if table.dtype.itemsize == 1 and pixels.dtype == np.uint8:  # bytes to bytes: translate, twice take's speed
            out = bytearray(pixels.tobytes()).translate(table[:, 0].tobytes())
            return np.frombuffer(out, dtype=table.dtype).reshape(pixels.shape)
        return table[:, 0].take(pixels)
    index = pixels.astype(np.intp)
    index += np.arange(channels) * 256  # channel c's table starts at c * 256 in table.T
    return np.ascontiguousarray(table.T).reshape(-1).take(index)


def normalize(images: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """Scale, standardize and lay out images that already have the spec's size.

    uint8 pixels are looked up in `pixel_table` (the same bits as the arithmetic, one
    gather instead of three float passes).

    Args:
        images: ``(N, H, W, C)`` or ``(H, W, C)`` pixels in the spec's colour order.
        spec: the bundle's image preprocessing spec.

    Returns:
        float32 ``(pixel * scale - mean) / std`` in the spec's layout, batched.

    Raises:
        InputError: the images do not have the spec's height, width and channels.
    """
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    expected = (spec.height, spec.width, spec.channels)
    if array.ndim != 4 or array.shape[1:] != expected:
        raise ShapeError("images", expected=f"shape (N, {spec.height}, {spec.width}, {spec.channels})",
                         found=f"shape {array.shape}")
    if array.dtype == np.uint8:
        out = look_up(array, pixel_table(spec))
    else:
        mean = np.asarray(spec.mean, dtype=np.float32)
        std = np.asarray(spec.std, dtype=np.float32)
        out = (array.astype(np.float32) * np.float32(spec.scale) - mean) / std
    if spec.layout == "nchw":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out, dtype=np.float32)


def preprocess(rgb: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """One RGB image of any size to one model input (unbatched)."""
    return normalize(prepare(rgb, spec), spec)[0]
