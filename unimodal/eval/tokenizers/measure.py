"""Reconstruction metrics of any tokenizer on held-out data, through the tokenizer contract only.

- image (``encode``, ``decode``, ``codebook_size``, ``num_codebooks``): ``psnr``, ``ssim``, ``mse``,
  ``codebook_usage``, ``perplexity``, ``tokens_per_image`` and ``bits_per_image`` (``tokens * log2(codebook_size)``)
  over the whole set in batches, so grid, 1-D and pretrained tokenizers are measured the same way
- audio (``encode(waves, num_codebooks=k)``, ``decode``), at any number of RVQ levels ``k``: ``si_snr``,
  ``mel_distance`` (the training loss's own multi-scale log-mel L1), ``stoi``, ``pesq``, codebook usage per level,
  ``tokens_per_second`` and ``bitrate``
- video (``encode``, ``decode``, ``frame_indices``): ``psnr`` (per decoded frame, against the frames they stand
  for), ``temporal_error``, ``codebook_usage``, ``perplexity``, ``tokens_per_clip``

:func:`measure` is what training records for a freshly trained tokenizer; the ``evaluate_*`` functions also keep
the first examples for the card's figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from unimodal.errors import DataError
from unimodal.eval.metrics.audio import pesq_score, si_snr, stoi_score, trim_silence
from unimodal.eval.metrics.image import code_histograms, psnr_per_image, ssim_per_image, usage_and_perplexity
from unimodal.eval.metrics.video import frame_psnr, temporal_error
from unimodal.tokenizers.base import image_channels

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for RGB data shown to a grey tokenizer


def _device(tokenizer: Any) -> torch.device:
    try:
        return next(tokenizer.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


@torch.no_grad()
def measure(tokenizer: Any, data: Tensor, batch_size: int) -> dict[str, float]:
    """Held-out metrics of a tokenizer: images over the whole set in batches (one code histogram for all);
    sounds and clips on their first ``max(batch_size, 256)``."""
    if tokenizer.modality == "image":
        return evaluate_image_tokenizer(tokenizer, data, batch_size=max(batch_size, 64), progress=False,
                                        keep=0).metrics
    data = data[: max(batch_size, 256)].to(_device(tokenizer))
    if tokenizer.modality == "audio":
        return audio_batch_metrics(tokenizer, data)
    return {k: float(v) for k, v in evaluate_video_tokenizer(tokenizer, data).items()}


def card_examples(tokenizer: Any, held_out: Tensor) -> Any:
    """The first held-out images (8) or sounds (4) through the tokenizer, for the figures of its card (clips: none)."""
    if tokenizer.modality == "image":
        return evaluate_image_tokenizer(tokenizer, held_out[:8], progress=False)
    if tokenizer.modality == "audio":
        return evaluate_audio_tokenizer(tokenizer, held_out[:4], progress=False)
    return None


# --- images ------------------------------------------------------------------------------
def to_model_images(batch: Any, channels: int, size: int | None = None) -> Tensor:
    """uint8 ``[B, H, W, C]`` (numpy or tensor) or float ``[B, C, H, W]`` in [0, 1] -> float ``[B, C, H, W]``
    with the tokenizer's channel count (grey <-> RGB) and, when given, its square ``size``."""
    images = torch.as_tensor(np.asarray(batch)) if not isinstance(batch, Tensor) else batch
    if images.dtype == torch.uint8:
        images = images.float().div(255.0)
        images = images.unsqueeze(-1) if images.ndim == 3 else images
        images = images.permute(0, 3, 1, 2)
    images = images.float()
    if images.ndim != 4:
        raise DataError(f"expected images [B, H, W, C] uint8 or [B, C, H, W] float, got {tuple(images.shape)}")
    have = images.shape[1]
    if have != channels:
        if have == 1:
            images = images.expand(-1, channels, -1, -1)
        elif have == 3 and channels == 1:
            images = (images * images.new_tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
        else:
            raise DataError(f"images have {have} channels; the tokenizer takes {channels}")
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        images = torch.nn.functional.interpolate(images, size=(size, size), mode="bilinear", antialias=True,
                                                 align_corners=False).clamp(0.0, 1.0)
    return images.contiguous()


@dataclass
class ImageEvaluation:
    metrics: dict[str, float]
    originals: Tensor = field(default_factory=lambda: torch.zeros(0))          # first images, [n, C, H, W]
    reconstructions: Tensor = field(default_factory=lambda: torch.zeros(0))    # their reconstructions


@torch.no_grad()
def evaluate_image_tokenizer(tokenizer: Any, images: Any, batch_size: int = 64, progress: bool = True,
                             keep: int = 8, size: int | None = None, desc: str = "evaluate") -> ImageEvaluation:
    """Encode and decode ``images`` in batches; return the metrics and the first ``keep`` image pairs.

    ``images``: uint8 ``[N, H, W, C]`` or float ``[N, C, H, W]`` in [0, 1]; converted batch by batch.
    """
    from tqdm.auto import tqdm

    total = len(images)
    if total == 0:
        raise DataError("no images to evaluate the tokenizer on")
    channels, device = image_channels(tokenizer), _device(tokenizer)
    num_codebooks, codebook_size = int(tokenizer.num_codebooks), int(tokenizer.codebook_size)
    histograms = torch.zeros(num_codebooks, codebook_size, dtype=torch.long, device=device)
    sums = {"psnr": 0.0, "ssim": 0.0, "mse": 0.0}
    tokens = 0
    originals, reconstructions = [], []
    for start in tqdm(range(0, total, batch_size), desc=desc, disable=not progress, unit="batch"):
        batch = to_model_images(images[start:start + batch_size], channels, size).to(device)
        codes = tokenizer.encode(batch)
        decoded = tokenizer.decode(codes).float().clamp(0.0, 1.0)
        if decoded.shape != batch.shape:
            raise ValueError(f"{type(tokenizer).__name__}.decode returned {tuple(decoded.shape)} for input "
                             f"{tuple(batch.shape)}")
        sums["psnr"] += float(psnr_per_image(batch, decoded).sum())
        sums["ssim"] += float(ssim_per_image(batch, decoded).sum())
        sums["mse"] += float((decoded - batch).square().flatten(1).mean(dim=1).sum())
        histograms += code_histograms(codes, num_codebooks, codebook_size)
        tokens = codes[0].numel()  # counted from the codes, so 1-D and grid tokenizers alike
        kept = sum(len(o) for o in originals)
        if kept < keep:
            originals.append(batch[: keep - kept].cpu())
            reconstructions.append(decoded[: keep - kept].cpu())
    usage, perplexity = usage_and_perplexity(histograms.cpu())
    metrics = {key: value / total for key, value in sums.items()}
    metrics.update(codebook_usage=usage, perplexity=perplexity, tokens_per_image=float(tokens),
                   bits_per_image=float(tokens * math.log2(codebook_size)))
    return ImageEvaluation(metrics, torch.cat(originals) if originals else torch.zeros(0),
                           torch.cat(reconstructions) if reconstructions else torch.zeros(0))


# --- sounds ------------------------------------------------------------------------------
@torch.no_grad()
def audio_batch_metrics(tokenizer: Any, waves: Tensor) -> dict[str, float]:
    """Quality of one batch ``[B, samples]`` through the real encode -> decode path, at every level."""
    codes = tokenizer.encode(waves)
    target = tokenizer.prepare(waves)[:, 0, : waves.shape[-1]]
    recon = tokenizer.decode(codes)[:, : waves.shape[-1]]
    usage = [codes[:, k].unique().numel() / tokenizer.codebook_size for k in range(tokenizer.num_codebooks)]
    return {
        "si_snr": float(si_snr(recon, target).mean()),
        "mel_distance": float(tokenizer.mel.distance(recon, target)),
        "codebook_usage": float(sum(usage) / len(usage)),
        "tokens_per_second": float(tokenizer.tokens_per_second),
        "bitrate": float(tokenizer.bitrate),
    }


@dataclass
class AudioEvaluation:
    metrics: dict[str, Any]
    originals: list[np.ndarray] = field(default_factory=list)         # the first clips, float32
    reconstructions: list[np.ndarray] = field(default_factory=list)   # their reconstructions
    sample_rate: int = 16000


@torch.no_grad()
def evaluate_audio_tokenizer(tokenizer: Any, waves: Tensor, num_codebooks: int | None = None, batch_size: int = 16,
                             keep: int = 4, progress: bool = True, desc: str = "evaluate") -> AudioEvaluation:
    """Encode and decode clips ``[N, samples]`` in batches at ``num_codebooks`` levels (all by default)."""
    from tqdm.auto import tqdm

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
            for scores, metric in ((stoi_scores, stoi_score), (pesq_scores, pesq_score)):
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


# --- clips -------------------------------------------------------------------------------
@dataclass
class VideoEvaluation:
    metrics: dict[str, Any]
    originals: list[np.ndarray] = field(default_factory=list)         # the first clips, uint8 [T, H, W, C]
    reconstructions: list[np.ndarray] = field(default_factory=list)   # their decoded frames


@torch.no_grad()
def evaluate_video_tokenizer(tokenizer: Any, videos: Tensor, batch_size: int = 16) -> dict[str, float]:
    device = next(tokenizer.parameters()).device
    psnr, temporal, counts, tokens = [], [], None, 0
    for start in range(0, len(videos), batch_size):
        clips = videos[start:start + batch_size].to(device).float()
        codes = tokenizer.encode(clips)
        frames = tokenizer.decode(codes).float()
        index = torch.as_tensor(tokenizer.frame_indices(clips.shape[1]), device=device)
        reference = clips.index_select(1, index)
        psnr.append(frame_psnr(reference, frames).flatten())
        if frames.shape[1] > 1:
            temporal.append(temporal_error(reference, frames))
        histogram = code_histograms(codes, 1, tokenizer.codebook_size)
        counts = histogram if counts is None else counts + histogram
        tokens = int(codes[0].numel())
    usage, perplexity = usage_and_perplexity(counts)
    return {"psnr": float(torch.cat(psnr).mean()),
            "temporal_error": float(torch.cat(temporal).mean()) if temporal else 0.0,
            "codebook_usage": usage, "perplexity": perplexity, "tokens_per_clip": float(tokens)}


@torch.no_grad()
def psnr_per_frame(tokenizer: Any, videos: Tensor, batch_size: int, progress: bool
                   ) -> tuple[list[float], Tensor]:
    """Mean PSNR at each decoded frame position over all clips, and the decoded frames of the first batch."""
    from tqdm.auto import tqdm

    device = next(tokenizer.parameters()).device
    total, first = None, None
    for start in tqdm(range(0, len(videos), batch_size), desc="video tokenizer", disable=not progress):
        clips = videos[start:start + batch_size].to(device).float()
        frames = tokenizer.decode(tokenizer.encode(clips)).float()
        index = torch.as_tensor(tokenizer.frame_indices(clips.shape[1]), device=device)
        psnr = frame_psnr(clips.index_select(1, index), frames).sum(dim=0).cpu()   # [T']
        total = psnr if total is None else total + psnr
        first = frames.cpu() if first is None else first
    return (total / len(videos)).tolist(), first
