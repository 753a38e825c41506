"""Lightning loop shared by every trainable tokenizer (stage 0).

A trainable tokenizer is a plain ``nn.Module`` with ``training_loss(batch) -> (loss, logs)``; this module only
holds the optimisation loop, and the held-out metrics come from :func:`unimodal.eval.tokenizers.measure.measure`.
An image tokenizer that also exposes ``forward(images) -> (reconstruction, QuantizerOutput)`` can add a PatchGAN
loss (``train.adversarial``), whose discriminator lives here, beside the loop, never in the tokenizer.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from unimodal.errors import ConfigError
from unimodal.eval.tokenizers.measure import measure
from unimodal.tokenizers.base import image_channels
from unimodal.tokenizers.losses import AdversarialLoss, build_adversarial, generator_step_loss
from unimodal.training.accelerator import quiet_lightning


def clock_cap(minutes: float | None) -> dict[str, float] | None:
    """Lightning's ``max_time`` for an opt-in wall-clock cap. None (every default) trains every step: a cap
    stops at a point that depends on the machine and its load, so the same seed would give another model."""
    return None if minutes is None else {"minutes": float(minutes)}


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
    """One fused AdamW + OneCycle over the tokenizer. With an ``adversarial`` loss (a PatchGAN), the
    discriminator gets its own AdamW and the loop switches to manual optimization (two optimizers);
    without one, the step is Lightning's automatic one, as fast as before."""

    def __init__(self, tokenizer: torch.nn.Module, lr: float, steps: int,
                 adversarial: AdversarialLoss | None = None) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.adversarial = adversarial
        self.lr = lr
        self.steps = steps
        self.automatic_optimization = adversarial is None
        self.completed_steps = 0  # batches trained on; Lightning's global_step counts both optimizers' steps

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        if self.adversarial is not None:
            return self._adversarial_step(batch)
        loss, logs = self.tokenizer.training_loss(batch)
        self._log(loss, logs, batch.shape[0])
        self.completed_steps += 1
        return loss

    def _adversarial_step(self, images: torch.Tensor) -> torch.Tensor:
        step = self.completed_steps
        gen_opt, disc_opt = self.optimizers()
        self.toggle_optimizer(gen_opt)  # no discriminator gradients from the generator's loss
        if hasattr(self.adversarial, "generator_step"):   # audio: the STFT discriminator's own generator terms
            loss, reconstruction, logs = self.adversarial.generator_step(self.tokenizer, images, step)
        else:
            loss, reconstruction, logs = generator_step_loss(self.tokenizer, images, self.adversarial, step)
        gen_opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        gen_opt.step()
        self.lr_schedulers().step()
        self.untoggle_optimizer(gen_opt)
        if self.adversarial.active(step):
            self.toggle_optimizer(disc_opt)
            disc_loss, disc_logs = self.adversarial.discriminator_loss(images, reconstruction.detach())
            disc_opt.zero_grad(set_to_none=True)
            self.manual_backward(disc_loss)
            disc_opt.step()
            self.untoggle_optimizer(disc_opt)
            logs.update(disc_logs)
        self._log(loss.detach(), logs, images.shape[0])
        self.completed_steps += 1
        return loss.detach()

    def _log(self, loss: torch.Tensor, logs: dict[str, float], batch_size: int) -> None:
        self.log("loss", loss, prog_bar=True, batch_size=batch_size)
        for key, value in logs.items():
            self.log(f"train/{key}", float(value), batch_size=batch_size)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.tokenizer.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.0, betas=(0.9, 0.99), fused=True)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.lr, total_steps=self.steps + 1,
                                                        pct_start=0.05, anneal_strategy="cos")
        if self.adversarial is None:
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
        # Constant lr and beta1 0.5 for the discriminator, the usual GAN setting (pix2pix, taming).
        disc_opt = torch.optim.AdamW(self.adversarial.parameters(), lr=self.lr, weight_decay=0.0,
                                     betas=(0.5, 0.9), fused=True)
        return [optimizer, disc_opt], [{"scheduler": scheduler, "interval": "step"}]


def fit_tokenizer(tokenizer: torch.nn.Module, train: torch.Tensor, held_out: torch.Tensor, budget: Any,
                  trainer_kwargs: dict[str, Any], progress: bool = True, seed: int = 0,
                  desc: str = "tokenizer") -> dict[str, float]:
    """Train for ``budget.steps`` steps (stopping early only at an opt-in ``budget.max_minutes``), then measure
    on ``held_out``.

    ``budget.adversarial`` (optional; weight 0 = off) adds a PatchGAN discriminator for image tokenizers.
    It is dropped after training: the tokenizer's weights and fingerprint never include it.
    """
    steps = int(budget.steps)
    if getattr(tokenizer, "modality", None) == "audio":
        from unimodal.tokenizers.audio_gan import build_audio_adversarial

        adversarial = build_audio_adversarial(getattr(budget, "adversarial", None),
                                              key=f"tokenizer.{desc}.train.adversarial")
    else:
        adversarial = build_adversarial(getattr(budget, "adversarial", None), image_channels(tokenizer),
                                        key=f"tokenizer.{desc}.train.adversarial")
    if adversarial is not None and getattr(tokenizer, "modality", None) not in ("image", "audio"):
        raise ConfigError(f"tokenizer.{desc}.train.adversarial.weight > 0: adversarial losses exist for image "
                          f"and audio tokenizers only; set it to 0")
    dataset = RandomBatches(train, steps * int(budget.batch_size), seed=seed)
    loader = DataLoader(dataset, batch_size=int(budget.batch_size), shuffle=False, drop_last=True)
    module = TokenizerModule(tokenizer, float(budget.lr), steps, adversarial)
    quiet_lightning()
    # With two optimizers global_step counts both, so the data (exactly `steps` batches) sets the length.
    length = {"max_steps": steps} if adversarial is None else {"max_steps": -1, "max_epochs": 1}
    trainer = L.Trainer(**length, max_time=clock_cap(budget.max_minutes),
                        enable_progress_bar=progress, enable_model_summary=False, logger=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, **trainer_kwargs)
    started = time.perf_counter()
    tokenizer.train()
    trainer.fit(module, loader)
    seconds = time.perf_counter() - started
    tokenizer.eval()
    metrics = measure(tokenizer, held_out, int(budget.batch_size))
    metrics.update(train_steps=int(module.completed_steps), train_seconds=round(seconds, 1),
                   steps_per_second=round(module.completed_steps / max(seconds, 1e-9), 3),
                   parameters=sum(p.numel() for p in tokenizer.parameters()))
    return metrics

