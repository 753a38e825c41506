"""End to end on the real config tree with debug=smoke: train every stage, then generate each way."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tests.conftest import copy_with_retrained_tokenizer, smoke_overrides
from unimodal.config import compose
from unimodal.errors import UnimodalError, VocabularyMismatch
from unimodal.model.generate import SamplingConfig


def test_run_folder_is_complete(smoke_run):
    _, run_dir = smoke_run
    for name in ("run.json", "vocab.json", "config.yaml", "lm/vocab.json", "lm/config.json",
                 "checkpoints/last.ckpt/checkpoint.json", "tokenizers/image/card.md",
                 "tokenizers/audio/model.safetensors",
                 "tokenizers/text/tokenizer.json"):
        assert (run_dir / name).is_file(), name
    info = json.loads((run_dir / "run.json").read_text())
    assert info["tasks"] == ["text->image", "image->text", "text->audio", "audio->text", "image->audio",
                             "audio->image"]


def test_generate_every_direction(smoke_run):
    import unimodal

    _, run_dir = smoke_run
    pipe = unimodal.load(run_dir, device="cpu")
    grid = tuple(pipe.info["image_grid"])
    frames = pipe.info["audio_frames"]
    sampling = SamplingConfig(cfg_scale={"default": 2.0}, max_new_tokens=80)
    image = pipe.generate("a red circle", output="image", num_samples=2, sampling=sampling)
    assert len(image) == 2 and all(np.asarray(g.segments[0].payload).shape == grid for g in image)
    assert image[0].images[0].shape == (32, 32, 3) and image[0].images[0].dtype == np.uint8
    sound = pipe.generate("a red circle", output="audio", sampling=SamplingConfig(max_new_tokens=200))
    assert np.asarray(sound[0].segments[0].payload).shape == (2, frames)
    assert sound[0].audio[0].ndim == 1 and len(sound[0].audio[0]) > 0
    caption = pipe.generate(image[0].images[0], output="text", sampling=SamplingConfig(max_new_tokens=8))
    assert isinstance(caption[0].text, str)
    mixed = pipe.generate(sound[0].audio[0], output=["text", "image"], sampling=SamplingConfig(max_new_tokens=120))
    assert any(s.modality == "image" for s in mixed[0].segments)


def test_generate_script_writes_files(smoke_run, tmp_path, capsys):
    from unimodal.commands.generate import generate

    _, run_dir = smoke_run
    png = generate([f"run={run_dir}", "prompt=a red circle", "output=image", f"out_dir={tmp_path}"])
    wav = generate([f"run={run_dir}", "prompt=a red circle", "output=audio", f"out_dir={tmp_path}"])
    assert png[0].suffix == ".png" and png[0].stat().st_size > 0
    assert wav[0].suffix == ".wav" and wav[0].stat().st_size > 0
    assert "wrote" in capsys.readouterr().out


def test_tokenizers_are_reused(smoke_run, capsys):
    from unimodal.training.run import train

    root, _ = smoke_run
    train(compose(smoke_overrides(root, "stage=tokenizers")))
    out = capsys.readouterr().out
    assert out.count("reusing") == 3 and "training" not in out


def test_stage_pretrain_needs_tokenizers(tmp_path):
    from unimodal.training.run import train

    with pytest.raises(UnimodalError, match="stage=tokenizers"):
        train(compose(smoke_overrides(tmp_path, "stage=pretrain")))


def test_resume_continues_from_last_checkpoint(smoke_run, capsys):
    from unimodal.training.run import train

    root, run_dir = smoke_run
    copy = root / "resumed"
    shutil.copytree(run_dir, copy)
    train(compose(smoke_overrides(root, f"run_dir={copy}", "lm.max_steps=6")))
    out = capsys.readouterr().out
    assert "resuming from" in out
    assert json.loads((copy / "train_summary.json").read_text())["steps"] == 6


def test_checkpoint_with_other_tokenizers_is_refused(smoke_run, tmp_path):
    import unimodal

    copy = copy_with_retrained_tokenizer(smoke_run[1], tmp_path / "run", "image")
    with pytest.raises(VocabularyMismatch, match="fingerprint"):
        unimodal.load(copy)


def test_resuming_a_finished_run_keeps_its_metrics(smoke_run, capsys):
    from unimodal.training.run import train

    root, run_dir = smoke_run
    copy = root / "finished"
    shutil.copytree(run_dir, copy)
    before = json.loads((copy / "train_summary.json").read_text())
    train(compose(smoke_overrides(root, f"run_dir={copy}")))
    assert "resuming from" in capsys.readouterr().out
    after = json.loads((copy / "train_summary.json").read_text())
    assert after["steps"] == before["steps"] and after["train/loss"] == before["train/loss"]
    assert (copy / "metrics.csv").read_text() == (run_dir / "metrics.csv").read_text()
