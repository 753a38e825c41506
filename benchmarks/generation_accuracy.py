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
    import numpy as np
    from PIL import Image

    from unimodal.errors import UnimodalError
    from unimodal.eval.world.engine import default_sampling, prompt_producer, score_direction
    from unimodal.eval.world.figures import image_grid
    from unimodal.eval.world.run import load_run
    from unimodal.eval.world.suite import EvalScene, categories, object_found, seen_single_object_prompts

    args = dict(a.split("=", 1) for a in argv)
    if "run" not in args:
        raise UnimodalError("usage: python benchmarks/generation_accuracy.py run=<run dir> [prompts=20]")
    run_dir = Path(args["run"])
    pipe, cfg, world = load_run(run_dir, synthetic=True)
    count = int(args.get("prompts", 20))
    seed = int(args.get("seed", 0))
    sampling = default_sampling(float(args.get("cfg_scale", 3.0)), float(args.get("temperature", 1.0)),
                                int(args.get("top_k", 0)))
    rng = np.random.default_rng(0)   # layouts only: a prompt names the colour and shape that are scored
    asked = [EvalScene("seen", world.scene_from_prompt(f"a {c} {s}", rng))
             for c, s in seen_single_object_prompts(list(cfg.data.held_out), count)]
    captioned = [EvalScene("seen", scene) for scene in world.dataset(count, seed=12345, split="train")]
    results = {}
    started = time.perf_counter()
    for modality in pipe.info["media"]:
        # media: the requested object is there; captions: exactly the scene's objects, in order
        for direction, scenes, judge, hit in ((f"text->{modality}", asked, object_found, "object"),
                                              (f"{modality}->text", captioned, categories, "exact")):
            result = score_direction(prompt_producer(pipe, world, direction, sampling, seed), world, direction,
                                     scenes, batch_size=1, sample_rate=pipe.sample_rate, judge=judge, hit=hit,
                                     keep_media=count)
            results[direction] = (result.scores["seen"][hit], result.examples)
            if direction == "text->image":
                out = run_dir / "eval"
                out.mkdir(exist_ok=True)
                Image.fromarray(image_grid([e["media"] for e in result.examples])).save(out / "text_to_image.png")
    seconds = time.perf_counter() - started
    print(f"\nrun: {run_dir}   prompts: {count}   cfg_scale: {sampling.cfg_scale['default']}   "
          f"({seconds:.0f}s)")
    print(f"{'direction':<16}{'accuracy':>10}{'hits':>8}")
    for name, (score, _) in results.items():
        print(f"{name:<16}{score.accuracy:>10.2f}{score.hits:>5}/{score.total}")
    summary = {name: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total,
                      "examples": [{k: v for k, v in e.items() if k != "media"} for e in examples]}
               for name, (s, examples) in results.items()}
    (run_dir / "eval").mkdir(exist_ok=True)
    (run_dir / "eval" / "generation.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    from unimodal.cli import run_cli
    sys.exit(run_cli(main, __doc__))
