"""Tone-based stand-in for spoken keywords (used when espeak-ng is absent, and by tools).

Each word is a fixed sequence of voiced syllables, each with its own pitch and two
formants; every sample varies speed, pitch, loudness and position within the clip and
is mixed with background noise. Offline and deterministic for a seed. numpy only.
"""

from __future__ import annotations

import numpy as np

DEFAULT_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def _word_plan(word: str) -> list[tuple[float, float, float, float]]:
    """Per syllable: (pitch Hz, formant 1 Hz, formant 2 Hz, relative duration), derived from the word."""
    seed = int.from_bytes(word.encode()[:8].ljust(8, b"\0"), "little")
    rng = np.random.default_rng(seed)
    count = 1 + len(word) % 3
    return [(float(rng.uniform(90, 220)), float(rng.uniform(300, 900)), float(rng.uniform(1000, 2800)),
             float(rng.uniform(0.6, 1.4))) for _ in range(count)]


def utterance(word: str, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One stand-in utterance of `word` (peak 1.0, no padding), with random speed and pitch."""
    plan = _word_plan(word)
    speed = rng.uniform(0.8, 1.25)
    pitch_shift = rng.uniform(0.85, 1.2)
    total = sum(p[3] for p in plan)
    length = int(rate * rng.uniform(0.45, 0.7) / speed)
    parts = []
    for pitch, f1, f2, rel in plan:
        n = max(1, int(length * rel / total))
        t = np.arange(n) / rate
        f0 = pitch * pitch_shift * (1 + 0.1 * np.sin(np.pi * t / t[-1] if n > 1 else t))
        phase = 2 * np.pi * np.cumsum(f0) / rate
        tone = np.zeros(n)
        for k in range(1, 25):
            freq = k * pitch * pitch_shift
            gain = np.exp(-((freq - f1) / 150) ** 2) + 0.6 * np.exp(-((freq - f2) / 250) ** 2) + 0.01 / k
            tone += gain * np.sin(k * phase)
        envelope = np.sin(np.pi * np.arange(n) / n) ** 0.5
        parts.append(tone * envelope)
    sound = np.concatenate(parts)
    return sound / (np.max(np.abs(sound)) + 1e-9)


def synthesize(word: str, rate: int, rng: np.random.Generator, clip_seconds: float = 1.0) -> np.ndarray:
    """One utterance of `word` inside a clip of `clip_seconds`."""
    sound = utterance(word, rate, rng)
    clip = np.zeros(int(rate * clip_seconds))
    start = rng.integers(0, max(1, clip.size - sound.size))
    end = min(clip.size, start + sound.size)
    clip[start:end] = sound[: end - start] * rng.uniform(0.3, 0.9)
    return clip


def generate(samples_per_word: int, words: tuple[str, ...] = DEFAULT_WORDS, rate: int = 16000, seed: int = 0,
             noise_db: tuple[float, float] = (-40.0, -20.0)) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Waveforms ``(N, rate)`` float32, labels ``(N,)``, and the words."""
    rng = np.random.default_rng(seed)
    clips, labels = [], []
    for index, word in enumerate(words):
        for _ in range(samples_per_word):
            clip = synthesize(word, rate, rng)
            noise = rng.standard_normal(clip.size) * 10 ** (rng.uniform(*noise_db) / 20)
            clips.append(clip + noise)
            labels.append(index)
    order = rng.permutation(len(clips))
    return np.asarray(clips, np.float32)[order], np.asarray(labels, np.int64)[order], tuple(words)
