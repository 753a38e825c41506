"""Exact-answer accuracy of a stage=instruct run on held-out scenes (a seed no training split uses).

    python benchmarks/instruct_accuracy.py run=<run dir> [scenes=300] [seed=0] [cfg_scale=3.0] [lm=lm]

Asks every scene one question of each kind that fits it: count, colour, shape (together: ``visual``),
describe (the caption, exact), edit (the answer image must hold exactly the edited scene's objects by the
image analyzer), compare (two images in one turn) and, for audio runs, sound. Text answers are greedy.
Scenes of two objects of different colours are also asked "describe this image, then draw it with the colours
swapped" (an interleaved answer: text, then an image): ``interleaved`` (text followed by a whole image),
``swap-text`` (the exact caption), ``swap-image`` (exactly the swapped scene's objects), ``swap-colours`` (the
swapped colours, shapes aside). ``lm=lm-pretrain`` scores the model before instruction tuning instead. Writes
``<run>/eval/instruct.json`` and a figure of swap answers, ``<run>/eval/swap_examples.png``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> None:
    from unimodal.data.instruct import held_out_scenes
    from unimodal.errors import UnimodalError
    from unimodal.eval.world.figures import swap_figure
    from unimodal.eval.world.instruct import score_instruct
    from unimodal.eval.world.run import load_run
    from unimodal.model.generate import SamplingConfig

    args = dict(a.split("=", 1) for a in argv)
    if "run" not in args:
        raise UnimodalError("usage: python benchmarks/instruct_accuracy.py run=<run dir> [scenes=300] [seed=0]")
    run_dir = Path(args["run"])
    pipe, cfg, world = load_run(run_dir, synthetic=True)
    lm_name = args.get("lm", "lm")
    if lm_name != "lm":
        from unimodal.model.lm import load_lm
        pipe.model = load_lm(run_dir / lm_name, pipe.vocab).to(next(pipe.model.parameters()).device).eval()
    scenes = held_out_scenes(world, cfg.data, int(args.get("scenes", 300)))
    span = len(pipe.codec.span_plan("image")) + 3 if "image" in pipe.tokenizers else 1
    scale = float(args.get("cfg_scale", 3.0))
    image_sampling = SamplingConfig(temperature={"default": 1.0}, cfg_scale={"default": scale}, max_new_tokens=span)
    started = time.perf_counter()
    samples: list[dict] = []
    scores = score_instruct(pipe, world, scenes, seed=int(args.get("seed", 0)), image_sampling=image_sampling,
                            swap_samples=samples)
    seconds = time.perf_counter() - started
    print(f"\nrun: {run_dir}   model: {lm_name}   held-out scenes: {len(scenes)}   ({seconds:.0f}s)")
    print(f"{'kind':<14}{'accuracy':>10}{'hits':>8}{'asked':>8}")
    for kind, score in scores.items():
        print(f"{kind:<14}{score.accuracy:>10.2f}{score.hits:>8}{score.total:>8}")
    out = run_dir / "eval"
    out.mkdir(exist_ok=True)
    report = {kind: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total, "examples": s.examples}
              for kind, s in scores.items()}
    name = "instruct.json" if lm_name == "lm" else f"instruct-{lm_name}.json"
    (out / name).write_text(json.dumps(report, indent=2, default=str))
    print(f"wrote {out / name}")
    if samples:
        suffix = "" if lm_name == "lm" else f"-{lm_name}"
        figure = swap_figure(samples, out / f"swap_examples{suffix}.png")
        print(f"wrote {figure}")


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
