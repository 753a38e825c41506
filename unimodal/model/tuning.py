"""What a tuning stage trains: frozen parameters by name pattern, or LoRA adapters through ``peft``.

Patterns are ``fnmatch`` globs over ``named_parameters`` names (``model.embed_tokens.*``, ``lm_head.*``,
``model.layers.0.*``). With LoRA every base weight is frozen by ``peft`` and only the adapters train; the
adapters are merged back before saving, so the saved model is a plain Llama again.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatch
from typing import Any

import torch

from unimodal.errors import ConfigError


def freeze(model: torch.nn.Module, patterns: list[str], key: str = "instruct.freeze") -> list[str]:
    """Set ``requires_grad=False`` on every parameter whose name matches a pattern; return those names.
    A pattern that matches nothing is a ConfigError naming ``key`` (a typo would otherwise freeze nothing)."""
    names = [name for name, _ in model.named_parameters()]
    frozen: list[str] = []
    for pattern in patterns:
        hits = [name for name in names if fnmatch(name, pattern)]
        if not hits:
            examples = ", ".join(names[:3])
            raise ConfigError(f"{key}: pattern {pattern!r} matches no parameter (names look like {examples}, ...)")
        frozen.extend(hits)
    params = dict(model.named_parameters())
    for name in frozen:
        params[name].requires_grad_(False)
    return sorted(set(frozen))


def add_lora(model: torch.nn.Module, lora_cfg: Any) -> tuple[torch.nn.Module, Callable[[], torch.nn.Module]]:
    """LoRA adapters on ``lora_cfg.target_modules``. Returns the model to train (the base model with adapters
    injected in place, so the training loop calls it as before) and a function giving the merged model."""
    from peft import LoraConfig, get_peft_model

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [m for m in lora_cfg.target_modules if m not in names]
    if missing:
        raise ConfigError(f"instruct.lora.target_modules: {missing} are not modules of this model "
                          f"(it has e.g. q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)")
    config = LoraConfig(r=int(lora_cfg.r), lora_alpha=int(lora_cfg.alpha), lora_dropout=float(lora_cfg.dropout),
                        target_modules=list(lora_cfg.target_modules), bias="none")
    wrapped = get_peft_model(model, config)

    def merged() -> torch.nn.Module:
        return wrapped.merge_and_unload()

    return wrapped.get_base_model(), merged


def trainable_count(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
