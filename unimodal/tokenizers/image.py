"""Image tokenizer: a small VQGAN-style conv autoencoder whose latent grid is quantized.

Images ``[B, C, H, W]`` in ``[0, 1]`` -> codes ``[B, h, w]`` (``[B, h, w, K]`` for ``rvq``) with
``h = H / f``, ``w = W / f`` and ``f = 2 ** (len(block_channels) - 1)``. The encoder and decoder
are diffusers' VAE ``Encoder``/``Decoder``; the quantizer comes from :mod:`.quantizers` and
projects ``latent_dim`` to its own code dimension itself when they differ.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from unimodal.tokenizers.base import ModalityTokenizer, ModuleWeights, register
from unimodal.tokenizers.losses import reconstruction_loss
from unimodal.tokenizers.quantizers import Quantizer, QuantizerOutput, quantizer_from_config

DEFAULT_QUANTIZER: dict[str, Any] = {"kind": "fsq", "levels": [8, 5, 5, 5]}


def _build_encoder_decoder(channels: int, block_channels: list[int], layers_per_block: int, latent_dim: int,
                           norm_groups: int, mid_attention: bool) -> tuple[nn.Module, nn.Module]:
    # Imported here: diffusers pulls in transformers and takes seconds to import, which every
    # `import unimodal.tokenizers` (e.g. for the text tokenizer alone) would otherwise pay.
    from diffusers.models.autoencoders.vae import Decoder, Encoder

    levels = len(block_channels)
    encoder = Encoder(in_channels=channels, out_channels=latent_dim,
                      down_block_types=("DownEncoderBlock2D",) * levels,
                      block_out_channels=tuple(block_channels), layers_per_block=layers_per_block,
                      norm_num_groups=norm_groups, act_fn="silu", double_z=False,
                      mid_block_add_attention=mid_attention)
    decoder = Decoder(in_channels=latent_dim, out_channels=channels,
                      up_block_types=("UpDecoderBlock2D",) * levels,
                      block_out_channels=tuple(block_channels), layers_per_block=layers_per_block,
                      norm_num_groups=norm_groups, act_fn="silu", mid_block_add_attention=mid_attention)
    return encoder, decoder


@register
class GridImageTokenizer(ModuleWeights, nn.Module, ModalityTokenizer):
    """Conv autoencoder + quantizer over a 2-D latent grid."""

    modality = "image"
    kind = "grid2d"

    def __init__(self, image_size: int = 32, channels: int = 3,
                 block_channels: list[int] | tuple[int, ...] = (32, 64, 64), layers_per_block: int = 1,
                 latent_dim: int = 4, quantizer: dict[str, Any] | None = None, norm_groups: int = 8,
                 mid_attention: bool = False, l1_weight: float = 1.0, l2_weight: float = 1.0):
        super().__init__()
        block_channels = [int(c) for c in block_channels]
        quantizer = copy.deepcopy(dict(DEFAULT_QUANTIZER if quantizer is None else quantizer))
        if not block_channels:
            raise ValueError("block_channels needs at least one entry")
        if any(c % norm_groups for c in block_channels):
            raise ValueError(f"every block_channels entry must be divisible by norm_groups={norm_groups}, "
                             f"got {block_channels}")
        factor = 2 ** (len(block_channels) - 1)
        if image_size % factor:
            raise ValueError(f"image_size={image_size} is not divisible by the downsample factor {factor}")
        if "kind" not in quantizer:
            raise ValueError(f"quantizer config needs a 'kind', got {quantizer}")
        self._config: dict[str, Any] = {
            "image_size": int(image_size), "channels": int(channels), "block_channels": block_channels,
            "layers_per_block": int(layers_per_block), "latent_dim": int(latent_dim), "quantizer": quantizer,
            "norm_groups": int(norm_groups), "mid_attention": bool(mid_attention),
            "l1_weight": float(l1_weight), "l2_weight": float(l2_weight),
        }
        json.dumps(self._config)  # fail now, not at save time, on a non-JSON option
        self.image_size = int(image_size)
        self.channels = int(channels)
        self.downsample_factor = factor
        self.l1_weight = float(l1_weight)
        self.l2_weight = float(l2_weight)
        self.encoder, self.decoder = _build_encoder_decoder(
            self.channels, block_channels, int(layers_per_block), int(latent_dim), int(norm_groups),
            bool(mid_attention))
        self.quantizer: Quantizer = quantizer_from_config(quantizer, latent_dim)

    # --- sizes -------------------------------------------------------------------------
    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def num_codebooks(self) -> int:
        return self.quantizer.num_codebooks

    @property
    def grid_shape(self) -> tuple[int, int]:
        side = self.image_size // self.downsample_factor
        return side, side

    def num_tokens(self, height: int | None = None, width: int | None = None) -> int:
        """Codes one image takes: ``h * w`` (times ``K`` for rvq, whose codes are ``[h, w, K]``)."""
        height = self.image_size if height is None else int(height)
        width = height if width is None else int(width)  # square unless told otherwise
        f = self.downsample_factor
        if height % f or width % f:
            raise ValueError(f"image size {height}x{width} is not divisible by the downsample factor {f}")
        return (height // f) * (width // f) * self.num_codebooks

    # --- model -------------------------------------------------------------------------
    def _check_images(self, images: Tensor) -> None:
        f = self.downsample_factor
        if images.ndim != 4 or images.shape[1] != self.channels:
            raise ValueError(f"expected images [B, {self.channels}, H, W], got {tuple(images.shape)}")
        if images.shape[-2] % f or images.shape[-1] % f:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not divisible by the downsample "
                             f"factor {f}")

    def encode_latents(self, images: Tensor) -> Tensor:
        """Images in [0, 1] -> continuous channel-last latents ``[B, h, w, latent_dim]``."""
        self._check_images(images)
        latents = self.encoder(images * 2.0 - 1.0)
        return latents.permute(0, 2, 3, 1)

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Channel-last latents -> images in [-1, 1] space, *unclamped* (differentiable)."""
        return self.decoder(latents.permute(0, 3, 1, 2).contiguous())

    def forward(self, images: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """Differentiable reconstruction: images in [0, 1] -> (unclamped reconstruction in ~[0, 1], quant)."""
        quant = self.quantizer(self.encode_latents(images))
        reconstruction = (self.decode_latents(quant.quantized) + 1.0) / 2.0
        return reconstruction, quant

    @contextlib.contextmanager
    def _frozen_quantizer(self) -> Iterator[None]:
        """Quantize in eval mode: no EMA/dead-code updates of the codebook, no stochastic codes."""
        was_training = self.quantizer.training
        self.quantizer.eval()
        try:
            yield
        finally:
            self.quantizer.train(was_training)

    # --- conversion --------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images ``[B, C, H, W]`` in [0, 1] -> LongTensor ``[B, h, w]`` (``[B, h, w, K]`` for rvq).

        Never changes the codebook, whatever the module's mode.
        """
        with self._frozen_quantizer():
            return self.quantizer(self.encode_latents(images)).codes

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes from ``encode`` -> images ``[B, C, H, W]`` clamped to [0, 1]."""
        expected = 3 + len(self.quantizer.code_shape_suffix)
        if codes.ndim != expected:
            layout = "[B, h, w, K]" if expected == 4 else "[B, h, w]"
            raise ValueError(f"expected codes {layout}, got {tuple(codes.shape)}")
        latents = self.quantizer.codes_to_latents(codes.to(next(self.parameters()).device))
        return ((self.decode_latents(latents) + 1.0) / 2.0).clamp(0.0, 1.0)

    # --- training hooks ----------------------------------------------------------------
    def training_loss(self, images: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Weighted L1 + L2 reconstruction (on [0, 1] images) + the quantizer's aux loss."""
        reconstruction, quant = self(images)
        return reconstruction_loss(images, reconstruction, quant.aux_loss, self.l1_weight, self.l2_weight)
