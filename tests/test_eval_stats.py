"""Spread and controls of scores: Wilson intervals, pooling over seeds, bars, shuffled prompts."""

from __future__ import annotations

import pytest

from unimodal.eval.world.controls import shuffled
from unimodal.eval.world.engine import DirectionResult
from unimodal.eval.world.stats import bar_verdicts, pool, wilson, with_controls
from unimodal.eval.world.suite import categories


def test_wilson_interval_matches_known_values():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    low, high = wilson(50, 100)
    assert low == pytest.approx(1 - high) and low == pytest.approx(0.4038, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)


def test_pooling_seeds_and_bars_use_the_lower_bound():
    seeds = [{"seen": {"exact": {"hits": h, "total": 50}}} for h in (44, 40, 42)]
    cell = pool(seeds)["seen"]["exact"]
    assert (cell["hits"], cell["total"], cell["per_seed"]) == (126, 150, [0.88, 0.8, 0.84])
    assert cell["accuracy"] == pytest.approx(0.84) and cell["low"] < 0.84 < cell["high"]
    noise = pool([{"seen": {"exact": {"hits": 0, "total": 50}}}])
    table = with_controls(pool(seeds), {"noise": noise})
    assert table["seen"]["exact"]["noise"]["accuracy"] == 0.0
    directions = {"image->text": table}
    [verdict] = bar_verdicts(directions, {("image->text", "seen", "exact"): 0.80})
    assert verdict["met"] == (cell["low"] >= 0.80) and not verdict["met"]  # mean 0.84 > 0.80, lower bound below
    assert verdict["accuracy"] > verdict["bar"]


def test_shuffled_prompts_never_judge_an_output_against_its_own_prompt():
    result = DirectionResult("text->image", {"seen": {}})
    wants = [[("red", "circle")], [("blue", "square")], [("green", "cross")], [("cyan", "triangle")]]
    result.examples = [{"split": "seen", "want": w, "found": w} for w in wants]  # a perfect model
    table = shuffled(result, categories, seed=3)
    assert table["seen"]["exact"] == {"hits": 0, "total": 4}  # every prompt differs, so nothing matches
    repeated = DirectionResult("text->image", {"seen": {}})
    repeated.examples = [{"split": "seen", "want": wants[0], "found": wants[0]} for _ in range(3)]
    assert shuffled(repeated, categories, seed=0)["seen"]["exact"] == {"hits": 3, "total": 3}  # same prompt
