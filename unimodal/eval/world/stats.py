"""Spread and bars: every score pooled over its seeds with a 95% Wilson interval, and a bar met only by the
interval's lower bound.

A run is scored at several seeds that really differ (each seed draws its own evaluation scenes and sampling
stream: captions of other scenes, generations of other samples). The hits of all seeds are pooled into one
proportion; its Wilson score interval (Wilson 1927) is the spread reported beside it, with each seed's own
accuracy so that a reader sees how much seeds move.
"""

from __future__ import annotations

import math
from typing import Any

Z95 = 1.959964  # two-sided 95% normal quantile

# The bars a default run is held to (direction, split, category) -> the lower bound it must reach.
BARS: dict[tuple[str, str, str], float] = {
    ("text->image", "seen", "single_exact"): 0.80,
    ("image->text", "seen", "exact"): 0.70,
    ("text->audio", "seen", "single_exact"): 0.85,
    ("audio->text", "seen", "exact"): 0.85,
}


def wilson(hits: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``hits`` out of ``total`` (0..1 when nothing was asked)."""
    if total <= 0:
        return 0.0, 1.0
    p = hits / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def summary(hits: int, total: int) -> dict[str, Any]:
    low, high = wilson(hits, total)
    return {"accuracy": hits / max(total, 1), "hits": hits, "total": total, "low": round(low, 4),
            "high": round(high, 4)}


Table = dict[str, dict[str, dict[str, Any]]]  # split -> category -> {"hits", "total", ...}


def pool(per_seed: list[Table]) -> Table:
    """Tables of several seeds -> one table: pooled hits with their interval and each seed's accuracy."""
    pooled: Table = {}
    for table in per_seed:
        for split, cats in table.items():
            for name, entry in cats.items():
                cell = pooled.setdefault(split, {}).setdefault(name, {"hits": 0, "total": 0, "per_seed": []})
                cell["hits"] += int(entry["hits"])
                cell["total"] += int(entry["total"])
                cell["per_seed"].append(round(entry["hits"] / max(entry["total"], 1), 4))
    return {split: {name: {**summary(c["hits"], c["total"]), "per_seed": c["per_seed"]} for name, c in cats.items()}
            for split, cats in pooled.items()}


def with_controls(scores: Table, controls: dict[str, Table]) -> Table:
    """Each score's cell gets the pooled control of the same split and category beside it (``noise``, ...)."""
    for kind, table in controls.items():
        for split, cats in scores.items():
            for name, cell in cats.items():
                control = table.get(split, {}).get(name)
                if control is not None:
                    cell[kind] = {k: control[k] for k in ("accuracy", "hits", "total", "low", "high")}
    return scores


def bar_verdicts(directions: dict[str, Table], bars: dict[tuple[str, str, str], float] = BARS) -> list[dict]:
    """Every bar whose direction was scored: met when the interval's lower bound reaches it."""
    verdicts = []
    for (direction, split, category), bar in bars.items():
        cell = directions.get(direction, {}).get(split, {}).get(category)
        if cell is None:
            continue
        verdicts.append({"direction": direction, "split": split, "category": category, "bar": bar,
                         "accuracy": cell["accuracy"], "low": cell["low"], "high": cell["high"],
                         "met": cell["low"] >= bar})
    return verdicts
