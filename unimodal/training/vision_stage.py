"""What training does differently when the LM reads images as features (``model.vision_input=features``).

- the run folder holds the trained encoder (``<run>/encoder``, copied like the tokenizers; a pretrained one is
  referenced by its path) and ``run.json`` records the encoder's fingerprint, the projector and the span layout
- every split gets a pixel store beside its token shard (:mod:`unimodal.data.pixels`), and batches carry the
  processed pixels of the images they read (:func:`feature_collate`)
- stage 1 (pretraining and ``stage=align``) attaches a fresh projector to the LM (:func:`attach_vision`); ``align``
  trains the projector only, with the encoder and the LM frozen (LLaVA's first stage), starting from a pretrained HF
  causal LM (its vocabulary extended as in today's align) or from a run of ours (``model.pretrained=<run>``)
- ``stage=instruct`` tunes the projector and the LM, fully or with LoRA, the encoder frozen unless
  ``encoder.trainable=true`` (:func:`tune_vision`)
"""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from unimodal.data.pixels import FeatureTokens, pixel_store
from unimodal.data.sources import data_fingerprint
from unimodal.errors import ConfigError, VocabularyMismatch
from unimodal.model.lm import load_lm
from unimodal.model.projector import projector_slots
from unimodal.model.vision import VisionEncoder, load_encoder
from unimodal.model.vision_input import ATTRIBUTE, ENCODER_DIR, make_vision, vision_of
from unimodal.run_folder import LM_DIR, VOCAB_FILE, is_run_folder
from unimodal.training.lm_data import collate
from unimodal.vocab import Vocabulary


def features_on(cfg: DictConfig) -> bool:
    return cfg.model.get("vision_input", "tokens") == "features"


def run_encoder(cfg: DictConfig, run_dir: Path, encoder: VisionEncoder) -> VisionEncoder:
    """The encoder as the run uses it: a trained one copied into ``<run>/encoder`` and read from there."""
    if cfg.encoder.kind == "pretrained":
        return encoder
    target = run_dir / ENCODER_DIR
    if not (target / "config.json").is_file():
        shutil.copytree(encoder.source, target, dirs_exist_ok=True)
    return load_run_encoder(cfg, run_dir)


def load_run_encoder(cfg: DictConfig, run_dir: Path) -> VisionEncoder:
    path = cfg.encoder.path if cfg.encoder.kind == "pretrained" else run_dir / ENCODER_DIR
    return load_encoder(str(path), int(cfg.encoder.feature_layer), bool(cfg.encoder.drop_cls))


def vision_info(cfg: DictConfig, encoder: VisionEncoder) -> dict[str, Any]:
    """``run.json``'s ``vision``: what the sequence codec needs and what a resumed run must match."""
    return {"input": "features", "projector": str(cfg.projector.kind),
            "encoder": {"kind": str(cfg.encoder.kind), "fingerprint": encoder.fingerprint,
                        "hidden_size": encoder.hidden_size, "feature_layer": encoder.feature_layer},
            "slots_per_crop": projector_slots(cfg.projector, encoder.num_features), "crop_size": encoder.image_size,
            "anyres_max_tiles": int(cfg.encoder.anyres_max_tiles)}


def feature_sets(cfg: DictConfig, sets: dict[str, Any], samples: dict[str, Any],
                 info: dict[str, Any]) -> dict[str, Any]:
    """Each split's token shard with its pixels: image payloads become ``FeatureImage`` (crops + codes)."""
    root = Path(cfg.paths.cache_dir) / "pixels" / data_fingerprint(cfg.data)[:12]
    return {split: FeatureTokens(shard, pixel_store(root / f"{split}.npy", samples[split]), info["crop_size"],
                                 info["anyres_max_tiles"]) for split, shard in sets.items()}


def feature_collate(batch: list[dict[str, Any]], pad_id: int, encoder: VisionEncoder) -> dict[str, torch.Tensor]:
    """``collate``, plus ``pixel_values``: every crop of every image the rows read, row after row, through the
    encoder's own image processor."""
    out = collate(batch, pad_id)
    crops = [crop for item in batch for image in item.get("images", ()) for crop in image.crops]
    if crops:
        out["pixel_values"] = encoder.pixel_values(crops)
    return out


def align_tasks(tasks: list[str]) -> list[str]:
    """``stage=align`` with features trains only the projector: only tasks that read an image reach it."""
    reading = [t for t in tasks if t.startswith("image->")]
    if not reading:
        raise ConfigError(f"stage=align with model.vision_input=features trains the projector on tasks that read an "
                          f"image, and modality.tasks {tasks} has none; use modality=image")
    return reading


def aligned_feature_lm(cfg: DictConfig, vocab: Vocabulary, seed: int) -> torch.nn.Module:
    """The frozen LM of a feature ``stage=align``: a pretrained HF causal LM with our tokens' rows (as today's align
    builds it), or the LM of a run of ours (``model.pretrained=<run dir>``), whose vocabulary must be this run's."""
    from unimodal.model.extend import build_aligned_lm

    path = str(cfg.model.pretrained or "")
    if is_run_folder(path):
        folder = Path(path) / LM_DIR
        vocab.check_same(Vocabulary.load(folder / VOCAB_FILE), f"model.pretrained={path} ({folder})")
        model = load_lm(folder, vocab)
        if vision_of(model) is not None:  # align trains a new projector
            delattr(model, ATTRIBUTE)
    else:
        model = build_aligned_lm(cfg.model, vocab, seed)
    for param in model.parameters():
        param.requires_grad_(False)
    return model.train()


def attach_vision(cfg: DictConfig, model: torch.nn.Module, run_dir: Path, pad_id: int,
                  aligning: bool) -> Any:
    """A fresh projector on ``model`` (the encoder frozen); with ``aligning``, the projector is all that trains.
    Returns the batch collate function."""
    encoder = load_run_encoder(cfg, run_dir)
    vision = make_vision(encoder, cfg.projector, int(model.config.hidden_size), int(cfg.encoder.anyres_max_tiles))
    setattr(model, ATTRIBUTE, vision)
    if aligning:
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(f"{ATTRIBUTE}.projector."))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"[vision] {cfg.projector.kind} projector on {encoder.source} (layer {encoder.feature_layer}, "
          f"{vision.slots} slots per crop); training {trainable / 1e6:.3f}M parameters"
          + (" (projector only: encoder and LM frozen)" if aligning else " (encoder frozen)"), flush=True)
    return partial(feature_collate, pad_id=pad_id, encoder=encoder)


def tune_vision(cfg: DictConfig, model: torch.nn.Module, add_lora: Any) -> tuple[torch.nn.Module, Any]:
    """``stage=instruct`` on a features model: the encoder frozen unless ``encoder.trainable``; LoRA (``add_lora``,
    or None) goes on the LM only, never on the encoder's or the Q-Former's attention. Returns the model to train and
    the function giving the merged model (None without LoRA)."""
    vision = vision_of(model)
    if vision is None:
        raise VocabularyMismatch("model.vision_input=features but the pretrained model reads images as tokens "
                                 "(no vision.json beside it); pretrain with model.vision_input=features")
    delattr(model, ATTRIBUTE)
    merged = None
    if add_lora is not None:
        model, merged = add_lora(model)
    setattr(model, ATTRIBUTE, vision)
    for param in vision.encoder.parameters():
        param.requires_grad_(bool(cfg.encoder.trainable))
    vision.tuned_encoder = bool(cfg.encoder.trainable)
    return model, merged
