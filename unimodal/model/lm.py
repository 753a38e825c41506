"""The backbone: a Hugging Face Llama causal LM built from config over the shared vocabulary.

Optionally (``model.media_positions``) a learned embedding of each token's index inside its media span
is added to the token embedding (:class:`MediaPositions`). It lives beside the HF model as the
submodule ``media_positions``; :func:`embed_ids` is the one place that turns ids into input vectors,
used by training and generation alike. :func:`save_lm` writes the HF model as ``save_pretrained`` does,
so the folder stays a plain Llama, with the table in its own file that :func:`load_lm` reads back.
A model that reads images as features also carries ``vision_input`` (:mod:`unimodal.model.vision_input`):
``embed_ids`` fills the feature slots from it, and it is saved and loaded beside the HF model the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from unimodal.model.media_llama import SPAN_KEY, TABLE_FILE, SpanTable
from unimodal.model.vision_input import ATTRIBUTE, fill_slots, load_vision, save_vision
from unimodal.vocab import OPENERS, Vocabulary

MEDIA_POSITIONS_KEY = SPAN_KEY  # extra LlamaConfig field: span length covered (0 = off)
MEDIA_POSITIONS_FILE = TABLE_FILE


def llama_config(model_cfg: Any, vocab: Vocabulary) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab.size,
        hidden_size=int(model_cfg.hidden_size),
        num_hidden_layers=int(model_cfg.num_layers),
        num_attention_heads=int(model_cfg.num_heads),
        num_key_value_heads=int(model_cfg.num_heads),
        intermediate_size=int(model_cfg.intermediate_size),
        max_position_embeddings=int(model_cfg.context_length),
        attention_dropout=float(model_cfg.dropout),
        pad_token_id=vocab.pad_id,
        bos_token_id=vocab.bos_id,
        eos_token_id=vocab.eos_id,
        tie_word_embeddings=False,
        rope_theta=10000.0,
        **{MEDIA_POSITIONS_KEY: int(model_cfg.context_length) if model_cfg.get("media_positions") else 0},
    )


def span_resets(vocab: Vocabulary) -> list[int]:
    """Ids where a media index restarts: every span opener, ``<tile>`` and ``<frame>``."""
    resets = [vocab.special(OPENERS[m]) for m in vocab.media]
    return resets + [vocab.special(name) for name in ("<tile>", "<frame>") if name in vocab.specials]


def media_start(vocab: Vocabulary) -> int:
    """The first media id: everything from here on is a media code."""
    return vocab.text_size + len(vocab.specials)


class MediaPositions(SpanTable):
    """Embedding of a token's index inside its media span (0 outside spans, kept at zero).

    Why our own: rotary positions only tell a token its distance to others, so a small model has to work
    out an image token's row and column by finding ``<boi>`` first; this hands it the index directly
    (a learned 1-D index over the span, so the same table serves image grids, AnyRes tiles and audio
    frames). An index restarts at every span opener, ``<tile>`` and ``<frame>``. The module itself is
    :class:`~unimodal.model.media_llama.SpanTable`, which exports load with ``trust_remote_code``.
    """

    def __init__(self, vocab: Vocabulary, hidden_size: int, max_span: int) -> None:
        super().__init__(span_resets(vocab), media_start(vocab), hidden_size, max_span)


def build_lm(model_cfg: Any, vocab: Vocabulary) -> LlamaForCausalLM:
    model = LlamaForCausalLM(llama_config(model_cfg, vocab))
    _attach_media_positions(model, vocab)
    return model


def _attach_media_positions(model: LlamaForCausalLM, vocab: Vocabulary) -> None:
    span = int(getattr(model.config, MEDIA_POSITIONS_KEY, 0) or 0)
    if span:
        model.media_positions = MediaPositions(vocab, model.config.hidden_size, span)


def save_lm(model: LlamaForCausalLM, folder: str | Path) -> None:
    """``save_pretrained`` of the plain HF model, plus ``media_positions.safetensors`` when it has one and the
    vision input's files when it reads images as features."""
    from safetensors.torch import save_file

    folder = Path(folder)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("media_positions.", f"{ATTRIBUTE}."))}
    model.save_pretrained(folder, state_dict=state)
    if hasattr(model, "media_positions"):
        save_file({"weight": model.media_positions.embed.weight.detach().contiguous()},
                  str(folder / MEDIA_POSITIONS_FILE))
    save_vision(model, folder)


def load_lm(folder: str | Path, vocab: Vocabulary) -> LlamaForCausalLM:
    """A model written by :func:`save_lm`."""
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)  # a Llama, or the family stage=align started from
    _attach_media_positions(model, vocab)
    if hasattr(model, "media_positions"):
        model.media_positions.embed.weight.data.copy_(load_file(str(folder / MEDIA_POSITIONS_FILE))["weight"])
    vision = load_vision(folder)
    if vision is not None:
        setattr(model, ATTRIBUTE, vision)
    return model


def embed_ids(model: nn.Module, ids: torch.Tensor, context: torch.Tensor | None = None,
              images: torch.Tensor | None = None) -> torch.Tensor:
    """Input vectors for ``ids``; ``context`` is the whole sequence ``ids`` ends (for cached decoding); ``images``
    the processed pixels of the images ``ids`` reads as features (their slots filled in order)."""
    embed = model.get_input_embeddings()
    embeds = embed(ids) if images is None else fill_slots(model, embed(ids.clamp(min=0)), ids, images)
    positions = getattr(model, "media_positions", None)
    if positions is not None:
        index = positions.positions(ids if context is None else context)
        embeds = embeds + positions.embed(index[..., index.shape[-1] - ids.shape[-1]:])
    return embeds


class DecodeEmbedder:
    """Input vectors while decoding, one new token per row a step: what ``embed_ids`` gives over the whole
    history, but each step's media positions come from the previous step's (where each row's open span
    started), not from the whole history again: the same numbers for a cost that does not grow with the
    sequence, on the device, with nothing read back."""

    def __init__(self, model: nn.Module, prompt: torch.Tensor) -> None:
        self.model = model
        self.table: MediaPositions | None = getattr(model, "media_positions", None)
        self.column = prompt.shape[-1]   # the history column of the next token
        if self.table is not None:
            index = torch.arange(prompt.shape[-1], device=prompt.device).expand_as(prompt)
            opened = torch.where(torch.isin(prompt, self.table.resets), index, -1).cummax(dim=-1).values
            self.start = opened[:, -1] if prompt.shape[-1] else torch.full_like(prompt[:, 0], -1)

    def __call__(self, new: torch.Tensor) -> torch.Tensor:
        """Vectors of ``new`` ([rows, 1]: each row's next token)."""
        embeds = self.model.get_input_embeddings()(new)
        if self.table is not None:
            token = new[:, 0]
            self.start = torch.where(torch.isin(token, self.table.resets), self.column, self.start)
            inside = (token >= self.table.media_start) & (self.start >= 0)
            index = torch.where(inside, self.column - self.start, 0).clamp(max=self.table.max_span)
            embeds = embeds + self.table.embed(index)[:, None]
        self.column += 1
        return embeds


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
