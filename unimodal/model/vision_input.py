"""The feature input path of a language model: encoder + projector, attached to the HF model as ``vision_input``.

A model that reads images as features carries a :class:`VisionInput` submodule (as ``media_positions`` is carried):
:func:`fill_slots` puts its output into the input vectors at the :data:`~unimodal.feature_spans.FEATURE_SLOT`
positions, in order (row-major over the batch, span order inside a row), which is the order the images come in.

Saved beside the HF model (:func:`save_vision`): ``projector.safetensors`` and ``vision.json`` (projector config,
encoder layer, slots per crop, crop size, AnyRes tiles, and the encoder's path and fingerprint). The encoder itself
is referenced, not copied (a run folder holds a trained one in ``<run>/encoder``; a pretrained one stays where it
was, a folder or a hub id), unless it was tuned: then it is written into ``<model>/encoder``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from unimodal.errors import ConfigError, UnimodalError, VocabularyMismatch
from unimodal.feature_spans import FEATURE_SLOT
from unimodal.model.projector import build_projector, projector_config
from unimodal.model.vision import VisionEncoder, load_encoder

ATTRIBUTE = "vision_input"
VISION_FILE = "vision.json"
PROJECTOR_FILE = "projector.safetensors"
ENCODER_DIR = "encoder"


class VisionInput(nn.Module):
    """Pixels ``[n, C, S, S]`` -> LM input vectors ``[n, slots, d_lm]``. The encoder runs without gradients while
    none of its weights train (LLaVA's frozen encoder); ``tuned_encoder`` marks one that did, so saving writes it."""

    def __init__(self, encoder: VisionEncoder, projector: nn.Module, projector_cfg: dict[str, Any],
                 anyres_max_tiles: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.projector = projector
        self.projector_cfg = dict(projector_cfg)
        self.anyres_max_tiles = int(anyres_max_tiles)
        self.slots = int(projector.slots(encoder.num_features))
        self.tuned_encoder = False

    @property
    def crop_size(self) -> int:
        return self.encoder.image_size

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        frozen = not any(p.requires_grad for p in self.encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            features = self.encoder.features(pixel_values)
        return self.projector(features.to(next(self.projector.parameters()).dtype))

    def layout(self) -> dict[str, Any]:
        """What a sequence codec and a prompt need: slots per crop, crop size and AnyRes tiles (run.json)."""
        return {"slots_per_crop": self.slots, "crop_size": self.crop_size, "anyres_max_tiles": self.anyres_max_tiles}


def make_vision(encoder: VisionEncoder, projector_cfg: Any, lm_hidden: int, anyres_max_tiles: int = 0) -> VisionInput:
    """A fresh projector from ``projector.*`` for ``encoder`` into an LM of width ``lm_hidden``."""
    wanted = projector_cfg.get("input_size")
    if wanted is not None and int(wanted) != encoder.hidden_size:
        raise ConfigError(f"projector.input_size={wanted} but the encoder {encoder.source} gives features of "
                          f"hidden_size {encoder.hidden_size}; drop projector.input_size (it follows the encoder) or "
                          f"use an encoder of hidden size {wanted}")
    config = projector_config(projector_cfg, encoder.hidden_size, lm_hidden)
    return VisionInput(encoder, build_projector(config), config, anyres_max_tiles)


def vision_of(model: nn.Module) -> VisionInput | None:
    return getattr(model, ATTRIBUTE, None)


def fill_slots(model: nn.Module, embeds: torch.Tensor, ids: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
    """``embeds`` with every ``FEATURE_SLOT`` position of ``ids`` replaced by the projected features of
    ``pixel_values`` (one crop after another, each giving ``slots`` vectors)."""
    vision = vision_of(model)
    if vision is None:
        raise UnimodalError("images were given as features but this model has no vision input (it reads images as "
                            "tokens); give the image as a token span, or load a model trained with "
                            "model.vision_input=features")
    slots = ids == FEATURE_SLOT
    features = vision(pixel_values)
    flat = features.reshape(-1, features.shape[-1])
    count = int(slots.sum())
    if flat.shape[0] != count:
        raise ValueError(f"{count} feature slots in the ids but {flat.shape[0]} feature vectors ({features.shape[0]} "
                         f"crops x {features.shape[1]}): the sequence codec and the vision input disagree")
    return embeds.masked_scatter(slots.unsqueeze(-1), flat.to(embeds.dtype))


# --- saving and loading ----------------------------------------------------------------------
def _encoder_path(vision: VisionInput, folder: Path) -> str:
    source = Path(vision.encoder.source)
    if source.is_dir():
        return os.path.relpath(source.resolve(), folder.resolve())
    return vision.encoder.source  # a hub id


def save_vision(model: nn.Module, folder: str | Path) -> None:
    """``vision.json`` and ``projector.safetensors`` (and ``encoder/`` when it was tuned) into ``folder``."""
    from safetensors.torch import save_file

    vision = vision_of(model)
    if vision is None:
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if vision.tuned_encoder:
        vision.encoder.save(folder / ENCODER_DIR)
        path = ENCODER_DIR
    else:
        path = _encoder_path(vision, folder)
    encoder = vision.encoder
    config = {"format": "unimodal-vision/1", "projector": vision.projector_cfg, **vision.layout(),
              "encoder": {"path": path, "fingerprint": encoder.fingerprint, "hidden_size": encoder.hidden_size,
                          "feature_layer": encoder.feature_layer, "drop_cls": encoder.drop_cls,
                          "num_features": encoder.num_features}}
    state = {k: v.detach().cpu().contiguous() for k, v in vision.projector.state_dict().items()}
    save_file(state, str(folder / PROJECTOR_FILE))
    (folder / VISION_FILE).write_text(json.dumps(config, indent=2))


def read_vision_config(folder: str | Path) -> dict[str, Any] | None:
    path = Path(folder) / VISION_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def resolve_encoder(folder: Path, path: str) -> str:
    """An encoder path of ``vision.json``: relative to the model folder when it is one, else as written."""
    local = folder / path
    return str(local) if not Path(path).is_absolute() and local.exists() else path


def load_vision(folder: str | Path, encoder: VisionEncoder | None = None) -> VisionInput | None:
    """The vision input saved in ``folder`` (None when the model reads images as tokens). ``encoder``: use this one
    instead of the one ``vision.json`` names; either way it must have the size and fingerprint it records."""
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_vision_config(folder)
    if config is None:
        return None
    saved = config["encoder"]
    where = f"{folder / VISION_FILE}"
    if encoder is None:
        encoder = load_encoder(resolve_encoder(folder, saved["path"]), saved["feature_layer"], saved["drop_cls"],
                               key=f"{where}: encoder path")
    if encoder.hidden_size != int(config["projector"]["input_size"]):
        raise ConfigError(f"{where}: the projector reads {config['projector']['input_size']}-d features but the "
                          f"encoder {encoder.source} has hidden_size {encoder.hidden_size}; use the encoder the model "
                          f"was trained with (fingerprint {saved['fingerprint']})")
    if encoder.fingerprint != saved["fingerprint"]:
        raise VocabularyMismatch(f"{where}: the model was trained with encoder {saved['fingerprint']} but "
                                 f"{encoder.source} has fingerprint {encoder.fingerprint}; use the encoder it was "
                                 f"trained with")
    vision = VisionInput(encoder, build_projector(config["projector"]), config["projector"],
                         int(config.get("anyres_max_tiles", 0)))
    vision.projector.load_state_dict(load_file(str(folder / PROJECTOR_FILE)), strict=True)
    return vision


def export_vision(lm_dir: Path, out: Path) -> dict[str, Any] | None:
    """For ``scripts/export.py``: the encoder folder copied into ``out/encoder`` (a hub id stays a reference) and
    ``out/vision.json`` pointing at it. Returns the manifest entry, None for a tokens model."""
    config = read_vision_config(lm_dir)
    if config is None:
        return None
    source = resolve_encoder(lm_dir, config["encoder"]["path"])
    if Path(source).is_dir():
        shutil.copytree(source, out / ENCODER_DIR, dirs_exist_ok=True)
        config["encoder"]["path"] = ENCODER_DIR
    (out / VISION_FILE).write_text(json.dumps(config, indent=2))
    return {"config": VISION_FILE, "projector": PROJECTOR_FILE, "encoder": config["encoder"]["path"],
            "encoder_fingerprint": config["encoder"]["fingerprint"]}


def vision_readme(config: dict[str, Any]) -> list[str]:
    """The export README's section on rebuilding the inputs of a model that reads images as features."""
    encoder, projector = config["encoder"], config["projector"]
    tiles = int(config.get("anyres_max_tiles", 0))
    cut = (f"Cut the image as AnyRes (`unimodal.feature_spans.feature_image(pixels, {config['crop_size']}, {tiles})`: "
           f"a thumbnail, then up to {tiles} tiles)" if tiles else "The whole image is one crop")
    return [
        "", "## Images are read as features", "",
        "This model reads an input image as a run of input vectors between `<boi>` and `<eoi>` (it writes images",
        "as tokens of the image tokenizer). To rebuild those inputs:", "",
        f"1. {cut}; run every crop through the encoder's own image processor "
        f"(`AutoImageProcessor.from_pretrained(\"{encoder['path']}\")`);",
        f"2. run the encoder (`{encoder['path']}`, fingerprint `{encoder['fingerprint']}`) with "
        f"`output_hidden_states=True` and take `hidden_states[{encoder['feature_layer']}]`"
        + (", dropping the first (CLS) position" if encoder["drop_cls"] else "") + ";",
        f"3. apply the `{projector['kind']}` projector (`{PROJECTOR_FILE}`, config in `{VISION_FILE}`): "
        f"{config['slots_per_crop']} vectors per crop;",
        "4. put them in place of the image's slots: `<boi>`, the thumbnail's vectors, then for each tile `<tile>` and",
        "   its vectors, with `<row>` between tile rows, then `<eoi>` (a whole image: `<boi>` vectors `<eoi>`).", "",
        "`unimodal.load(<this folder>)` does all of this (`unimodal.model.vision_input.load_vision`).", "",
    ]
