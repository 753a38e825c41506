"""Image tokenizer losses (PatchGAN with warm-up), metrics (PSNR, SSIM, codes) and scripts/evaluate.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from safetensors.torch import load_file

from unimodal.config import compose
from unimodal.errors import ConfigError
from unimodal.eval.metrics.image import (
    PSNR_CAP_DB,
    code_histograms,
    psnr_per_image,
    ssim_per_image,
    usage_and_perplexity,
)
from unimodal.eval.tokenizers.card import CARD_FILE, GRID_FILE, METRICS_FILE, reconstruction_grid, save_tokenizer
from unimodal.eval.tokenizers.measure import LUMA, evaluate_image_tokenizer, measure, to_model_images
from unimodal.tokenizers.base import WEIGHTS_FILE, load_tokenizer
from unimodal.tokenizers.image import GridImageTokenizer
from unimodal.tokenizers.losses import AdversarialLoss, generator_step_loss, reconstruction_loss
from unimodal.training import tokenizer_module

ROOT = Path(__file__).resolve().parent.parent
TINY = {"image_size": 16, "block_channels": [8, 16], "norm_groups": 4, "latent_dim": 3,
        "quantizer": {"kind": "fsq", "levels": [4, 4, 4]}}
CPU = {"accelerator": "cpu", "devices": 1, "precision": "32-true"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n: int, size: int = 16, channels: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, channels, 4, 4, generator=gen)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def _budget(steps: int = 3, **adversarial) -> DictConfig:
    options = {"weight": 0.0, "start_step": 0, "ramp_steps": 0, "channels": 8, "layers": 2, **adversarial}
    return OmegaConf.create({"steps": steps, "batch_size": 4, "lr": 1e-3, "max_minutes": 1.0,
                             "adversarial": options})


# --- metrics ---------------------------------------------------------------------------
def _hand_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """SSIM of two [H, W] images in [0, 1]: 11x11 Gaussian window (sigma 1.5), mean over every pixel with
    the borders reflect-padded (torchmetrics' convention)."""
    x, y = np.pad(x, 5, mode="reflect"), np.pad(y, 5, mode="reflect")
    radius = np.arange(11) - 5
    g = np.exp(-(radius**2) / (2 * 1.5**2))
    window = np.outer(g, g) / np.outer(g, g).sum()
    views = {name: np.lib.stride_tricks.sliding_window_view(a, (11, 11)) for name, a in
             {"x": x, "y": y, "xx": x * x, "yy": y * y, "xy": x * y}.items()}
    mean = {name: (v * window).sum(axis=(-2, -1)) for name, v in views.items()}
    var_x, var_y = mean["xx"] - mean["x"] ** 2, mean["yy"] - mean["y"] ** 2
    cov = mean["xy"] - mean["x"] * mean["y"]
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mean["x"] * mean["y"] + c1) * (2 * cov + c2)) / (
        (mean["x"] ** 2 + mean["y"] ** 2 + c1) * (var_x + var_y + c2))
    return float(ssim.mean())


def test_identical_images_score_capped_psnr_and_ssim_one():
    images = _images(3, 24)
    assert torch.equal(psnr_per_image(images, images), torch.full((3,), PSNR_CAP_DB))
    torch.testing.assert_close(ssim_per_image(images, images), torch.ones(3))


def test_noisy_images_match_hand_computation():
    clean = _images(2, 24, channels=1, seed=1).double()
    noise = 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    noisy = (clean + noise).clamp(0, 1)
    expected_psnr = [10 * math.log10(1 / float(((noisy[i] - clean[i]) ** 2).mean())) for i in range(2)]
    torch.testing.assert_close(psnr_per_image(clean, noisy), torch.tensor(expected_psnr, dtype=torch.float32))
    expected_ssim = [_hand_ssim(clean[i, 0].numpy(), noisy[i, 0].numpy()) for i in range(2)]
    torch.testing.assert_close(ssim_per_image(clean, noisy), torch.tensor(expected_ssim, dtype=torch.float32),
                               atol=1e-4, rtol=1e-4)


def test_usage_and_perplexity_of_known_histograms():
    assert usage_and_perplexity(torch.tensor([[5, 5, 0, 0]])) == pytest.approx((0.5, 2.0))
    assert usage_and_perplexity(torch.tensor([[3, 3, 3, 3]])) == pytest.approx((1.0, 4.0))
    # two codebooks (rvq): each measured alone, then averaged
    assert usage_and_perplexity(torch.tensor([[8, 0, 0, 0], [2, 2, 2, 2]])) == pytest.approx((0.625, 2.5))
    codes = torch.tensor([[[0, 3], [1, 3]], [[1, 3], [2, 0]]])   # [B=2, n=2, K=2]
    assert code_histograms(codes, 2, 4).tolist() == [[1, 2, 1, 0], [1, 0, 0, 3]]


