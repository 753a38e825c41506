"""Reconstruction metrics of an audio tokenizer on held-out clips, and the report files they go into.

Through the tokenizer contract (``encode(waves, num_codebooks=k)``, ``decode``), at any number of RVQ
levels ``k`` (a lower bitrate of a quantizer-dropout model):

- ``si_snr`` (dB), ``mel_distance`` (multi-scale log-mel L1, the training loss's own spectrogram)
- ``stoi`` (pystoi, 0-1) and ``pesq`` (pesq, wide band at 16 kHz, narrow band at 8 kHz; 1-4.6): the
  reference implementations, both offline algorithms. Each is left out (not faked) when its package is
  missing; PESQ also when the sample rate is neither 8 nor 16 kHz
- ``codebook_usage_per_level`` (fraction of each level's codes used at least once over the whole set),
  ``codebook_usage`` (their mean), ``min_codebook_usage``
- ``tokens_per_second`` and ``bitrate`` (bits per second) at ``k`` levels
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unimodal.errors import DataError
from unimodal.eval.tokenizer_metrics import code_histograms

SPECTROGRAM_FILE = "spectrograms.png"
SAMPLES_DIR = "samples"


@dataclass
class AudioEvaluation:
    metrics: dict[str, Any]
    originals: list[np.ndarray] = field(default_factory=list)         # the first clips, float32
    reconstructions: list[np.ndarray] = field(default_factory=list)   # their reconstructions
    sample_rate: int = 16000


def _stoi(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float | None:
    try:
        from pystoi import stoi
    except ImportError:
        return None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(stoi(reference, estimate, sample_rate, extended=False))
    return None if value == 1e-5 else value   # pystoi's answer for a clip too short to score, not a score


def _pesq(reference: np.ndarray, estimate: np.ndarray, sample_rate: int) -> float | None:
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


@torch.no_grad()
def evaluate_audio_tokenizer(tokenizer: Any, waves: Tensor, num_codebooks: int | None = None, batch_size: int = 16,
                             keep: int = 4, progress: bool = True, desc: str = "evaluate") -> AudioEvaluation:
    """Encode and decode clips ``[N, samples]`` in batches at ``num_codebooks`` levels (all by default)."""
    from tqdm.auto import tqdm

    from unimodal.tokenizers.audio import si_snr

    if len(waves) == 0:
        raise DataError("no audio clips to evaluate the tokenizer on")
    levels = int(num_codebooks or tokenizer.num_codebooks)
    sample_rate = int(tokenizer.sample_rate)
    device = next(tokenizer.parameters()).device
    histograms = torch.zeros(levels, tokenizer.codebook_size, dtype=torch.long)
    sums = {"si_snr": 0.0, "mel_distance": 0.0}
    stoi_scores: list[float] = []
    pesq_scores: list[float] = []
    evaluation = AudioEvaluation({}, sample_rate=sample_rate)
    for start in tqdm(range(0, len(waves), batch_size), desc=desc, disable=not progress, unit="batch"):
        batch = waves[start:start + batch_size].float().to(device)
        codes = tokenizer.encode(batch, num_codebooks=levels)
        recon = tokenizer.decode(codes)[:, : batch.shape[-1]].clamp(-1.0, 1.0)
        sums["si_snr"] += float(si_snr(recon, batch).sum())
        sums["mel_distance"] += float(tokenizer.mel.distance(recon, batch)) * len(batch)
        histograms += code_histograms(codes.transpose(1, 2).cpu(), levels, tokenizer.codebook_size)
        for reference, estimate in zip(batch.cpu().numpy(), recon.cpu().numpy(), strict=True):
            reference = trim_silence(reference)
            estimate = estimate[: len(reference)]
            for scores, metric in ((stoi_scores, _stoi), (pesq_scores, _pesq)):
                value = metric(reference.astype(np.float64), estimate.astype(np.float64), sample_rate)
                if value is not None and math.isfinite(value):
                    scores.append(value)
            if len(evaluation.originals) < keep:
                evaluation.originals.append(reference)
                evaluation.reconstructions.append(estimate)
    usage = (histograms > 0).double().mean(dim=1).tolist()
    frame_rate = float(tokenizer.frame_rate)
    metrics: dict[str, Any] = {key: value / len(waves) for key, value in sums.items()}
    if stoi_scores:
        metrics["stoi"] = float(np.mean(stoi_scores))
    if pesq_scores:
        metrics["pesq"] = float(np.mean(pesq_scores))
    metrics.update(codebook_usage=float(np.mean(usage)), min_codebook_usage=float(min(usage)),
                   codebook_usage_per_level=[round(u, 4) for u in usage], num_codebooks_used=levels,
                   tokens_per_second=levels * frame_rate,
                   bitrate=levels * frame_rate * math.log2(tokenizer.codebook_size), eval_clips=len(waves))
    evaluation.metrics = metrics
    return evaluation


# --- reports -----------------------------------------------------------------------------
def _colour(values: np.ndarray) -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 [H, W, 3]: black -> blue -> red -> yellow -> white (a magma-like ramp)."""
    stops = np.array([[0, 0, 0], [40, 20, 120], [190, 40, 90], [250, 170, 40], [255, 255, 230]], np.float64)
    position = np.clip(values, 0.0, 1.0) * (len(stops) - 1)
    low = np.floor(position).astype(int).clip(0, len(stops) - 2)
    frac = (position - low)[..., None]
    return (stops[low] * (1 - frac) + stops[low + 1] * frac).astype(np.uint8)


