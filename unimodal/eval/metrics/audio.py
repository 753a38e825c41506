"""Audio reconstruction quality on waveforms: SI-SNR, STOI and PESQ.

STOI (pystoi, 0-1) and PESQ (pesq; wide band at 16 kHz, narrow band at 8 kHz; 1-4.6) are the reference
implementations, both offline algorithms. Each gives ``None`` (not a fake number) when its package is missing
or the clip cannot be scored; PESQ also when the sample rate is neither 8 nor 16 kHz.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def si_snr(estimate: Tensor, reference: Tensor, eps: float = 1e-8) -> Tensor:
    """Scale-invariant signal-to-noise ratio in dB, per item: ``[B, L]`` x ``[B, L]`` -> ``[B]``."""
    estimate = estimate - estimate.mean(dim=-1, keepdim=True)
    reference = reference - reference.mean(dim=-1, keepdim=True)
    scale = (estimate * reference).sum(-1, keepdim=True) / (reference.pow(2).sum(-1, keepdim=True) + eps)
    target = scale * reference
    noise = estimate - target
    return 10.0 * torch.log10((target.pow(2).sum(-1) + eps) / (noise.pow(2).sum(-1) + eps))


def stoi_score(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float | None:
    try:
        from pystoi import stoi
    except ImportError:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(stoi(reference, estimate, sample_rate, extended=False))
    return None if value == 1e-5 else value   # pystoi's answer for a clip too short to score, not a score


def pesq_score(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float | None:
    try:
        from pesq import PesqError, pesq
    except ImportError:
        return None
    if sample_rate not in (8000, 16000):
        return None
    try:
        return float(pesq(sample_rate, reference, estimate, "wb" if sample_rate == 16000 else "nb"))
    except PesqError:   # e.g. no utterance found in a near-silent clip: that clip has no PESQ
        return None


def trim_silence(wave: np.ndarray, threshold: float = 1e-4) -> np.ndarray:
    """Drop the all-but-silent tail (clips padded to a fixed length): STOI and PESQ score speech, not padding."""
    loud = np.nonzero(np.abs(wave) > threshold)[0]
    return wave[: int(loud[-1]) + 1] if len(loud) else wave
