"""Video reconstruction quality, on tensors: PSNR per frame and the temporal error."""

from __future__ import annotations

import torch
from torch import Tensor

from unimodal.eval.metrics.image import PSNR_CAP_DB


def frame_psnr(reference: Tensor, reconstruction: Tensor) -> Tensor:
    """PSNR in dB of each frame pair ``[..., C, H, W]`` in [0, 1] -> ``[...]``."""
    mse = (reconstruction.float() - reference.float()).square().flatten(-3).mean(dim=-1)
    return (10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))).clamp(max=PSNR_CAP_DB)


def temporal_error(reference: Tensor, reconstruction: Tensor) -> Tensor:
    """Per clip ``[B, T, C, H, W]``: mean absolute difference between the reconstruction's and the original's
    change from one frame to the next (0 = motion kept exactly; flicker and frozen frames raise it)."""
    return (reconstruction.diff(dim=1) - reference.diff(dim=1)).abs().flatten(1).mean(dim=1)
