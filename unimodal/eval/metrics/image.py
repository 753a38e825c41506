"""Image reconstruction quality and code statistics, on tensors.

- ``psnr`` (dB, capped at ``PSNR_CAP_DB`` for exact copies), ``ssim`` (torchmetrics' Gaussian-window SSIM)
- ``codebook_usage``: fraction of codes used at least once (per codebook, averaged); ``perplexity``: exp of the
  entropy of the code histogram (per codebook, averaged)
"""

from __future__ import annotations

import torch
from torch import Tensor

PSNR_CAP_DB = 100.0  # an exact copy has infinite PSNR; capped so means and JSON stay finite


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
