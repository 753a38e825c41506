"""Image tokenizers by config: quantizer kinds (vq, lfq, rvq, fsq), grid shapes (f4/f8/f16), the 1-D
learnable-query tokenizer (qformer-1d) and a pretrained diffusers VQModel. Tiny, CPU, fast."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.conftest import smoke_overrides
from unimodal.config import compose
from unimodal.errors import ConfigError, UnimodalError
from unimodal.eval.tokenizers.card import save_tokenizer
from unimodal.eval.tokenizers.measure import measure
from unimodal.sequence import Segment, SequenceCodec
from unimodal.tokenizers.base import CONFIG_FILE, WEIGHTS_FILE, load_tokenizer
from unimodal.tokenizers.image import GridImageTokenizer
from unimodal.tokenizers.pretrained import PretrainedVQTokenizer
from unimodal.tokenizers.qformer import QueryImageTokenizer
from unimodal.tokenizers.quantizers import build_quantizer
from unimodal.training.run import build_tokenizer
from unimodal.vocab import Vocabulary

TINY_QFORMER = {"image_size": 16, "block_channels": [8, 16, 16], "norm_groups": 4, "num_queries": 6,
                "query_width": 32, "query_layers": 1, "query_heads": 2,
                "quantizer": {"kind": "fsq", "levels": [5, 5, 5]}, "latent_dim": 3}
METRIC_KEYS = {"psnr", "mse", "codebook_usage", "perplexity", "tokens_per_image", "bits_per_image"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int, size: int, channels: int = 3, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [0, 1]: random 4x4 colour fields upsampled."""
    coarse = torch.rand(n, channels, 4, 4, generator=torch.Generator().manual_seed(seed))
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _image_config(name: str, *overrides: str):
    return compose([f"tokenizer/image={name}", *overrides]).tokenizer.image


# --- quantizers by config ------------------------------------------------------------------
@pytest.mark.parametrize("name,kind,codebook,levels", [
    ("fsq", "grid2d", 64, 1), ("vq", "grid2d", 1024, 1), ("lfq", "grid2d", 1024, 1), ("rvq", "grid2d", 32, 2),
    ("qformer-1d", "qformer-1d", 1000, 1)])
def test_configs_give_64_positions_of_about_1024_codes(name, kind, codebook, levels):
    tok = build_tokenizer("image", _image_config(name))
    assert tok.kind == kind and (tok.codebook_size, tok.num_codebooks) == (codebook, levels)
    assert tok.grid_shape == ((1, 64) if kind == "qformer-1d" else (8, 8))
    assert tok.num_tokens() == 64 * levels
    if name != "fsq":  # fsq.yaml keeps 64 codes for the LM; the others are the ~1024-code benchmark set
        assert tok.codebook_size ** levels in (1000, 1024)


def test_vq_options_reach_the_library():
    tok = build_tokenizer("image", _image_config("vq", "tokenizer.image.quantizer.use_cosine_sim=true"))
    inner = tok.quantizer.inner
    codebook = inner._codebook
    assert (codebook.decay, codebook.threshold_ema_dead_code, codebook.kmeans_iters) == (0.9, 2, 10)
    assert codebook.use_cosine_sim and not bool(codebook.initted)  # k-means init still to come
    assert inner.commitment_weight == 0.25 and inner.codebook_size == 1024
    tok.quantizer.train()(torch.randn(64, 8, 8, 8))  # one batch: 4096 latents, enough for 1024 clusters
    assert bool(codebook.initted)
    norms = inner.codebook.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # cosine sim: l2-normalised codebook


def test_lfq_and_rvq_options_reach_the_library():
    lfq = build_tokenizer("image", _image_config("lfq")).quantizer.inner
    assert (lfq.entropy_loss_weight, lfq.commitment_loss_weight, lfq.codebook_size) == (0.1, 0.25, 1024)
    assert not lfq.has_projections  # latent_dim 10 = log2(1024): the latents are the bits
    rvq = build_tokenizer("image", _image_config("rvq")).quantizer.inner
    assert len(rvq.layers) == 2
    assert all((layer._codebook.decay, layer._codebook.threshold_ema_dead_code, layer.commitment_weight)
               == (0.9, 2, 0.25) for layer in rvq.layers)


