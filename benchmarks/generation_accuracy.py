"""Generation accuracy of a trained run under the strict judge, at several seeds, with its controls.

    python benchmarks/generation_accuracy.py run=<run dir> [samples=100] [seeds=3] [seed=0] [cfg_scale=<s>]
        [temperature=<t>] [rerank=<n>] [directions=[text->image,...]] [controls=true] [batch_size=64] [out=<dir>]

The numbers are ``scripts/evaluate.py run=<run dir>``'s (the one scoring engine, unimodal/eval/world): every
direction of the run on seen and held-out scenes, ``samples`` scenes per split at each of ``seeds`` seeds (each
seed its own scenes and sampling stream), a hit only when the analyzer reads exactly the requested objects.
Media are sampled with the evaluation's recipe (unimodal/eval/sampling.py); ``cfg_scale=`` and ``temperature=``
put one guidance scale or temperature on every media modality; ``rerank=<n>`` keeps the best of ``n`` answers by
the inverse direction (unimodal/pipeline/rerank.py).
Each score is pooled over the seeds with a 95% Wilson interval, beside its noise and shuffled-prompt controls;
a bar (unimodal/eval/world/stats.py) is met when the lower bound reaches it. Writes the run's evaluation
(``<run>/eval`` or ``out=``: report.md, metrics.json, figures) and appends the headline numbers to
``benchmarks/results/generation_accuracy-<commit>.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the checkout whose commit a record names
HEADLINE = ("exact", "single_exact")


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """What a RESULTS row quotes: exact and single-object exact per direction and split, intervals and controls."""
    return {direction: {split: {cat: cells[cat] for cat in HEADLINE if cat in cells} for split, cells in table.items()}
            for direction, table in metrics["directions"].items()}


def run_summary(run_dir: Path) -> dict[str, Any]:
    """The run's recipe in a few keys (modality, tasks, LM steps and time, final losses): what was scored."""
    summary: dict[str, Any] = {}
    for name, keys in (("run.json", ("modality", "tasks")), ("train_summary.json", None)):
        try:
            found = json.loads((run_dir / name).read_text())
        except (OSError, ValueError):
            continue
        summary.update({k: v for k, v in found.items() if keys is None or k in keys})
    return summary


def main(argv: list[str]) -> None:
    from unimodal.commands.evaluate import parse_run_options
    from unimodal.errors import UnimodalError
    from unimodal.eval.world.run import evaluate_run
    from unimodal.records import write_record

    if not any(a.startswith("run=") for a in argv):
        raise UnimodalError("usage: python benchmarks/generation_accuracy.py run=<run dir> [samples=100] [seeds=3]")
    options = parse_run_options(["lm_samples=0", "vqa_scenes=0", *argv])
    started = time.time()
    metrics = evaluate_run(options)
    write_record("generation_accuracy", {
        "run": str(options["run"]), "recipe": run_summary(Path(options["run"])), "seeds": metrics["seeds"],
        "samples_per_split": metrics["samples_per_split"], "cfg_scale": metrics["cfg_scale"],
        "temperature": metrics["temperature"], "rerank": metrics["rerank"],
        "directions": headline(metrics), "bars": metrics["bars"], "evaluation_seconds": metrics["seconds"]},
        ROOT, argv, started)


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
