"""Machine-vibration feature vectors with injected faults, for anomaly detection.

Like the ToyADMOS/DCASE baseline input: `frames` consecutive log-mel frames of
`mels` bins, flattened (5 x 128 = 640). Normal machines hum at a rotation frequency
with decaying harmonics over a noise floor; faults add an extra resonance, broadband
impacts, or a shifted rotation speed. numpy only, deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

FAULTS = ("resonance", "impacts", "speed")


def _frames(rng: np.random.Generator, count: int, mels: int, frames: int, fault: str | None) -> np.ndarray:
    bins = np.arange(mels)[None, None, :]
    base = rng.uniform(8, 12, (count, 1, 1))
    if fault == "speed":
        base = base * rng.uniform(1.25, 1.5, (count, 1, 1))
    spectrum = np.full((count, frames, mels), -6.0)
    for k in range(1, 8):
        center = base * k
        spectrum += 5.0 / k * np.exp(-((bins - center) / 1.5) ** 2)
    spectrum += rng.normal(0, 0.4, spectrum.shape)
    if fault == "resonance":
        center = rng.uniform(60, 110, (count, 1, 1))
        spectrum += 2.5 * np.exp(-((bins - center) / 3.0) ** 2)
    elif fault == "impacts":
        hit = rng.random((count, frames, 1)) < 0.5
        spectrum += hit * rng.uniform(1.5, 3.0, (count, frames, 1)) * np.linspace(1, 0.3, mels)[None, None, :]
    return spectrum.reshape(count, frames * mels).astype(np.float32)


def generate(normal: int, anomalous: int, mels: int = 128, frames: int = 5,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(x (N, frames*mels), y (N,))`` with y = 0 normal, 1 anomalous (faults mixed evenly)."""
    rng = np.random.default_rng(seed)
    parts = [_frames(rng, normal, mels, frames, None)]
    per = [anomalous // len(FAULTS) + (i < anomalous % len(FAULTS)) for i in range(len(FAULTS))]
    parts += [_frames(rng, n, mels, frames, fault) for n, fault in zip(per, FAULTS, strict=True) if n]
    x = np.concatenate(parts)
    y = np.concatenate([np.zeros(normal, np.int64), np.ones(anomalous, np.int64)])
    order = rng.permutation(len(x))
    return x[order], y[order]
