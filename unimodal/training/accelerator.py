"""How every Lightning ``Trainer`` here is set up: accelerator, devices and precision, and a quiet start-up."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch


def trainer_kwargs(trainer_cfg: Any, lm: bool = False) -> dict[str, Any]:
    """Lightning accelerator settings on one device: what stage 0 trains tokenizers with (rank 0's device; the LM
    stages' devices, nodes and strategy are ``strategies.lm_trainer_kwargs``). The language model trains in
    ``trainer.precision`` and tokenizers in ``trainer.tokenizer_precision``, on any machine, so one seed gives one
    recipe everywhere. ``auto`` (opt-in) picks by machine instead: bf16-mixed on a GPU, and for the language model
    also on a CPU with native bf16 (AVX512-BF16/AMX); fp32 otherwise."""
    precision = trainer_cfg.precision if lm else trainer_cfg.get("tokenizer_precision", "32-true")
    if precision == "auto":
        on_gpu = torch.cuda.is_available() and trainer_cfg.accelerator != "cpu"
        precision = "bf16-mixed" if on_gpu or (lm and cpu_has_native_bf16()) else "32-true"
    return {"accelerator": trainer_cfg.accelerator, "devices": 1, "precision": precision}


def cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def quiet_lightning() -> None:
    """Keep Lightning's start-up banners (accelerator summary, tips) out of the user's console."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*weights_only.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # a frozen vision encoder, meant so
