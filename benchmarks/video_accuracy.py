"""Generation accuracy of a modality=video run, judged by the synthetic world's exact motion analyzer.

    python benchmarks/video_accuracy.py run=<run dir> [prompts=20] [clips=100] [cfg_scale=3.0] [seed=0]

text->video: over ``prompts`` single-object prompts of seen colour-shape pairs, directions in turn ("a red
circle moves left"), the fraction of generated clips in which the analyzer finds that object moving that way
(and, beside it, the object whatever its motion). video->text: over ``clips`` held-out clips (the test split:
another seed, any colour-shape pair), the fraction of greedy captions that name every object's direction in
order (and that are exact). Also the ceiling that the video tokenizer sets: the fraction of those held-out
clips with one object that the analyzer still reads exactly after encode -> decode. Writes
``<run>/eval/video.json`` and the generated clips as GIFs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> None:
    import numpy as np

    from unimodal.data.video_sources import synthetic_clips
    from unimodal.errors import UnimodalError
    from unimodal.eval.world.engine import (
        Score,
        default_sampling,
        prompt_producer,
        read_motion,
        round_trip_producer,
        score_direction,
    )
    from unimodal.eval.world.run import load_run
    from unimodal.eval.world.suite import EvalClip, motion_categories, motion_prompts, motion_world
    from unimodal.video_io import write_gif

    args = dict(a.split("=", 1) for a in argv)
    if "run" not in args:
        raise UnimodalError("usage: python benchmarks/video_accuracy.py run=<run dir> [prompts=20] [clips=100]")
    run_dir = Path(args["run"])
    pipe, cfg, world = load_run(run_dir, synthetic=True)
    if "video" not in pipe.info["media"]:
        raise UnimodalError(f"{run_dir} is a modality={pipe.info['modality']} run; train one with modality=video")
    cfg.data.num_test = int(args.get("clips", 100))
    sampling = default_sampling(float(args.get("cfg_scale", 3.0)), float(args.get("temperature", 1.0)),
                                int(args.get("top_k", 0)))
    motion = motion_world(world, cfg)
    rng = np.random.default_rng(0)   # layouts only: a prompt names the object and direction that are scored
    count = int(args.get("prompts", 20))
    asked = [EvalClip("seen", motion.clip_from_prompt(f"a {c} {s} moves {d}", rng))
             for c, s, d in motion_prompts(list(cfg.data.held_out), count)]
    held_out = [EvalClip("test", clip) for clip in synthetic_clips(world, cfg.data, "test").clips]
    single = [clip for clip in held_out if len(clip.want) == 1]

    def score(produce: Any, direction: str, clips: list[EvalClip], hit: str) -> Any:
        return score_direction(produce, motion, direction, clips, batch_size=1, read=read_motion,
                               judge=motion_categories, hit=hit, keep_media=len(clips))

    def named(result: Any, split: str, category: str, name: str) -> Score:
        found = result.scores.get(split, {}).get(category, Score(category))
        return Score(name, found.hits, found.total)

    started = time.perf_counter()
    generated = score(prompt_producer(pipe, motion, "text->video", sampling, int(args.get("seed", 0))),
                      "text->video", asked, "motion")
    captions = score(prompt_producer(pipe, motion, "video->text", sampling), "video->text", held_out, "direction")
    round_trip = score(round_trip_producer(pipe, motion), "video->video", single, "motion")
    seconds = time.perf_counter() - started
    scores = [named(generated, "seen", "motion", "text->video"),
              named(generated, "seen", "object", "text->video object"),
              named(captions, "test", "direction", "video->text direction"),
              named(captions, "test", "exact", "video->text exact"),
              named(round_trip, "test", "motion", "tokenizer round trip")]
    out = run_dir / "eval"
    (out / "video").mkdir(parents=True, exist_ok=True)
    for index, example in enumerate(generated.examples):
        clip = example.pop("media")
        if isinstance(clip, np.ndarray):
            write_gif(clip, out / "video" / f"{index:02d}.gif", pipe.tokenizers["video"].frame_rate, 4)
    report = {s.name: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total} for s in scores}
    report["seconds"] = round(seconds, 1)
    report["examples"] = {"text->video": generated.examples,
                          "video->text": [{k: v for k, v in e.items() if k != "media"} for e in captions.examples[:20]]}
    (out / "video.json").write_text(json.dumps(report, indent=2, default=str))
    for s in scores:
        print(f"{s.name:24s} {s.accuracy:.2f} ({s.hits}/{s.total})")
    print(f"{seconds:.0f}s; wrote {out / 'video.json'} and {out / 'video'}/*.gif")


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
