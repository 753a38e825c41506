"""stage=instruct end to end with debug=smoke: tokenizers, pretraining, instruction tuning, chat generation.

One thread: tiny models on a shared 2-core box run ~10x slower with two (the threads only spin), and this
module's own run (image+audio, every stage) then takes seconds.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import smoke_overrides
from unimodal.config import compose
from unimodal.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _train(root, name: str, *extra: str):
    from unimodal.training.run import train

    return train(compose(smoke_overrides(root, "stage=instruct", f"run_dir={root / name}", *extra)))


@pytest.fixture(scope="module")
def instruct_run(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("instruct")
    return root, _train(root, "run")


def test_every_stage_runs_and_the_tuned_model_is_saved(instruct_run):
    _, run_dir = instruct_run
    for name in ("lm/config.json", "lm/vocab.json", "lm-pretrain/config.json", "checkpoints/last.ckpt/checkpoint.json",
                 "instruct/checkpoints/last.ckpt/checkpoint.json", "instruct/summary.json"):
        assert (run_dir / name).is_file(), name
    summary = json.loads((run_dir / "instruct" / "summary.json").read_text())
    assert summary["steps"] == 4 and not summary["lora"]
    tuned = load_file(str(run_dir / "lm" / "model.safetensors"))
    base = load_file(str(run_dir / "lm-pretrain" / "model.safetensors"))
    assert any(not torch.equal(tuned[k], base[k]) for k in base)


def test_chat_answers_stop_at_the_end_of_the_turn(instruct_run):
    import unimodal
    from unimodal.data.sources import make_world
    from unimodal.model.generate import SamplingConfig

    _, run_dir = instruct_run
    pipe = unimodal.load(run_dir, device="cpu")
    world = make_world(compose(["debug=smoke"]).data)
    image = world.render_image(world.dataset(1, seed=5)[0])
    sampling = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=12)
    answer = pipe.generate([image, "how many objects are there?"], output="text", chat=True, sampling=sampling)[0]
    ids = answer.ids.tolist()
    assert all(i < pipe.vocab.text_size for i in ids[:-1]) and len(ids) <= 12
    assert ids[-1] == pipe.vocab.eos_id or len(ids) == 12
    edit = pipe.generate([image, "draw the same scene with the circle in blue."], output="image", chat=True,
                         sampling=SamplingConfig(max_new_tokens=80))[0]
    assert edit.images and edit.images[0].shape == (32, 32, 3)


def test_generate_script_takes_a_question(instruct_run, tmp_path, capsys):
    from PIL import Image

    from unimodal.generation_cli import generate_from_config

    _, run_dir = instruct_run
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "black.png")
    generate_from_config([f"run={run_dir}", f"image={tmp_path / 'black.png'}", "question=what colour is the object?",
                          "output=text", "max_new_tokens=6", f"out_dir={tmp_path}"])
    assert capsys.readouterr().out.startswith("[0]")


def test_instruct_benchmark_scores_every_kind(instruct_run):
    import unimodal
    from unimodal.data.instruct import held_out_scenes
    from unimodal.data.sources import make_world
    from unimodal.eval.world.instruct import score_instruct

    _, run_dir = instruct_run
    pipe = unimodal.load(run_dir, device="cpu")
    data_cfg = compose(["debug=smoke"]).data
    world = make_world(data_cfg)
    scores = score_instruct(pipe, world, held_out_scenes(world, data_cfg, 4), progress=False)
    assert {"count", "colour", "describe", "edit", "compare", "sound", "visual"} <= set(scores)
    assert all(0.0 <= s.accuracy <= 1.0 and s.total > 0 for s in scores.values())


def test_lora_and_freeze_keep_what_they_say(instruct_run):
    run_dir = _train(instruct_run[0], "lora", "instruct.lora.enabled=true", "instruct.lora.r=2",
                     "instruct.freeze=[model.embed_tokens.*]")
    summary = json.loads((run_dir / "instruct" / "summary.json").read_text())
    assert summary["lora"] and summary["frozen"] == ["model.embed_tokens.weight"]
    tuned = load_file(str(run_dir / "lm" / "model.safetensors"))
    base = load_file(str(run_dir / "lm-pretrain" / "model.safetensors"))
    assert set(tuned) == set(base)   # adapters merged: a plain Llama again
    assert torch.equal(tuned["model.embed_tokens.weight"], base["model.embed_tokens.weight"])
    assert torch.equal(tuned["lm_head.weight"], base["lm_head.weight"])   # LoRA leaves non-targets alone
    changed = [k for k in base if not torch.equal(tuned[k], base[k])]
    assert changed and all("proj" in k for k in changed)


def test_bad_freeze_pattern_is_named(instruct_run):
    with pytest.raises(ConfigError, match="instruct.freeze"):
        _train(instruct_run[0], "bad", "instruct.freeze=[model.embed_tokns.*]")


def test_rerun_resumes_tuning_without_pretraining_again(instruct_run, capsys):
    root, run_dir = instruct_run
    shutil.copytree(run_dir, root / "again")
    _train(root, "again", "instruct.max_steps=6")
    out = capsys.readouterr().out
    assert "[stage 1]" not in out and "[instruct] resuming from" in out
    assert json.loads((root / "again" / "instruct" / "summary.json").read_text())["steps"] == 6
    # The loggers of pretraining: rows of both processes (stopped at step 4) in one metrics.csv, and TensorBoard.
    with (root / "again" / "instruct" / "metrics.csv").open() as handle:
        steps = {int(row["step"]) for row in csv.DictReader(handle)}
    assert min(steps) < 4 < max(steps)
    assert list((root / "again" / "instruct" / "tensorboard").glob("events.out.tfevents.*"))
