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


def main(argv: list[str]) -> None:
    from omegaconf import OmegaConf

    import unimodal
    from unimodal.data.sources import make_world
    from unimodal.data.video_sources import synthetic_clips
    from unimodal.errors import UnimodalError
    from unimodal.eval.generation import default_sampling
    from unimodal.eval.video_generation import (
        motion_prompts,
        score_round_trip,
        score_text_to_video,
        score_video_to_text,
    )
    from unimodal.video_io import write_gif

    args = dict(a.split("=", 1) for a in argv)
    if "run" not in args:
        raise UnimodalError("usage: python benchmarks/video_accuracy.py run=<run dir> [prompts=20] [clips=100]")
    run_dir = Path(args["run"])
    pipe = unimodal.load(run_dir)
    if "video" not in pipe.info["media"]:
        raise UnimodalError(f"{run_dir} is a modality={pipe.info['modality']} run; train one with modality=video")
    cfg = OmegaConf.load(run_dir / "config.yaml")
    cfg.data.num_test = int(args.get("clips", 100))
    sampling = default_sampling(float(args.get("cfg_scale", 3.0)), float(args.get("temperature", 1.0)),
                                int(args.get("top_k", 0)))
    started = time.perf_counter()
    moving, objects = score_text_to_video(pipe, motion_prompts(list(cfg.data.held_out), int(args.get("prompts", 20))),
                                          sampling, seed=int(args.get("seed", 0)))
    held_out = synthetic_clips(make_world(cfg.data), cfg.data, "test")
    directions, exact = score_video_to_text(pipe, held_out, sampling)
    ceiling = score_round_trip(pipe, held_out)
    seconds = time.perf_counter() - started
    out = run_dir / "eval"
    (out / "video").mkdir(parents=True, exist_ok=True)
    for index, example in enumerate(moving.examples):
        if example["media"] is not None:
            write_gif(example.pop("media"), out / "video" / f"{index:02d}.gif", pipe.tokenizers["video"].frame_rate, 4)
    scores = [moving, objects, directions, exact, ceiling]
    report = {s.name: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total} for s in scores}
    report["seconds"] = round(seconds, 1)
    report["examples"] = {"text->video": [{k: v for k, v in e.items() if k != "media"} for e in moving.examples],
                          "video->text": directions.examples[:20]}
    (out / "video.json").write_text(json.dumps(report, indent=2, default=str))
    for s in scores:
        print(f"{s.name:24s} {s.accuracy:.2f} ({s.hits}/{s.total})")
    print(f"{seconds:.0f}s; wrote {out / 'video.json'} and {out / 'video'}/*.gif")


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
