"""Inputs with nothing in them: images, sounds and clips of noise that every judge must score as misses.

They are the noise control of every score (what a model that outputs junk would reach) and the false-positive
test of the analyzers. Each kind is seeded and drawn in turn, so ``count`` inputs cover every kind evenly.

- images: uniform pixel noise; random colour fields blurred at several scales (smooth blobs of every hue);
  blocks of random colour (2x2 to 16x16 cells) softened by a blur
- sounds: white noise; noise band-limited to the palette's pitch range; noise bursts (random on/off gates);
  brown noise (a random walk: slow loudness swings, most energy low)
- clips: a fresh uniform-noise frame each time; a fresh blurred colour field each time; one colour field
  drifting in a random direction (motion, but of no object)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, signal

IMAGE_NOISE = ("uniform", "field", "blocks")
SOUND_NOISE = ("white", "band", "bursts", "brown")
CLIP_NOISE = ("uniform", "fields", "drift")


def _to_uint8(field: np.ndarray) -> np.ndarray:
    low, high = field.min(), field.max()
    return np.round(255 * (field - low) / max(high - low, 1e-9)).astype(np.uint8)


def noise_image(rng: np.random.Generator, kind: str, size: int = 32) -> np.ndarray:
    """One uint8 ``[size, size, 3]`` image of noise of ``kind`` (one of :data:`IMAGE_NOISE`)."""
    if kind == "uniform":
        return rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    if kind == "field":
        sigma = rng.uniform(0.5, 4.0) * size / 32
        return _to_uint8(ndimage.gaussian_filter(rng.random((size, size, 3)), (sigma, sigma, 0)))
    if kind == "blocks":
        cells = int(rng.choice([2, 4, 8, 16]))
        blocks = rng.random((cells, cells, 3)).repeat(-(-size // cells), 0).repeat(-(-size // cells), 1)
        return _to_uint8(ndimage.gaussian_filter(blocks[:size, :size], (size / 32, size / 32, 0)))
    raise ValueError(f"unknown image noise {kind!r}; expected one of {IMAGE_NOISE}")


def noise_sound(rng: np.random.Generator, kind: str, sample_rate: int = 16000, seconds: float = 0.8) -> np.ndarray:
    """One float32 wave of noise of ``kind`` (one of :data:`SOUND_NOISE`), peak about 0.8."""
    length = round(sample_rate * seconds)
    white = rng.normal(0.0, 1.0, length)
    if kind == "white":
        wave = white
    elif kind == "band":
        nyquist = sample_rate / 2
        b, a = signal.butter(4, [150.0 / nyquist, min(1300.0 / nyquist, 0.99)], "band")
        wave = signal.lfilter(b, a, white)
    elif kind == "bursts":
        gates = np.repeat(rng.random(16) > 0.5, -(-length // 16))[:length].astype(np.float64)
        wave = white * np.convolve(gates, np.ones(max(1, sample_rate // 80)) / max(1, sample_rate // 80), "same")
    elif kind == "brown":
        walk = np.cumsum(white)
        width = max(1, sample_rate // 40)
        wave = walk - np.convolve(walk, np.ones(width) / width, "same")  # no drift to a DC offset
    else:
        raise ValueError(f"unknown sound noise {kind!r}; expected one of {SOUND_NOISE}")
    return (0.8 * wave / max(float(np.abs(wave).max()), 1e-9)).astype(np.float32)


def noise_clip(rng: np.random.Generator, kind: str, frames: int = 9, size: int = 32) -> np.ndarray:
    """One uint8 ``[frames, size, size, 3]`` clip of noise of ``kind`` (one of :data:`CLIP_NOISE`)."""
    if kind == "uniform":
        return rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
    if kind == "fields":
        return np.stack([noise_image(rng, "field", size) for _ in range(frames)])
    if kind == "drift":
        margin = size // 4
        big = noise_image(rng, "field", size + 2 * margin)
        dx, dy = rng.uniform(-1.0, 1.0, 2) * margin / max(frames - 1, 1)
        return np.stack([big[margin + round(dy * t):margin + round(dy * t) + size,
                             margin + round(dx * t):margin + round(dx * t) + size] for t in range(frames)])
    raise ValueError(f"unknown clip noise {kind!r}; expected one of {CLIP_NOISE}")


def noise_images(rng: np.random.Generator, count: int, size: int = 32) -> list[np.ndarray]:
    return [noise_image(rng, IMAGE_NOISE[i % len(IMAGE_NOISE)], size) for i in range(count)]


def noise_sounds(rng: np.random.Generator, count: int, sample_rate: int = 16000,
                 seconds: float = 0.8) -> list[np.ndarray]:
    return [noise_sound(rng, SOUND_NOISE[i % len(SOUND_NOISE)], sample_rate, seconds) for i in range(count)]


def noise_clips(rng: np.random.Generator, count: int, frames: int = 9, size: int = 32) -> list[np.ndarray]:
    return [noise_clip(rng, CLIP_NOISE[i % len(CLIP_NOISE)], frames, size) for i in range(count)]