def test_measure_adds_ssim_and_keeps_keys():
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY).eval()
    metrics = measure(tok, _images(4), 4)
    assert {"psnr", "ssim", "mse", "codebook_usage", "perplexity", "tokens_per_image", "bits_per_image"} <= set(
        metrics)
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["tokens_per_image"] == 64.0 and metrics["bits_per_image"] == pytest.approx(64 * 6)
    batched = evaluate_image_tokenizer(tok, _images(4), batch_size=3, progress=False).metrics
    for key in ("psnr", "ssim", "codebook_usage", "perplexity"):   # batching does not change the numbers
        assert batched[key] == pytest.approx(metrics[key], rel=1e-4)


def test_reconstruction_grid_rows_and_grey():
    originals, reconstructions = _images(3, 8, channels=1), _images(3, 8, channels=1, seed=5)
    grid = reconstruction_grid(originals, reconstructions, scale=2, pad=1)
    assert grid.shape == ((2 * 8 + 3) * 2, (3 * 8 + 4) * 2, 3) and grid.dtype == np.uint8
    assert (grid[..., 0] == grid[..., 1]).all() and (grid[..., 1] == grid[..., 2]).all()  # grey stays grey
    first = (originals[0, 0] * 255).round().to(torch.uint8).numpy()
    assert (grid[2:18:2, 2:18:2, 0] == first).all()                     # top row: the originals
    second_row = (reconstructions[0, 0] * 255).round().to(torch.uint8).numpy()
    assert (grid[20:36:2, 2:18:2, 0] == second_row).all()               # bottom row: the reconstructions


def test_uint8_rgb_data_converts_to_a_grey_tokenizer():
    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    rgb[..., 1] = 255
    grey = to_model_images(rgb, channels=1, size=8)
    assert grey.shape == (2, 1, 8, 8)
    torch.testing.assert_close(grey, torch.full_like(grey, LUMA[1]))


# --- losses ----------------------------------------------------------------------------
def test_warmup_has_no_gan_term():
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY).train()
    adversarial = AdversarialLoss(3, weight=0.5, start_step=3, ramp_steps=2, channels=8)
    assert [adversarial.generator_weight(s) for s in range(6)] == [0.0, 0.0, 0.0, 0.25, 0.5, 0.5]

    def no_discriminator(*args):
        raise AssertionError("the discriminator ran before start_step")

    adversarial.discriminator.forward = no_discriminator
    images = _images(2)
    loss, _, logs = generator_step_loss(tok, images, adversarial, step=2)
    reconstruction, quant = tok(images)
    plain, _ = reconstruction_loss(images, reconstruction, quant.aux_loss)
    assert "gan" not in logs and logs["gan_weight"] == 0.0
    torch.testing.assert_close(loss, plain)


def test_gan_before_start_step_trains_like_plain():
    """With the GAN on but not started, manual optimization gives the plain loop's weights."""
    data = _images(16, seed=3)
    weights = []
    for budget in (_budget(), _budget(weight=0.1, start_step=100)):
        torch.manual_seed(0)
        tok = GridImageTokenizer(**TINY)
        metrics = tokenizer_module.fit_tokenizer(tok, data, data[:4], budget, CPU, progress=False)
        assert metrics["train_steps"] == 3
        weights.append(tok.state_dict())
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], msg=key)


