"""The fast decode path: a preallocated (static) KV cache over the Llama's own weights, one-token step compiled.

:func:`choose_forward` gives ``generate_ids`` either the model itself (the eager path: HF forward with its
dynamic cache) or a :class:`StaticDecoder`, which takes the same call (``inputs_embeds``, ``attention_mask``,
``position_ids``) and returns the same ``.logits``, so the sampling loop is one code path for both.

Why our own cache and layer loop rather than transformers' ``StaticCache``: every tensor the decode step
reads has one fixed shape and address for the whole generation (cache, padding mask, write position), so the
step is one CUDA graph with nothing rebuilt per token (HF's forward rebuilds the 4-D mask and the cache
bookkeeping every call), and it does not move with the HF cache API (renamed between 4.x and 5.x).
It calls the model's own modules (norms, projections, rotary table, MLP, head), so it computes what the HF
forward computes; ``embed_ids`` (media positions included) stays outside, shared with the eager path.

On CUDA the step is ``torch.compile(mode="reduce-overhead")`` (inductor kernels replayed as a CUDA graph);
on a CPU it runs uncompiled by default (compiling costs more than a generation saves there).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from unimodal.errors import ConfigError

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


def choose_forward(model: torch.nn.Module, fast: Any, rows: int, width: int, max_new_tokens: int) -> Any:
    """The callable ``generate_ids`` runs each step: ``model`` (eager) or a :class:`StaticDecoder` for it.

    ``fast=auto`` takes the static cache, compiled, on CUDA and the eager path elsewhere; ``true`` takes the
    static cache on any device (compiled on CUDA only); ``false`` always the eager path.
    """
    mode = fast_mode(fast)
    device = next(model.parameters()).device
    if mode == "false" or (mode == "auto" and (device.type != "cuda" or not supports_fast(model))):
        return model
    if not supports_fast(model):
        raise ConfigError(f"fast=true needs a LlamaForCausalLM in eval mode, got {type(model).__name__}"
                          f"{' in training mode' if model.training else ''}; use fast=auto or fast=false")
    length = -(-(width + max_new_tokens) // LENGTH_STEP) * LENGTH_STEP
    decoder = decoder_for(model, rows, length, compile=device.type == "cuda")
    if decoder is None and mode == "true":
        raise ConfigError(f"{MAX_SHAPES} static decoders (batch x cache length) are held for this model already; "
                          "use fewer batch sizes and prompt lengths, or fast=auto to fall back to the eager path")
    return model if decoder is None else decoder


def decoder_for(model: LlamaForCausalLM, rows: int, length: int, compile: bool) -> StaticDecoder | None:
    """One decoder per shape, device and dtype, kept on the model: its buffers and compiled graph are reused.

    None once :data:`MAX_SHAPES` are held (each keeps its cache memory for the model's lifetime).
    """
    decoders = model.__dict__.setdefault("_unimodal_static_decoders", {})
    param = next(model.parameters())
    key = (rows, length, compile, param.device, param.dtype)  # a model moved or cast later gets new buffers
    if key not in decoders:
        if len(decoders) >= MAX_SHAPES:
            return None
        decoders[key] = StaticDecoder(model, rows, length, compile)
    return decoders[key]


class StaticDecoder:
    """A KV cache of ``rows`` x ``length`` positions and the decode step over ``model``'s weights.

    Called like the HF forward: the first call (the left-padded prompt) fills positions ``[0, width)``, each
    later call appends one token at the next position. Keys at padded prompt positions are masked for good.
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
            for tensor in (*self.keys, *self.values, self.keep, self.position):
                torch._dynamo.mark_static_address(tensor)  # written in place: the CUDA graph reads them where they are
            # every decoder (batch rows x cache length) is one more compiled entry of the same `_decode` code
            # object; dynamo's default limit of 8 would fail the ninth shape of a session under fullgraph
            torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, MAX_SHAPES)
            self._step = torch.compile(self._decode, mode="reduce-overhead", fullgraph=True, dynamic=False)
        else:
            self._step = self._decode

    @torch.no_grad()
    def __call__(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                 **_: Any) -> SimpleNamespace:
        """Same arguments as the HF forward in ``generate_ids``; cache arguments are ignored (the cache is ours)."""
        if attention_mask.shape[1] == inputs_embeds.shape[1]:  # the whole sequence so far: a new prompt
            return SimpleNamespace(logits=self.prefill(inputs_embeds, attention_mask, position_ids)[:, None],
                                   cache=None, past_key_values=None)
        if attention_mask.shape[1] > self.length:
            raise ConfigError(f"static cache of {self.length} positions is full; raise max_new_tokens before "
                              "generating (the cache is sized from it)")
        if self.compiled:
            torch.compiler.cudagraph_mark_step_begin()  # the last step's logits were read; its buffers may go
        # contiguous: a slice of the growing position table changes stride each step, and strides are guarded on
        logits = self._step(inputs_embeds.contiguous(), position_ids.contiguous())
        logits = logits.clone()  # a CUDA graph reuses its output buffer at the next replay
        self.position += 1
        return SimpleNamespace(logits=logits[:, None], cache=None, past_key_values=None)

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
