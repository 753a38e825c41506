"""The generation-accuracy harness runs on a trained run and counts hits with the exact analyzers."""

from __future__ import annotations

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


def test_benchmark_script_reports_accuracy(smoke_run):
    _, run_dir = smoke_run
    result = subprocess.run([sys.executable, "benchmarks/generation_accuracy.py", f"run={run_dir}", "prompts=2"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    for direction in ("text->image", "image->text", "text->audio", "audio->text"):
        assert direction in result.stdout
    assert (run_dir / "eval" / "generation.json").is_file()
    assert (run_dir / "eval" / "text_to_image.png").is_file()
