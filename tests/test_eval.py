"""The generation-accuracy harness runs on a trained run and counts hits with the exact analyzers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from unimodal.data.synthetic.world import COLORS, SHAPES
from unimodal.eval.world.suite import seen_single_object_prompts

ROOT = Path(__file__).resolve().parent.parent


def test_seen_prompts_exclude_held_out():
    held = [["green", "triangle"], ["blue", "cross"]]
    prompts = seen_single_object_prompts(held, 30)
    assert len(prompts) == 30
    assert not {("green", "triangle"), ("blue", "cross")} & set(prompts)
    assert len(set(prompts)) == len(COLORS) * len(SHAPES) - 2


def test_benchmark_script_reports_accuracy(smoke_run, tmp_path):
    _, run_dir = smoke_run
    out = tmp_path / "eval"
    env = {**os.environ, "UNIMODAL_RESULTS_DIR": str(tmp_path / "results")}
    result = subprocess.run([sys.executable, "benchmarks/generation_accuracy.py", f"run={run_dir}", "samples=2",
                             "seeds=2", "batch_size=8", "progress=false", f"out={out}",
                             "directions=[text->image,image->text]"],  # every direction: test_eval_harness
                            cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    for direction in ("text->image", "image->text"):
        assert direction in result.stdout
    assert (out / "report.md").is_file() and (out / "metrics.json").is_file()
    [record] = list((tmp_path / "results").glob("generation_accuracy-*.json"))
    run = json.loads(record.read_text())["runs"][0]
    assert run["command"].startswith("python benchmarks/generation_accuracy.py run=")
    assert run["results"]["seeds"] == [0, 1]
    cell = run["results"]["directions"]["text->image"]["seen"]["single_exact"]
    assert {"low", "high", "per_seed", "noise", "shuffled"} <= set(cell)
