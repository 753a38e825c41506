"""The evaluation harness: exact analyzers on rendered scenes, a planted constant model, run= and compare=."""

from __future__ import annotations

import json
import shutil
from collections import Counter

import numpy as np
import pytest

from unimodal.data.synthetic.world import World
from unimodal.eval.world.engine import score_direction
from unimodal.eval.world.suite import SPLITS, categories, colour_chance, make_scenes
from unimodal.pipeline import Generation


@pytest.fixture(scope="module")
def world() -> World:
    return World()


def rendered(world: World, modality: str):
    """A producer that returns each scene exactly rendered as ``modality``: a perfect model."""
    def produce(scenes, start):
        out = []
        for item in scenes:
            generation = Generation(ids=np.zeros(0, np.int64), segments=[])
            if modality == "text":
                generation.text = world.caption(item.scene)
            elif modality == "image":
                generation.images = [world.render_image(item.scene)]
            else:
                generation.audio = [world.render_sound(item.scene)]
            out.append(generation)
        return out
    return produce


def constant_image(image: np.ndarray):
    def produce(scenes, start):
        return [Generation(ids=np.zeros(0, np.int64), segments=[], images=[image]) for _ in scenes]
    return produce


@pytest.mark.parametrize("direction", ["image->text", "text->image", "text->audio"])
def test_analyzers_are_exact_on_rendered_scenes(world, direction):
    """Every analyzer (caption parser, image, sound) reads rendered scenes back: >= 99% in every category."""
    scenes = [s for split in SPLITS for s in make_scenes(world, split, 100, seed=3)]
    target = direction.split("->")[1]
    result = score_direction(rendered(world, target), world, direction, scenes, batch_size=50, progress=False)
    for split in SPLITS:
        for name, score in result.scores[split].items():
            assert score.total > 0
            assert score.accuracy >= 0.99, (direction, split, name, score.accuracy)
    assert set(result.scores["seen"]) == {"single_object", "single_exact", "colour", "count", "position",
                                          "two_objects", "exact", "attributes"}


def test_colour_prompts_are_balanced(world):
    for split in SPLITS:
        singles = [s.want[0] for s in make_scenes(world, split, 100) if len(s.want) == 1]
        counts = Counter(colour for colour, _ in singles)
        assert len(set(counts.values())) == 1 and len(counts) == round(1 / colour_chance(world, split))


@pytest.mark.parametrize("prompt", ["a red circle", "a green triangle", "a red circle left of a blue square"])
def test_constant_image_scores_at_most_chance_on_colour(world, prompt):
    """A planted bad model that always draws the same picture gets chance on colour, never more."""
    image = world.render_image(world.scene_from_prompt(prompt, np.random.default_rng(0)))
    scenes = [s for split in SPLITS for s in make_scenes(world, split, 60) if len(s.want) == 1]  # colour's scenes
    result = score_direction(constant_image(image), world, "text->image", scenes, progress=False)
    for split in SPLITS:
        accuracy = result.scores[split]["colour"].accuracy
        assert accuracy <= colour_chance(world, split) + 1e-9, (split, accuracy)
    if prompt == "a red circle":  # one colour drawn: exactly chance on seen scenes (red is never held out)
        assert result.scores["seen"]["colour"].accuracy == pytest.approx(1 / 6)


def test_categories_read_order_and_presence():
    want = [("red", "circle"), ("blue", "square")]
    assert categories(want, want)["position"] == (1, 1)
    swapped = categories(want, want[::-1])
    assert swapped["position"] == (0, 1) and swapped["two_objects"] == (1, 1) and swapped["exact"] == (0, 1)
    assert categories(want, [("red", "circle")])["count"] == (0, 1)
    single = categories([("red", "circle")], [("red", "square")])
    assert single["colour"] == (1, 1) and single["single_object"] == (0, 1)
    assert categories([("red", "circle")], [("red", "circle"), ("blue", "circle")])["colour"] == (0, 1)


def test_evaluate_run_and_compare(smoke_run, tmp_path, one_thread):
    from unimodal.commands.evaluate import evaluate

    _, run_dir = smoke_run
    copy = shutil.copytree(run_dir, tmp_path / "other" / run_dir.name)
    shutil.rmtree(copy / "eval", ignore_errors=True)
    metrics = evaluate([f"run={copy}", "samples=2", "lm_samples=1", "progress=false", "batch_size=8"])
    out = copy / "eval"
    for name in ("report.md", "metrics.json", "accuracy.png", "grid.png", "codebook_usage.png"):
        assert (out / name).is_file(), name
    assert set(metrics["directions"]) == {"text->image", "image->text", "text->audio", "audio->text",
                                          "image->audio", "audio->image"}  # every direction of image+audio
    assert set(metrics["directions"]["text->image"]) == set(SPLITS)
    assert metrics["seeds"] == [0, 1, 2]
    for direction, table in metrics["directions"].items():
        for split in SPLITS:  # every score: pooled over 3 seeds, its interval, and both controls beside it
            cell = table[split]["exact"]
            assert cell["total"] == 3 * 2 and len(cell["per_seed"]) == 3, (direction, split)
            assert 0.0 <= cell["low"] <= cell["accuracy"] <= cell["high"] <= 1.0
            assert {"noise", "shuffled"} <= set(cell), (direction, split)
    report = (out / "report.md").read_text()
    assert "## Headline" in report and "[95% interval]" in report
    assert set(metrics["lm_bits_per_token"]["held_out"]) >= {"text", "image", "audio"}
    assert "## text->image" in (out / "report.md").read_text()
    from unimodal.commands.evaluate import parse_run_options
    from unimodal.eval.world.run import _vqa, load_run

    pipe, _, world = load_run(str(copy), "cpu")  # the question-answering path of stage=instruct runs
    vqa = _vqa(pipe, world, parse_run_options([f"run={copy}", "vqa_scenes=2", "progress=false"]))
    assert set(vqa) == set(SPLITS) and "count" in vqa["held_out"]
    second = shutil.copytree(copy, tmp_path / "second" / run_dir.name)  # with its eval/metrics.json, reused
    compared = tmp_path / "cmp"
    evaluate([f"compare=[{copy},{second}]", f"out={compared}", "progress=false"])
    assert (compared / "compare.png").is_file()
    table = (compared / "compare.md").read_text()
    assert "| text->image | held_out | colour |" in table
    assert set(json.loads((compared / "compare.json").read_text())) == {f"other/{run_dir.name}",
                                                                         f"second/{run_dir.name}"}


@pytest.mark.parametrize("args, message", [
    (["run=/nonexistent"], "no config.yaml"),
    (["run=x", "samples=many"], "'many'.*could not be converted.*samples"),
    (["run=x", "colour=red"], "unknown option 'colour'"),
    (["samples=3"], "run=<run dir> or compare="),
])
def test_bad_options_are_one_line_errors(args, message):
    from unimodal.commands.evaluate import evaluate_runs
    from unimodal.errors import UnimodalError

    with pytest.raises(UnimodalError, match=message):
        evaluate_runs(args)
