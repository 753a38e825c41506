"""Video tokenizers: frame-wise (an image tokenizer per sampled frame) and causal spatio-temporal.

Clips are float ``[B, T, C, H, W]`` in [0, 1]; codes are ``[B, t, h, w]`` (``t`` code frames of an ``h x w``
grid); ``decode`` gives ``[B, t', C, H, W]`` frames, played at ``frame_rate`` frames per second.

- ``framewise``: samples ``sample_frames`` frames uniformly from the clip and tokenizes each with an image
  tokenizer built from the ``image`` config (any registered single-codebook image kind); ``t`` is the
  number of sampled frames, and decoding plays them at the rate that keeps the clip's duration.
- ``causal3d``: causal 3-D convs (:mod:`.causal3d`) and a quantizer from :mod:`.quantizers` (fsq, lfq, ...).
  Time is compressed ``2 ** temporal_downsample`` times after the first frame, which is encoded alone, so
  ``T = 1 + 4k`` frames give ``1 + k`` code frames, and the codes of a code frame never depend on later
  frames. Clips of other lengths are padded at the end with their last frame and trimmed after decoding.
  With ``inflate_init`` (default) its convs start as per-frame 2-D convs (:func:`.causal3d.inflate_time_kernels`).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from unimodal.errors import ConfigError
from unimodal.tokenizers.base import ModalityTokenizer, ModuleWeights, register, registered_kind
from unimodal.tokenizers.causal3d import CausalDecoder, CausalEncoder, inflate_time_kernels
from unimodal.tokenizers.losses import reconstruction_loss
from unimodal.tokenizers.quantizers import Quantizer, QuantizerOutput, quantizer_from_config

DEFAULT_QUANTIZER: dict[str, Any] = {"kind": "fsq", "levels": [4, 4, 4]}


def check_clips(videos: Tensor, channels: int) -> None:
    if videos.ndim != 5 or videos.shape[2] != channels:
        raise ValueError(f"expected clips [B, T, {channels}, H, W], got {tuple(videos.shape)}")


class VideoTokenizer(ModalityTokenizer):
    """What both kinds share: the code grid and the frame rate."""

    modality = "video"
    num_frames: int
    fps: float

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """``(t, h, w)`` of one clip of ``num_frames`` frames."""
        raise NotImplementedError

    @property
    def frame_rate(self) -> float:
        """Frames per second of the decoded frames."""
        return self.fps

    def frame_indices(self, num_frames: int) -> np.ndarray:
        """Which input frames the decoded frames stand for (the reference for metrics)."""
        return np.arange(num_frames)

    def num_tokens(self, num_frames: int | None = None) -> int:
        t, h, w = self.grid_shape
        if num_frames is not None and int(num_frames) != self.num_frames:
            raise ValueError(f"this tokenizer is built for clips of {self.num_frames} frames, got {num_frames}")
        return t * h * w


@register
class FramewiseVideoTokenizer(ModuleWeights, nn.Module, VideoTokenizer):
    kind = "framewise"

    def __init__(self, image: dict[str, Any], num_frames: int = 9, sample_frames: int = 9, fps: float = 8.0) -> None:
        super().__init__()
        from unimodal.tokenizers import constructor_options  # the package imports this module

        options = copy.deepcopy(dict(image))
        kind = options.pop("kind", "grid2d")
        cls = registered_kind(kind)
        if cls is None or cls.modality != "image" or not getattr(cls, "trainable", True):
            raise ConfigError(f"tokenizer.video.image.kind={kind!r} is not a trainable image tokenizer kind")
        options = constructor_options(cls, options)
        if not 1 <= int(sample_frames) <= int(num_frames):
            raise ConfigError(f"tokenizer.video.sample_frames={sample_frames} must lie in 1..num_frames={num_frames}")
        self.image = cls(**options)
        if self.image.num_codebooks != 1:
            raise ConfigError(f"tokenizer.video.image: {self.image.num_codebooks} codes per grid cell (rvq); a video "
                              f"frame holds one code per cell: use fsq, vq or lfq")
        self.num_frames, self.sample_frames, self.fps = int(num_frames), int(sample_frames), float(fps)
        self.channels, self.image_size = self.image.channels, self.image.image_size
        self._config = {"image": {"kind": kind, **options}, "num_frames": self.num_frames,
                        "sample_frames": self.sample_frames, "fps": self.fps}
        json.dumps(self._config)

    @property
    def codebook_size(self) -> int:
        return self.image.codebook_size

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        return (self.sample_frames, *self.image.grid_shape)

    @property
    def frame_rate(self) -> float:
        # The sampled frames span the whole clip, so they play slower: the clip keeps its duration.
        return self.fps * max(self.sample_frames - 1, 1) / max(self.num_frames - 1, 1)

    def frame_indices(self, num_frames: int) -> np.ndarray:
        return np.round(np.linspace(0, num_frames - 1, self.sample_frames)).astype(np.int64)

    def _frames(self, videos: Tensor) -> Tensor:
        check_clips(videos, self.channels)
        index = torch.as_tensor(self.frame_indices(videos.shape[1]), device=videos.device)
        return videos.index_select(1, index).flatten(0, 1)

    @torch.no_grad()
    def encode(self, videos: Tensor) -> Tensor:
        """Clips ``[B, T, C, H, W]`` -> codes ``[B, sample_frames, h, w]``."""
        codes = self.image.encode(self._frames(videos))
        return codes.reshape(videos.shape[0], self.sample_frames, *codes.shape[1:])

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``[B, t, h, w]`` -> frames ``[B, t, C, H, W]`` in [0, 1]."""
        if codes.ndim != 4:
            raise ValueError(f"expected codes [B, t, h, w], got {tuple(codes.shape)}")
        frames = self.image.decode(codes.flatten(0, 1))
        return frames.reshape(codes.shape[0], codes.shape[1], *frames.shape[1:])

    def training_loss(self, videos: Tensor) -> tuple[Tensor, dict[str, float]]:
        return self.image.training_loss(self._frames(videos))