def spectrogram_grid(tokenizer: Any, originals: list[np.ndarray], reconstructions: list[np.ndarray],
                     pad: int = 4) -> np.ndarray:
    """Log-mel spectrograms, each original above its reconstruction, clips side by side: uint8 ``[H, W, 3]``.
    Drawn with numpy: matplotlib is not a dependency of this project."""
    mel = tokenizer.mel
    n_fft = mel.n_ffts[-1]
    rows = []
    for pair in (originals, reconstructions):
        tiles = []
        for wave in pair:
            window = getattr(mel, f"window_{n_fft}")
            spec = torch.stft(torch.as_tensor(wave).float()[None], n_fft, hop_length=n_fft // 4, window=window,
                              center=True, return_complex=True).abs() / window.sum()
            tile = torch.log10(torch.einsum("bft,fm->bmt", spec, getattr(mel, f"fbank_{n_fft}"))[0] + 1e-5)
            tiles.append(((tile.numpy() + 5.0) / 5.0)[::-1])   # -100 dB .. 0 dB re full scale, low pitch at the bottom
        rows.append(tiles)
    height = rows[0][0].shape[0] * 2
    widths = [t.shape[1] * 2 for t in rows[0]]
    canvas = np.full((2 * height + 3 * pad, sum(widths) + (len(widths) + 1) * pad, 3), 128, np.uint8)
    for row, tiles in enumerate(rows):
        left = pad
        for tile, width in zip(tiles, widths, strict=True):
            top = pad + row * (height + pad)
            canvas[top:top + height, left:left + width] = _colour(np.kron(tile, np.ones((2, 2))))
            left += width + pad
    return canvas


def write_audio_report(tokenizer: Any, directory: str | Path, metrics: dict[str, Any],
                       evaluation: AudioEvaluation | None = None) -> Path:
    """``spectrograms.png`` and ``samples/NN_original.wav`` / ``NN_reconstruction.wav`` (when ``evaluation``
    holds clips), then ``metrics.json`` and ``card.md``."""
    from PIL import Image

    from unimodal.data.audio_sets import write_wav
    from unimodal.tokenizers.base import write_report

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if evaluation is not None and evaluation.originals:
        Image.fromarray(spectrogram_grid(tokenizer, evaluation.originals, evaluation.reconstructions)).save(
            directory / SPECTROGRAM_FILE)
        samples = directory / SAMPLES_DIR
        samples.mkdir(exist_ok=True)
        for index, (original, recon) in enumerate(zip(evaluation.originals, evaluation.reconstructions,
                                                      strict=True)):
            write_wav(samples / f"{index:02d}_original.wav", original, evaluation.sample_rate)
            write_wav(samples / f"{index:02d}_reconstruction.wav", recon, evaluation.sample_rate)
    write_report(tokenizer, directory, metrics)
    return directory