def test_unknown_quantizer_option_names_it():
    with pytest.raises(ConfigError, match=r"decay_rate.*did you mean 'decay'"):
        build_quantizer("vq", 4, codebook_size=16, decay_rate=0.9)
    with pytest.raises(ConfigError, match="levels"):  # an fsq key under another kind
        build_quantizer("lfq", 4, codebook_size=16, levels=[4, 4])


@pytest.mark.parametrize("name", ["fsq", "vq", "lfq", "rvq", "qformer-1d"])
def test_config_quantizer_codes_roundtrip_aux_and_gradients(name):
    cfg = _image_config(name)
    options = dict(cfg.quantizer)
    kind = options.pop("kind")
    torch.manual_seed(0)
    quantizer = build_quantizer(kind, cfg.latent_dim, **options).train()
    latents = torch.randn(4, 8, 8, cfg.latent_dim, requires_grad=True)
    out = quantizer(latents)  # a training pass: k-means init, EMA and dead-code updates happen here
    assert out.quantized.shape == latents.shape and out.aux_loss.ndim == 0 and torch.isfinite(out.aux_loss)
    if kind in ("vq", "lfq", "rvq"):
        assert out.aux_loss.item() != 0.0  # commitment (and entropy) terms are on
    upstream = torch.randn_like(out.quantized)
    (out.quantized * upstream).sum().backward()
    assert torch.isfinite(latents.grad).all() and (latents.grad != 0).float().mean() > 0.9
    if kind == "lfq":  # no projection: a pure straight-through estimator
        torch.testing.assert_close(latents.grad, upstream)

    quantizer.eval()
    with torch.no_grad():
        out = quantizer(latents)
        back = quantizer.codes_to_latents(out.codes)
    assert out.codes.shape == (4, 8, 8, *quantizer.code_shape_suffix) and out.codes.dtype == torch.long
    assert 0 <= int(out.codes.min()) and int(out.codes.max()) < quantizer.codebook_size
    torch.testing.assert_close(back, out.quantized, atol=1e-6, rtol=1e-6)


def test_vq_without_rotation_trick_is_straight_through():
    quantizer = build_quantizer("vq", 8, codebook_size=64, rotation_trick=False, kmeans_init=True).train()
    latents = torch.randn(2, 16, 8, requires_grad=True)
    out = quantizer(latents)
    upstream = torch.randn_like(out.quantized)
    (out.quantized * upstream).sum().backward()
    torch.testing.assert_close(latents.grad, upstream)


# --- grid shapes -----------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("blocks,factor", [([8, 8, 8], 4), ([8, 8, 8, 8], 8), ([8, 8, 8, 8, 8], 16)])
def test_grid_downsamples_by_block_count(blocks, factor, channels):
    tok = GridImageTokenizer(image_size=32, channels=channels, block_channels=blocks, norm_groups=4).eval()
    side = 32 // factor
    assert tok.downsample_factor == factor == 2 ** (len(blocks) - 1)
    assert tok.grid_shape == (side, side) and tok.num_tokens() == side * side
    codes = tok.encode(_images(2, 32, channels))
    assert codes.shape == (2, side, side)
    assert tok.decode(codes).shape == (2, channels, 32, 32)


def test_grid_factor_by_config():
    tok = build_tokenizer("image", _image_config("vq", "tokenizer.image.block_channels=[16,32,32,32]"))
    assert tok.downsample_factor == 8 and tok.grid_shape == (4, 4) and tok.num_tokens() == 16


