"""The raw result every benchmark keeps: ``benchmarks/results/<benchmark>-<commit>.json``, small and committed.

Each file holds the benchmark's name, the commit it ran at (``dirty`` when tracked files had uncommitted
changes) and one entry per invocation at that commit: the exact command, the date, the machine (CPU count,
load average, torch, device) and the numbers. A second invocation at the same commit (another seed, another
model size, a GPU) is appended, so every row of benchmarks/RESULTS.md can name the file its numbers are in.

A leaf of the package rather than a file in benchmarks/: the benchmarks run as scripts, not as a package, and
the format is tested without running one.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS_DIR = Path("benchmarks") / "results"
MAX_BYTES = 512_000  # a record is a summary; per-sample outputs belong in the run folder or benchmarks/out/


def source_commit(root: Path) -> str:
    """The short commit of the checkout at ``root``; ``unknown`` outside a git checkout."""
    return _git(root, "rev-parse", "--short", "HEAD") or "unknown"


def is_dirty(root: Path) -> bool:
    """Whether tracked files differ from the commit (untracked files do not change what ran)."""
    return bool(_git(root, "status", "--porcelain", "--untracked-files=no"))


def _git(root: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def record_path(root: Path, benchmark: str, commit: str | None = None) -> Path:
    return Path(root) / RESULTS_DIR / f"{benchmark}-{commit or source_commit(root)}.json"


def machine() -> dict[str, Any]:
    """What the wall times depend on: CPUs, load, torch and the accelerator."""
    import torch

    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "torch": torch.__version__,
                            "threads": torch.get_num_threads()}
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    info["device"] = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return info


def write_record(benchmark: str, results: dict[str, Any], root: Path, argv: list[str] | None = None,
                 started: float | None = None) -> Path:
    """Append this invocation's ``results`` to ``benchmarks/results/<benchmark>-<commit>.json``; return the path."""
    commit = source_commit(root)
    path = record_path(root, benchmark, commit)
    args = list(sys.argv[1:] if argv is None else argv)
    entry: dict[str, Any] = {"command": shlex.join(["python", f"benchmarks/{benchmark}.py", *args]),
                             "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": machine(),
                             "results": results}
    if started is not None:
        entry["wall_seconds"] = round(time.time() - started, 1)
    record = {"benchmark": benchmark, "commit": commit, "dirty": is_dirty(root), "runs": []}
    if path.is_file():
        try:
            record = json.loads(path.read_text())
        except ValueError:
            pass  # a broken record is replaced rather than blocking the benchmark
    record["dirty"] = bool(record.get("dirty")) or is_dirty(root)
    record.setdefault("runs", []).append(entry)
    text = json.dumps(record, indent=1, default=str)
    if len(text) > MAX_BYTES:
        raise ValueError(f"{benchmark}: the record would be {len(text)} bytes (limit {MAX_BYTES}); keep per-sample "
                         "outputs out of results and in benchmarks/out/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    print(f"recorded {path}")
    return path
