"""Image preprocessing from an `ImagePreprocess` spec: decode, crop, resize, colour, normalize.

OpenCV is used when installed (the `camera` extra); otherwise decoding falls back to
Pillow when present, and resizing to a numpy implementation of OpenCV's
``INTER_NEAREST`` and ``INTER_LINEAR`` (half-pixel centres, no antialiasing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._optional import available
from edgekit.errors import InputError, MissingDependencyError, ShapeError
from edgekit.spec import ImagePreprocess

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".webp", ".tif", ".tiff")


def decode_image(source: str | Path | bytes) -> np.ndarray:
    """Decode an image file or encoded bytes to RGB uint8 ``(H, W, 3)``.

    Raises:
        InputError: the data is not a decodable image.
        MissingDependencyError: neither OpenCV nor Pillow is installed.
    """
    label = "image data" if isinstance(source, bytes) else f"image {source}"
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not data:
        raise InputError(label, expected="a non-empty image file", found="0 bytes")
    if available("cv2"):
        import cv2

        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if decoded is None:
            raise InputError(label, expected="an image OpenCV can decode (PNG, JPEG, BMP, ...)",
                             found="undecodable data")
        return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if available("PIL"):
        import io

        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as image:
                return np.asarray(image.convert("RGB"))
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise InputError(label, expected="a decodable image", found=str(exc)) from exc
    raise MissingDependencyError("decoding images needs OpenCV", expected="cv2 importable", found="not installed",
                                 hint='install it with: pip install "edgekit[camera]"')


def _resize_numpy(image: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    src_h, src_w = image.shape[:2]
    if method == "nearest":
        rows = np.minimum((np.arange(height) * src_h / height).astype(np.int64), src_h - 1)
        cols = np.minimum((np.arange(width) * src_w / width).astype(np.int64), src_w - 1)
        return image[rows][:, cols]
    if method != "bilinear":
        raise MissingDependencyError(f"resize={method!r} needs OpenCV", expected="cv2 importable",
                                     found="not installed", hint='install it with: pip install "edgekit[camera]"')

    def axis(dst: int, src: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(dst) + 0.5) * (src / dst) - 0.5
        pos = np.clip(pos, 0, src - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, src - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    r0, r1, fr = axis(height, src_h)
    c0, c1, fc = axis(width, src_w)
    img = image.astype(np.float32)
    top = img[r0][:, c0] * (1 - fc)[None, :, None] + img[r0][:, c1] * fc[None, :, None]
    bottom = img[r1][:, c0] * (1 - fc)[None, :, None] + img[r1][:, c1] * fc[None, :, None]
    out = top * (1 - fr)[:, None, None] + bottom * fr[:, None, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8) if image.dtype == np.uint8 else out.astype(image.dtype)


def resize(image: np.ndarray, height: int, width: int, method: str = "bilinear") -> np.ndarray:
    """Resize ``(H, W, C)`` to ``(height, width, C)``."""
    if image.shape[0] == height and image.shape[1] == width:
        return image
    if available("cv2"):
        import cv2

        flags = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "area": cv2.INTER_AREA,
                 "bicubic": cv2.INTER_CUBIC}[method]
        out = cv2.resize(image, (width, height), interpolation=flags)
        return out[..., None] if out.ndim == 2 else out
    return _resize_numpy(image, height, width, method)


def center_crop(image: np.ndarray, fraction: float) -> np.ndarray:
    if fraction >= 1.0:
        return image
    h, w = image.shape[:2]
    ch, cw = max(1, int(round(h * fraction))), max(1, int(round(w * fraction)))
    top, left = (h - ch) // 2, (w - cw) // 2
    return image[top : top + ch, left : left + cw]


def to_color_order(rgb: np.ndarray, order: str) -> np.ndarray:
    """Convert RGB ``(H, W, 3)`` to the spec's colour order (gray by ITU-R BT.601 luma)."""
    if order == "rgb":
        return rgb
    if order == "bgr":
        return rgb[..., ::-1]
    gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]


def prepare(rgb: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """Crop, resize and colour-convert one RGB image: uint8 ``(height, width, channels)``."""
    image = np.asarray(rgb)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ShapeError("image", expected="(H, W, 3) RGB pixels", found=f"shape {image.shape}")
    if image.shape[-1] == 4:
        image = image[..., :3]
    elif image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    if spec.crop == "center":
        image = center_crop(image, spec.crop_fraction)
    image = resize(image, spec.height, spec.width, spec.resize)
    return to_color_order(image, spec.color_order)


def normalize(images: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """Scale, standardize and lay out images that already have the spec's size.

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
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    out = (array.astype(np.float32) * np.float32(spec.scale) - mean) / std
    if spec.layout == "nchw":
        out = out.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(out, dtype=np.float32)


def preprocess(rgb: np.ndarray, spec: ImagePreprocess) -> np.ndarray:
    """One RGB image of any size to one model input (unbatched)."""
    return normalize(prepare(rgb, spec), spec)[0]
