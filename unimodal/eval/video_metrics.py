"""Reconstruction metrics of any video tokenizer (through ``encode``/``decode``/``frame_indices`` only).

- ``psnr``: dB per frame, averaged over frames and clips (the decoded frames against the frames they
  stand for: all of them for ``causal3d``, the sampled ones for ``framewise``)
- ``temporal_error``: mean absolute difference between the reconstruction's and the original's change from
  one frame to the next (0 = motion kept exactly; flicker and frozen frames raise it)
- ``codebook_usage``, ``perplexity``: of the code histogram over every clip
- ``tokens_per_clip``
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from unimodal.eval.tokenizer_metrics import PSNR_CAP_DB, code_histograms, usage_and_perplexity


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
            change = (frames.diff(dim=1) - reference.diff(dim=1)).abs().flatten(1).mean(dim=1)
            temporal.append(change)
        histogram = code_histograms(codes, 1, tokenizer.codebook_size)
        counts = histogram if counts is None else counts + histogram
        tokens = int(codes[0].numel())
    usage, perplexity = usage_and_perplexity(counts)
    return {"psnr": float(torch.cat(psnr).mean()),
            "temporal_error": float(torch.cat(temporal).mean()) if temporal else 0.0,
            "codebook_usage": usage, "perplexity": perplexity, "tokens_per_clip": float(tokens)}


def frame_psnr(reference: Tensor, reconstruction: Tensor) -> Tensor:
    """PSNR in dB of each frame pair ``[..., C, H, W]`` in [0, 1] -> ``[...]``."""
    mse = (reconstruction.float() - reference.float()).square().flatten(-3).mean(dim=-1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))).clamp(max=PSNR_CAP_DB)