def test_gan_training_updates_discriminator_and_saves_tokenizer_only(tmp_path, monkeypatch):
    built, original = [], tokenizer_module.build_adversarial

    def capture(*args, **kwargs):  # keep the discriminator fit_tokenizer builds (and drops) for inspection
        adversarial = original(*args, **kwargs)
        built.append((adversarial, {k: v.clone() for k, v in adversarial.state_dict().items()}))
        return adversarial

    monkeypatch.setattr(tokenizer_module, "build_adversarial", capture)
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY)
    plain_config, plain_keys = tok.get_config(), set(tok.state_dict())
    metrics = tokenizer_module.fit_tokenizer(tok, _images(16, seed=4), _images(4), _budget(weight=0.1, start_step=1),
                                             CPU, progress=False)
    assert metrics["train_steps"] == 3
    adversarial, before = built[0]
    changed = [k for k, v in adversarial.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "the discriminator did not train"

    tok.save(tmp_path / "tok")
    saved = load_file(str(tmp_path / "tok" / WEIGHTS_FILE))
    assert set(saved) == plain_keys and not any("discriminator" in k for k in saved)
    config = json.loads((tmp_path / "tok" / "config.json").read_text())
    assert config["config"] == plain_config and "adversarial" not in json.dumps(config)
    assert load_tokenizer(tmp_path / "tok").fingerprint == tok.fingerprint


def test_adversarial_config_is_checked():
    cfg = compose(["debug=smoke", "tokenizer.image.train.adversarial.weight=0.1"])
    assert cfg.tokenizer.image.train.adversarial.weight == 0.1
    assert compose(["debug=smoke"]).tokenizer.image.train.adversarial.weight == 0.0   # off by default
    with pytest.raises(ConfigError, match="wieght"):
        compose(["debug=smoke", "tokenizer.image.train.adversarial.wieght=0.1"])
    with pytest.raises(ConfigError, match="adversarial.weight"):
        tokenizer_module.fit_tokenizer(GridImageTokenizer(**TINY), _images(4), _images(4), _budget(weight=-1.0),
                                       CPU, progress=False, desc="image")


# --- scripts/evaluate.py ---------------------------------------------------------------
@pytest.fixture()
def tiny_folder(tmp_path):
    torch.manual_seed(0)
    tok = GridImageTokenizer(**TINY).eval()
    return save_tokenizer(tok, tmp_path / "image-tok", {"train_steps": 3, "data": "synthetic"})


@pytest.fixture()
def fake_images(monkeypatch):
    """Synthetic-world images rendered here, standing in for ``sources.load_images``."""
    from unimodal.data import sources
    from unimodal.data.images import ImageTextSet
    from unimodal.data.synthetic.world import World, WorldConfig

    calls = []

    def load_images(data_cfg, split):
        calls.append((data_cfg.name, split, int(data_cfg.image_size)))
        world = World(WorldConfig(image_size=int(data_cfg.image_size)))
        scenes = world.dataset(10, seed=7)
        return ImageTextSet(np.stack([world.render_image(s) for s in scenes]), [world.caption(s) for s in scenes])

    monkeypatch.setattr(sources, "load_images", load_images)
    return calls


def _evaluate(*args: str) -> int:
    from unimodal.commands.evaluate import main

    return main(list(args))


def test_evaluate_writes_report(tiny_folder, fake_images, capsys):
    before = (tiny_folder / WEIGHTS_FILE).read_bytes()
    assert _evaluate("task=tokenizer", f"tokenizer={tiny_folder}", "num_images=6", "grid=4", "progress=false") == 0
    assert fake_images == [("synthetic", "test", 16)]   # the recorded data, at the tokenizer's size
    metrics = json.loads((tiny_folder / METRICS_FILE).read_text())
    assert {"psnr", "ssim", "codebook_usage", "perplexity", "tokens_per_image", "bits_per_image"} <= set(metrics)
    assert metrics["eval_images"] == 6 and metrics["eval_split"] == "test" and metrics["eval_data"] == "synthetic"
    assert metrics["train_steps"] == 3 and metrics["data"] == "synthetic"   # training's record is kept
    card = (tiny_folder / CARD_FILE).read_text()
    assert "| psnr |" in card and "| ssim |" in card and "![reconstructions](reconstructions.png)" in card
    with Image.open(tiny_folder / GRID_FILE) as grid:
        assert grid.size == ((4 * 16 + 5 * 2) * 8, (2 * 16 + 3 * 2) * 8)
    assert (tiny_folder / WEIGHTS_FILE).read_bytes() == before
    out = capsys.readouterr().out
    assert "psnr" in out and "dB" in out and "codebook usage" in out


def test_evaluate_out_dir_and_data_override(tiny_folder, fake_images, tmp_path):
    out = tmp_path / "report"
    assert _evaluate("task=tokenizer", f"tokenizer={tiny_folder}", "data=synthetic", "split=val",
                     "num_images=3", f"out={out}", "progress=false") == 0
    assert fake_images == [("synthetic", "val", 16)]
    assert {p.name for p in out.iterdir()} == {METRICS_FILE, CARD_FILE, GRID_FILE}
    assert not (tiny_folder / GRID_FILE).exists()


def test_evaluate_defaults_to_the_recorded_data(tiny_folder, fake_images, tmp_path):
    (tiny_folder / METRICS_FILE).write_text(json.dumps({"data": "fashion_mnist"}))
    assert _evaluate("task=tokenizer", f"tokenizer={tiny_folder}", "num_images=2", "grid=0", "progress=false",
                     f"out={tmp_path / 'report'}") == 0
    assert fake_images == [("fashion_mnist", "test", 16)]
    assert not (tmp_path / "report" / GRID_FILE).exists()   # grid=0: no picture, and the card links none
    assert "reconstructions" not in (tmp_path / "report" / CARD_FILE).read_text()


@pytest.mark.parametrize("args, message", [
    (["task=tokenizer", "tokenizer={missing}"], "no such folder"),
    (["task=tokenizer", "tokenizer={empty}"], "not a loadable tokenizer"),
    (["task=lm", "tokenizer={folder}"], "task='lm' is not a task; choose one of: tokenizer"),
    (["tokenizer={folder}"], "task= is required"),
    (["task=tokenizer", "tokenizer={folder}", "num_images=many"],
     "could not be converted to Integer (config key: num_images)"),
    (["task=tokenizer", "tokenizer={folder}", "colour=red"], "unknown option 'colour'"),
    (["task=tokenizer", "tokenizer={folder}", "data=nope"], "unknown data 'nope'"),
])
def test_evaluate_bad_input_is_one_line(tiny_folder, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "folder": tiny_folder}
    assert _evaluate(*[a.format(**paths) for a in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_evaluate_script_error_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "scripts/evaluate.py", "task=tokenizer", f"tokenizer={tmp_path}/nope"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: tokenizer={tmp_path}/nope: no such folder"]
