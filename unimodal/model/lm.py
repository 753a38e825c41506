"""The backbone: a Hugging Face Llama causal LM built from config over the shared vocabulary."""

from __future__ import annotations

from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from unimodal.vocab import Vocabulary


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
    )


def build_lm(model_cfg: Any, vocab: Vocabulary) -> LlamaForCausalLM:
    model = LlamaForCausalLM(llama_config(model_cfg, vocab))
    return model


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
