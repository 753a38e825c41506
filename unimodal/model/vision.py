"""The vision encoder of ``model.vision_input=features``: a transformers CLIP or SigLIP vision tower and its own
image processor, read at one layer.

:func:`load_encoder` takes a folder written by ``save_pretrained`` (the model and its ``preprocessor_config.json``)
or a hub id, e.g. LLaVA-1.5's :data:`LLAVA_ENCODER`. Features are ``hidden_states[feature_layer]`` (LLaVA reads the
penultimate layer, ``-2``) without the CLS position (``drop_cls``; SigLIP has none). Pixels always go through the
encoder's own processor (:meth:`VisionEncoder.pixel_values`), never a resize of ours.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unimodal.errors import ConfigError, UnimodalError
from unimodal.tokenizers.base import hash_json, hash_state_dict

LLAVA_ENCODER = "openai/clip-vit-large-patch14-336"  # LLaVA-1.5's: encoder.path=<this> where a hub is reachable
MODEL_TYPES = {"clip_vision_model": "CLIPVisionModel", "clip": "CLIPVisionModel",
               "siglip_vision_model": "SiglipVisionModel", "siglip": "SiglipVisionModel"}
ENCODER_KINDS = ("trained", "pretrained")
VISION_INPUTS = ("tokens", "features")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class VisionEncoder(nn.Module):
    """A CLIP/SigLIP vision model read at ``feature_layer``, with its image processor. ``source`` is where it was
    loaded from (a folder or a hub id), which a model trained on it records."""

    def __init__(self, model: nn.Module, processor: Any, feature_layer: int = -2, drop_cls: bool = True,
                 source: str = "") -> None:
        super().__init__()
        self.model = model
        self.processor = processor
        self.source = source
        layers = int(model.config.num_hidden_layers)
        if not -(layers + 1) <= int(feature_layer) <= layers:
            raise ConfigError(f"encoder.feature_layer={feature_layer}: {source} has {layers} layers, so hidden_states "
                              f"holds {layers + 1} (index -{layers + 1}..{layers}); LLaVA reads -2")
        self.feature_layer = int(feature_layer)
        tower = getattr(model, "vision_model", model)  # transformers 4.x wraps the tower, 5.x is the tower
        self.has_cls = hasattr(getattr(tower, "embeddings", None), "class_embedding")
        self.drop_cls = bool(drop_cls) and self.has_cls

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_channels(self) -> int:
        return int(getattr(self.model.config, "num_channels", 3))

    @property
    def image_size(self) -> int:
        """The crop the processor hands the model (the AnyRes tile size)."""
        return int(self.model.config.image_size)

    @property
    def num_features(self) -> int:
        """Feature vectors per crop: one per patch, plus CLS unless dropped."""
        patches = (self.image_size // int(self.model.config.patch_size)) ** 2
        return patches + int(self.has_cls and not self.drop_cls)

    @property
    def fingerprint(self) -> str:
        """Hash of the architecture, the weights and the processor's pixel settings."""
        config = self.model.config
        keys = ("model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "image_size", "patch_size", "num_channels")
        pixels = {k: getattr(self.processor, k, None) for k in ("size", "crop_size", "image_mean", "image_std",
                                                                  "rescale_factor", "do_center_crop", "resample")}
        return hash_json({"config": {k: getattr(config, k, None) for k in keys},
                          "weights": hash_state_dict(self.model.state_dict()), "processor": pixels})

    def features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[n, C, S, S]`` processed pixels -> ``[n, num_features, hidden_size]``."""
        param = next(self.model.parameters())
        out = self.model(pixel_values=pixel_values.to(param.device, param.dtype), output_hidden_states=True)
        hidden = out.hidden_states[self.feature_layer]
        return hidden[:, 1:] if self.drop_cls else hidden

    def pixel_values(self, crops: list[np.ndarray]) -> torch.Tensor:
        """uint8 ``[H, W, C]`` crops -> the processor's ``pixel_values`` ``[n, C, S, S]`` (grey repeated to RGB and
        an alpha channel dropped first; any other channel count is refused, naming the fix)."""
        return self.processor(images=[self.to_channels(np.asarray(c)) for c in crops],
                              return_tensors="pt")["pixel_values"]

    def to_channels(self, image: np.ndarray) -> np.ndarray:
        """``image`` with the channels the encoder reads, or a one-line error naming the fix."""
        have, want = (image.shape[-1] if image.ndim == 3 else 0), self.num_channels
        if image.ndim == 3 and have == want:
            return image
        if image.ndim == 3 and want == 3 and have in (1, 4):
            return np.repeat(image, 3, axis=-1) if have == 1 else image[..., :3]
        raise UnimodalError(f"image of shape {tuple(image.shape)}: the vision encoder reads {want}-channel [H, W, "
                            f"{want}] images; give an RGB (3), grey (1) or RGBA (4) image of shape [H, W, C]")

    def save(self, folder: str | Path) -> Path:
        """The encoder and its processor as ``save_pretrained`` writes them."""
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Writing model shards" bar for a small folder
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.processor.save_pretrained(folder)
        return folder


def _where(path: str, key: str) -> str:
    return f"{key}={path}"


def load_encoder(path: str, feature_layer: int = -2, drop_cls: bool = True, key: str = "encoder.path") -> VisionEncoder:
    """A CLIP or SigLIP vision encoder and its image processor from a folder or hub id, in eval mode and frozen."""
    import transformers
    from transformers import AutoImageProcessor
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no "Loading weights" bar for every load
    where = _where(path, key)
    local = Path(path)
    if not local.exists() and not HUB_ID.match(str(path)):
        raise ConfigError(f"{where}: no such folder; give a CLIPVisionModel or SiglipVisionModel folder "
                          f"(save_pretrained, with its preprocessor_config.json) or a hub id such as {LLAVA_ENCODER}")
    if local.is_dir():
        config_file = local / "config.json"
        if not config_file.is_file():
            raise ConfigError(f"{where}: no config.json there; give a folder written by CLIPVisionModel or "
                              f"SiglipVisionModel.save_pretrained, or a hub id such as {LLAVA_ENCODER}")
        model_type = json.loads(config_file.read_text()).get("model_type")
        if model_type not in MODEL_TYPES:
            raise ConfigError(f"{where} holds a {model_type!r} model, not a CLIP or SigLIP vision encoder; point "
                              f"{key} at a CLIPVisionModel or SiglipVisionModel folder (or a hub id such as "
                              f"{LLAVA_ENCODER})")
        if not (local / "preprocessor_config.json").is_file():
            raise ConfigError(f"{where}: no preprocessor_config.json (the encoder's image processor); save it beside "
                              f"the model with <its ImageProcessor>.save_pretrained({path})")
    try:
        config = transformers.AutoConfig.from_pretrained(path)
        if config.model_type not in MODEL_TYPES:
            raise ConfigError(f"{where} holds a {config.model_type!r} model, not a CLIP or SigLIP vision encoder")
        cls = getattr(transformers, MODEL_TYPES[config.model_type])
        model = cls.from_pretrained(path, dtype=torch.float32)
        processor = AutoImageProcessor.from_pretrained(path)
    except (OSError, ValueError) as err:  # missing files, offline hub
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{where}: cannot load a vision encoder and its image processor ({first})") from None
    for param in model.parameters():
        param.requires_grad_(False)
    return VisionEncoder(model.eval(), processor, feature_layer, drop_cls, str(path))


def check_vision_config(cfg: Any) -> None:
    """The feature-input keys, checked with the rest of the schema: one line naming the key and the fix."""
    if cfg.model.vision_input not in VISION_INPUTS:
        raise ConfigError(f"model.vision_input={cfg.model.vision_input!r}: choose tokens or features")
    if cfg.model.vision_input == "tokens":
        return
    from unimodal.model.projector import PROJECTORS

    if cfg.encoder.kind not in ENCODER_KINDS:
        raise ConfigError(f"encoder.kind={cfg.encoder.kind!r}: choose encoder=trained or encoder=pretrained")
    if cfg.projector.kind not in PROJECTORS:
        raise ConfigError(f"projector.kind={cfg.projector.kind!r}: choose one of projector={'|'.join(PROJECTORS)}")
    if "image" not in cfg.modality.media:
        raise ConfigError(f"model.vision_input=features reads images, and modality={cfg.modality.name} has none; "
                          f"use a modality with images (modality=image) or model.vision_input=tokens")
    if cfg.encoder.kind == "pretrained" and not cfg.encoder.path:
        raise ConfigError("encoder=pretrained needs encoder.path=<a CLIP or SigLIP vision folder, or a hub id such "
                          f"as {LLAVA_ENCODER}>")
    if cfg.lm.packing:
        raise ConfigError("lm.packing=true packs token rows and cannot carry the images a features run reads; "
                          "set lm.packing=false or model.vision_input=tokens")
    if int(cfg.encoder.anyres_max_tiles) < 0:
        raise ConfigError(f"encoder.anyres_max_tiles={cfg.encoder.anyres_max_tiles}: 0 (off) or a tile count")
