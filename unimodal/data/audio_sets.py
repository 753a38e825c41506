"""Real audio data in memory: clips with one caption each, shared by ``data=speech`` and audio folders.

Clips keep their own lengths; :meth:`AudioTextSet.media` pads (with silence) or cuts them to the configured
clip length, because the LM's audio span has a fixed number of frames. Long recordings are cut into
windows before they get here (:func:`windows`), so a cut only drops the tail of a clip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from unimodal.errors import DataError


@dataclass
class AudioTextSet:
    """Mono float32 clips in [-1, 1] at ``sample_rate`` with one caption each."""

    waves: list[np.ndarray]
    captions: list[str]
    sample_rate: int
    clip_samples: int                        # media() returns clips of exactly this many samples
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.waves) != len(self.captions):
            raise ValueError(f"{len(self.waves)} clips but {len(self.captions)} captions")

    def __len__(self) -> int:
        return len(self.waves)

    @property
    def attributes(self) -> list[list[list[str]]]:
        return []   # (colour, shape) pairs exist for synthetic scenes only

    def subset(self, indices: list[int] | np.ndarray) -> AudioTextSet:
        picked = [int(i) for i in indices]
        return AudioTextSet([self.waves[i] for i in picked], [self.captions[i] for i in picked], self.sample_rate,
                            self.clip_samples, [self.names[i] for i in picked] if self.names else [])

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor:
        """Clips ``[start, stop)`` as float ``[B, clip_samples]`` (padded with silence or cut)."""
        if modality != "audio":
            raise DataError(f"this data holds sounds and captions only, not {modality}")
        chunk = self.waves[start:stop]
        out = np.zeros((len(chunk), self.clip_samples), dtype=np.float32)
        for row, wave in enumerate(chunk):
            keep = min(len(wave), self.clip_samples)
            out[row, :keep] = wave[:keep]
        return torch.from_numpy(out)

    def crops(self, samples: int, min_rms: float = 0.01) -> torch.Tensor:
        """Every clip cut into non-overlapping windows of ``samples`` (the last one padded), dropping windows
        quieter than ``min_rms``: codec training data, ``[N, samples]``."""
        pieces = [piece for wave in self.waves for piece in windows(wave, samples, pad_last=True)]
        kept = [p for p in pieces if float(np.sqrt(np.mean(np.square(p)))) >= min_rms]
        if not kept:
            raise DataError(f"no window of {samples} samples is louder than rms {min_rms}")
        return torch.from_numpy(np.stack(kept))


def windows(wave: np.ndarray, samples: int, pad_last: bool = False) -> list[np.ndarray]:
    """``wave`` cut into consecutive windows of at most ``samples``; with ``pad_last`` every window is exactly
    ``samples`` long (the last one zero-padded)."""
    pieces = [wave[start:start + samples] for start in range(0, max(len(wave), 1), samples)]
    if pad_last:
        pieces = [np.pad(p, (0, samples - len(p))) if len(p) < samples else p for p in pieces]
    return [p.astype(np.float32, copy=False) for p in pieces if len(p)]


