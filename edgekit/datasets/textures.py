"""Synthetic textured parts with and without surface defects (MVTec-like, grayscale).

A normal image is a regular texture (woven fabric, a grid or perforated plate, or
brushed metal) with small random changes of phase, rotation, scale, brightness,
contrast and illumination, plus sensor noise. An anomalous image is a normal one with
one defect: a scratch (a thin bright or dark line), a hole (a small dark disc), a stain
(a soft blob of other brightness that also dulls the texture) or a missing patch (the
texture worn off a small region).

Fully offline and deterministic for a given generator. numpy only.
"""

from __future__ import annotations

import numpy as np

TEXTURES = ("woven", "grid", "brushed")
DEFECT_KINDS = ("scratch", "hole", "stain", "missing")


def _coordinates(size: int, rng: np.random.Generator, period: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotated, shifted pixel coordinates (u, v), sampled at 2x for anti-aliasing."""
    grid = (np.arange(2 * size, dtype=np.float64) + 0.5) / 2.0 - size / 2.0
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    angle = rng.normal(0.0, 0.05)  # about 3 degrees
    cos, sin = np.cos(angle), np.sin(angle)
    u = xx * cos + yy * sin + rng.uniform(0, period)
    v = -xx * sin + yy * cos + rng.uniform(0, period)
    return u, v


def _downsample(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    return image.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def texture(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A `size` x `size` texture in [0, 1] (float64) of `kind` (one of `TEXTURES`)."""
    if kind == "woven":
        period = size / 5.0 * rng.uniform(0.95, 1.05)
        u, v = _coordinates(size, rng, 2 * period)
        fu, fv = (u / period) % 1.0, (v / period) % 1.0
        over = (np.floor(u / period) + np.floor(v / period)) % 2 == 0
        along_u = np.sin(np.pi * fv) ** 0.7 * (0.7 + 0.3 * np.sin(np.pi * fu))
        along_v = np.sin(np.pi * fu) ** 0.7 * (0.7 + 0.3 * np.sin(np.pi * fv))
        out = np.where(over, along_u, along_v)
    elif kind == "grid":
        period = size / 4.0 * rng.uniform(0.95, 1.05)
        u, v = _coordinates(size, rng, period)
        du = np.minimum(u % period, period - u % period)
        dv = np.minimum(v % period, period - v % period)
        width = rng.uniform(0.7, 1.0)
        lines = np.maximum(np.exp(-((du / width) ** 2)), np.exp(-((dv / width) ** 2)))
        centre = np.hypot(du - period / 2, dv - period / 2)
        dots = np.exp(-((centre / (0.12 * period)) ** 2))  # a small perforation in each cell
        out = 0.85 - 0.65 * lines - 0.35 * dots
    elif kind == "brushed":
        u, v = _coordinates(size, rng, size)
        knots = np.arange(-2 * size, 2 * size + 1, 0.75)
        fine = np.interp(v + 0.02 * u, knots, rng.standard_normal(knots.size))
        coarse = np.interp(v, knots[::4], rng.standard_normal(knots[::4].size))
        streaks = 0.6 * fine + 0.4 * coarse
        sheen = 0.5 * np.cos(2 * np.pi * u / (2.5 * size) + rng.uniform(0, 2 * np.pi))
        out = 0.5 + 0.12 * streaks + 0.15 * sheen
    else:
        raise ValueError(f"unknown texture {kind!r}; expected one of {TEXTURES}")
    return np.clip(_downsample(out), 0.0, 1.0)


def _pixels(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    return yy, xx


def _defect(kind: str, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`image` (0-255 floats) with one defect of `kind`, and the defect's weight map (0-1)."""
    size = image.shape[0]
    yy, xx = _pixels(size)
    cy, cx = rng.uniform(0.2 * size, 0.8 * size, 2)
    level = float(image.mean())
    if kind == "scratch":
        angle = rng.uniform(0, np.pi)
        half = rng.uniform(0.15, 0.3) * size
        dx, dy = np.cos(angle), np.sin(angle)
        along = np.clip((xx - cx) * dx + (yy - cy) * dy, -half, half)
        distance = np.hypot(xx - (cx + along * dx), yy - (cy + along * dy))
        fade = 0.65 + 0.35 * np.cos(np.pi * along / (2 * half))  # fainter towards the ends
        weight = np.exp(-((distance / rng.uniform(0.55, 0.9)) ** 2)) * fade
        sign = 1.0 if rng.random() < 0.6 else -1.0
        return image + sign * rng.uniform(70.0, 110.0) * weight, weight
    if kind == "hole":
        radius = rng.uniform(0.06, 0.11) * size
        weight = np.clip(radius - np.hypot(xx - cx, yy - cy) + 0.5, 0.0, 1.0)
        return image * (1 - weight) + rng.uniform(5.0, 40.0) * weight, weight
    if kind == "stain":
        rx, ry = rng.uniform(0.1, 0.2, 2) * size
        angle = rng.uniform(0, np.pi)
        a = ((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) / rx
        b = (-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) / ry
        ripple = 1.0 + 0.25 * np.sin(3 * np.arctan2(b, a) + rng.uniform(0, 2 * np.pi))
        weight = np.exp(-0.5 * (a * a + b * b) * ripple ** 2)
        sign = 1.0 if rng.random() < 0.4 else -1.0
        dulled = level + (image - level) * (1 - 0.5 * weight)
        return dulled + sign * rng.uniform(35.0, 60.0) * weight, weight
    if kind == "missing":
        half_w, half_h = rng.uniform(0.08, 0.15, 2) * size
        angle = rng.uniform(0, np.pi / 2)
        a = np.abs((xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)) - half_w
        b = np.abs(-(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)) - half_h
        weight = np.clip(0.5 - np.maximum(a, b), 0.0, 1.0)
        flat = level + rng.uniform(-30.0, 30.0)
        return image * (1 - weight) + flat * weight, weight
    raise ValueError(f"unknown defect {kind!r}; expected one of {DEFECT_KINDS}")


def part(kind: str, size: int, rng: np.random.Generator,
         defect: str | None = None) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """One grayscale image of the texture `kind`, with `defect` (one of `DEFECT_KINDS`) or none.

    Returns:
        ``(uint8 (size, size, 3) with three equal channels, the defect's bounding box
        (x0, y0, x1, y1), end exclusive, or None)``.
    """
    base = texture(kind, size, rng)
    mean = rng.uniform(110.0, 150.0)
    contrast = rng.uniform(85.0, 110.0)
    image = mean + contrast * (base - float(base.mean()))
    box = None
    if defect is not None:
        image, weight = _defect(defect, image, rng)
        rows, cols = np.nonzero(weight > 0.25)
        if rows.size:
            box = (int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1)
    yy, xx = _pixels(size)
    tilt = rng.normal(0.0, 6.0, 2) / size  # uneven illumination
    image = image + tilt[0] * (yy - size / 2) + tilt[1] * (xx - size / 2)
    image = image + rng.normal(0.0, rng.uniform(2.0, 5.0), image.shape)
    gray = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2), box
