"""Image tokenizer (GridImageTokenizer) and the quantizer factory. Tiny configs, CPU, fast."""

from __future__ import annotations

import json
import math

import pytest
import torch

from unimodal.eval.tokenizers.card import save_tokenizer
from unimodal.eval.tokenizers.measure import measure
from unimodal.tokenizers.base import CONFIG_FILE, load_tokenizer
from unimodal.tokenizers.image import GridImageTokenizer
from unimodal.tokenizers.quantizers import Quantizer, build_quantizer

QUANTIZER_CASES = {
    "fsq": {"levels": [8, 5, 5, 5]},
    "fsq-proj": {"levels": [5, 5, 5]},
    "vq": {"codebook_size": 32},
    "vq-cosine-factorised": {"codebook_size": 32, "codebook_dim": 3, "use_cosine_sim": True,
                             "kmeans_init": True, "decay": 0.9, "threshold_ema_dead_code": 1,
                             "commitment_weight": 0.25},
    "lfq": {"codebook_size": 16},
    "lfq-proj": {"codebook_size": 64, "entropy_loss_weight": 0.05, "commitment_weight": 0.25},
    "rvq": {"num_quantizers": 3, "codebook_size": 32},
}

TINY = {"image_size": 16, "block_channels": [8, 16, 16], "norm_groups": 4, "latent_dim": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def _quantizer(case: str, dim: int = 4) -> Quantizer:
    kind = case.split("-")[0]
    return build_quantizer(kind, dim, **QUANTIZER_CASES[case])


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1]: random 4x4 colour fields upsampled."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


# --- quantizers ------------------------------------------------------------------------
@pytest.mark.parametrize("case", sorted(QUANTIZER_CASES))
def test_quantizer_codes_roundtrip_and_range(case):
    torch.manual_seed(0)
    quantizer = _quantizer(case).eval()
    latents = torch.randn(2, 5, 6, 4)
    with torch.no_grad():
        out = quantizer(latents)
        back = quantizer.codes_to_latents(out.codes)
    expected_codes = (2, 5, 6) + ((quantizer.num_codebooks,) if case.startswith("rvq") else ())
    assert out.codes.shape == expected_codes
    assert out.codes.dtype == torch.long
    assert out.quantized.shape == latents.shape
    assert out.aux_loss.ndim == 0
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < quantizer.codebook_size
    torch.testing.assert_close(back, out.quantized, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", sorted(QUANTIZER_CASES))
def test_quantizer_gradients_reach_input(case):
    torch.manual_seed(0)
    quantizer = _quantizer(case).train()
    latents = torch.randn(2, 5, 6, 4, requires_grad=True)
    out = quantizer(latents)
    weights = torch.randn_like(out.quantized)
    (out.quantized * weights).sum().backward()
    grad = latents.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad != 0).float().mean() > 0.9
    assert torch.isfinite(out.aux_loss)


def test_quantizer_sizes_and_errors():
    assert build_quantizer("fsq", 4, levels=[8, 5, 5, 5]).codebook_size == 1000
    assert build_quantizer("lfq", 6).codebook_size == 64
    rvq = build_quantizer("rvq", 4, num_quantizers=2, codebook_size=16)
    assert (rvq.codebook_size, rvq.num_codebooks) == (16, 2)
    with pytest.raises(ValueError, match="unknown quantizer kind"):
        build_quantizer("nope", 4)
    with pytest.raises(ValueError, match="power of 2"):
        build_quantizer("lfq", 4, codebook_size=100)
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        rvq.codes_to_latents(torch.full((1, 3, 2), 16))
    with pytest.raises(ValueError):
        rvq(torch.randn(2, 3, 5))  # wrong latent size


# --- image tokenizer -------------------------------------------------------------------
def test_default_config_shapes():
    torch.manual_seed(0)
    tok = GridImageTokenizer().eval()
    assert tok.grid_shape == (8, 8)
    assert tok.num_tokens() == 64 and tok.num_tokens(64, 32) == 16 * 8
    assert (tok.codebook_size, tok.num_codebooks) == (1000, 1)
    images = torch.rand(2, 3, 32, 32)
    codes = tok.encode(images)
    assert codes.shape == (2, 8, 8) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < tok.codebook_size
    decoded = tok.decode(codes)
    assert decoded.shape == (2, 3, 32, 32)
    assert float(decoded.min()) >= 0.0 and float(decoded.max()) <= 1.0


