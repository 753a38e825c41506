"""How the synthetic world looks and sounds: each shape's pixel mask, and each object's tone.

An object's colour sets a tone's pitch and its shape the loudness envelope (the timbre); the world
(:mod:`unimodal.data.synthetic.world`) places the objects and calls these. Every cue is chosen to survive a
learned codec's blur and noise, so that :mod:`unimodal.data.synthetic.analyze` reads generated media back.
"""

from __future__ import annotations

import numpy as np

# Fundamentals (Hz), ~1.29x apart: far apart on a log scale, and no pitch is within 5% of 2x or 3x
# another, so a stray harmonic cannot land on a palette pitch.
PITCHES: dict[str, float] = {
    "red": 240.0,
    "yellow": 310.0,
    "green": 400.0,
    "cyan": 520.0,
    "blue": 670.0,
    "magenta": 870.0,
}

# Sound.
_AMPLITUDE = 0.8
_FADE_S = 0.005
_TREMOLO_HZ = 10.0  # slow enough for a codec with 20 ms frames to keep
_TREMOLO_FLOOR = 0.3  # square never goes silent, so its dips are not mistaken for gaps between tones
_RAMP_END = 0.2  # triangle decays to, and cross rises from, this fraction of full amplitude


def _shape_mask(shape: str, cx, cy, w, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Pixels whose centres (px, py) fall inside the shape; all arguments broadcast together."""
    dx, dy, h = px - cx, py - cy, np.asarray(w) / 2
    if shape == "circle":
        return dx * dx + dy * dy <= h * h
    if shape == "square":
        return (np.abs(dx) <= h) & (np.abs(dy) <= h)
    if shape == "triangle":  # apex up, base along the bottom of the box
        return (dy >= -h) & (dy <= h) & (np.abs(dx) <= (dy + h) / 2)
    if shape == "cross":  # arms one third of the box wide
        t = h / 3
        return ((np.abs(dx) <= t) & (np.abs(dy) <= h)) | ((np.abs(dy) <= t) & (np.abs(dx) <= h))
    raise ValueError(f"unknown shape {shape!r}")


def _envelope(shape: str, t: np.ndarray, duration: float) -> np.ndarray:
    """Loudness over tone time t in [0, duration): the shape's timbre.

    Codecs keep the loudness envelope and the fundamental far better than harmonics, so shape lives in
    the envelope: steady, 10 Hz tremolo, decaying pluck, rising swell. Pluck and swell are exponential,
    i.e. straight lines in log-loudness, which the analyzer fits.
    """
    u = t / duration
    if shape == "circle":
        return np.ones_like(t)
    if shape == "square":
        return _TREMOLO_FLOOR + (1 - _TREMOLO_FLOOR) * (0.5 + 0.5 * np.cos(2 * np.pi * _TREMOLO_HZ * t))
    if shape == "triangle":
        return _RAMP_END**u
    if shape == "cross":
        return _RAMP_END ** (1.0 - u)
    raise ValueError(f"unknown shape {shape!r}")


def _tone(color: str, shape: str, length: int, sample_rate: int) -> np.ndarray:
    t = np.arange(length) / sample_rate
    fade_len = max(1, round(_FADE_S * sample_rate))
    ramp = np.minimum(1.0, np.minimum(np.arange(length), np.arange(length)[::-1]) / fade_len)
    fade = 0.5 - 0.5 * np.cos(np.pi * ramp)  # raised cosine avoids clicks
    envelope = _envelope(shape, t, length / sample_rate)
    return _AMPLITUDE * envelope * fade * np.sin(2 * np.pi * PITCHES[color] * t)
