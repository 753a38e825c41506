"""Generation accuracy of a modality=video run under the strict judge, at several seeds, with its controls.

    python benchmarks/video_accuracy.py run=<run dir> [samples=100] [seeds=3] [seed=0] [cfg_scale=3.0]
        [controls=true] [batch_size=64] [out=<dir>]

text->video and video->text are ``scripts/evaluate.py run=<run dir>``'s numbers (the one scoring engine): clips of
seen and held-out colour-shape pairs, ``samples`` per split at each seed (each seed its own clips and sampling), a
hit only when the motion analyzer reads exactly the requested objects moving the requested ways (``exact``;
``single_exact`` on one-object clips), pooled over seeds with a 95% Wilson interval, beside the noise and
shuffled-prompt controls. Also the ceiling the video tokenizer sets: the share of the same one-object clips that
the analyzer still reads exactly after encode -> decode (no LM). Writes the run's evaluation (``<run>/eval`` or
``out=``) and appends the numbers to ``benchmarks/results/video_accuracy-<commit>.json``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose commit a record names


def round_trip(options: dict[str, Any]) -> dict[str, Any]:
    """Single-object clips of every seed and split through the video tokenizer alone, judged exactly; pooled."""
    from unimodal.eval.world.engine import read_motion, round_trip_producer, score_direction
    from unimodal.eval.world.run import load_run
    from unimodal.eval.world.stats import pool
    from unimodal.eval.world.suite import SPLITS, make_clips, motion_categories, motion_world

    pipe, cfg, world = load_run(options["run"], options["device"], synthetic=True)
    motion = motion_world(world, cfg)
    tables = []
    for seed in range(options["seed"], options["seed"] + options["seeds"]):
        clips = [c for split in SPLITS for c in make_clips(motion, split, options["samples"], seed) if len(c.want) == 1]
        result = score_direction(round_trip_producer(pipe, motion), motion, "video->video", clips,
                                 progress=options["progress"], read=read_motion, judge=motion_categories, keep_media=0)
        tables.append(result.metrics())
    return {split: pool(tables)[split]["exact"] for split in SPLITS}


def main(argv: list[str]) -> None:
    from unimodal.commands.evaluate import parse_run_options
    from unimodal.errors import UnimodalError
    from unimodal.eval.world.run import evaluate_run
    from unimodal.records import write_record

    if not any(a.startswith("run=") for a in argv):
        raise UnimodalError("usage: python benchmarks/video_accuracy.py run=<run dir> [samples=100] [seeds=3]")
    options = parse_run_options(["lm_samples=0", "vqa_scenes=0", *argv])
    started = time.time()
    metrics = evaluate_run(options)
    if set(metrics["directions"]) != {"text->video", "video->text"}:
        raise UnimodalError(f"{options['run']} is not a modality=video run (it has {', '.join(metrics['directions'])})")
    ceiling = round_trip(options)
    for split, cell in ceiling.items():
        print(f"  tokenizer round trip {split}: {cell['accuracy']:.2f} [{cell['low']:.2f}, {cell['high']:.2f}] "
              f"({cell['hits']}/{cell['total']} one-object clips read exactly after encode -> decode)")
    write_record("video_accuracy", {
        "run": str(options["run"]), "seeds": metrics["seeds"], "samples_per_split": metrics["samples_per_split"],
        "cfg_scale": metrics["cfg_scale"],
        "directions": {d: {split: {cat: cells[cat] for cat in ("exact", "single_exact", "direction") if cat in cells}
                           for split, cells in table.items()} for d, table in metrics["directions"].items()},
        "tokenizer_round_trip": ceiling, "evaluation_seconds": metrics["seconds"]}, ROOT, argv, started)


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