# --- qformer-1d ------------------------------------------------------------------------------
def test_qformer_shapes_and_errors():
    torch.manual_seed(0)
    tok = QueryImageTokenizer(**TINY_QFORMER).eval()
    assert (tok.kind, tok.modality, tok.grid_shape, tok.num_tokens(), tok.codebook_size) == \
        ("qformer-1d", "image", (1, 6), 6, 125)
    images = _images(3, 16)
    codes = tok.encode(images)
    assert codes.shape == (3, 1, 6) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 125
    decoded = tok.decode(codes)
    assert decoded.shape == images.shape and 0.0 <= float(decoded.min()) and float(decoded.max()) <= 1.0
    reconstruction, quant = tok(images)
    assert reconstruction.shape == images.shape and torch.equal(quant.codes, codes)
    metrics = measure(tok, images, len(images))
    assert METRIC_KEYS <= set(metrics) and metrics["tokens_per_image"] == 6.0
    with pytest.raises(ValueError, match="16x16 images only"):
        tok.encode(_images(1, 32))
    with pytest.raises(ValueError, match=r"codes \[B, 1, 6\]"):
        tok.decode(torch.zeros(1, 2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible"):
        QueryImageTokenizer(**{**TINY_QFORMER, "query_heads": 5})


def test_qformer_trains_every_part():
    torch.manual_seed(0)
    tok = QueryImageTokenizer(**{**TINY_QFORMER, "channels": 1}).train()
    images = _images(8, 16, channels=1, seed=1)
    optimizer = torch.optim.Adam(tok.parameters(), lr=3e-3)
    first, logs = tok.training_loss(images)
    assert {"loss", "rec", "aux"} <= set(logs)
    first.backward()
    for name in ("queries", "patch_positions", "pixel_queries", "token_positions"):
        assert getattr(tok, name).grad.abs().sum() > 0, name
    assert tok.encoder.conv_in.weight.grad.abs().sum() > 0  # through the quantizer, straight through
    optimizer.step()
    for _ in range(25):
        loss, _ = tok.training_loss(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert tok.training_loss(images)[0].item() < 0.7 * first.item()


@pytest.mark.parametrize("quantizer", [{"kind": "fsq", "levels": [5, 5, 5]},
                                       {"kind": "vq", "codebook_size": 16, "kmeans_init": True},
                                       {"kind": "rvq", "num_quantizers": 2, "codebook_size": 8}])
def test_qformer_save_load_and_sequence(tmp_path, quantizer):
    torch.manual_seed(0)
    tok = QueryImageTokenizer(**{**TINY_QFORMER, "quantizer": quantizer})
    images = _images(4, 16)
    tok.train()
    tok.training_loss(images)  # k-means / EMA buffers get non-default values
    tok.eval()
    codes = tok.encode(images)
    k = tok.num_codebooks
    assert codes.shape == ((4, 1, 6, k) if k > 1 else (4, 1, 6)) and tok.num_tokens() == 6 * k
    save_tokenizer(tok, tmp_path / "tok", measure(tok, images, len(images)))
    saved = json.loads((tmp_path / "tok" / CONFIG_FILE).read_text())
    assert saved["kind"] == "qformer-1d" and saved["config"] == tok.get_config()
    loaded = load_tokenizer(tmp_path / "tok").eval()
    assert isinstance(loaded, QueryImageTokenizer) and loaded.fingerprint == tok.fingerprint
    assert torch.equal(loaded.encode(images), codes)
    torch.testing.assert_close(loaded.decode(codes), tok.decode(codes))
    if k > 1:
        return
    # The LM sees one row of N codes: the (1, N) grid round-trips through the sequence codec.
    codec = SequenceCodec(Vocabulary(50, {"image": (tok.codebook_size, 1)}), image_grid=tok.grid_shape)
    encoded = codec.encode([Segment("text", [1, 2]), Segment("image", codes[0].numpy(), loss=True)])
    assert len(codec.span_plan("image")) == 6
    decoded = codec.decode(encoded.ids)
    assert np.array_equal(decoded[-1].payload, codes[0].numpy())


def test_qformer_from_config():
    tok = build_tokenizer("image", _image_config("qformer-1d", "debug=smoke"))
    assert isinstance(tok, QueryImageTokenizer) and tok.get_config()["block_channels"] == [8, 16, 16]
    assert tok.encode(_images(1, 32)).shape == (1, 1, 64)


def test_qformer_trains_an_lm_end_to_end(tmp_path):
    """stage 0 + token cache + LM + generation with the 1-D tokenizer: the LM sees a (1, 64) grid."""
    import unimodal
    from unimodal.training.run import train

    run_dir = train(compose(smoke_overrides(tmp_path, "modality=image", "tokenizer/image=qformer-1d",
                                            "lm.max_steps=2", f"run_dir={tmp_path}/run")))
    assert json.loads((run_dir / "run.json").read_text())["image_grid"] == [1, 64]
    assert isinstance(load_tokenizer(run_dir / "tokenizers" / "image"), QueryImageTokenizer)
    result = unimodal.load(run_dir, device="cpu").generate("a red circle", output="image")[0]
    assert result.images[0].shape == (32, 32, 3)


# --- pretrained diffusers VQModel --------------------------------------------------------
@pytest.fixture(scope="module")
def vq_folder(tmp_path_factory):
    from diffusers import VQModel

    torch.manual_seed(0)
    model = VQModel(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                    up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                    latent_channels=4, num_vq_embeddings=16, vq_embed_dim=3, norm_num_groups=4,
                    mid_block_add_attention=False).eval()
    folder = tmp_path_factory.mktemp("vqmodel") / "vq"
    model.save_pretrained(folder)
    return folder, model


def test_pretrained_matches_the_library(vq_folder, tmp_path):
    folder, model = vq_folder
    tok = PretrainedVQTokenizer(path=str(folder), image_size=16).eval()
    assert (tok.kind, tok.grid_shape, tok.codebook_size, tok.num_codebooks, tok.num_tokens()) == \
        ("pretrained", (8, 8), 16, 1, 64)
    images = _images(3, 16)
    codes = tok.encode(images)
    assert codes.shape == (3, 8, 8) and codes.dtype == torch.long
    assert 0 <= int(codes.min()) and int(codes.max()) < 16
    with torch.no_grad():
        latents = model.encode(images * 2 - 1).latents
        _, _, (_, _, indices) = model.quantize(latents)
        reference = ((model(images * 2 - 1).sample + 1) / 2).clamp(0, 1)
    assert torch.equal(codes.reshape(-1), indices)  # the library's own VQ indices, row-major
    torch.testing.assert_close(tok.decode(codes), reference, atol=1e-5, rtol=1e-5)
    assert METRIC_KEYS <= set(measure(tok, images, len(images)))

    tok.save(tmp_path / "tok")
    assert (tmp_path / "tok" / WEIGHTS_FILE).is_file()
    saved = json.loads((tmp_path / "tok" / CONFIG_FILE).read_text())
    assert saved["kind"] == "pretrained" and saved["config"]["model_config"]["num_vq_embeddings"] == 16
    loaded = load_tokenizer(tmp_path / "tok")  # self-contained: rebuilt from the saved config and weights
    assert isinstance(loaded, PretrainedVQTokenizer) and loaded.fingerprint == tok.fingerprint
    assert torch.equal(loaded.eval().encode(images), codes)
    torch.testing.assert_close(loaded.decode(codes), tok.decode(codes))


def test_pretrained_by_config_and_errors(vq_folder, tmp_path):
    folder, _ = vq_folder
    cfg = _image_config("pretrained", f"tokenizer.image.path={folder}", "data.image_size=16")
    tok = build_tokenizer("image", cfg)
    assert isinstance(tok, PretrainedVQTokenizer) and tok.grid_shape == (8, 8)
    with pytest.raises(UnimodalError, match="not trained by stage 0"):
        tok.training_loss(_images(1, 16))
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="nowhere") as err:
        PretrainedVQTokenizer(path=str(missing))
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="tokenizer.image.path is not set"):
        build_tokenizer("image", _image_config("pretrained"))
