"""``stage=align``: a pretrained Hugging Face causal LM, its vocabulary extended with ours, all else frozen.

The pretrained model's rows are our text range (its own tokenizer, ``tokenizer/text=pretrained``); our
special and media tokens are appended after them (the vocabulary layout ``[text][specials][media]``).
The token-world counterpart of training only LLaVA's projector: only the new rows learn.

The new rows are *separate* parameters (:class:`ExtendedEmbedding`, :class:`ExtendedHead`) beside the frozen
original matrices, rather than the whole resized matrix with the old rows' gradients masked: AdamW's
decoupled weight decay (and its moments) would still move masked rows, and a frozen row must stay
bit-identical. :func:`merge_new_rows` writes them back into one plain HF model for saving.

Initialisation of the new rows: the mean of the existing rows plus Gaussian noise of ``NOISE`` times their
per-dimension spread. The mean keeps a new token's logit at the average logit, so at step 0 the new tokens
take little probability mass and the pretrained model's outputs barely move (Hewitt, "Initializing New
Word Embeddings for Pretrained Language Models", 2021); the small noise makes the new rows distinct.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unimodal.errors import ConfigError
from unimodal.model.lm import MEDIA_POSITIONS_KEY, MediaPositions
from unimodal.vocab import Vocabulary

ALIGN_STAGE = "align"
NOISE = 0.1  # noise on new rows, as a fraction of the existing rows' per-dimension std
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def init_new_rows(existing: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` rows: the mean of ``existing`` rows plus ``NOISE`` x their per-dimension std of noise."""
    existing = existing.detach().float()
    mean, std = existing.mean(dim=0), existing.std(dim=0)
    noise = torch.randn(count, existing.shape[1], generator=generator)
    return (mean + NOISE * std * noise).to(existing.dtype)


class ExtendedEmbedding(nn.Module):
    """Ids below ``split`` read the frozen pretrained embedding; ids from ``split`` on read ``new_rows``."""

    def __init__(self, base: nn.Module, new_rows: nn.Parameter) -> None:
        super().__init__()
        self.base = base
        self.new_rows = new_rows
        self.split = int(base.weight.shape[0])

    @property
    def weight(self) -> torch.Tensor:  # what HF helpers read for the hidden size and dtype
        return self.base.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        is_new = ids >= self.split
        # Looked up separately and selected: concatenating the matrices would copy the whole frozen
        # embedding every step (gigabytes for a real LLM).
        old = self.base(ids.clamp(max=self.split - 1))
        new = F.embedding((ids - self.split).clamp(min=0), self.new_rows)
        scale = getattr(self.base, "embed_scale", None)  # models that scale inside the embedding (Gemma)
        if scale is not None:
            new = new * scale.to(new.dtype) if torch.is_tensor(scale) else new * scale
        return torch.where(is_new.unsqueeze(-1), new.to(old.dtype), old)


class ExtendedHead(nn.Module):
    """Logits of the frozen pretrained output layer, followed by those of the new rows."""

    def __init__(self, base: nn.Linear, new_rows: nn.Parameter, new_bias: nn.Parameter | None) -> None:
        super().__init__()
        self.base = base
        self.new_rows = new_rows  # the same Parameter as the embedding's when the model ties them
        self.new_bias = new_bias

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.base(hidden), F.linear(hidden, self.new_rows, self.new_bias)], dim=-1)


def _tied(model: nn.Module) -> bool:
    out = model.get_output_embeddings()
    return out is not None and out.weight is model.get_input_embeddings().weight


def extend_vocabulary(model: nn.Module, vocab: Vocabulary, seed: int = 0) -> nn.Module:
    """Freeze every parameter of ``model``, then give it trainable rows for ids ``[text_size, vocab.size)``."""
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    rows = int(embedding.weight.shape[0])
    if rows != vocab.text_size:
        raise ConfigError(
            f"model.pretrained: the model has {rows} embedding rows but the text tokenizer gives {vocab.text_size} "
            f"text ids; use the model's own tokenizer (tokenizer/text=pretrained) and set "
            f"tokenizer.text.pad_to={rows} if its embedding is padded beyond the tokenizer")
    if head is None or not isinstance(head, nn.Linear):
        raise ConfigError(f"model.pretrained: {type(model).__name__} has no linear output layer to extend")
    tied = _tied(model)
    for param in model.parameters():
        param.requires_grad_(False)
    generator = torch.Generator().manual_seed(int(seed))
    count = vocab.size - vocab.text_size
    new_in = nn.Parameter(init_new_rows(embedding.weight, count, generator))
    new_out = new_in if tied else nn.Parameter(init_new_rows(head.weight, count, generator))
    new_bias = None if head.bias is None else nn.Parameter(head.bias.detach().mean().expand(count).clone())
    model.set_input_embeddings(ExtendedEmbedding(embedding, new_in))
    model.set_output_embeddings(ExtendedHead(head, new_out, new_bias))
    return model


