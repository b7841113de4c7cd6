"""Machine-vibration feature vectors with injected faults, for anomaly detection.

Like the ToyADMOS/DCASE baseline input: `frames` consecutive log-mel frames of
`mels` bins, flattened (5 x 128 = 640). Normal machines hum at a rotation frequency
with decaying harmonics over a noise floor. Faults (`ALL_FAULTS`): an extra resonance,
broadband impacts, a shifted rotation speed, bearing tones (narrow lines at
non-integer multiples of the rotation frequency, as bearing defect frequencies are),
imbalance (a stronger fundamental and second harmonic) or a raised broadband floor.
numpy only, deterministic for a seed.
"""

from __future__ import annotations

import numpy as np

FAULTS = ("resonance", "impacts", "speed")  # what `generate` mixes by default
ALL_FAULTS = (*FAULTS, "bearing", "imbalance", "broadband")


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
    elif fault == "bearing":
        # outer/inner race defect lines (~3.1-3.6x and ~4.9-5.5x the rotation), slightly
        # wavering from frame to frame
        for low, high in ((3.1, 3.6), (4.9, 5.5)):
            center = base * rng.uniform(low, high, (count, 1, 1)) + rng.normal(0, 0.3, (count, frames, 1))
            spectrum += rng.uniform(0.8, 2.0, (count, 1, 1)) * np.exp(-((bins - center) / 1.0) ** 2)
    elif fault == "imbalance":
        for k, (low, high) in ((1, (1.0, 2.5)), (2, (0.6, 1.5))):
            spectrum += rng.uniform(low, high, (count, 1, 1)) * np.exp(-((bins - base * k) / 1.5) ** 2)
    elif fault == "broadband":
        tilt = rng.uniform(-0.5, 0.5, (count, 1, 1)) * np.linspace(-1, 1, mels)[None, None, :]
        spectrum += rng.uniform(0.3, 0.9, (count, 1, 1)) + tilt + rng.normal(0, 0.25, spectrum.shape)
    elif fault not in (None, "speed"):
        raise ValueError(f"unknown fault {fault!r}; expected one of {ALL_FAULTS}")
    return spectrum.reshape(count, frames * mels).astype(np.float32)


def vectors(rng: np.random.Generator, count: int, fault: str | None = None, mels: int = 128,
            frames: int = 5) -> np.ndarray:
    """`count` flattened feature vectors ``(count, frames*mels)``: normal, or with one of `ALL_FAULTS`."""
    return _frames(rng, count, mels, frames, fault)


def generate(normal: int, anomalous: int, mels: int = 128, frames: int = 5,
             seed: int = 0, faults: tuple[str, ...] = FAULTS) -> tuple[np.ndarray, np.ndarray]:
    """``(x (N, frames*mels), y (N,))`` with y = 0 normal, 1 anomalous (`faults` mixed evenly)."""
    rng = np.random.default_rng(seed)
    parts = [_frames(rng, normal, mels, frames, None)]
    per = [anomalous // len(faults) + (i < anomalous % len(faults)) for i in range(len(faults))]
    parts += [_frames(rng, n, mels, frames, fault) for n, fault in zip(per, faults, strict=True) if n]
    x = np.concatenate(parts)
    y = np.concatenate([np.zeros(normal, np.int64), np.ones(anomalous, np.int64)])
    order = rng.permutation(len(x))
    return x[order], y[order]