@register
class Causal3DVideoTokenizer(ModuleWeights, nn.Module, VideoTokenizer):
    kind = "causal3d"

    def __init__(self, num_frames: int = 9, image_size: int = 32, channels: int = 3,
                 block_channels: list[int] | tuple[int, ...] = (16, 32, 32), layers_per_block: int = 1,
                 temporal_downsample: int = 2, latent_dim: int = 3, norm_groups: int = 8,
                 quantizer: dict[str, Any] | None = None, fps: float = 8.0, l1_weight: float = 1.0,
                 l2_weight: float = 1.0, inflate_init: bool = True) -> None:
        super().__init__()
        block_channels = [int(c) for c in block_channels]
        quantizer = copy.deepcopy(dict(DEFAULT_QUANTIZER if quantizer is None else quantizer))
        levels = len(block_channels)
        if not 0 <= int(temporal_downsample) <= levels - 1:
            raise ConfigError(f"tokenizer.video.temporal_downsample={temporal_downsample}: each 2x in time rides on "
                              f"a 2x in space, so it must lie in 0..len(block_channels)-1={levels - 1}")
        if any(c % int(norm_groups) for c in block_channels):
            raise ConfigError(f"tokenizer.video.block_channels={block_channels}: every entry must be divisible by "
                              f"norm_groups={norm_groups}")
        factor = 2 ** (levels - 1)
        if int(image_size) % factor:
            raise ConfigError(f"tokenizer.video.image_size={image_size} is not divisible by the downsample "
                              f"factor {factor}")
        if "kind" not in quantizer:
            raise ConfigError(f"tokenizer.video.quantizer needs a 'kind', got {quantizer}")
        self._config = {"num_frames": int(num_frames), "image_size": int(image_size), "channels": int(channels),
                        "block_channels": block_channels, "layers_per_block": int(layers_per_block),
                        "temporal_downsample": int(temporal_downsample), "latent_dim": int(latent_dim),
                        "norm_groups": int(norm_groups), "quantizer": quantizer, "fps": float(fps),
                        "l1_weight": float(l1_weight), "l2_weight": float(l2_weight),
                        "inflate_init": bool(inflate_init)}
        json.dumps(self._config)
        self.num_frames, self.image_size, self.channels = int(num_frames), int(image_size), int(channels)
        self.fps, self.l1_weight, self.l2_weight = float(fps), float(l1_weight), float(l2_weight)
        self.downsample_factor = factor
        self.time_factor = 2 ** int(temporal_downsample)
        args = (self.channels, block_channels, int(layers_per_block), int(latent_dim), int(temporal_downsample),
                int(norm_groups))
        self.encoder, self.decoder = CausalEncoder(*args), CausalDecoder(*args)
        if inflate_init:
            inflate_time_kernels(self)
        self.quantizer: Quantizer = quantizer_from_config(quantizer, latent_dim)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        side = self.image_size // self.downsample_factor
        return self.code_frames(self.num_frames), side, side

    def code_frames(self, num_frames: int) -> int:
        """The first frame alone, then one code frame per (started) group of ``time_factor`` frames."""
        return 1 + -(-(int(num_frames) - 1) // self.time_factor)

    def _pad(self, videos: Tensor) -> Tensor:
        """``[B, T, ...]`` -> ``[B, 1 + time_factor * k, ...]``, the last frame repeated (the past is untouched)."""
        frames = 1 + (self.code_frames(videos.shape[1]) - 1) * self.time_factor
        if frames == videos.shape[1]:
            return videos
        return torch.cat([videos, videos[:, -1:].expand(-1, frames - videos.shape[1], -1, -1, -1)], dim=1)

    def encode_latents(self, videos: Tensor) -> Tensor:
        """Clips in [0, 1] -> channel-last latents ``[B, t, h, w, latent_dim]``."""
        check_clips(videos, self.channels)
        x = self._pad(videos).permute(0, 2, 1, 3, 4) * 2.0 - 1.0
        return self.encoder(x).permute(0, 2, 3, 4, 1)

    def decode_latents(self, latents: Tensor, num_frames: int | None = None) -> Tensor:
        """Channel-last latents -> frames ``[B, T, C, H, W]`` in [-1, 1] space, unclamped."""
        frames = self.decoder(latents.permute(0, 4, 1, 2, 3).contiguous()).permute(0, 2, 1, 3, 4)
        return frames if num_frames is None else frames[:, :num_frames]

    def forward(self, videos: Tensor) -> tuple[Tensor, QuantizerOutput]:
        quant = self.quantizer(self.encode_latents(videos))
        return (self.decode_latents(quant.quantized, videos.shape[1]) + 1.0) / 2.0, quant

    @torch.no_grad()
    def encode(self, videos: Tensor) -> Tensor:
        """Clips ``[B, T, C, H, W]`` -> codes ``[B, t, h, w]``; the codebook never changes here."""
        was_training = self.quantizer.training
        self.quantizer.eval()
        try:
            return self.quantizer(self.encode_latents(videos)).codes
        finally:
            self.quantizer.train(was_training)

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``[B, t, h, w]`` -> frames ``[B, T, C, H, W]`` in [0, 1]: ``num_frames`` frames for a whole clip's
        codes, ``1 + time_factor * (t - 1)`` for a shorter prefix."""
        if codes.ndim != 4:
            raise ValueError(f"expected codes [B, t, h, w], got {tuple(codes.shape)}")
        latents = self.quantizer.codes_to_latents(codes.to(next(self.parameters()).device))
        keep = self.num_frames if codes.shape[1] == self.grid_shape[0] else None
        return ((self.decode_latents(latents, keep) + 1.0) / 2.0).clamp(0.0, 1.0)

    def training_loss(self, videos: Tensor) -> tuple[Tensor, dict[str, float]]:
        reconstruction, quant = self(videos)
        return reconstruction_loss(videos, reconstruction, quant.aux_loss, self.l1_weight, self.l2_weight)

