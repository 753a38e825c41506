"""Causal 3-D conv encoder and decoder for the ``causal3d`` video tokenizer.

Videos are ``[B, C, T, H, W]``. Every conv pads time on the past side only (with copies of the first frame)
and normalisation is per frame, so an output at time ``t`` never sees a later frame. Temporal downsampling
by 2 with a causal kernel of 3 maps ``1 + 2k`` frames to ``1 + k``: the first frame is encoded alone and each
later latent frame holds a new group of frames (MAGVIT-v2's causal layout). The decoder mirrors it: latent
frame 0 gives one frame, each later one a group, again only from the past.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CausalConv3d(nn.Module):
    """Conv3d whose time padding is ``kernel_t - 1`` copies of the first frame, in front only."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (3, 3, 3),
                 stride: tuple[int, int, int] = (1, 1, 1)) -> None:
        super().__init__()
        kt, kh, kw = kernel
        self.time_pad = kt - 1
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride=stride, padding=(0, kh // 2, kw // 2))

    def forward(self, x: Tensor) -> Tensor:
        if self.time_pad:
            x = torch.cat([x[:, :, :1].expand(-1, -1, self.time_pad, -1, -1), x], dim=2)
        return self.conv(x)


def inflate_time_kernels(module: nn.Module) -> None:
    """Start every causal conv as a per-frame 2-D conv: past time taps 0, the current tap scaled by
    ``sqrt(kernel_t)`` to keep the default init's output scale. The model then starts as a key-frame
    autoencoder (each code frame sees its group's last frame, the decoder repeats it), which learns as fast as an
    image tokenizer, and the past taps learn the motion (MAGVIT-v2's causal inflation, without a 2-D model)."""
    with torch.no_grad():
        for conv in module.modules():
            if isinstance(conv, CausalConv3d) and conv.time_pad:
                conv.conv.weight[:, :, :-1] = 0.0
                conv.conv.weight[:, :, -1] *= (conv.time_pad + 1) ** 0.5


class FrameNorm(nn.GroupNorm):
    """GroupNorm over each frame alone: a norm over time would let later frames shift earlier outputs."""

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        frames = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        return super().forward(frames).reshape(b, t, c, h, w).permute(0, 2, 1, 3, 4)


class ResBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = FrameNorm(groups, in_channels)
        self.conv1 = CausalConv3d(in_channels, out_channels)
        self.norm2 = FrameNorm(groups, out_channels)
        self.conv2 = CausalConv3d(out_channels, out_channels)
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class Upsample(nn.Module):
    """2x in space (nearest + conv); with ``temporal``, also 2x in time minus one frame (``1 + k`` ->
    ``1 + 2k``): a causal conv doubles the channels, which become two frames per input frame, and the
    first input frame keeps only its second, as the encoder encoded it alone."""

    def __init__(self, channels: int, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal
        self.time_conv = CausalConv3d(channels, 2 * channels, (3, 1, 1)) if temporal else None
        self.conv = CausalConv3d(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.time_conv is not None:
            b, c, t, h, w = x.shape
            pairs = self.time_conv(x).reshape(b, c, 2, t, h, w).permute(0, 1, 3, 2, 4, 5)
            x = pairs.reshape(b, c, 2 * t, h, w)[:, :, 1:]
        x = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
        return self.conv(x)


class CausalEncoder(nn.Module):
    """``[B, C, 1 + 2**td * k, H, W]`` -> ``[B, latent_dim, 1 + k, H / f, W / f]``, ``f = 2**(levels - 1)``."""

    def __init__(self, channels: int, block_channels: list[int], layers_per_block: int, latent_dim: int,
                 temporal_downsample: int, groups: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [CausalConv3d(channels, block_channels[0])]
        previous = block_channels[0]
        for level, width in enumerate(block_channels):
            for _ in range(layers_per_block):
                layers.append(ResBlock(previous, width, groups))
                previous = width
            if level < len(block_channels) - 1:
                temporal = level < temporal_downsample
                layers.append(CausalConv3d(width, width, stride=(2 if temporal else 1, 2, 2)))
        layers += [ResBlock(previous, previous, groups), FrameNorm(groups, previous), nn.SiLU(),
                   CausalConv3d(previous, latent_dim)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class CausalDecoder(nn.Module):
    """The encoder's inverse in shape: ``[B, latent_dim, 1 + k, h, w]`` -> ``[B, C, 1 + 2**td * k, H, W]``."""

    def __init__(self, channels: int, block_channels: list[int], layers_per_block: int, latent_dim: int,
                 temporal_downsample: int, groups: int) -> None:
        super().__init__()
        top = block_channels[-1]
        layers: list[nn.Module] = [CausalConv3d(latent_dim, top), ResBlock(top, top, groups)]
        previous = top
        for level in reversed(range(len(block_channels) - 1)):
            width = block_channels[level]
            for _ in range(layers_per_block):
                layers.append(ResBlock(previous, width, groups))
                previous = width
            layers.append(Upsample(width, temporal=level < temporal_downsample))
        layers += [ResBlock(previous, previous, groups), FrameNorm(groups, previous), nn.SiLU(),
                   CausalConv3d(previous, channels)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
