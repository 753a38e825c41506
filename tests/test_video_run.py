"""modality=video end to end on the real config tree (debug=smoke): clips, tokenizers, shards, LM, generation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import smoke_overrides
from unimodal.config import compose
from unimodal.errors import ConfigError
from unimodal.model.generate import SamplingConfig


@pytest.fixture(scope="module")
def video_run(tmp_path_factory, one_thread):
    from unimodal.training.run import train

    root = tmp_path_factory.mktemp("video")
    return train(compose(smoke_overrides(root, "modality=video", f"run_dir={root}/run")))


def test_video_run_records_its_grid(video_run):
    info = json.loads((video_run / "run.json").read_text())
    assert info["media"] == ["video"] and info["tasks"] == ["text->video", "video->text"]
    assert info["video_grid"] == [3, 8, 8]
    assert (video_run / "tokenizers" / "video" / "card.md").is_file()


def test_generate_a_clip_and_caption_it(video_run):
    import unimodal

    pipe = unimodal.load(video_run, device="cpu")
    clips = pipe.generate("a red circle moves left", output="video", num_samples=2,
                          sampling=SamplingConfig(cfg_scale={"default": 2.0}, max_new_tokens=220))
    assert all(np.asarray(g.segments[0].payload).shape == (3, 8, 8) for g in clips)
    assert clips[0].videos[0].shape == (9, 32, 32, 3) and clips[0].videos[0].dtype == np.uint8
    assert clips[0].video_fps == 8.0
    caption = pipe.generate(clips[0].videos[0], output="text", sampling=SamplingConfig(max_new_tokens=8))
    assert isinstance(caption[0].text, str)


def test_generate_script_writes_a_gif(video_run, tmp_path):
    from PIL import Image

    from unimodal.generation_cli import generate_from_config

    written = generate_from_config([f"run={video_run}", "prompt=a red circle moves left", "output=video",
                                    f"out_dir={tmp_path}", "max_new_tokens=220"])
    gif = next(p for p in written if p.suffix == ".gif")
    with Image.open(gif) as image:
        assert image.n_frames == 9
    captioned = generate_from_config([f"run={video_run}", f"video={gif}", "output=text", f"out_dir={tmp_path}",
                                      "max_new_tokens=8"])
    assert captioned == []


def test_video_needs_clips():
    cfg = compose(["modality=video", "data.video_frames=0"])
    from unimodal.data.sources import check_source

    with pytest.raises(ConfigError, match="data.video_frames"):
        check_source(cfg.data, list(cfg.modality.media))


def test_video_accuracy_scores(video_run):
    import unimodal
    from unimodal.data.sources import make_world
    from unimodal.data.video_sources import synthetic_clips
    from unimodal.eval.world.engine import prompt_producer, read_motion, score_direction
    from unimodal.eval.world.suite import EvalClip, motion_categories, motion_prompts, motion_world

    pipe = unimodal.load(video_run, device="cpu")
    cfg = compose(["modality=video", "data.num_test=2"])
    world = make_world(cfg.data)
    motion = motion_world(world, cfg)
    prompts = motion_prompts(list(cfg.data.held_out), 2)
    assert prompts[0][2] == "left" and prompts[1][2] == "right"
    rng = np.random.default_rng(0)
    asked = [EvalClip("seen", motion.clip_from_prompt(f"a {c} {s} moves {d}", rng)) for c, s, d in prompts]
    sampling = SamplingConfig(temperature={"default": 1.0, "text": 0.0}, max_new_tokens=220)
    scored = score_direction(prompt_producer(pipe, motion, "text->video", sampling), motion, "text->video", asked, 1,
                             progress=False, read=read_motion, judge=motion_categories, hit="motion").scores["seen"]
    assert scored["motion"].total == scored["object"].total == 2 and scored["motion"].hits <= scored["object"].hits
    held_out = [EvalClip("test", clip) for clip in synthetic_clips(world, cfg.data, "test").clips]
    greedy = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=12)
    captions = score_direction(prompt_producer(pipe, motion, "video->text", greedy), motion, "video->text", held_out,
                               1, progress=False, read=read_motion, judge=motion_categories, hit="direction")
    assert captions.scores["test"]["direction"].total == 2
    assert captions.scores["test"]["exact"].hits <= captions.scores["test"]["direction"].hits
