"""Lightning loop for the language model. The nn.Module stays a plain HF model; this holds the loop."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from unimodal.sequence import MODALITY_CODES

_NAME_OF = {code: name for name, code in MODALITY_CODES.items()}


def masked_lm_loss(logits: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor,
                   modality: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token loss on positions where ``loss_mask`` marks the *target* token."""
    targets = ids[:, 1:]
    mask = loss_mask[:, 1:]
    per_token = F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), reduction="none")
    per_token = per_token.view_as(targets)
    loss = (per_token * mask).sum() / mask.sum().clamp(min=1)
    parts: dict[str, float] = {}
    if modality is not None:
        target_modality = modality[:, 1:]
        for code, name in _NAME_OF.items():
            selected = mask & (target_modality == code)
            if selected.any():
                parts[name] = float(per_token[selected].mean())
    return loss, parts


class LMModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, train_cfg: Any) -> None:
        super().__init__()
        self.model = model
        self.train_cfg = train_cfg

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids=ids, attention_mask=attention_mask, use_cache=False).logits

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        logits = self(batch["ids"], batch["attention_mask"])
        loss, parts = masked_lm_loss(logits, batch["ids"], batch["loss_mask"], batch["modality"])
        size = batch["ids"].shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, on_step=stage == "train",
                 on_epoch=stage != "train")
        for name, value in parts.items():
            self.log(f"{stage}/loss_{name}", value, batch_size=size, on_step=stage == "train",
                     on_epoch=stage != "train")
        return loss

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self) -> Any:
        cfg = self.train_cfg
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name else decay).append(param)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=cfg.lr, betas=(0.9, 0.95))
        warmup, total, floor = max(1, cfg.warmup_steps), max(2, cfg.max_steps), cfg.min_lr_ratio

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
