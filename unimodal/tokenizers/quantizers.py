"""One interface over the quantizers of ``vector-quantize-pytorch``.

``build_quantizer(kind, dim, **options)`` returns a :class:`Quantizer` that takes channel-last
latents ``[B, ..., D]`` and returns a :class:`QuantizerOutput`; ``codes_to_latents`` maps codes
back to exactly the quantized latents that ``forward`` returned (in eval mode).

Kinds and their options (anything else is passed to the library constructor unchanged; an option
the library does not take fails at build time with a ``ConfigError`` naming it):

- ``fsq``: ``levels`` (e.g. ``[8, 5, 5, 5]``; codebook size is their product). No aux loss.
- ``vq``: ``codebook_size``, ``codebook_dim`` (factorised low-dim codes, projected in and out),
  ``decay`` (EMA), ``kmeans_init`` (+ ``kmeans_iters``), ``threshold_ema_dead_code`` (a code whose
  EMA cluster size falls below it is replaced by a random input of the batch, in training only),
  ``use_cosine_sim`` (l2-normalised codes and inputs, cosine distance), ``commitment_weight``. The
  library's defaults hold for anything left out (decay 0.8, rotation-trick gradients;
  ``rotation_trick: false`` gives a plain straight-through estimator). With ``kmeans_init`` the
  library runs k-means on the *first* batch it sees, in any mode: train before encoding.
- ``lfq``: ``codebook_size`` (a power of 2), ``entropy_loss_weight``, ``commitment_weight``.
  Its aux loss is an entropy term and can be negative.
- ``rvq``: ``num_quantizers`` (residual levels, the ``K`` of codes ``[B, ..., K]``),
  ``codebook_size`` and the ``vq`` options, which apply to every level.

The library treats inputs of rank >= 4 as channel-first for some kinds and not others, so the
wrapper always hands it ``[B, N, D]`` and restores the shape itself.
"""

from __future__ import annotations

import difflib
import inspect
import math
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor, nn
from vector_quantize_pytorch import FSQ, LFQ, ResidualVQ, VectorQuantize

from unimodal.errors import ConfigError


class QuantizerOutput(NamedTuple):
    quantized: Tensor  # [B, ..., D], same shape as the input latents
    codes: Tensor  # Long [B, ...] (or [B, ..., K] for rvq), in [0, codebook_size)
    aux_loss: Tensor  # scalar, already weighted (commitment, entropy, ...)


