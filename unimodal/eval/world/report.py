"""Markdown for an evaluation (report.md) and for a comparison of runs (compare.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unimodal.eval.world.suite import CATEGORIES, SPLITS


def _cell(entry: dict[str, float] | None) -> str:
    return f"{entry['accuracy']:.2f} ({entry['hits']}/{entry['total']})" if entry else "-"


def direction_table(table: dict[str, dict[str, dict[str, float]]]) -> list[str]:
    splits = [s for s in SPLITS if s in table]
    lines = ["| category | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for cat in CATEGORIES:
        if any(cat in table[s] for s in splits):
            lines.append(f"| {cat} | " + " | ".join(_cell(table[s].get(cat)) for s in splits) + " |")
    return lines


def write_report(metrics: dict[str, Any], pictures: list[tuple[str, str]], path: Path) -> None:
    chance = metrics["colour_chance"]
    lines = [f"# Evaluation of `{metrics['run']}`", "",
             f"{metrics['date']}; {metrics['samples_per_split']} scenes per split and direction, seed "
             f"{metrics['seed']}, cfg_scale {metrics['cfg_scale']}; {metrics['seconds']:.0f} s.", "",
             "Scored by the synthetic world's exact analyzers (no learned judge). `seen`: scenes of colour-shape "
             "combinations training holds; `held_out`: scenes with at least one combination training never shows "
             f"({', '.join(metrics['held_out_combinations'])}). Colour prompts are balanced over each split's "
             f"colours: an output that never changes scores at most {chance['seen']:.3f} (seen) and "
             f"{chance['held_out']:.3f} (held out) on `colour`. Captions only say \"left of\", so `position` has no "
             "\"above\"."]
    if any("video" in d for d in metrics["directions"]):
        lines += ["", "Video directions are scored on clips (same seen / held-out colour-shape split) by the motion "
                  "analyzer: `object` every object there, `direction` the directions in order, `motion` every object "
                  "there moving the asked way (`one_object`/`two_objects`: by clip size; `left`..`down`: per object "
                  "asked to move so), `exact` the whole clip or caption. The colour and position notes above are "
                  "about still images."]
    for direction, table in metrics["directions"].items():
        lines += ["", f"## {direction}", "", *direction_table(table)]
    if metrics.get("not_scored"):
        lines += ["", "Not scored: " + "; ".join(f"{d} ({why})" for d, why in metrics["not_scored"].items()) + "."]
    if "lm_bits_per_token" in metrics:
        bits = metrics["lm_bits_per_token"]
        names = sorted({m for parts in bits.values() for m in parts})
        lines += ["", "## Language modelling, bits per predicted token", "",
                  "| split | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        lines += [f"| {split} | " + " | ".join(f"{bits[split].get(m, float('nan')):.3f}" for m in names) + " |"
                  for split in bits]
    if "vqa" in metrics:
        kinds = sorted({k for table in metrics["vqa"].values() for k in table})
        lines += ["", "## Visual question answering, exact match", "",
                  "| kind | " + " | ".join(metrics["vqa"]) + " |", "|---|" + "---|" * len(metrics["vqa"])]
        lines += [f"| {k} | " + " | ".join(_cell(t.get(k)) for t in metrics["vqa"].values()) + " |" for k in kinds]
    if metrics.get("codebook_usage"):
        lines += ["", "Codes generated: " + ", ".join(f"{m} {u['used']}/{u['size']}"
                                                      for m, u in metrics["codebook_usage"].items()) + "."]
    for caption, name in pictures:
        lines += ["", f"![{caption}]({name})"]
    path.write_text("\n".join(lines) + "\n")


def write_compare(runs: dict[str, dict[str, Any]], folders: dict[str, str], path: Path) -> str:
    """Write compare.md (one row per direction, split and category; one column per run); return the table."""
    names = list(runs)
    table = ["| direction | split | category | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    directions = list(dict.fromkeys(d for m in runs.values() for d in m["directions"]))
    for direction in directions:
        for split in SPLITS:
            for cat in CATEGORIES:
                cells = [runs[n]["directions"].get(direction, {}).get(split, {}).get(cat) for n in names]
                if any(cells):
                    table.append(f"| {direction} | {split} | {cat} | "
                                 + " | ".join(f"{c['accuracy']:.2f}" if c else "-" for c in cells) + " |")
    for split in SPLITS:
        parts = sorted({m for r in runs.values() for m in r.get("lm_bits_per_token", {}).get(split, {})})
        for part in parts:
            cells = [runs[n].get("lm_bits_per_token", {}).get(split, {}).get(part) for n in names]
            table.append(f"| lm bits/token | {split} | {part} | "
                         + " | ".join(f"{c:.3f}" if c is not None else "-" for c in cells) + " |")
    lines = ["# Comparison", "", *(f"- `{n}`: {folders[n]}" for n in names), "", *table, "",
             "![per-category accuracy, runs side by side](compare.png)"]
    path.write_text("\n".join(lines) + "\n")
    return "\n".join(table)
