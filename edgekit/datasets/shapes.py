"""Synthetic images of shapes: varied colours, sizes, positions, backgrounds and noise.

Fully offline and deterministic for a given seed. numpy only.
"""

from __future__ import annotations

import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")


def _masks(kind: int, size: int, cx: np.ndarray, cy: np.ndarray, r: np.ndarray) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dx = xx[None] - cx[:, None, None]
    dy = yy[None] - cy[:, None, None]
    rr = r[:, None, None]
    name = SHAPE_CLASSES[kind]
    if name == "circle":
        return dx**2 + dy**2 <= rr**2
    if name == "square":
        return (np.abs(dx) <= rr * 0.85) & (np.abs(dy) <= rr * 0.85)
    if name == "triangle":  # apex up: inside when below the two slanted edges and above the base
        return (dy <= rr * 0.8) & (dy >= -rr) & (np.abs(dx) <= (dy + rr) * 0.6)
    arm = rr * 0.3  # cross
    return ((np.abs(dx) <= arm) & (np.abs(dy) <= rr)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= rr))


def generate(samples: int, size: int = 32, seed: int = 0,
             classes: tuple[str, ...] = SHAPE_CLASSES) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Make `samples` RGB images of shapes, balanced over `classes`.

    Returns:
        ``(images uint8 (N, size, size, 3), labels int64 (N,), class names)``.
    """
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise ValueError(f"unknown shape classes {unknown}; expected some of {SHAPE_CLASSES}")
    rng = np.random.default_rng(seed)
    labels = np.arange(samples) % len(classes)
    rng.shuffle(labels)
    images = np.empty((samples, size, size, 3), dtype=np.uint8)
    # Background: a random colour with a gentle gradient; foreground: a contrasting colour.
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for index, class_name in enumerate(classes):
        picks = np.flatnonzero(labels == index)
        n = picks.size
        if n == 0:
            continue
        r = rng.uniform(0.18, 0.38, n).astype(np.float32) * size
        cx = rng.uniform(0.0, 1.0, n).astype(np.float32) * (size - 2 * r) + r
        cy = rng.uniform(0.0, 1.0, n).astype(np.float32) * (size - 2 * r) + r
        mask = _masks(SHAPE_CLASSES.index(class_name), size, cx, cy, r)
        bg = rng.uniform(0, 255, (n, 1, 1, 3)).astype(np.float32)
        slope = rng.uniform(-60, 60, (n, 1, 1, 3)).astype(np.float32)
        background = bg + slope * (xx[None, :, :, None] if rng.random() < 0.5 else yy[None, :, :, None])
        fg = (bg + rng.uniform(90, 165, (n, 1, 1, 3)).astype(np.float32)) % 255.0
        image = np.where(mask[..., None], fg, background)
        image += rng.normal(0.0, 8.0, image.shape).astype(np.float32)
        images[picks] = np.clip(image, 0, 255).astype(np.uint8)
    return images, labels.astype(np.int64), tuple(classes)
