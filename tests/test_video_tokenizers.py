"""Video tokenizers: shapes, save/load, Lightning training, and the causal property of causal3d."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from unimodal.errors import ConfigError
from unimodal.tokenizers.base import load_tokenizer
from unimodal.tokenizers.video import Causal3DVideoTokenizer, FramewiseVideoTokenizer

TINY_IMAGE = {"kind": "grid2d", "block_channels": [8, 16, 16], "norm_groups": 4, "latent_dim": 3,
              "quantizer": {"kind": "fsq", "levels": [4, 4, 4]}}


def tiny_causal(**options) -> Causal3DVideoTokenizer:
    torch.manual_seed(0)
    options.setdefault("inflate_init", False)  # every time tap non-zero: causality is a property of the layout
    return Causal3DVideoTokenizer(num_frames=9, block_channels=[8, 16, 16], norm_groups=4, **options).eval()


def test_inflated_init_starts_as_a_key_frame_autoencoder(one_thread):
    tokenizer = tiny_causal(inflate_init=True)
    clips = torch.rand(1, 9, 3, 32, 32)
    latents = tokenizer.encode_latents(clips)
    for t in range(9):
        changed = clips.clone()
        changed[:, t] = torch.rand(1, 3, 32, 32)
        # code frame k starts from frame 4k alone; the other frames reach it once the time taps have learned
        assert torch.equal(tokenizer.encode_latents(changed), latents) == (t % 4 != 0), t


def test_causal3d_shapes_and_padding(one_thread):
    tokenizer = tiny_causal()
    clips = torch.rand(2, 9, 3, 32, 32)
    codes = tokenizer.encode(clips)
    assert tuple(codes.shape) == (2, *tokenizer.grid_shape) == (2, 3, 8, 8)
    assert tokenizer.num_tokens() == 192
    assert tuple(tokenizer.decode(codes).shape) == (2, 9, 3, 32, 32)
    # 16 frames: the first alone, then four groups of four (the last padded with copies of frame 15)
    assert tokenizer.encode(torch.rand(1, 16, 3, 32, 32)).shape[1] == 5


@pytest.mark.parametrize("quantizer", [{"kind": "fsq", "levels": [4, 4, 4]}, {"kind": "lfq", "codebook_size": 64}])
def test_changing_frame_t_never_changes_earlier_code_frames(one_thread, quantizer):
    tokenizer = tiny_causal(latent_dim=3 if quantizer["kind"] == "fsq" else 6, quantizer=quantizer)
    clips = torch.rand(2, 9, 3, 32, 32)
    codes = tokenizer.encode(clips)
    latents = tokenizer.encode_latents(clips)
    for t in range(9):
        changed = clips.clone()
        changed[:, t] = torch.rand(2, 3, 32, 32)
        group = (t + 3) // 4          # frame 0 -> code frame 0, frames 1-4 -> 1, frames 5-8 -> 2
        assert torch.equal(tokenizer.encode(changed)[:, :group], codes[:, :group]), t
        moved = tokenizer.encode_latents(changed)
        assert torch.equal(moved[:, :group], latents[:, :group]), t
        assert not torch.allclose(moved[:, group], latents[:, group]), t   # the frame's own group does see it


def test_decoded_frames_depend_only_on_past_code_frames(one_thread):
    tokenizer = tiny_causal()
    codes = tokenizer.encode(torch.rand(1, 9, 3, 32, 32))
    frames = tokenizer.decode(codes)
    changed = codes.clone()
    changed[:, 2] = (changed[:, 2] + 1) % tokenizer.codebook_size
    assert torch.equal(tokenizer.decode(changed)[:, :5], frames[:, :5])
    # a prefix of the codes decodes to the same first frames: a clip can be extended group by group
    assert torch.allclose(tokenizer.decode(codes[:, :2]), frames[:, :5], atol=1e-6)


def test_framewise_samples_frames_uniformly(one_thread):
    torch.manual_seed(0)
    tokenizer = FramewiseVideoTokenizer(dict(TINY_IMAGE, train={"steps": 1}), num_frames=9, sample_frames=5,
                                        fps=8.0).eval()
    clips = torch.rand(2, 9, 3, 32, 32)
    codes = tokenizer.encode(clips)
    assert tuple(codes.shape) == (2, *tokenizer.grid_shape) == (2, 5, 8, 8)
    assert list(tokenizer.frame_indices(9)) == [0, 2, 4, 6, 8]
    assert tokenizer.frame_rate == 4.0          # five frames over the clip's one second
    assert torch.equal(codes[:, 1], tokenizer.image.encode(clips[:, 2]))
    assert tuple(tokenizer.decode(codes).shape) == (2, 5, 3, 32, 32)
    with pytest.raises(ConfigError, match="sample_frames"):
        FramewiseVideoTokenizer(TINY_IMAGE, num_frames=4, sample_frames=5)


@pytest.mark.parametrize("make", [tiny_causal, lambda: FramewiseVideoTokenizer(TINY_IMAGE, sample_frames=3)])
def test_save_load_round_trip(one_thread, tmp_path, make):
    tokenizer = make().eval()
    tokenizer.save(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok").eval()
    clips = torch.rand(1, 9, 3, 32, 32)
    assert loaded.fingerprint == tokenizer.fingerprint
    assert torch.equal(loaded.encode(clips), tokenizer.encode(clips))


def test_lightning_training_lowers_the_loss(one_thread):
    from unimodal.training.tokenizer_module import fit_tokenizer

    tokenizer = tiny_causal()
    clips = torch.rand(1, 9, 3, 32, 32).expand(16, -1, -1, -1, -1).contiguous()  # one clip: easy to fit
    before = float(tokenizer.training_loss(clips[:4])[0])
    budget = OmegaConf.create({"steps": 12, "batch_size": 4, "lr": 3e-3, "max_minutes": 1.0})
    metrics = fit_tokenizer(tokenizer, clips, clips[:4], budget, {"accelerator": "cpu", "devices": 1},
                            progress=False, desc="video")
    assert metrics["train_steps"] == 12 and metrics["tokens_per_clip"] == 192
    assert float(tokenizer.training_loss(clips[:4])[0]) < before


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="temporal_downsample"):
        Causal3DVideoTokenizer(block_channels=[8, 16], norm_groups=4, temporal_downsample=2)
