"""Generation accuracy of a trained run, judged by the synthetic world's exact analyzers.

    python benchmarks/generation_accuracy.py run=<run dir> [prompts=20] [cfg_scale=3.0] [seed=0]

Over ``prompts`` single-object prompts of colour-shape combinations seen in training it reports the
fraction of generated images (and sounds) in which the analyzer finds the requested colour and shape,
plus caption accuracy on freshly rendered scenes of seen combinations (image->text, audio->text). Writes
``<run>/eval/generation.json`` and a grid PNG of the generated images.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    from PIL import Image

    import unimodal
    from unimodal.data.sources import make_world
    from unimodal.errors import UnimodalError
    from unimodal.eval.generation import (
        default_sampling,
        image_grid,
        score_media_to_text,
        score_text_to_media,
        seen_single_object_prompts,
    )

    args = dict(a.split("=", 1) for a in argv)
    if "run" not in args:
        raise UnimodalError("usage: python benchmarks/generation_accuracy.py run=<run dir> [prompts=20]")
    run_dir = Path(args["run"])
    pipe = unimodal.load(run_dir)
    from omegaconf import OmegaConf
    cfg = OmegaConf.load(run_dir / "config.yaml")
    world = make_world(cfg.data)
    count = int(args.get("prompts", 20))
    sampling = default_sampling(float(args.get("cfg_scale", 3.0)), float(args.get("temperature", 1.0)),
                                int(args.get("top_k", 0)))
    prompts = seen_single_object_prompts(list(cfg.data.held_out), count)
    results = {}
    started = time.perf_counter()
    for modality in pipe.info["media"]:
        score = score_text_to_media(pipe, modality, prompts, sampling, seed=int(args.get("seed", 0)))
        results[score.name] = score
        if modality == "image":
            out = run_dir / "eval"
            out.mkdir(exist_ok=True)
            Image.fromarray(image_grid([e["media"] for e in score.examples])).save(out / "text_to_image.png")
        scenes = world.dataset(count, seed=12345, split="train")
        caption_score = score_media_to_text(pipe, world, modality, scenes, sampling)
        results[caption_score.name] = caption_score
    seconds = time.perf_counter() - started
    print(f"\nrun: {run_dir}   prompts: {count}   cfg_scale: {sampling.cfg_scale['default']}   "
          f"({seconds:.0f}s)")
    print(f"{'direction':<16}{'accuracy':>10}{'hits':>8}")
    for name, score in results.items():
        print(f"{name:<16}{score.accuracy:>10.2f}{score.hits:>5}/{score.total}")
    summary = {name: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total,
                      "examples": [{k: v for k, v in e.items() if k != "media"} for e in s.examples]}
               for name, s in results.items()}
    (run_dir / "eval").mkdir(exist_ok=True)
    (run_dir / "eval" / "generation.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    from unimodal.cli import run_cli
    sys.exit(run_cli(main, __doc__))
