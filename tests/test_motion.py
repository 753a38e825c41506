"""Motion in the synthetic world: clips, captions, and the motion analyzer that inverts the renderings."""

from __future__ import annotations

import numpy as np
import pytest

from unimodal.data.motion import MOTIONS, MotionWorld, analyze_video, parse_motion_caption
from unimodal.data.synthetic.world import World


@pytest.fixture(scope="module")
def motion_world() -> MotionWorld:
    return MotionWorld(World(), num_frames=9)


def test_clips_are_seeded_and_captioned(motion_world):
    first, again = motion_world.dataset(20, seed=3), motion_world.dataset(20, seed=3)
    assert first == again
    for clip in first:
        caption = motion_world.caption(clip)
        assert parse_motion_caption(caption) == clip.attributes()
        assert all(m in MOTIONS for m in clip.motions)
    assert parse_motion_caption("a red circle moves left") == [("red", "circle", "left")]


def test_objects_stay_inside_and_move_the_travel(motion_world):
    for clip in motion_world.dataset(30, seed=4):
        video = motion_world.render_video(clip)
        assert video.shape == (9, 32, 32, 3) and video.dtype == np.uint8
        assert all(video[t].any() for t in range(9))
        start, end = clip.scene_at(0).objects, clip.scene_at(8)
        moved = sorted(np.hypot(b.x - a.x, b.y - a.y) for a in start for b in end.objects
                       if (a.color, a.shape) == (b.color, b.shape))
        assert moved and moved[0] == pytest.approx(clip.travel)


def test_prompt_gives_a_matching_clip(motion_world):
    clip = motion_world.clip_from_prompt("a blue square moves up", np.random.default_rng(0))
    assert clip.attributes() == [("blue", "square", "up")]


def test_motion_analyzer_is_exact_on_rendered_clips(motion_world):
    clips = motion_world.dataset(200, seed=11, split="all")
    hits = [sorted((o.color, o.shape, o.direction) for o in analyze_video(motion_world.render_video(c)))
            == sorted(c.attributes()) for c in clips]
    assert sum(hits) / len(hits) >= 0.99


def test_a_still_clip_reads_as_still(motion_world):
    clip = motion_world.dataset(1, seed=5)[0]
    frames = np.stack([motion_world.world.render_image(clip.scene_at(0))] * 9)
    assert {o.direction for o in analyze_video(frames)} == {"still"}
