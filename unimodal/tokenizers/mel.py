"""The multi-scale log-mel spectrogram of the audio codec: its training loss (log-mel L1 and spectral
convergence) and the mel distance its evaluation reports."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _hz_to_mel(hz: Tensor) -> Tensor:
    return 2595.0 * torch.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: Tensor) -> Tensor:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int) -> Tensor:
    """Triangular HTK-scale mel filters, ``[n_freqs, n_mels]`` (0 Hz .. Nyquist, unnormalised)."""
    freqs = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)
    top = _hz_to_mel(torch.tensor(sample_rate / 2, dtype=torch.float64))
    edges = _mel_to_hz(torch.linspace(0.0, float(top), n_mels + 2, dtype=torch.float64))
    widths = edges[1:] - edges[:-1]
    dist = edges[None, :] - freqs[:, None]  # [n_freqs, n_mels + 2]
    rising = -dist[:, :-2] / widths[:-1]
    falling = dist[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0).to(torch.float32)


class MultiScaleLogMel(nn.Module):
    """Mel magnitude spectrograms at several STFT sizes (hop = n_fft / 4), and distances on them.

    STFT magnitudes are divided by the window sum, so a full-scale sine peaks near 0.5 at every
    scale. Windows and filterbanks are non-persistent buffers: rebuilt in ``__init__``, never
    saved. Implemented with ``torch.stft`` rather than ``torchaudio.transforms.MelSpectrogram``
    so that it does not depend on torchaudio's compiled extension loading.

    ``floor`` is added before the log. It is high on purpose (-40 dB re a full-scale sine): with
    a tiny floor the log-mel L1 on clean synthetic audio is dominated by near-empty bins and
    silences (off segments, the gaps between harmonics), where any decoder noise costs more than
    missing the tone itself, and training collapses to near-silent output.
    """

    def __init__(self, sample_rate: int, n_ffts: tuple[int, ...] = (256, 512, 1024), floor: float = 1e-2):
        super().__init__()
        self.n_ffts = tuple(n_ffts)
        self.floor = floor
        for n_fft in self.n_ffts:
            n_mels = min(80, n_fft // 8)  # 32 / 64 / 80: no empty low-frequency filters
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)
            self.register_buffer(f"fbank_{n_fft}", mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate),
                                 persistent=False)

    def forward(self, waves: Tensor) -> list[Tensor]:
        """``[B, L]`` -> list of ``[B, n_mels, frames]`` mel magnitude spectrograms (linear)."""
        out = []
        for n_fft in self.n_ffts:
            window = getattr(self, f"window_{n_fft}")
            spec = torch.stft(waves.float(), n_fft, hop_length=n_fft // 4, window=window, center=True,
                              pad_mode="constant", return_complex=True).abs() / window.sum()
            out.append(torch.einsum("bft,fm->bmt", spec, getattr(self, f"fbank_{n_fft}")))
        return out

    def distance(self, pred: Tensor, target: Tensor) -> Tensor:
        """Mean over scales of the L1 distance between log(mel + floor) spectrograms."""
        return self.losses(pred, target)[0]

    def losses(self, pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """``(log-mel L1, spectral convergence)``, each averaged over scales.

        Spectral convergence ``||S_t - S_p|| / ||S_t||`` on linear mel magnitudes is dominated by
        the loud bins and so rewards producing the right partials at the right level.
        """
        log_l1, convergence = [], []
        for p, t in zip(self(pred), self(target), strict=True):
            log_l1.append(F.l1_loss(torch.log(p + self.floor), torch.log(t + self.floor)))
            convergence.append(torch.linalg.vector_norm(p - t) / torch.linalg.vector_norm(t).clamp(min=1e-6))
        return torch.stack(log_l1).mean(), torch.stack(convergence).mean()
