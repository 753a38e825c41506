"""Lightning loop for the language model. The nn.Module stays a plain HF model; this holds the loop."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from unimodal.model.lm import embed_ids
from unimodal.sequence import MODALITY_CODES
from unimodal.training.dense_loss import dense_lm_loss, modality_means


def masked_lm_loss(model: torch.nn.Module, ids: torch.Tensor, loss_mask: torch.Tensor,
                   attention_mask: torch.Tensor | None = None,
                   modality: torch.Tensor | None = None,
                   position_ids: torch.Tensor | None = None,
                   target_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token loss on positions where ``loss_mask`` marks the *target* token; with ``target_weights`` (one
    weight per modality code, indexed by each target's ``modality``) a weighted mean instead of a plain one.

    Packed rows (unimodal/training/packing.py) come with ``position_ids`` restarting at every document and
    no ``attention_mask``: transformers then keeps attention inside each document.

    The output projection runs only on those positions: on a CPU the full ``[B, L, V]`` logits
    cost more memory traffic than the rest of the step.
    """
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None  # no padding: lets attention take its plain causal fast path
    hidden = model.model(inputs_embeds=embed_ids(model, ids), attention_mask=attention_mask,
                         position_ids=position_ids, use_cache=False).last_hidden_state
    mask = loss_mask[:, 1:]
    logits = model.lm_head(hidden[:, :-1][mask])
    per_token = F.cross_entropy(logits.float(), ids[:, 1:][mask], reduction="none")
    loss = per_token.mean() if per_token.numel() else hidden.sum() * 0.0
    if target_weights is not None and modality is not None and per_token.numel():
        weights = target_weights[modality[:, 1:][mask]]
        loss = (per_token * weights).sum() / weights.sum().clamp(min=1e-9)
    parts: dict[str, float] = {}
    if modality is not None:
        parts = modality_means(per_token.detach(), modality[:, 1:][mask])
    return loss, parts


def target_weight_table(loss_weights: Any) -> torch.Tensor | None:
    """``lm.loss_weights`` ({modality: weight}, unlisted ones 1) as one weight per modality code, or None."""
    if not loss_weights:
        return None
    table = torch.ones(max(MODALITY_CODES.values()) + 1)
    for name, weight in dict(loss_weights).items():
        table[MODALITY_CODES[name]] = float(weight)
    return table


class LMModule(L.LightningModule):
    def __init__(self, model: torch.nn.Module, train_cfg: Any, compile: bool = False) -> None:
        super().__init__()
        self.model = model
        self.train_cfg = train_cfg
        self.compile_step = compile  # trainer.compile: the step as one compiled graph (dense_loss.py)
        self.target_weights = target_weight_table(getattr(train_cfg, "loss_weights", None))

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        loss_fn = dense_lm_loss if self.compile_step else masked_lm_loss
        weights = self.target_weights  # training only: validation losses stay plain means, comparable across runs
        if weights is not None:
            weights = weights.to(batch["ids"].device) if stage == "train" else None
        loss, parts = loss_fn(self.model, batch["ids"], batch["loss_mask"], batch.get("attention_mask"),
                              batch["modality"], batch.get("position_ids"), target_weights=weights)
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

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Clipped here rather than by Trainer(gradient_clip_val): Lightning refuses that with a fused
        # optimizer under mixed precision, and bf16 has no loss scale to undo first.
        if self.train_cfg.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.train_cfg.grad_clip))
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_optimizers(self) -> Any:
        cfg = self.train_cfg
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if param.ndim < 2 or "norm" in name else decay).append(param)
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}],
                                      lr=cfg.lr, betas=(0.9, 0.95), fused=True)
        warmup, total, floor = max(1, cfg.warmup_steps), max(2, cfg.max_steps), cfg.min_lr_ratio

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
