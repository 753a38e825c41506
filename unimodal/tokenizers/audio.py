"""Audio tokenizer: an EnCodec-style neural codec trained from scratch (mono, 16 kHz by default).

Architecture from the ``encodec`` package: a SEANet convolutional encoder, a residual vector
quantizer (RVQ) with EMA codebooks initialised by k-means on the first training batch, and a
SEANet decoder. ``encode`` turns waveforms ``[B, samples]`` into codes ``[B, K, T]`` with
``T = ceil(samples / hop)`` frames (``hop = prod(ratios)``, 320 samples = 50 Hz by default);
``decode`` turns them back into ``[B, T * hop]`` samples.

Training (``training_loss``) uses only reconstruction losses: waveform L1, a multi-scale mel loss
(log-mel L1 + spectral convergence) and the quantizer's commitment penalty; there is no
adversarial discriminator. Codebooks are not trained by gradient: the quantizer updates them by
EMA inside its forward pass in train mode (k-means init on the first batch; dead codes re-seeded).

Note: a fresh tokenizer has all-zero codebooks until its first training forward pass (k-means
init), so ``encode`` on an untrained tokenizer returns only zeros.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types
import warnings
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unimodal.tokenizers.base import ModalityTokenizer, register


def _import_encodec() -> tuple[type[nn.Module], type[nn.Module], type[nn.Module]]:
    """Return ``(SEANetEncoder, SEANetDecoder, ResidualVectorQuantizer)`` from ``encodec``.

    ``encodec/__init__.py`` imports ``encodec.utils``, which imports ``torchaudio`` (only for
    audio file I/O and resampling, unused here). When torchaudio's compiled library does not
    match the installed torch, that import raises ``OSError`` and the whole package fails to
    import although the submodules we need are plain PyTorch. In that case import the two
    submodules under a temporary bare parent package that skips ``encodec/__init__.py``.
    """
    try:
        from encodec import modules, quantization
    except (ImportError, OSError):
        spec = importlib.util.find_spec("encodec")
        if spec is None or spec.submodule_search_locations is None:
            raise
        had_parent = "encodec" in sys.modules
        if not had_parent:
            parent = types.ModuleType("encodec")
            parent.__path__ = list(spec.submodule_search_locations)
            sys.modules["encodec"] = parent
        try:
            modules = importlib.import_module("encodec.modules")
            quantization = importlib.import_module("encodec.quantization")
        finally:
            if not had_parent:
                # Leave no half-empty "encodec" behind: a later plain ``import encodec`` should
                # behave as it would have (the cached submodules are reused by it).
                del sys.modules["encodec"]
    return modules.SEANetEncoder, modules.SEANetDecoder, quantization.ResidualVectorQuantizer


SEANetEncoder, SEANetDecoder, ResidualVectorQuantizer = _import_encodec()


# --- spectral helpers -------------------------------------------------------------------------
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


def kmeans_matmul(vectors: Tensor, clusters: int, iterations: int) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means from random samples of ``vectors [N, D]``: ``(means [clusters, D], counts [clusters])``.
    An empty cluster keeps its previous mean (as encodec's k-means does)."""
    picks = torch.randint(0, vectors.shape[0], (clusters,), device=vectors.device) if vectors.shape[0] < clusters \
        else torch.randperm(vectors.shape[0], device=vectors.device)[:clusters]
    means = vectors[picks].clone()
    counts = torch.zeros(clusters, device=vectors.device)
    for _ in range(max(iterations, 1)):
        distances = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ means.T + means.pow(2).sum(1)[None]
        nearest = distances.argmin(dim=1)
        counts = torch.bincount(nearest, minlength=clusters).to(vectors.dtype)
        sums = torch.zeros_like(means).index_add_(0, nearest, vectors)
        means = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], means)
    return means, counts