def merge_new_rows(model: nn.Module) -> nn.Module:
    """The plain HF model again (``vocab_size`` = old + new rows); a model never extended comes back as is."""
    embedding, head = model.get_input_embeddings(), model.get_output_embeddings()
    if not isinstance(embedding, ExtendedEmbedding):
        return model
    model.set_input_embeddings(embedding.base)
    model.set_output_embeddings(head.base)  # still the very matrix of the embedding when tied
    split, total = embedding.split, embedding.split + embedding.new_rows.shape[0]
    model.resize_token_embeddings(total, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[split:] = embedding.new_rows.to(model.get_input_embeddings().weight)
        out = model.get_output_embeddings()
        if out.weight is not model.get_input_embeddings().weight:
            out.weight[split:] = head.new_rows.to(out.weight)
        if head.new_bias is not None:
            out.bias[split:] = head.new_bias.to(out.bias)
    for param in model.parameters():
        param.requires_grad_(True)
    return model


def _check_decoder_layout(model: nn.Module, where: str) -> None:
    # The training loss runs ``model.model`` then ``model.lm_head`` (lm_module.masked_lm_loss), the layout of
    # Llama-family models (Llama, Mistral, Qwen2, Gemma, Phi-3, SmolLM, ...).
    if not isinstance(getattr(model, "model", None), nn.Module) or not hasattr(model, "lm_head"):
        raise ConfigError(f"{where}: {type(model).__name__} has no .model/.lm_head; stage=align takes Llama-style "
                          f"causal LMs (Llama, Mistral, Qwen2, Gemma, Phi-3, SmolLM, ...)")


def load_pretrained(path: str) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` in float32 (so the training loop's precision setting applies)."""
    from transformers import AutoModelForCausalLM

    where = f"model.pretrained={path!r}"
    if not Path(path).exists() and not HUB_ID.match(path):
        raise ConfigError(f"{where}: no such folder (give a Hugging Face causal LM folder or a hub id owner/name)")
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except (OSError, ValueError) as err:  # missing files, offline hub, not a causal LM
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"{where}: cannot load a Hugging Face causal LM ({first})") from None
    _check_decoder_layout(model, where)
    return model


def build_aligned_lm(model_cfg: Any, vocab: Vocabulary, seed: int = 0) -> nn.Module:
    """The pretrained LM of ``model.pretrained``, frozen, with new rows for our tokens (and, with
    ``model.media_positions``, a new media-position table, zero at the start so step 0 is the pretrained model)."""
    if not model_cfg.get("pretrained"):
        raise ConfigError("stage=align needs a pretrained LM: add model=from_pretrained "
                          "model.pretrained=<folder or hub id> (and tokenizer/text=pretrained)")
    model = extend_vocabulary(load_pretrained(str(model_cfg.pretrained)), vocab, seed)
    model.train()  # from_pretrained returns eval mode (dropout off); training runs in train mode
    for name in ("pad", "bos", "eos"):  # our specials, as build_lm sets them for a model from scratch
        for config in (model.config, getattr(model, "generation_config", None)):
            if config is not None:
                setattr(config, f"{name}_token_id", getattr(vocab, f"{name}_id"))
    span = int(model_cfg.context_length) if model_cfg.get("media_positions") else 0
    setattr(model.config, MEDIA_POSITIONS_KEY, span)
    if span:
        model.media_positions = MediaPositions(vocab, model.config.hidden_size, span)
        nn.init.zeros_(model.media_positions.embed.weight)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(f"[align] {model_cfg.pretrained}: {vocab.size - vocab.text_size} new token rows; training "
          f"{trainable / 1e6:.3f}M of {total / 1e6:.2f}M parameters, the rest frozen", flush=True)
    return model


def check_align_config(cfg: Any, pretrained_is_run: bool = False) -> None:
    """Before stage 0 spends any time: align needs a pretrained model and its own tokenizer. ``pretrained_is_run``:
    ``model.pretrained`` is a run of ours, which a features run aligns a projector to (with the run's tokenizers)."""
    if cfg.stage.name in ("pretrain", "all") and cfg.model.get("pretrained"):
        raise ConfigError(f"stage={cfg.stage.name} trains a new model from scratch, but model.pretrained="
                          f"{cfg.model.pretrained!r} is set; use stage=align to start from a pretrained LM")
    if cfg.stage.name == "instruct" and cfg.model.get("pretrained") and not cfg.get("init_from"):
        raise ConfigError(f"stage=instruct tunes a run's model, but model.pretrained={cfg.model.pretrained!r} is set "
                          f"and no init_from: align the pretrained LM first (stage=align), then add "
                          f"init_from=<that run dir>")
    if cfg.stage.name != ALIGN_STAGE:
        return
    if not cfg.model.get("pretrained"):
        raise ConfigError("stage=align needs a pretrained LM: add model=from_pretrained "
                          "model.pretrained=<folder or hub id> tokenizer/text=pretrained")
    if pretrained_is_run:
        if cfg.model.get("vision_input", "tokens") != "features":
            raise ConfigError(f"stage=align with model.pretrained={cfg.model.pretrained} (a run of ours, whose "
                              f"vocabulary has every token already) aligns a feature projector: add "
                              f"model.vision_input=features")
        return
    if cfg.tokenizer.text.kind != "hf":
        raise ConfigError(f"stage=align: tokenizer.text.kind={cfg.tokenizer.text.kind!r}, but the pretrained "
                          f"model reads its own tokenizer's ids; add tokenizer/text=pretrained")
