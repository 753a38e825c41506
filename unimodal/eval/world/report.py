"""Markdown for an evaluation (report.md) and for a comparison of runs (compare.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from unimodal.eval.sampling import recipe_text
from unimodal.eval.world.suite import CATEGORIES, SPLITS


def _cell(entry: dict[str, float] | None) -> str:
    return f"{entry['accuracy']:.2f} ({entry['hits']}/{entry['total']})" if entry else "-"


def _interval(entry: dict[str, Any]) -> str:
    if "low" not in entry:
        return _cell(entry)
    return f"{entry['accuracy']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}] ({entry['hits']}/{entry['total']})"


def _control(entry: dict[str, Any], kind: str) -> str:
    control = entry.get(kind)
    return f"{control['accuracy']:.2f} (<= {control['high']:.2f})" if control else "-"


def direction_table(table: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """One row per category and split: the pooled score with its 95% interval, each seed, and both controls."""
    lines = ["| category | split | score [95% interval] | per seed | noise | shuffled prompts |",
             "|---|---|---|---|---|---|"]
    for cat in CATEGORIES:
        for split in (s for s in SPLITS if cat in table.get(s, {})):
            entry = table[split][cat]
            seeds = " / ".join(f"{v:.2f}" for v in entry.get("per_seed", []))
            lines.append(f"| {cat} | {split} | {_interval(entry)} | {seeds or '-'} | {_control(entry, 'noise')} | "
                         f"{_control(entry, 'shuffled')} |")
    return lines


def headline_table(metrics: dict[str, Any]) -> list[str]:
    """``exact`` (and ``single_exact``) of every direction and split: the strict judge's numbers."""
    lines = ["| direction | split | exact [95% interval] | single-object exact | noise | shuffled prompts |",
             "|---|---|---|---|---|---|"]
    for direction, table in metrics["directions"].items():
        for split in (s for s in SPLITS if s in table):
            exact, single = table[split].get("exact"), table[split].get("single_exact")
            lines.append(f"| {direction} | {split} | {_interval(exact) if exact else '-'} | "
                         f"{_interval(single) if single else '-'} | {_control(exact or {}, 'noise')} | "
                         f"{_control(exact or {}, 'shuffled')} |")
    return lines


def _rerank_text(n: int) -> str:
    return "" if n <= 1 else (f"; each answer the best of {n} candidates by the inverse direction's likelihood "
                              f"of the prompt (`rerank={n}`, unimodal/pipeline/rerank.py)")


def write_report(metrics: dict[str, Any], pictures: list[tuple[str, str]], path: Path) -> None:
    chance = metrics["colour_chance"]
    seeds = metrics.get("seeds", [metrics["seed"]])
    lines = [f"# Evaluation of `{metrics['run']}`", "",
             f"{metrics['date']}; {metrics['samples_per_split']} scenes per split and direction at each of "
             f"{len(seeds)} seeds ({', '.join(map(str, seeds))}: each seed draws its own scenes and samples), "
             f"{recipe_text(metrics['cfg_scale'], temperature=metrics.get('temperature'))}"
             f"{_rerank_text(metrics.get('rerank', 1))}; "
             f"{metrics['seconds']:.0f} s.", "",
             "Every score is the hits of all seeds pooled, with a 95% Wilson interval and each seed's value. "
             "A hit is strict: the analyzer reads exactly the requested objects, in order, and nothing else "
             "(`exact`; `single_exact` on one-object requests). Beside each score, two chance rates measured in "
             "this run: `noise` (noise as the input of a direction from media, noise as the output of a direction "
             "from text) and `shuffled prompts` (the outputs judged against other requests of the split), with "
             "their upper bound. A bar is met only when the interval's lower bound reaches it.", "",
             "## Headline", "", *headline_table(metrics), ""]
    if metrics.get("bars"):
        lines += ["| bar | lower bound | met |", "|---|---|---|"]
        lines += [f"| {v['direction']} {v['split']} {v['category']} >= {v['bar']:.2f} | {v['low']:.3f} | "
                  f"{'yes' if v['met'] else '**no**'} |" for v in metrics["bars"]]
        lines += [""]
    lines += ["Scored by the synthetic world's exact analyzers (no learned judge). `seen`: scenes of colour-shape "
              "combinations training holds; `held_out`: scenes with at least one combination training never shows "
              f"({', '.join(metrics['held_out_combinations'])}). Colour prompts are balanced over each split's "
              f"colours: an output that never changes scores at most {chance['seen']:.3f} (seen) and "
              f"{chance['held_out']:.3f} (held out) on `colour`. Captions only say \"left of\", so `position` has "
              "no \"above\"."]
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


def _compare_cell(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    return f"{entry['accuracy']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}]" if "low" in entry else \
        f"{entry['accuracy']:.2f}"


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
                                 + " | ".join(_compare_cell(c) for c in cells) + " |")
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