# --- the tokenizer -------------------------------------------------------------------------------
@register
class EncodecTokenizer(nn.Module, ModalityTokenizer):
    """EnCodec-style audio tokenizer: waveforms ``[B, samples]`` <-> codes ``[B, K, T]``."""

    modality = "audio"
    kind = "encodec"

    def __init__(self, sample_rate: int = 16000, filters: int = 16,
                 ratios: tuple[int, ...] | list[int] = (8, 5, 4, 2), dimension: int = 64,
                 n_residual_layers: int = 1, lstm: int = 0, num_codebooks: int = 2,
                 codebook_size: int = 256, l1_weight: float = 1.0, mel_weight: float = 1.0,
                 commitment_weight: float = 1.0, quantizer_dropout: bool = False, causal: bool = False,
                 norm: str = "weight_norm", dead_code_fraction: float | None = None):
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.filters = int(filters)
        self.ratios = [int(r) for r in ratios]
        self.dimension = int(dimension)
        self.n_residual_layers = int(n_residual_layers)
        self.lstm = int(lstm)
        self._num_codebooks = int(num_codebooks)
        self._codebook_size = int(codebook_size)
        self.l1_weight = float(l1_weight)
        self.mel_weight = float(mel_weight)
        self.commitment_weight = float(commitment_weight)
        self.quantizer_dropout = bool(quantizer_dropout)
        self.causal = bool(causal)   # True and norm="weight_norm": the pretrained 24 kHz EnCodec's SEANet
        self.norm = str(norm)
        # None: a code is dead below encodec's absolute EMA count (2 per step). That suits codebooks smaller
        # than a batch's frames; with 1,024 codes and 400 frames a step every code's mean count is 0.4, so
        # all of them would be re-seeded every step. A fraction makes the bar relative to the mean count.
        self.dead_code_fraction = None if dead_code_fraction is None else float(dead_code_fraction)
        self.hop_length = math.prod(self.ratios)

        seanet = dict(channels=1, dimension=self.dimension, n_filters=self.filters,
                      n_residual_layers=self.n_residual_layers, ratios=list(self.ratios), lstm=self.lstm,
                      norm=self.norm, causal=self.causal)
        with warnings.catch_warnings():
            # encodec uses the old torch.nn.utils.weight_norm (weight_g / weight_v parameters).
            warnings.filterwarnings("ignore", message=".*weight_norm.*deprecated", category=FutureWarning)
            self.encoder = SEANetEncoder(**seanet)
            self.decoder = SEANetDecoder(**seanet)
        self._init_conv_weights()
        # EMA codebooks (decay 0.99), k-means init on the first training batch; the buffers
        # (embed, embed_avg, cluster_size, inited) are all part of state_dict().
        self.quantizer = ResidualVectorQuantizer(dimension=self.dimension, n_q=self._num_codebooks,
                                                 bins=self._codebook_size)
        self.mel = MultiScaleLogMel(self.sample_rate)

    @torch.no_grad()
    def _init_conv_weights(self) -> None:
        """Variance-preserving conv init (N(0, 1/fan_in)) with zero biases.

        PyTorch's default conv init shrinks the signal ~3x in variance per layer and adds random
        biases, so at init the encoder output is an input-independent offset with a per-frame
        spread ~1e-3 of it and the decoder output is ~1e-5 RMS. The offset then drifts by more
        than that spread at every optimiser step, and the EMA codebooks (k-means-fitted to the
        previous step) collapse to a single used code per level.
        """
        for module in (*self.encoder.modules(), *self.decoder.modules()):
            if not isinstance(module, nn.Conv1d | nn.ConvTranspose1d):
                continue
            kernel = module.kernel_size[0]
            if isinstance(module, nn.ConvTranspose1d):  # each output sample sees kernel / stride taps
                fan_in = module.in_channels * kernel / module.stride[0]
            else:
                fan_in = module.in_channels // module.groups * kernel
            std = 1.0 / math.sqrt(fan_in)
            if hasattr(module, "weight_v"):  # old-style weight_norm: weight = g * v / ||v||
                module.weight_v.normal_(0.0, std)
                dims = list(range(1, module.weight_v.dim()))
                module.weight_g.copy_(module.weight_v.norm(dim=dims, keepdim=True))
            else:
                module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()

    # --- sizes -------------------------------------------------------------------------------
    @property
    def codebook_size(self) -> int:
        return self._codebook_size

    @property
    def num_codebooks(self) -> int:
        return self._num_codebooks

    @property
    def frame_rate(self) -> float:
        """Code frames per second (50.0 by default)."""
        return self.sample_rate / self.hop_length

    def frames(self, num_samples: int) -> int:
        """Number of code frames ``T`` for a clip of ``num_samples`` samples."""
        return math.ceil(num_samples / self.hop_length)

    def num_tokens(self, num_samples: int) -> int:
        return self.num_codebooks * self.frames(num_samples)

    @property
    def tokens_per_second(self) -> float:
        return self.num_codebooks * self.frame_rate

    @property
    def bitrate(self) -> float:
        """Bits per second with all codebooks."""
        return self.tokens_per_second * math.log2(self.codebook_size)

    # --- conversion --------------------------------------------------------------------------
    def prepare(self, waves: Tensor) -> Tensor:
        """``[B, L]`` (or ``[B, 1, L]``) -> ``[B, 1, T * hop]`` on the model's device, zero-padded."""
        if waves.dim() == 3:
            if waves.shape[1] != 1:
                raise ValueError(f"expected mono audio [B, samples], got {tuple(waves.shape)}")
            waves = waves[:, 0]
        if waves.dim() != 2:
            raise ValueError(f"expected waves of shape [B, samples], got {tuple(waves.shape)}")
        device = next(self.parameters()).device
        waves = waves.to(device=device, dtype=torch.float32)
        pad = self.frames(waves.shape[-1]) * self.hop_length - waves.shape[-1]
        return F.pad(waves, (0, pad)).unsqueeze(1)

    @torch.no_grad()
    def encode(self, waves: Tensor, num_codebooks: int | None = None) -> Tensor:
        """Waveforms ``[B, samples]`` in [-1, 1] -> codes ``[B, k, T]`` (int64, in ``[0, codebook_size)``).

        ``num_codebooks`` keeps only the first ``k`` RVQ levels (a lower bitrate; meaningful only
        for a model trained with ``quantizer_dropout=True``).
        """
        k = self.num_codebooks if num_codebooks is None else int(num_codebooks)
        if not 1 <= k <= self.num_codebooks:
            raise ValueError(f"num_codebooks must be in [1, {self.num_codebooks}], got {k}")
        emb = self.encoder(self.prepare(waves))  # [B, D, T]
        codes = self.quantizer.vq.encode(emb, n_q=k)  # [k, B, T]
        return codes.transpose(0, 1).contiguous()

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``[B, k, T]`` (any ``k <= num_codebooks``) -> waveforms ``[B, T * hop]``."""
        if codes.dim() != 3 or not 1 <= codes.shape[1] <= self.num_codebooks:
            raise ValueError(f"expected codes [B, k<={self.num_codebooks}, T], got {tuple(codes.shape)}")
        device = next(self.parameters()).device
        emb = self.quantizer.decode(codes.to(device=device, dtype=torch.long).transpose(0, 1))
        out = self.decoder(emb)[:, 0]
        return out[:, : codes.shape[-1] * self.hop_length]

    # --- training ----------------------------------------------------------------------------
    def forward(self, waves: Tensor, n_q: int | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Full pass with a differentiable (straight-through) quantizer.

        Returns ``(reconstruction [B, T * hop], codes [B, n_q, T], commitment penalty)``. In train
        mode this updates the EMA codebooks (and k-means-initialises them on first use).
        """
        x = self.prepare(waves)
        emb = self.encoder(x)
        n_q = self.num_codebooks if n_q is None else n_q
        if self.training and self.quantizer_dropout:
            self._init_all_levels(emb.detach())
        # The encodec API takes a *bandwidth* in kbps, and its ``sample_rate`` argument is really the
        # frame rate; bandwidth = n_q * log2(bins) * frame_rate / 1000. The +0.5 guards the floor().
        bandwidth = (n_q + 0.5) * self.quantizer.get_bandwidth_per_quantizer(self.frame_rate)
        result = self.quantizer(emb, self.frame_rate, bandwidth)
        if self.training:
            self._revive_dead_codes(emb.detach(), n_q)
        recon = self.decoder(result.quantized)[:, 0, : x.shape[-1]]
        return recon, result.codes.transpose(0, 1), result.penalty

    @torch.no_grad()
    def _init_all_levels(self, emb: Tensor) -> None:
        """K-means-initialise every level not yet initialised, on this batch's residuals.

        With quantizer dropout a level is otherwise initialised by encodec whenever dropout first reaches
        it, by a k-means that builds an ``[N, codes, dim]`` difference tensor (37 s for one 1,024-code level
        on a busy CPU core). This k-means computes the same distances with one matmul.
        """
        books = [layer._codebook for layer in self.quantizer.vq.layers]
        if all(bool(book.inited) for book in books):
            return
        residual = emb
        for layer, book in zip(self.quantizer.vq.layers, books, strict=True):
            if not bool(book.inited):
                vectors = layer.project_in(residual.transpose(1, 2)).reshape(-1, book.embed.shape[1])
                means, counts = kmeans_matmul(vectors.float(), book.embed.shape[0], int(book.kmeans_iters))
                book.embed.copy_(means)
                book.embed_avg.copy_(means)
                book.cluster_size.copy_(counts)
                book.inited.fill_(1.0)
            residual = residual - layer.decode(layer.encode(residual))

    @torch.no_grad()
    def _revive_dead_codes(self, emb: Tensor, n_q: int) -> None:
        """Re-seed codes whose EMA usage fell below the quantizer's dead-code threshold.

        encodec's own ``expire_codes_`` is a no-op in practice: it overwrites ``embed`` but the
        EMA step right after recomputes ``embed = embed_avg / cluster_size`` from the untouched
        statistics. Here the statistics are reset too, to random vectors of the current batch's
        residual at that level, so the new codes survive the next EMA update.
        """
        residual = emb
        for layer in self.quantizer.vq.layers[:n_q]:
            book = layer._codebook
            threshold = seed_count = float(book.threshold_ema_dead_code)
            if self.dead_code_fraction is not None:
                # A re-seeded code starts at the mean count: at the bar itself it would be dead again after
                # one step without a hit, and be re-seeded over and over.
                seed_count = float(book.cluster_size.mean())
                threshold = self.dead_code_fraction * seed_count
            dead = book.cluster_size < threshold
            num_dead = int(dead.sum())
            if num_dead:
                vectors = layer.project_in(residual.transpose(1, 2)).reshape(-1, book.embed.shape[1])
                picks = vectors[torch.randint(0, vectors.shape[0], (num_dead,), device=vectors.device)]
                book.embed[dead] = picks
                book.embed_avg[dead] = picks * seed_count
                book.cluster_size[dead] = seed_count
            residual = residual - layer.decode(layer.encode(residual))

    def training_loss(self, waves: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Loss on a batch ``[B, samples]`` and its parts as floats (for logging).

        ``l1_weight * |wave error| + mel_weight * (log-mel L1 + spectral convergence)
        + commitment_weight * commitment``, the last being encodec's penalty: the MSE between
        the encoder output and its quantized value, averaged over the RVQ levels used.
        """
        loss, _, _, logs = self.reconstruction_terms(waves)
        return loss, logs

    def reconstruction_terms(self, waves: Tensor) -> tuple[Tensor, Tensor, Tensor, dict[str, float]]:
        """``(loss, reconstruction, target, logs)``: the loss of :meth:`training_loss`, with the padded target
        and its reconstruction (``[B, T * hop]`` each) for an adversarial term on top."""
        n_q = self.num_codebooks
        if self.quantizer_dropout and self.training:
            n_q = int(torch.randint(1, self.num_codebooks + 1, ()).item())
        recon, _, commit = self(waves, n_q=n_q)
        target = self.prepare(waves)[:, 0]
        l1 = F.l1_loss(recon, target)
        mel, convergence = self.mel.losses(recon, target)
        commit = commit.reshape(())
        loss = self.l1_weight * l1 + self.mel_weight * (mel + convergence) + self.commitment_weight * commit
        logs = {"loss": float(loss.detach()), "l1": float(l1.detach()), "mel": float(mel.detach()),
                "spectral_convergence": float(convergence.detach()), "commit": float(commit.detach()),
                "n_q": float(n_q)}
        return loss, recon, target, logs

    # --- persistence -------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate, "filters": self.filters, "ratios": list(self.ratios),
            "dimension": self.dimension, "n_residual_layers": self.n_residual_layers, "lstm": self.lstm,
            "num_codebooks": self.num_codebooks, "codebook_size": self.codebook_size,
            "l1_weight": self.l1_weight, "mel_weight": self.mel_weight,
            "commitment_weight": self.commitment_weight, "quantizer_dropout": self.quantizer_dropout,
            # Written only when not the default, so codecs saved before these keys keep their fingerprint.
            **({"causal": True} if self.causal else {}), **({"norm": self.norm} if self.norm != "weight_norm" else {}),
            **({"dead_code_fraction": self.dead_code_fraction} if self.dead_code_fraction is not None else {}),
        }

    def state_dict_for_save(self) -> dict[str, Tensor]:
        # Parameters (weight_norm's weight_g / weight_v, biases) plus the quantizer's buffers
        # (embed, embed_avg, cluster_size, inited). The mel windows / filterbanks are non-persistent.
        return self.state_dict()

    def load_weights(self, state: dict[str, Tensor]) -> None:
        self.load_state_dict(state, strict=True)
