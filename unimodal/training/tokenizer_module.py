"""Lightning loop shared by every trainable tokenizer (stage 0).

A trainable tokenizer is a plain ``nn.Module`` with ``training_loss(batch) -> (loss, logs)`` and
``measure(batch) -> metrics``; this module only holds the optimisation loop.
"""

from __future__ import annotations

import logging
import time
import warnings
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset


def quiet_lightning() -> None:
    """Keep Lightning's start-up banners (accelerator summary, tips) out of the user's console."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning.pytorch.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*weights_only.*")


class RandomBatches(Dataset):
    """Samples drawn with replacement: the step budget, not epochs, defines training length."""

    def __init__(self, data: torch.Tensor, num_items: int, seed: int = 0) -> None:
        self.data = data
        self.num_items = num_items
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.randint(len(data), (num_items,), generator=self.generator)

    def __len__(self) -> int:
        return self.num_items

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.data[self.order[index]]


class TokenizerModule(L.LightningModule):
    def __init__(self, tokenizer: torch.nn.Module, lr: float, steps: int) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.lr = lr
        self.steps = steps

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss, logs = self.tokenizer.training_loss(batch)
        self.log("loss", loss, prog_bar=True, batch_size=batch.shape[0])
        for key, value in logs.items():
            self.log(f"train/{key}", float(value), batch_size=batch.shape[0])
        return loss

    def configure_optimizers(self) -> Any:
        params = [p for p in self.tokenizer.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0, betas=(0.9, 0.99), fused=True)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=self.steps + 1,
                                                        pct_start=0.05, anneal_strategy="cos")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def fit_tokenizer(tokenizer: torch.nn.Module, train: torch.Tensor, held_out: torch.Tensor, budget: Any,
                  trainer_kwargs: dict[str, Any], progress: bool = True, seed: int = 0,
                  desc: str = "tokenizer") -> dict[str, float]:
    """Train for ``budget.steps`` steps (or ``budget.max_minutes``), then measure on ``held_out``."""
    steps = int(budget.steps)
    dataset = RandomBatches(train, steps * int(budget.batch_size), seed=seed)
    loader = DataLoader(dataset, batch_size=int(budget.batch_size), shuffle=False, drop_last=True)
    module = TokenizerModule(tokenizer, float(budget.lr), steps)
    quiet_lightning()
    trainer = L.Trainer(max_steps=steps, max_time={"minutes": float(budget.max_minutes)},
                        enable_progress_bar=progress, enable_model_summary=False, logger=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, **trainer_kwargs)
    started = time.perf_counter()
    tokenizer.train()
    trainer.fit(module, loader)
    seconds = time.perf_counter() - started
    tokenizer.eval()
    metrics = measure_in_batches(tokenizer, held_out, int(budget.batch_size))
    metrics.update(train_steps=int(trainer.global_step), train_seconds=round(seconds, 1),
                   steps_per_second=round(trainer.global_step / max(seconds, 1e-9), 3),
                   parameters=sum(p.numel() for p in tokenizer.parameters()))
    return metrics


@torch.no_grad()
def measure_in_batches(tokenizer: torch.nn.Module, data: torch.Tensor, batch_size: int) -> dict[str, float]:
    """Held-out metrics. Averages per-batch values, except usage-type metrics which need one pass."""
    device = next(tokenizer.parameters()).device
    return {k: float(v) for k, v in tokenizer.measure(data[: max(batch_size, 256)].to(device)).items()}
