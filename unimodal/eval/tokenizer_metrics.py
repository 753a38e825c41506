"""Reconstruction metrics of any image tokenizer, and the report files they go into.

Works through the tokenizer contract only (``encode``, ``decode``, ``codebook_size``,
``num_codebooks``), so grid, 1-D and pretrained tokenizers are measured the same way:

- ``psnr`` (dB, mean over images, capped at ``PSNR_CAP_DB`` for exact copies), ``ssim`` (mean over
  images, torchmetrics' Gaussian-window SSIM), ``mse``
- ``codebook_usage``: fraction of codes used at least once (per codebook, averaged for rvq)
- ``perplexity``: exp of the entropy of the code histogram (per codebook, averaged)
- ``tokens_per_image`` and ``bits_per_image`` (``tokens * log2(codebook_size)``)
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

PSNR_CAP_DB = 100.0  # an exact copy has infinite PSNR; capped so means and JSON stay finite
GRID_FILE = "reconstructions.png"
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, for RGB data shown to a grey tokenizer


# --- per-image quality -------------------------------------------------------------------
def psnr_per_image(reference: Tensor, reconstruction: Tensor) -> Tensor:
    """PSNR in dB of each image pair ``[B, C, H, W]`` in [0, 1] -> ``[B]``."""
    mse = (reconstruction.float() - reference.float()).square().flatten(1).mean(dim=1)
    return (10.0 * torch.log10(1.0 / mse)).clamp(max=PSNR_CAP_DB)


def ssim_per_image(reference: Tensor, reconstruction: Tensor) -> Tensor:
    """SSIM of each image pair ``[B, C, H, W]`` in [0, 1] -> ``[B]``: torchmetrics' 11x11 Gaussian window
    (sigma 1.5) averaged over every pixel, borders reflect-padded (so images need 6+ pixels a side)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(reconstruction.float(), reference.float(), data_range=1.0,
                                               reduction="none")


# --- code statistics ---------------------------------------------------------------------
def code_histograms(codes: Tensor, num_codebooks: int, codebook_size: int) -> Tensor:
    """Codes ``[B, ...]`` (codebook last when ``num_codebooks > 1``) -> counts ``[num_codebooks, codebook_size]``."""
    flat = codes.reshape(-1, num_codebooks).long()
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= codebook_size):
        raise ValueError(f"codes lie in [{int(flat.min())}, {int(flat.max())}], outside [0, {codebook_size})")
    # One bincount for every codebook at once: codebook k's codes are shifted by k * codebook_size.
    offsets = torch.arange(num_codebooks, device=flat.device) * codebook_size
    counts = torch.bincount((flat + offsets).reshape(-1), minlength=num_codebooks * codebook_size)
    return counts.reshape(num_codebooks, codebook_size)


def usage_and_perplexity(histograms: Tensor) -> tuple[float, float]:
    """Counts ``[K, V]`` -> (fraction of codes used, exp(entropy)), each averaged over the K codebooks."""
    counts = histograms.double()
    probs = counts / counts.sum(dim=1, keepdim=True).clamp_min(1.0)
    entropy = -torch.where(probs > 0, probs * probs.log(), torch.zeros_like(probs)).sum(dim=1)
    usage = (counts > 0).double().mean(dim=1)
    return float(usage.mean()), float(entropy.exp().mean())


# --- inputs ------------------------------------------------------------------------------
def image_channels(tokenizer: Any) -> int:
    """Pixel channels an image tokenizer expects (``channels`` attribute or config key; 3 if neither)."""
    channels = getattr(tokenizer, "channels", None)
    if channels is None and hasattr(tokenizer, "get_config"):
        channels = tokenizer.get_config().get("channels")
    return int(channels) if channels is not None else 3


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


# --- the whole set -----------------------------------------------------------------------
@dataclass
class ImageEvaluation:
    metrics: dict[str, float]
    originals: Tensor = field(default_factory=lambda: torch.zeros(0))          # first images, [n, C, H, W]
    reconstructions: Tensor = field(default_factory=lambda: torch.zeros(0))    # their reconstructions


def _device(tokenizer: Any) -> torch.device:
    try:
        return next(tokenizer.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


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


# --- reports -----------------------------------------------------------------------------
def reconstruction_grid(originals: Tensor, reconstructions: Tensor, scale: int | None = None,
                        pad: int = 2) -> np.ndarray:
    """Originals in the top row, reconstructions below: uint8 ``[H, W, 3]``, upscaled (nearest) for viewing.

    Grey images are shown grey. (torchvision's ``make_grid`` does the layout, but torchvision is not a
    dependency of this project.)
    """
    from PIL import Image

    if originals.shape != reconstructions.shape or originals.ndim != 4 or len(originals) == 0:
        raise ValueError(f"need two equal image batches [n, C, H, W], got {tuple(originals.shape)} and "
                         f"{tuple(reconstructions.shape)}")
    count, channels, height, width = originals.shape
    rows = []
    for batch in (originals, reconstructions):
        pixels = (batch.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        rows.append(np.repeat(pixels, 3, axis=-1) if channels == 1 else pixels[..., :3])
    canvas = np.full((2 * height + 3 * pad, count * width + (count + 1) * pad, 3), 128, dtype=np.uint8)
    for row, pixels in enumerate(rows):
        top = pad + row * (height + pad)
        for index in range(count):
            left = pad + index * (width + pad)
            canvas[top:top + height, left:left + width] = pixels[index]
    scale = scale or max(1, 128 // max(height, width))
    image = Image.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), Image.NEAREST)
    return np.asarray(image)


def write_image_report(tokenizer: Any, directory: str | Path, metrics: dict[str, Any],
                       evaluation: ImageEvaluation | None = None) -> Path:
    """Write ``reconstructions.png`` (when ``evaluation`` holds images), ``metrics.json`` and ``card.md``."""
    from PIL import Image

    from unimodal.tokenizers.base import write_report

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if evaluation is not None and len(evaluation.originals):
        grid = reconstruction_grid(evaluation.originals, evaluation.reconstructions)
        Image.fromarray(grid).save(directory / GRID_FILE)
    write_report(tokenizer, directory, metrics)
    return directory
