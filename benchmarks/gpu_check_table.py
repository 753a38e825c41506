"""The one table of ``benchmarks/gpu_check.sh``: each part's outcome, wall time and headline number, beside the
reference points of the first GPU hour (DATA.md: compiled HF Llama ~400M at seq 2048, 44.8% MFU on an H200; LlamaGen
compiled at 343M with CFG, 1.34 ms/token). Also written as ``<output folder>/gpu_check.json``.

    python benchmarks/gpu_check_table.py <output folder> [start time, epoch seconds]
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = {"train_speed": "44.8% MFU (compiled HF Llama ~400M, seq 2048)",
             "generate_speed": "1.34 ms/token (LlamaGen 343M compiled, CFG, batch 1)"}


def _latest(benchmark: str, since: float) -> dict | None:
    """The results of a benchmark's last invocation, if this check made it (``benchmarks/results/<name>-<commit>.json``,
    unimodal/records.py; an older file does not count)."""
    sys.path.insert(0, str(ROOT))
    from unimodal.records import record_path

    path = record_path(ROOT, benchmark)
    if not path.is_file() or path.stat().st_mtime < since:
        return None
    runs = json.loads(path.read_text()).get("runs") or [{}]
    return runs[-1].get("results")


def headline(name: str, out: Path, since: float) -> str:
    log = out / f"{name}.log"
    text = log.read_text(errors="replace") if log.is_file() else ""
    if name == "pytest":
        found = re.findall(r"\d+ (?:passed|failed|skipped|deselected|error)[^\n]*", text)
        return found[-1] if found else ""
    if name == "base_run":
        summary = out / "base-run" / "train_summary.json"
        if summary.is_file():
            data = json.loads(summary.read_text())
            return f"{data.get('steps')} LM steps, val/loss {data.get('val/loss', float('nan')):.3f}"
        return ""
    if name == "accuracy":
        scores = out / "base-run" / "eval" / "generation.json"
        if scores.is_file():
            data = json.loads(scores.read_text())
            return ", ".join(f"{k} {v['hits']}/{v['total']}" for k, v in data.items())
        return ""
    if name == "train_speed":
        data = _latest("train_speed", since)
        rows = data["rows"] if data else []
        return ", ".join(f"{r['variant']} {100 * r['mfu']:.1f}% MFU {r['tokens_per_s']:.0f} tok/s" for r in rows
                         if r.get("mfu") is not None)
    if name == "generate_speed":
        data = _latest("generate_speed", since)
        rows = data["rows"] if data else []
        return ", ".join(f"{r['variant']} {r['ms_per_token']:.2f} ms/token" for r in rows)
    return ""


def main(argv: list[str]) -> None:
    out = Path(argv[0])
    since = float(argv[1]) if len(argv) > 1 else 0.0
    rows = []
    for line in (out / "parts.tsv").read_text().splitlines():
        name, status, seconds = line.split("\t")
        rows.append({"part": name, "status": status, "seconds": int(seconds), "result": headline(name, out, since),
                     "reference": REFERENCE.get(name, "")})
    total = round(time.time() - since) if since else sum(r["seconds"] for r in rows)
    width = max(len(r["part"]) for r in rows)
    print(f"\n{'part':<{width}}  {'status':<20}{'s':>5}  result  [reference]")
    for r in rows:
        reference = f"  [{r['reference']}]" if r["reference"] else ""
        print(f"{r['part']:<{width}}  {r['status']:<20}{r['seconds']:>5}  {r['result']}{reference}")
    print(f"total {total} s ({total / 60:.1f} min)")
    (out / "gpu_check.json").write_text(json.dumps({"total_seconds": total, "parts": rows}, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
