"""Clips in the evaluation harness: the motion analyzer through its scoring loop, and run= on a video run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from tests.test_video_run import video_run  # noqa: F401  (the debug=smoke modality=video run fixture)
from unimodal.data.motion import MotionWorld
from unimodal.data.synthetic.world import World, WorldConfig
from unimodal.eval.world.engine import read_motion, round_trip_producer, score_direction
from unimodal.eval.world.suite import SPLITS, EvalClip, make_clips, motion_categories


@pytest.fixture(scope="module")
def motion() -> MotionWorld:
    return MotionWorld(World(WorldConfig(image_size=32, max_objects=2, held_out=(("red", "circle"),))), 9)


def rendered(motion: MotionWorld, target: str):
    """Generations that are the clips themselves (or their captions): what a perfect model would output."""
    def produce(clips, start):
        if target == "video":
            return [SimpleNamespace(videos=[motion.render_video(c.scene)], images=[], audio=[], text="",
                                    segments=[]) for c in clips]
        return [SimpleNamespace(videos=[], images=[], audio=[], text=motion.caption(c.scene), segments=[])
                for c in clips]
    return produce


@pytest.mark.parametrize("direction", ["text->video", "video->text"])
def test_motion_analyzer_is_exact_through_the_harness(motion, direction):
    target = direction.split("->")[1]
    clips = [c for split in SPLITS for c in make_clips(motion, split, 24, seed=3)]
    assert {len(c.want) for c in clips} == {1, 2} and {c.split for c in clips} == set(SPLITS)
    assert all(("red", "circle") in [w[:2] for w in c.want] for c in clips if c.split == "held_out")
    assert all(("red", "circle") not in [w[:2] for w in c.want] for c in clips if c.split == "seen")
    result = score_direction(rendered(motion, target), motion, direction, clips, 16, progress=False,
                             read=read_motion, judge=motion_categories)
    for split in SPLITS:
        assert result.scores[split]["exact"].accuracy >= 0.99, (split, result.scores[split]["exact"])
        assert {"left", "right", "up", "down", "one_object", "two_objects"} <= set(result.scores[split])


def test_a_constant_clip_names_directions_at_most_by_chance(motion):
    clip = motion.render_video(motion.clip_from_prompt("a green square moves left", np.random.default_rng(0)))

    def produce(clips, start):
        return [SimpleNamespace(videos=[clip], images=[], audio=[], text="", segments=[]) for _ in clips]

    clips = [c for split in SPLITS for c in make_clips(motion, split, 16, seed=4)]
    result = score_direction(produce, motion, "text->video", clips, 16, progress=False, read=read_motion,
                             judge=motion_categories)
    for split in SPLITS:  # one-object clips ask the four directions in turn; two-object clips never match one
        assert result.scores[split]["direction"].accuracy <= 0.25, result.scores[split]["direction"]


def test_motion_categories():
    want = [("red", "circle", "left"), ("blue", "square", "up")]
    moved_wrong = motion_categories(want, [("red", "circle", "left"), ("blue", "square", "down")])
    assert moved_wrong["object"] == (1, 1) and moved_wrong["motion"] == (0, 1) and moved_wrong["left"] == (1, 1)
    assert moved_wrong["up"] == (0, 1) and moved_wrong["two_objects"] == (0, 1)
    swapped = motion_categories(want, want[::-1])
    assert swapped["motion"] == (1, 1) and swapped["exact"] == (0, 1)


def test_evaluate_a_video_run(video_run, tmp_path, one_thread):  # noqa: F811
    from unimodal.commands.evaluate import evaluate

    out = tmp_path / "eval"
    metrics = evaluate([f"run={video_run}", f"out={out}", "samples=2", "lm_samples=1", "progress=false",
                        "batch_size=4", "vqa_scenes=0"])
    assert set(metrics["directions"]) == {"text->video", "video->text"} and not metrics["not_scored"]
    assert set(metrics["directions"]["text->video"]) == set(SPLITS)
    assert "motion" in metrics["directions"]["video->text"]["held_out"]
    assert set(metrics["lm_bits_per_token"]["seen"]) >= {"text", "video"}
    assert "frames.png" in metrics["figures"] and (out / "frames.png").is_file()
    report = (out / "report.md").read_text()
    assert "## text->video" in report and "| motion |" in report and "frames.png" in report
    assert json.loads((out / "metrics.json").read_text())["codebook_usage"]["video"]["size"] > 0
    assert np.isfinite(metrics["lm_bits_per_token"]["held_out"]["video"])


def test_evaluate_a_video_tokenizer(video_run, tmp_path, one_thread):  # noqa: F811
    from unimodal.commands.evaluate import evaluate_tokenizer

    out = tmp_path / "tok"
    metrics = evaluate_tokenizer(["task=tokenizer", f"tokenizer={video_run}/tokenizers/video", f"out={out}",
                                  "num_images=2", "progress=false"])
    assert len(metrics["psnr_per_frame"]) == 9 and metrics["tokens_per_clip"] == 192
    assert 0 < metrics["codebook_usage"] <= 1 and metrics["eval_clips"] == 2
    assert (out / "frames.png").is_file() and "![frames](frames.png)" in (out / "card.md").read_text()


def test_round_trip_ceiling_counts_single_object_clips_the_analyzer_still_reads(motion):
    clips = [EvalClip("test", clip) for clip in motion.dataset(40, seed=3, split="all")]
    single = [clip for clip in clips if len(clip.want) == 1]
    assert 0 < len(single) < 40

    def round_trip(decode):  # the engine's tokenizer ceiling, through a stand-in pipeline
        pipe = SimpleNamespace(segments_from=lambda clip: [clip], decode_media=decode)
        return score_direction(round_trip_producer(pipe, motion), motion, "video->video", single, 8,
                               progress=False, read=read_motion, judge=motion_categories, hit="motion")

    perfect = round_trip(lambda clip: clip).scores["test"]["motion"]   # a lossless tokenizer
    assert (perfect.hits, perfect.total) == (len(single), len(single))
    assert round_trip(np.zeros_like).scores["test"]["motion"].hits == 0