@pytest.mark.parametrize("blocks,grid", [([8, 8, 8, 8], (2, 2)), ([8, 8, 8, 8, 8], (1, 1))])
def test_deeper_downsampling(blocks, grid):
    tok = GridImageTokenizer(image_size=16, block_channels=blocks, norm_groups=4, mid_attention=True)
    assert tok.downsample_factor == 2 ** (len(blocks) - 1) and tok.grid_shape == grid
    assert tok.encode(torch.rand(1, 3, 16, 16)).shape == (1, *grid)


def test_bad_configs_and_inputs():
    with pytest.raises(ValueError, match="divisible by norm_groups"):
        GridImageTokenizer(block_channels=[12, 16], norm_groups=8)
    with pytest.raises(ValueError, match="downsample factor"):
        GridImageTokenizer(image_size=20, block_channels=[8, 8, 8, 8], norm_groups=4)
    tok = GridImageTokenizer(**TINY)
    with pytest.raises(ValueError):
        tok.encode(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError):
        tok.decode(torch.zeros(1, 4, 4, 2, dtype=torch.long))


@pytest.mark.parametrize("quantizer", [
    {"kind": "fsq", "levels": [5, 5, 5]},
    {"kind": "vq", "codebook_size": 32, "kmeans_init": True, "commitment_weight": 0.25},
    {"kind": "lfq", "codebook_size": 16},
    {"kind": "rvq", "num_quantizers": 2, "codebook_size": 16},
])
def test_save_load_roundtrip(tmp_path, quantizer):
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY, quantizer=quantizer)
    images = _images(4, 16)
    tok.train()
    tok.training_loss(images)  # one train-mode pass: EMA / k-means buffers get non-default values
    tok.eval()
    codes = tok.encode(images)
    k = tok.num_codebooks
    assert codes.shape == ((4, 4, 4, k) if quantizer["kind"] == "rvq" else (4, 4, 4))
    assert tok.num_tokens() == 16 * k

    save_tokenizer(tok, tmp_path / "tok", measure(tok, images, 4))
    saved = json.loads((tmp_path / "tok" / CONFIG_FILE).read_text())
    assert saved["kind"] == "grid2d" and saved["config"] == tok.get_config()

    loaded = load_tokenizer(tmp_path / "tok")
    assert isinstance(loaded, GridImageTokenizer)
    assert loaded.fingerprint == tok.fingerprint == saved["fingerprint"]
    loaded.eval()
    assert torch.equal(loaded.encode(images), codes)
    torch.testing.assert_close(loaded.decode(codes), tok.decode(codes))


def test_fingerprint_tracks_weights():
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY)
    before = tok.fingerprint
    assert tok.fingerprint == before
    with torch.no_grad():
        tok.decoder.conv_out.bias.add_(1e-3)
    assert tok.fingerprint != before


def test_encode_never_updates_codebook():
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY, quantizer={"kind": "vq", "codebook_size": 32}).train()
    state = {k: v.clone() for k, v in tok.state_dict().items()}
    tok.encode(_images(2, 16))
    measure(tok, _images(2, 16), 2)
    assert tok.training  # mode restored
    assert all(torch.equal(state[k], v) for k, v in tok.state_dict().items())


def test_measure_keys():
    tok = GridImageTokenizer(**TINY).eval()
    metrics = measure(tok, _images(4, 16), 4)
    assert {"psnr", "codebook_usage", "perplexity", "tokens_per_image", "bits_per_image"} <= set(metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    assert 0.0 < metrics["codebook_usage"] <= 1.0
    assert 1.0 <= metrics["perplexity"] <= tok.codebook_size
    assert metrics["tokens_per_image"] == 16.0
    assert metrics["bits_per_image"] == pytest.approx(16 * math.log2(1000))


def test_training_reduces_loss():
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY, quantizer={"kind": "fsq", "levels": [5, 5, 5]}).train()
    images = _images(8, 16, seed=1)
    optimizer = torch.optim.Adam(tok.parameters(), lr=3e-3)
    first, logs = tok.training_loss(images)
    assert set(logs) >= {"rec", "aux"} and all(isinstance(v, float) for v in logs.values())
    for _ in range(30):
        loss, _ = tok.training_loss(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last, _ = tok.training_loss(images)
    assert last.item() < 0.7 * first.item()  # 0.44 observed
