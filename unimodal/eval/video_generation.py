"""Score text->video and video->text with the synthetic world's exact motion analyzer."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from unimodal.data.motion import MOTIONS, motions_in, parse_motion_caption
from unimodal.eval.generation import Score, seen_single_object_prompts
from unimodal.eval.suite import strict_hit
from unimodal.model.generate import SamplingConfig


def motion_prompts(held_out: list[list[str]] | list[tuple[str, str]], count: int = 20) -> list[tuple[str, str, str]]:
    """(colour, shape, direction) of seen colour-shape pairs, directions in turn."""
    return [(c, s, MOTIONS[i % len(MOTIONS)]) for i, (c, s) in enumerate(seen_single_object_prompts(held_out, count))]


def score_text_to_video(pipeline: Any, prompts: list[tuple[str, str, str]], sampling: SamplingConfig, seed: int = 0,
                        progress: bool = True) -> tuple[Score, Score]:
    """One clip per prompt: (exactly that object moving that way, that object there whatever its motion)."""
    moving, objects = Score("text->video"), Score("text->video object")
    for index, (color, shape, direction) in enumerate(tqdm(prompts, desc="text->video", disable=not progress)):
        prompt = f"a {color} {shape} moves {direction}"
        result = pipeline.generate(prompt, output="video", seed=seed + index, sampling=sampling)[0]
        found = motions_in(result.videos[0]) if result.videos else []
        hit = strict_hit([(color, shape, direction)], found)
        moving.hits, moving.total = moving.hits + int(hit), moving.total + 1
        objects.hits += int(any(f[:2] == (color, shape) for f in found))
        objects.total += 1
        moving.examples.append({"prompt": prompt, "found": found, "hit": hit,
                                "media": result.videos[0] if result.videos else None})
    return moving, objects


def score_video_to_text(pipeline: Any, samples: Any, sampling: SamplingConfig, progress: bool = True
                        ) -> tuple[Score, Score]:
    """Caption rendered clips: (every object's direction named, in order; the whole caption exact)."""
    directions, exact = Score("video->text direction"), Score("video->text exact")
    for index, clip in enumerate(tqdm(samples.clips, desc="video->text", disable=not progress)):
        text = pipeline.generate(samples.motion_world.render_video(clip), output="text", sampling=sampling)[0].text
        parsed = parse_motion_caption(text)
        want = clip.attributes()
        hit = [p[2] for p in parsed] == [w[2] for w in want]
        directions.hits, directions.total = directions.hits + int(hit), directions.total + 1
        exact.hits, exact.total = exact.hits + int(parsed == want), exact.total + 1
        directions.examples.append({"want": samples.captions[index], "got": text, "hit": hit})
    return directions, exact


def score_round_trip(pipeline: Any, samples: Any, progress: bool = True) -> Score:
    """The video tokenizer alone: single-object clips whose encode -> decode the analyzer still reads exactly
    (colour, shape and direction). Text->video cannot beat this, whatever the LM."""
    from unimodal.video_io import decode_video_segment, video_segment

    tokenizer = pipeline.tokenizers["video"]
    score = Score("tokenizer round trip")
    for clip in tqdm(samples.clips, desc="round trip", disable=not progress):
        want = clip.attributes()
        if len(want) != 1:
            continue
        decoded = decode_video_segment(tokenizer, video_segment(tokenizer, samples.motion_world.render_video(clip)))
        found = motions_in(decoded)
        score.hits, score.total = score.hits + int(strict_hit(want, found)), score.total + 1
    return score
