"""Training losses of image tokenizers: pixel reconstruction and an optional PatchGAN.

Any image tokenizer whose ``forward(images)`` returns ``(reconstruction, QuantizerOutput)`` trains with
these. The discriminator is a training-time part: it lives in :class:`AdversarialLoss`, held by the
Lightning module, never in the tokenizer, so it is not saved with it and leaves its fingerprint alone.

No perceptual (LPIPS-style) loss: its feature network would have to be downloaded, and a network
trained here from scratch would not measure perception.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from unimodal.errors import ConfigError


def reconstruction_loss(images: Tensor, reconstruction: Tensor, aux_loss: Tensor, l1_weight: float = 1.0,
                        l2_weight: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """Weighted L1 + L2 on [0, 1] pixels plus the quantizer's aux loss (commitment / entropy)."""
    l1 = F.l1_loss(reconstruction, images)
    l2 = F.mse_loss(reconstruction, images)
    rec = l1_weight * l1 + l2_weight * l2
    loss = rec + aux_loss
    logs = {"loss": float(loss.detach()), "rec": float(rec.detach()), "l1": float(l1.detach()),
            "l2": float(l2.detach()), "aux": float(aux_loss.detach())}
    return loss, logs


class PatchDiscriminator(nn.Module):
    """A small conv net scoring overlapping patches real (> 0) or reconstructed (< 0).

    Idea from pix2pix's PatchGAN, as used by taming-transformers' VQGAN: strided 4x4 convs, then
    stride-1 convs to one logit per patch. GroupNorm(1, .) rather than BatchNorm, so a patch's score
    does not depend on the other images in the batch. Images in [0, 1] -> logits ``[B, 1, h, w]``.
    """

    def __init__(self, in_channels: int = 3, channels: int = 32, layers: int = 2) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        width = channels
        for _ in range(layers - 1):
            blocks += [nn.Conv2d(width, width * 2, 4, stride=2, padding=1), nn.GroupNorm(1, width * 2),
                       nn.LeakyReLU(0.2)]
            width *= 2
        # 3x3 stride-1 heads (pix2pix uses 4x4) keep a logit map even for 16x16 inputs.
        blocks += [nn.Conv2d(width, width, 3, padding=1), nn.GroupNorm(1, width), nn.LeakyReLU(0.2),
                   nn.Conv2d(width, 1, 3, padding=1)]
        self.net = nn.Sequential(*blocks)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images * 2.0 - 1.0)


def hinge_discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def hinge_generator_loss(fake_logits: Tensor) -> Tensor:
    return -fake_logits.mean()


class AdversarialLoss(nn.Module):
    """The discriminator plus its schedule: nothing happens before ``start_step``; after it the
    discriminator trains every step and the generator term ramps linearly to ``weight``."""

    def __init__(self, in_channels: int, weight: float, start_step: int = 200, ramp_steps: int = 0,
                 channels: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.weight = float(weight)
        self.start_step = int(start_step)
        self.ramp_steps = int(ramp_steps)
        self.discriminator = PatchDiscriminator(in_channels, int(channels), int(layers))

    def active(self, step: int) -> bool:
        return step >= self.start_step

    def generator_weight(self, step: int) -> float:
        if not self.active(step):
            return 0.0
        if self.ramp_steps <= 0:
            return self.weight
        return self.weight * min(1.0, (step - self.start_step + 1) / self.ramp_steps)

    def generator_loss(self, reconstruction: Tensor) -> Tensor:
        return hinge_generator_loss(self.discriminator(reconstruction))

    def discriminator_loss(self, images: Tensor, reconstruction: Tensor) -> tuple[Tensor, dict[str, float]]:
        real = self.discriminator(images)
        fake = self.discriminator(reconstruction.detach())
        loss = hinge_discriminator_loss(real, fake)
        return loss, {"d_loss": float(loss.detach()), "d_real": float(real.detach().mean()),
                      "d_fake": float(fake.detach().mean())}


def adversarial_enabled(options: Any, key: str) -> bool:
    """Whether an ``adversarial`` config node turns the discriminator on; out-of-range values name ``key``."""
    if options is None or float(options.weight) == 0.0:
        return False
    checks = {"weight": float(options.weight) > 0, "start_step": int(options.start_step) >= 0,
              "ramp_steps": int(options.ramp_steps) >= 0, "channels": int(options.channels) >= 1,
              "layers": int(options.layers) >= 1}
    for name, ok in checks.items():
        if not ok:
            raise ConfigError(f"{key}.{name}={getattr(options, name)} is out of range "
                              f"(weight >= 0 with 0 = off, start_step/ramp_steps >= 0, channels/layers >= 1)")
    return True


def build_adversarial(options: Any, in_channels: int, key: str = "train.adversarial") -> AdversarialLoss | None:
    """``AdversarialLoss`` from a config node (``weight``, ``start_step``, ...), or None when it is off."""
    if not adversarial_enabled(options, key):
        return None
    return AdversarialLoss(in_channels, float(options.weight), int(options.start_step), int(options.ramp_steps),
                           int(options.channels), int(options.layers))


def generator_step_loss(tokenizer: nn.Module, images: Tensor, adversarial: AdversarialLoss,
                        step: int) -> tuple[Tensor, Tensor, dict[str, float]]:
    """One generator loss: the tokenizer's reconstruction terms plus the (scheduled) GAN term.

    Returns ``(loss, reconstruction, logs)``; the reconstruction feeds the discriminator update.
    """
    reconstruction, quant = tokenizer(images)
    loss, logs = reconstruction_loss(images, reconstruction, quant.aux_loss,
                                     float(getattr(tokenizer, "l1_weight", 1.0)),
                                     float(getattr(tokenizer, "l2_weight", 1.0)))
    weight = adversarial.generator_weight(step)
    if weight > 0.0:  # before start_step the discriminator is not even run
        gan = adversarial.generator_loss(reconstruction)
        loss = loss + weight * gan
        logs.update(gan=float(gan.detach()), loss=float(loss.detach()))
    logs["gan_weight"] = weight
    return loss, reconstruction, logs

