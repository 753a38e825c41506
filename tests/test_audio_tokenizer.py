"""Fast checks of the EnCodec-style audio tokenizer on a tiny config."""

from __future__ import annotations

import math

import pytest
import torch

from unimodal.eval.metrics.audio import si_snr
from unimodal.eval.tokenizers.card import save_tokenizer
from unimodal.eval.tokenizers.measure import measure
from unimodal.tokenizers.audio import EncodecTokenizer, mel_filterbank
from unimodal.tokenizers.base import _REGISTRY, load_tokenizer

TINY = dict(sample_rate=16000, filters=4, ratios=[4, 2], dimension=8, n_residual_layers=1, lstm=0,
            num_codebooks=2, codebook_size=16)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tiny model is many small ops: extra intra-op threads only add overhead, and on a busy
    2-core machine OpenMP waits made this module 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tones(batch: int, samples: int, seed: int = 0, sample_rate: int = 16000) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(samples) / sample_rate
    freq = 200 + 800 * torch.rand(batch, 1, generator=gen)
    phase = 2 * math.pi * torch.rand(batch, 1, generator=gen)
    return 0.5 * torch.sin(2 * math.pi * freq * t + phase)


def trained_tiny(steps: int = 1, seed: int = 0, **overrides) -> EncodecTokenizer:
    """A tiny tokenizer after ``steps`` training steps (the first one k-means-initialises the codebooks)."""
    torch.manual_seed(seed)
    tok = EncodecTokenizer(**{**TINY, **overrides})
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    waves = tones(8, 800, seed=seed)
    for _ in range(steps):
        loss, _ = tok.training_loss(waves)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return tok.eval()


def test_registered_and_sizes():
    assert _REGISTRY["encodec"] is EncodecTokenizer
    tok = EncodecTokenizer(**TINY)
    assert tok.modality == "audio" and tok.kind == "encodec"
    assert tok.num_codebooks == 2 and tok.codebook_size == 16
    assert tok.hop_length == 8 and tok.frame_rate == 2000.0
    assert tok.frames(800) == 100 and tok.frames(801) == 101
    assert tok.num_tokens(801) == 2 * 101
    assert tok.bitrate == 2 * 2000 * 4
    assert EncodecTokenizer().frame_rate == 50.0


def test_encode_shape_and_range_decode_length():
    tok = trained_tiny()
    waves = tones(3, 803, seed=1)
    codes = tok.encode(waves)
    assert codes.shape == (3, 2, tok.frames(803)) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < tok.codebook_size
    recon = tok.decode(codes)
    assert recon.shape == (3, tok.frames(803) * tok.hop_length)
    assert torch.isfinite(recon).all()
    low = tok.encode(waves, num_codebooks=1)
    assert low.shape == (3, 1, tok.frames(803))
    assert torch.equal(low[:, 0], codes[:, 0])  # RVQ: the first level does not depend on later ones
    assert tok.decode(low).shape == recon.shape
    with pytest.raises(ValueError):
        tok.encode(waves, num_codebooks=3)


def test_save_load_roundtrip(tmp_path):
    tok = trained_tiny(steps=2)
    waves = tones(2, 640, seed=2)
    codes = tok.encode(waves)
    save_tokenizer(tok, tmp_path / "audio_tok", measure(tok, waves, 2))
    loaded = load_tokenizer(tmp_path / "audio_tok")
    assert isinstance(loaded, EncodecTokenizer)
    assert loaded.get_config() == tok.get_config()
    assert loaded.fingerprint == tok.fingerprint
    assert torch.equal(loaded.encode(waves), codes)
    assert torch.allclose(loaded.decode(codes), tok.decode(codes))
    # the EMA codebooks and their "initialized" flags travel with the weights
    assert all(float(layer._codebook.inited) == 1.0 for layer in loaded.quantizer.vq.layers)
    assert not any(key.startswith("mel.") for key in tok.state_dict_for_save())


def test_training_reduces_loss():
    torch.manual_seed(0)
    tok = EncodecTokenizer(**TINY).train()
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    waves = tones(8, 800, seed=3)
    losses = []
    for _ in range(25):
        loss, logs = tok.training_loss(waves)
        assert set(logs) >= {"loss", "l1", "mel", "spectral_convergence", "commit"}
        assert all(isinstance(v, float) for v in logs.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


def test_measure_keys_and_quantizer_dropout():
    tok = trained_tiny(steps=1, quantizer_dropout=True)
    metrics = measure(tok, tones(2, 800, seed=4), 2)
    assert set(metrics) == {"si_snr", "mel_distance", "codebook_usage", "tokens_per_second", "bitrate"}
    assert 0.0 < metrics["codebook_usage"] <= 1.0
    assert metrics["tokens_per_second"] == 4000.0 and metrics["bitrate"] == 16000.0
    tok.train()
    seen = {int(tok.training_loss(tones(2, 800))[1]["n_q"]) for _ in range(12)}
    assert seen <= {1, 2} and len(seen) == 2


def test_helpers():
    fbank = mel_filterbank(129, 32, 16000)
    assert fbank.shape == (129, 32) and (fbank.sum(0) > 0).all()
    x = tones(2, 800)
    assert (si_snr(x, x) > 60).all()
    noisy = x + 0.05 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(si_snr(3.0 * noisy, x), si_snr(noisy, x), atol=1e-3)  # scale-invariant
    assert (si_snr(noisy, x) > 10).all() and (si_snr(noisy, x) < 30).all()
