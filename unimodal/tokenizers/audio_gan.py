"""Optional adversarial training of the audio codec: a multi-scale STFT discriminator with feature matching.

The EnCodec recipe: at each STFT size the complex spectrogram (real and imaginary parts as two channels)
goes through 2-D convs dilated along time and strided along frequency, to a map of logits. The generator
gets a hinge term on every scale's logits plus feature matching, the L1 distance between the
discriminator's feature maps of the real and the reconstructed clip, each divided by the mean magnitude
of the real one (EnCodec's relative L1). Both terms share ``train.adversarial.weight`` (EnCodec weights
them equally). Like the image PatchGAN, this is a training-time part held by the Lightning module: it is
never saved with the codec and leaves its fingerprint alone. ``train.adversarial.weight=0`` (the default)
turns it off.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimodal.tokenizers.losses import AdversarialLoss, adversarial_enabled, hinge_discriminator_loss


class STFTDiscriminator(nn.Module):
    """One scale: complex STFT ``[B, 2, freq, frames]`` -> (logits, feature maps)."""

    def __init__(self, n_fft: int, channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        convs = [nn.Conv2d(2, channels, (3, 9), padding=(1, 4))]
        for index in range(layers):
            dilation = 2 ** index   # 1, 2, 4: a wider view along time at each layer
            convs.append(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), dilation=(dilation, 1),
                                   padding=(dilation, 4)))
        convs.append(nn.Conv2d(channels, channels, 3, padding=1))
        self.convs = nn.ModuleList(nn.utils.parametrizations.weight_norm(c) for c in convs)
        self.head = nn.utils.parametrizations.weight_norm(nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, waves: Tensor) -> tuple[Tensor, list[Tensor]]:
        spec = torch.stft(waves.float(), self.n_fft, hop_length=self.n_fft // 4, window=self.window,
                          center=True, return_complex=True)
        x = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)   # [B, 2, frames, freq]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            features.append(x)
        return self.head(x), features


class MultiScaleSTFTDiscriminator(nn.Module):
    def __init__(self, n_ffts: tuple[int, ...] = (1024, 512, 256), channels: int = 32, layers: int = 3) -> None:
        super().__init__()
        self.scales = nn.ModuleList(STFTDiscriminator(n, channels, layers) for n in n_ffts)

    def forward(self, waves: Tensor) -> list[tuple[Tensor, list[Tensor]]]:
        return [scale(waves) for scale in self.scales]


def feature_matching(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Mean over scales and layers of ``|real - fake|_1 / mean |real|``."""
    terms = [F.l1_loss(f, r.detach()) / r.detach().abs().mean().clamp(min=1e-6)
             for real_maps, fake_maps in zip(real, fake, strict=True)
             for r, f in zip(real_maps, fake_maps, strict=True)]
    return torch.stack(terms).mean()


class AudioAdversarialLoss(AdversarialLoss):
    """The image loss's schedule (``start_step``, ``ramp_steps``) around a multi-scale STFT discriminator."""

    def __init__(self, weight: float, start_step: int = 200, ramp_steps: int = 0, channels: int = 32,
                 layers: int = 3) -> None:
        nn.Module.__init__(self)
        self.weight = float(weight)
        self.start_step = int(start_step)
        self.ramp_steps = int(ramp_steps)
        self.discriminator = MultiScaleSTFTDiscriminator(channels=int(channels), layers=int(layers))

    def generator_step(self, tokenizer: nn.Module, waves: Tensor, step: int) -> tuple[Tensor, Tensor, dict[str, float]]:
        """The codec's own loss plus, once active, hinge and feature-matching terms: ``(loss, recon, logs)``."""
        loss, recon, target, logs = tokenizer.reconstruction_terms(waves)
        weight = self.generator_weight(step)
        if weight > 0.0:
            fake = self.discriminator(recon)
            with torch.no_grad():
                real = self.discriminator(target)
            gan = torch.stack([F.relu(1.0 - logits).mean() for logits, _ in fake]).mean()
            matching = feature_matching([maps for _, maps in real], [maps for _, maps in fake])
            loss = loss + weight * (gan + matching)
            logs.update(gan=float(gan.detach()), feature_matching=float(matching.detach()), loss=float(loss.detach()))
        logs["gan_weight"] = weight
        return loss, recon, logs

    def discriminator_loss(self, waves: Tensor, reconstruction: Tensor) -> tuple[Tensor, dict[str, float]]:
        length = min(waves.shape[-1], reconstruction.shape[-1])
        real = self.discriminator(waves[..., :length])
        fake = self.discriminator(reconstruction[..., :length].detach())
        losses = [hinge_discriminator_loss(r, f) for (r, _), (f, _) in zip(real, fake, strict=True)]
        loss = torch.stack(losses).mean()
        return loss, {"d_loss": float(loss.detach()),
                      "d_real": float(torch.stack([r.detach().mean() for r, _ in real]).mean()),
                      "d_fake": float(torch.stack([f.detach().mean() for f, _ in fake]).mean())}


def build_audio_adversarial(options: Any, key: str = "tokenizer.audio.train.adversarial"
                            ) -> AudioAdversarialLoss | None:
    """From ``train.adversarial`` (weight, start_step, ramp_steps, channels, layers); None when it is off."""
    if not adversarial_enabled(options, key):
        return None
    return AudioAdversarialLoss(float(options.weight), int(options.start_step), int(options.ramp_steps),
                                int(options.channels), int(options.layers))
