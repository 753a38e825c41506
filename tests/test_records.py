"""Benchmark records: one committed JSON per benchmark and commit, every invocation appended."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from unimodal.records import RESULTS_DIR, write_record

ROOT = Path(__file__).resolve().parent.parent


def test_records_append_one_entry_per_invocation(tmp_path):
    first = write_record("demo", {"accuracy": 0.5}, tmp_path, ["seed=0"])
    again = write_record("demo", {"accuracy": 0.7}, tmp_path, ["seed=1"], started=0.0)
    assert first == again == tmp_path / RESULTS_DIR / "demo-unknown.json"  # outside git: commit "unknown"
    record = json.loads(first.read_text())
    assert record["benchmark"] == "demo" and record["commit"] == "unknown"
    assert [run["command"] for run in record["runs"]] == ["python benchmarks/demo.py seed=0",
                                                           "python benchmarks/demo.py seed=1"]
    assert [run["results"]["accuracy"] for run in record["runs"]] == [0.5, 0.7]
    assert {"cpus", "torch", "device"} <= set(record["runs"][0]["machine"])


def test_records_stay_small(tmp_path):
    with pytest.raises(ValueError, match="benchmarks/out"):
        write_record("big", {"samples": list(range(200_000))}, tmp_path, [])


def test_results_folder_is_not_ignored():
    probe = "benchmarks/results/generate_speed-0000000.json"
    ignored = subprocess.run(["git", "check-ignore", "-q", probe], cwd=ROOT, capture_output=True)
    assert ignored.returncode == 1, f"{probe} is git-ignored: .gitignore must leave benchmarks/results/ committed"
