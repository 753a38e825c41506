"""The fast decode path: a preallocated (static) KV cache over the Llama's own weights, one-token step compiled.

:func:`fast_decoder` gives the generation loop a :class:`StaticDecoder` (or None: the eager HF forward with
its dynamic cache). A decoder has two calls, as the eager one does: ``prefill(ids, attention)`` runs the
left-padded prompts, ``step(tokens)`` one new token per row; both return the last position's logits
``[rows, vocab]``, so constraints, guidance and sampling are one code path for both.

Why our own cache and layer loop rather than transformers' ``StaticCache``: every tensor the decode step
reads has one fixed shape and address for the whole generation (cache, padding mask, write position), so the
step is one CUDA graph with nothing rebuilt per token (HF's forward rebuilds the 4-D mask and the cache
bookkeeping every call), and it does not move with the HF cache API (renamed between 4.x and 5.x).
It calls the model's own modules (norms, projections, rotary table, MLP, head), so it computes what the HF
forward computes, and it embeds as the eager path does (``embed_ids``, then ``DecodeEmbedder`` a token at a time).

On CUDA the step is ``torch.compile(mode="reduce-overhead")`` (inductor kernels replayed as a CUDA graph);
on a CPU it runs uncompiled by default (compiling costs more than a generation saves there).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from unimodal.errors import ConfigError
from unimodal.model.lm import DecodeEmbedder, embed_ids

FAST_CHOICES = ("auto", "true", "false")
LENGTH_STEP = 64  # cache lengths are rounded up to this, so nearby prompt lengths reuse one compiled step
MAX_SHAPES = 64  # compiled decoder shapes a session may hold (each keeps its KV cache and CUDA graph)


def fast_mode(value: Any) -> str:
    """``sampling.fast`` as one of :data:`FAST_CHOICES` (YAML may hand over a bool)."""
    text = str(value).lower()
    if text not in FAST_CHOICES:
        raise ConfigError(f"fast={value!r}: choose auto (static cache on CUDA), true or false (eager HF forward)")
    return text


def supports_fast(model: torch.nn.Module) -> bool:
    """The layer loop below mirrors the Llama decoder layer; other families (stage=align) stay eager."""
    return isinstance(model, LlamaForCausalLM) and not model.training


def fast_decoder(model: torch.nn.Module, fast: Any, max_new_tokens: int) -> StaticDecoder | None:
    """The decoder ``generate_ids`` should use: a :class:`StaticDecoder`, or None for the eager HF path.

    ``fast=auto`` takes the static cache, compiled, on CUDA and the eager path elsewhere; ``true`` takes the
    static cache on any device (compiled on CUDA only); ``false`` always the eager path.
    """
    mode = fast_mode(fast)
    device = next(model.parameters()).device
    if mode == "false" or (mode == "auto" and (device.type != "cuda" or not supports_fast(model))):
        return None
    if not supports_fast(model):
        raise ConfigError(f"fast=true needs a LlamaForCausalLM in eval mode, got {type(model).__name__}"
                          f"{' in training mode' if model.training else ''}; use fast=auto or fast=false")
    return StaticDecoder(model, max_new_tokens, compile=device.type == "cuda")


class StaticDecoder:
    """One generation over a :class:`StaticKV`: ``prefill(ids, attention)`` runs the left-padded prompts,
    ``step(tokens)`` one new token per row; both return the last position's logits ``[rows, vocab]``."""

    def __init__(self, model: LlamaForCausalLM, max_new_tokens: int, compile: bool) -> None:
        self.model, self.max_new_tokens, self.compiled = model, int(max_new_tokens), compile
        self.device = next(model.parameters()).device
        self.kv: StaticKV | None = None

    @torch.no_grad()
    def prefill(self, ids: torch.Tensor, attention: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        ids, attention = ids.to(self.device), attention.to(self.device)
        rows, width = ids.shape
        length = -(-(width + self.max_new_tokens) // LENGTH_STEP) * LENGTH_STEP
        self.kv = static_kv(self.model, rows, length, self.compiled)
        self.embed, self.filled = DecodeEmbedder(self.model, ids), width
        positions = (attention.cumsum(-1) - 1).clamp(min=0)
        self.next_position = positions[:, -1:] + 1  # what the eager path gets from the grown attention mask
        return self.kv.prefill(embed_ids(self.model, ids, images=images), attention, positions)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.filled >= self.kv.length:
            raise ConfigError(f"static cache of {self.kv.length} positions is full: it is sized from "
                              f"max_new_tokens={self.max_new_tokens}, and step() ran more often than that")
        new = tokens.to(self.device)[:, None]
        positions, self.next_position = self.next_position, self.next_position + 1
        self.filled += 1
        return self.kv.step(self.embed(new), positions)


def static_kv(model: LlamaForCausalLM, rows: int, length: int, compile: bool) -> StaticKV:
    """One cache per shape, device and dtype, kept on the model: its buffers and compiled graph are reused."""
    caches = model.__dict__.setdefault("_unimodal_static_kv", {})
    param = next(model.parameters())
    key = (rows, length, compile, param.device, param.dtype)  # a model moved or cast later gets new buffers
    if key not in caches:
        if len(caches) >= MAX_SHAPES:
            raise ConfigError(f"{MAX_SHAPES} static KV caches (batch x length) are held for this model already, "
                              "each with its device memory; use fewer batch sizes and prompt lengths, or fast=false")
        caches[key] = StaticKV(model, rows, length, compile)
    return caches[key]


class StaticKV:
    """A KV cache of ``rows`` x ``length`` positions and the decoder layers over ``model``'s weights.

    ``prefill`` writes the left-padded prompt at positions ``[0, width)``; each ``step`` appends one token at
    the next position. Keys at padded prompt positions stay masked for the whole generation.
    """

    def __init__(self, model: LlamaForCausalLM, rows: int, length: int, compile: bool) -> None:
        config = model.config
        self.model, self.rows, self.length = model, rows, length
        param = next(model.parameters())
        heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        shape = (rows, self.kv_heads, length, self.head_dim)
        layers = config.num_hidden_layers
        self.keys = [torch.zeros(shape, dtype=param.dtype, device=param.device) for _ in range(layers)]
        self.values = [torch.zeros(shape, dtype=param.dtype, device=param.device) for _ in range(layers)]
        self.keep = torch.zeros((rows, length), dtype=torch.bool, device=param.device)  # key not a prompt pad
        self.position = torch.zeros(1, dtype=torch.long, device=param.device)  # where the next token goes
        self.slots = torch.arange(length, device=param.device)
        self.compiled = compile
        if compile:
            for tensor in (*self.keys, *self.values, self.keep, self.position, self.slots):
                torch._dynamo.mark_static_address(tensor)  # written in place: the CUDA graph reads them where they are
            # every cache shape is one more compiled entry of the same `_decode` code object; dynamo's default
            # limit of 8 would fail the ninth shape of a session under fullgraph
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, MAX_SHAPES)
            self._decode_step = torch.compile(self._decode, mode="reduce-overhead", fullgraph=True, dynamic=False)
        else:
            self._decode_step = self._decode

    def step(self, embeds: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Logits [rows, vocab] of one new token per row (``embeds`` [rows, 1, d]) written at the next position."""
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()  # the last step's logits were read; its buffers may go
        logits = self._decode_step(embeds.contiguous(), position_ids.contiguous())
        self.position += 1
        return logits.clone()  # a CUDA graph reuses its output buffer at the next replay

    def prefill(self, embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        """Run the prompt (eager, once per generation) and write its keys and values at ``[0, width)``."""
        width = embeds.shape[1]
        if embeds.shape[0] != self.rows or width >= self.length:
            raise ValueError(f"prompt of {tuple(embeds.shape[:2])} does not fit a cache of {self.rows} x {self.length}")
        self.keep.fill_(True)
        self.keep[:, :width] = attention_mask.bool()
        self.position.fill_(width)
        query = self.slots[:width, None]
        # causal and not a pad; a pad query sees itself so that no softmax row is empty (NaN in the cache)
        mask = (self.slots[None, :] <= query) & (self.keep[:, None, :] | (self.slots[None, :] == query))
        return self._layers(embeds, position_ids, self.slots[:width], mask[:, None])

    def _decode(self, embeds: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
        mask = (self.keep & (self.slots <= self.position))[:, None, None, :]
        return self._layers(embeds, position_ids, self.position, mask)

    def _layers(self, hidden: torch.Tensor, position_ids: torch.Tensor, slots: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """The Llama decoder over ``hidden`` [rows, T, d] at cache ``slots`` [T]; logits of the last token."""
        decoder = self.model.model
        cos, sin = decoder.rotary_emb(hidden, position_ids)
        rows, steps = hidden.shape[:2]
        for index, layer in enumerate(decoder.layers):
            attention = layer.self_attn
            normed = layer.input_layernorm(hidden)
            query = attention.q_proj(normed).view(rows, steps, -1, self.head_dim).transpose(1, 2)
            key = attention.k_proj(normed).view(rows, steps, -1, self.head_dim).transpose(1, 2)
            value = attention.v_proj(normed).view(rows, steps, -1, self.head_dim).transpose(1, 2)
            query, key = apply_rotary_pos_emb(query, key, cos, sin)
            self.keys[index].index_copy_(2, slots, key)
            self.values[index].index_copy_(2, slots, value)
            mixed = F.scaled_dot_product_attention(query, self.keys[index], self.values[index], attn_mask=mask,
                                                   scale=attention.scaling,
                                                   enable_gqa=self.kv_heads != query.shape[1])
            hidden = hidden + attention.o_proj(mixed.transpose(1, 2).reshape(rows, steps, -1))
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        return self.model.lm_head(decoder.norm(hidden[:, -1])).float()
