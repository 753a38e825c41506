"""A pretrained diffusers ``VQModel`` as an image tokenizer (``tokenizer/image=pretrained``).

Codes are the indices of the model's own vector quantizer over its latent grid: images
``[B, C, H, W]`` in ``[0, 1]`` (mapped to the model's ``[-1, 1]``) -> codes ``[B, h, w]`` with
``h = H / f``, ``f = 2 ** (len(block_out_channels) - 1)``. Decoding looks the codes up in the model's
codebook and runs its ``post_quant_conv`` and decoder, so ``decode(encode(x))`` is the model's own
reconstruction.

``path`` is a local folder or a hub id (``from_pretrained``; a hub id needs the network once).
Saving writes the VQModel's config and weights into the tokenizer folder, so a run folder never
needs the original path again. This tokenizer is not trained by stage 0.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from unimodal.errors import ConfigError, UnimodalError
from unimodal.tokenizers.base import register
from unimodal.tokenizers.image import GridImageTokenizer
from unimodal.tokenizers.quantizers import Quantizer

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class DiffusersVQ(Quantizer):
    """The quantizer inside a diffusers ``VQModel``, behind our :class:`Quantizer` interface."""

    kind = "diffusers-vq"

    def __init__(self, inner: nn.Module):
        super().__init__(inner.vq_embed_dim, inner.n_e)
        self.inner = inner  # the VQModel's own module (shared, not a copy)

    def _quantize(self, flat):
        batch, positions, dim = flat.shape
        # The library takes channel-first maps: a [B, D, 1, N] "image" of the N positions.
        quantized, loss, (_, _, indices) = self.inner(flat.transpose(1, 2).unsqueeze(2))
        return quantized.squeeze(2).transpose(1, 2), indices.reshape(batch, positions), loss

    def _lookup(self, flat_codes):
        batch, positions = flat_codes.shape
        entries = self.inner.get_codebook_entry(flat_codes.reshape(-1), (batch, 1, positions, self.dim))
        return entries.squeeze(2).transpose(1, 2)


def _load_vq_model(path: str, subfolder: str | None) -> nn.Module:
    from diffusers import VQModel

    where = f"tokenizer.image.path={path!r}" + (f" (subfolder {subfolder!r})" if subfolder else "")
    if not Path(path).exists() and not HUB_ID.match(path):
        raise ConfigError(f"{where}: no such folder (give a diffusers VQModel folder or a hub id owner/name)")
    try:
        # low_cpu_mem_usage=False: the same load, without a warning that asks for `accelerate`.
        return VQModel.from_pretrained(path, subfolder=subfolder, low_cpu_mem_usage=False)
    except (OSError, ValueError) as err:  # missing files, offline hub, not a VQModel config
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{where}: cannot load a diffusers VQModel ({first})") from None


@register
class PretrainedVQTokenizer(GridImageTokenizer):
    """Wraps a diffusers ``VQModel``; conversion and metrics are :class:`GridImageTokenizer`'s."""

    kind = "pretrained"
    trainable = False  # stage 0 must not fit it (see training_loss)

    def __init__(self, path: str | None = None, subfolder: str | None = None, image_size: int = 32,
                 model_config: dict[str, Any] | None = None):
        """``model_config`` (what ``save`` stores) rebuilds the architecture without ``path``;
        its weights then come from the tokenizer folder through ``load_weights``."""
        nn.Module.__init__(self)  # GridImageTokenizer.__init__ would build an autoencoder of its own
        from diffusers import VQModel

        if model_config is not None:
            self.model = VQModel.from_config(copy.deepcopy(model_config))
        elif path:
            self.model = _load_vq_model(str(path), subfolder)
        else:
            raise ConfigError("tokenizer.image.path is not set: pass tokenizer.image.path=<diffusers VQModel "
                              "folder or hub id> with tokenizer/image=pretrained")
        config = {k: v for k, v in dict(self.model.config).items() if not k.startswith("_")}
        factor = 2 ** (len(config["block_out_channels"]) - 1)
        if image_size % factor:
            raise ValueError(f"pretrained: image_size={image_size} is not divisible by the model's "
                             f"downsample factor {factor}")
        self._config: dict[str, Any] = {"path": None if path is None else str(path), "subfolder": subfolder,
                                        "image_size": int(image_size),
                                        "model_config": json.loads(json.dumps(config))}
        self.image_size = int(image_size)
        self.channels = int(config["in_channels"])
        self.downsample_factor = factor
        self.quantizer: Quantizer = DiffusersVQ(self.model.quantize)

    def encode_latents(self, images: Tensor) -> Tensor:
        """Images in [0, 1] -> the model's pre-quantization latents, channel-last ``[B, h, w, D]``."""
        self._check_images(images)
        return self.model.encode(images * 2.0 - 1.0).latents.permute(0, 2, 3, 1)

    def decode_latents(self, latents: Tensor) -> Tensor:
        """Quantized channel-last latents -> images in [-1, 1] (the model's decoder, no re-quantizing)."""
        quant = latents.permute(0, 3, 1, 2).contiguous()
        if self.model.config.lookup_from_codebook:
            # Such models read codebook indices in decode(force_not_quantize=True); skip that branch.
            quant2 = self.model.post_quant_conv(quant)
            spatial = quant if self.model.config.norm_type == "spatial" else None
            return self.model.decoder(quant2, spatial)
        return self.model.decode(quant, force_not_quantize=True).sample

    # --- persistence: the VQModel's own state dict, under its own names -------------------
    def state_dict_for_save(self) -> dict[str, Tensor]:
        return dict(self.model.state_dict())

    def load_weights(self, state: dict[str, Tensor]) -> None:
        self.model.load_state_dict(state, strict=True)

    def training_loss(self, images: Tensor) -> tuple[Tensor, dict[str, float]]:
        raise UnimodalError("tokenizer/image=pretrained is not trained by stage 0: it loads a trained diffusers "
                            "VQModel from tokenizer.image.path; pick a trainable tokenizer/image (fsq, vq, lfq, "
                            "rvq, qformer-1d) to train one")