class Quantizer(nn.Module):
    """Wraps one library quantizer. Subclasses implement ``_quantize``/``_lookup`` on ``[B, N, D]``."""

    kind: ClassVar[str]
    library: ClassVar[tuple[type, ...]] = ()  # constructors whose keyword arguments are valid options
    renamed: ClassVar[dict[str, str]] = {}  # our option name -> the library's

    def __init__(self, dim: int, codebook_size: int, num_codebooks: int = 1):
        super().__init__()
        self.dim = int(dim)
        self.codebook_size = int(codebook_size)
        self.num_codebooks = int(num_codebooks)

    @property
    def code_shape_suffix(self) -> tuple[int, ...]:
        """Trailing code dims after the positions: ``()`` or ``(K,)`` for residual kinds."""
        return ()

    @property
    def bits_per_code(self) -> float:
        return math.log2(self.codebook_size)

    def forward(self, latents: Tensor) -> QuantizerOutput:
        if latents.ndim < 2 or latents.shape[-1] != self.dim:
            raise ValueError(f"{self.kind}: expected channel-last latents [B, ..., {self.dim}], "
                             f"got {tuple(latents.shape)}")
        positions = latents.shape[:-1]
        flat = latents.reshape(latents.shape[0], -1, self.dim)
        quantized, codes, aux = self._quantize(flat)
        quantized = quantized.reshape(latents.shape)
        codes = codes.long().reshape(*positions, *self.code_shape_suffix)
        aux_loss = aux.float().sum() if aux is not None else latents.new_zeros((), dtype=torch.float32)
        return QuantizerOutput(quantized, codes, aux_loss)

    def codes_to_latents(self, codes: Tensor) -> Tensor:
        """Codes ``[B, ...]`` (``[B, ..., K]`` for rvq) -> quantized latents ``[B, ..., D]``."""
        suffix = self.code_shape_suffix
        if codes.ndim < 1 + len(suffix) or tuple(codes.shape[codes.ndim - len(suffix):]) != suffix:
            raise ValueError(f"{self.kind}: codes of shape {tuple(codes.shape)} do not end in {suffix}")
        if codes.dtype.is_floating_point:
            raise TypeError(f"{self.kind}: codes must be integers, got {codes.dtype}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(f"{self.kind}: codes must lie in [0, {self.codebook_size}), "
                             f"got [{int(codes.min())}, {int(codes.max())}]")
        positions = codes.shape[: codes.ndim - len(suffix)]
        flat = codes.long().reshape(codes.shape[0], -1, *suffix)
        latents = self._lookup(flat)
        return latents.reshape(*positions, self.dim)

    # --- per kind ----------------------------------------------------------------------
    def _quantize(self, flat: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        raise NotImplementedError

    def _lookup(self, flat_codes: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"kind={self.kind}, dim={self.dim}, codebook_size={self.codebook_size}, " \
               f"num_codebooks={self.num_codebooks}"


class QuantizedLatents:
    """What an autoencoder whose latent grid a :class:`Quantizer` quantizes derives from it (the image and video
    tokenizers): its codebook size, and the side of the latent grid of one ``image_size`` image or frame."""

    quantizer: Quantizer
    image_size: int
    downsample_factor: int

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def latent_side(self) -> int:
        return self.image_size // self.downsample_factor


class FSQQuantizer(Quantizer):
    kind = "fsq"
    library: ClassVar[tuple[type, ...]] = (FSQ,)

    def __init__(self, dim: int, levels: list[int] | tuple[int, ...] = (8, 5, 5, 5), **options: Any):
        levels = [int(level) for level in levels]
        if options.get("num_codebooks", 1) != 1:
            raise ValueError("fsq: num_codebooks > 1 is not supported; use more levels instead")
        super().__init__(dim, math.prod(levels))
        self.inner = FSQ(levels=levels, dim=dim, **options)

    def _quantize(self, flat):
        quantized, indices = self.inner(flat)
        return quantized, indices, None

    def _lookup(self, flat_codes):
        return self.inner.indices_to_codes(flat_codes)


class VQQuantizer(Quantizer):
    kind = "vq"
    library: ClassVar[tuple[type, ...]] = (VectorQuantize,)

    def __init__(self, dim: int, codebook_size: int = 1024, **options: Any):
        if options.get("heads", 1) != 1:
            raise ValueError("vq: multi-head codebooks are not supported")
        super().__init__(dim, codebook_size)
        self.inner = VectorQuantize(dim=dim, codebook_size=codebook_size, **options)

    def _quantize(self, flat):
        quantized, indices, loss = self.inner(flat)
        return quantized, indices, loss

    def _lookup(self, flat_codes):
        return self.inner.get_output_from_indices(flat_codes)


class LFQQuantizer(Quantizer):
    kind = "lfq"
    library: ClassVar[tuple[type, ...]] = (LFQ,)
    renamed: ClassVar[dict[str, str]] = {"commitment_weight": "commitment_loss_weight"}  # same name as vq

    def __init__(self, dim: int, codebook_size: int | None = None, **options: Any):
        for ours, theirs in self.renamed.items():
            if ours in options:
                options[theirs] = options.pop(ours)
        if options.get("num_codebooks", 1) != 1:
            raise ValueError("lfq: num_codebooks > 1 is not supported; use a larger codebook_size")
        codebook_size = int(codebook_size) if codebook_size is not None else 2**dim
        if codebook_size < 2 or codebook_size & (codebook_size - 1):
            raise ValueError(f"lfq: codebook_size must be a power of 2, got {codebook_size}")
        super().__init__(dim, codebook_size)
        self.inner = LFQ(dim=dim, codebook_size=codebook_size, **options)

    def _quantize(self, flat):
        quantized, indices, aux = self.inner(flat)
        return quantized, indices, aux

    def _lookup(self, flat_codes):
        return self.inner.indices_to_codes(flat_codes)


class RVQQuantizer(Quantizer):
    kind = "rvq"
    library: ClassVar[tuple[type, ...]] = (ResidualVQ, VectorQuantize)  # extra options go to every level

    def __init__(self, dim: int, num_quantizers: int = 4, codebook_size: int = 1024, **options: Any):
        if options.get("shared_codebook"):
            raise ValueError("rvq: shared_codebook ties tensors that safetensors cannot save")
        if options.get("quantize_dropout"):
            raise ValueError("rvq: quantize_dropout emits -1 codes; not supported by this wrapper")
        super().__init__(dim, codebook_size, num_codebooks=num_quantizers)
        self.inner = ResidualVQ(dim=dim, num_quantizers=num_quantizers, codebook_size=codebook_size,
                                **options)

    @property
    def code_shape_suffix(self) -> tuple[int, ...]:
        return (self.num_codebooks,)

    def _quantize(self, flat):
        quantized, indices, losses = self.inner(flat)[:3]
        return quantized, indices, losses

    def _lookup(self, flat_codes):
        return self.inner.get_output_from_indices(flat_codes)


QUANTIZERS: dict[str, type[Quantizer]] = {cls.kind: cls for cls in (FSQQuantizer, VQQuantizer,
                                                                   LFQQuantizer, RVQQuantizer)}


def library_options(kind: str) -> set[str]:
    """Option names ``build_quantizer(kind, ...)`` accepts: the library constructors' keywords."""
    cls = QUANTIZERS[kind]
    names = {name for lib in cls.library for name, param in inspect.signature(lib.__init__).parameters.items()
             if param.kind not in (param.VAR_KEYWORD, param.VAR_POSITIONAL)}
    return (names | set(cls.renamed)) - {"self", "dim"}


def build_quantizer(kind: str, dim: int, **options: Any) -> Quantizer:
    """``kind`` in ``fsq | vq | lfq | rvq``; ``dim`` is the channel size of the latents."""
    if kind not in QUANTIZERS:
        raise ValueError(f"unknown quantizer kind {kind!r}; known: {sorted(QUANTIZERS)}")
    if "dim" in options:
        raise ValueError("pass the latent size as build_quantizer's `dim`, not as an option")
    # Checked here rather than left to the library's TypeError, which names neither kind nor fix.
    accepted = library_options(kind)
    unknown = sorted(set(options) - accepted)
    if unknown:
        hints = {name: difflib.get_close_matches(name, accepted, n=1) for name in unknown}
        hint = "; ".join(f"{name}: did you mean {match[0]!r}?" for name, match in hints.items() if match)
        raise ConfigError(f"quantizer kind {kind!r}: unknown option(s) {unknown}"
                          f"{' (' + hint + ')' if hint else ''}; see vector_quantize_pytorch."
                          f"{QUANTIZERS[kind].library[0].__name__}'s arguments")
    return QUANTIZERS[kind](dim, **options)



def quantizer_from_config(config: dict[str, Any], dim: int) -> Quantizer:
    """A tokenizer config's ``quantizer: {kind: ..., <options>}`` over latents of ``dim`` channels."""
    return build_quantizer(config["kind"], int(dim), **{k: v for k, v in config.items() if k != "kind"})
