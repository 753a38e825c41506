"""Lightning loop for the language model. The nn.Module stays a plain HF model; this holds the loop."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F

from unimodal.model.lm import embed_ids
from unimodal.sequence import MODALITY_CODES
from unimodal.training.dense_loss import Reduce, dense_lm_loss, modality_means


def masked_lm_loss(model: torch.nn.Module, ids: torch.Tensor, loss_mask: torch.Tensor,
                   attention_mask: torch.Tensor | None = None,
                   modality: torch.Tensor | None = None,
                   position_ids: torch.Tensor | None = None,
                   reduce: Reduce = None,
                   images: torch.Tensor | None = None,
                   target_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token loss on positions where ``loss_mask`` marks the *target* token (the per-modality parts summed
    over data-parallel ranks by ``reduce``, when given: ``dense_loss.modality_means``; ``images``: the pixels of
    the images the rows read as features); with ``target_weights`` (one weight per modality code, indexed by each
    target's ``modality``) a weighted mean instead of a plain one.

    Packed rows (unimodal/training/packing.py) come with ``position_ids`` restarting at every document and
    no ``attention_mask``: transformers then keeps attention inside each document.

    The output projection runs only on those positions: on a CPU the full ``[B, L, V]`` logits
    cost more memory traffic than the rest of the step.
    """
    if attention_mask is not None and bool(attention_mask.all()):
        attention_mask = None  # no padding: lets attention take its plain causal fast path
    hidden = model.model(inputs_embeds=embed_ids(model, ids, images=images), attention_mask=attention_mask,
                         position_ids=position_ids, use_cache=False).last_hidden_state
    mask = loss_mask[:, 1:]
    logits = model.lm_head(hidden[:, :-1][mask])
    per_token = F.cross_entropy(logits.float(), ids[:, 1:][mask], reduction="none")
    # No target (a data-parallel rank whose rows are all padding): still a graph through every parameter, so
    # that DDP's gradient reduction finds each one.
    loss = per_token.mean() if per_token.numel() else model.lm_head(hidden[:, :1]).sum() * 0.0
    if target_weights is not None and modality is not None and per_token.numel():
        weights = target_weights[modality[:, 1:][mask]]
        loss = (per_token * weights).sum() / weights.sum().clamp(min=1e-9)
    parts: dict[str, float] = {}
    if modality is not None:
        parts = modality_means(per_token.detach(), modality[:, 1:][mask], reduce=reduce)
    return loss, parts


def plain_name(name: str) -> str:
    """A parameter's name without the FSDP and activation-checkpointing wrappers' prefixes."""
    for wrapper in ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module."):
        name = name.replace(wrapper, "")
    return name


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
        # Decided on the plain model: under FSDP the parameters seen in configure_optimizers are flat shards.
        self.no_decay = {name for name, param in model.named_parameters() if param.ndim < 2 or "norm" in name}
        self.target_weights = target_weight_table(getattr(train_cfg, "loss_weights", None))

    def _step(self, batch: dict[str, torch.Tensor], stage: str) -> torch.Tensor:
        loss_fn = dense_lm_loss if self.compile_step else masked_lm_loss
        ranks = self.trainer.world_size if self._trainer is not None else 1
        summed = partial(self.trainer.strategy.reduce, reduce_op="sum") if ranks > 1 else None
        weights = self.target_weights  # training only: validation losses stay plain means, comparable across runs
        if weights is not None:
            weights = weights.to(batch["ids"].device) if stage == "train" else None
        loss, parts = loss_fn(self.model, batch["ids"], batch["loss_mask"], batch.get("attention_mask"),
                              batch["modality"], batch.get("position_ids"), reduce=summed,
                              images=batch.get("pixel_values"), target_weights=weights)
        if ranks > 1:
            mask = batch["loss_mask"][:, 1:]
            mass = mask.sum() if weights is None else (weights[batch["modality"][:, 1:]] * mask).sum()
            loss = self._global_mean(loss, mass, ranks)
        size = batch["ids"].shape[0]
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, on_step=stage == "train",
                 on_epoch=stage != "train", sync_dist=ranks > 1)
        for name, value in parts.items():   # global already: the same keys and values on every rank
            self.log(f"{stage}/loss_{name}", value, batch_size=size, on_step=stage == "train",
                     on_epoch=stage != "train")
        return loss

    def _global_mean(self, loss: torch.Tensor, mass: torch.Tensor, ranks: int) -> torch.Tensor:
        """This rank's share of the mean over every rank's targets (``mass``: this rank's target count, or the sum
        of its targets' ``lm.loss_weights``). DDP and FSDP average gradients over ranks, whose slices hold
        different numbers of targets (a caption beside an image); scaled so, the averaged gradient (and the logged
        mean) is that of one process over the whole global batch."""
        mass = mass.to(torch.float32)
        total = self.trainer.strategy.reduce(mass.clone(), reduce_op="sum")
        return loss * (mass * ranks / total.clamp(min=1e-9)).to(loss.dtype)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        # Clipped here rather than by Trainer(gradient_clip_val): Lightning refuses that with a fused
        # optimizer under mixed precision, and bf16 has no loss scale to undo first.
        if self.train_cfg.grad_clip:
            wrapped = self.trainer.model if self._trainer is not None else None
            if hasattr(wrapped, "clip_grad_norm_"):  # FSDP: the norm over every rank's shards
                norm = wrapped.clip_grad_norm_(float(self.train_cfg.grad_clip))
            else:
                norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(self.train_cfg.grad_clip))
            self.log("train/grad_norm", norm, on_step=True, on_epoch=False)

    def configure_optimizers(self) -> Any:
        cfg = self.train_cfg
        decay, no_decay = [], []
        for name, param in self.model.named_parameters():
            if param.requires_grad:
                (no_decay if plain_name(name) in self.no_decay else decay).append(param)
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
