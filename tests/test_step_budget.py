"""The default recipes are bounded by steps, never by the clock, and their precision does not depend on the CPU."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from unimodal.config import available, compose
from unimodal.training import accelerator, run
from unimodal.training.tokenizer_module import clock_cap


def _clock_caps(node, path=""):
    """Every ``max_minutes`` in a config tree, with its dotted key."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "max_minutes":
                yield f"{path}{key}", value
            else:
                yield from _clock_caps(value, f"{path}{key}.")


@pytest.mark.parametrize("overrides", [[], ["modality=video"], ["stage=instruct"]]
                         + [[f"tokenizer/{group}={option}"] for group in ("image", "audio", "video")
                            for option in available(f"tokenizer/{group}")])
def test_every_default_budget_is_step_bound(overrides):
    caps = dict(_clock_caps(OmegaConf.to_container(compose(overrides), resolve=True)))
    assert caps and all(value is None for value in caps.values()), caps


def test_a_clock_cap_is_opt_in():
    assert clock_cap(None) is None
    assert clock_cap(2) == {"minutes": 2.0}
    assert compose(["lm.max_minutes=30"]).lm.max_minutes == 30


def test_precision_does_not_depend_on_the_cpu(monkeypatch):
    cfg = compose([])
    settings = []
    for native in (True, False):
        monkeypatch.setattr(accelerator, "cpu_has_native_bf16", lambda native=native: native)
        settings.append((accelerator.trainer_kwargs(cfg.trainer, lm=True), accelerator.trainer_kwargs(cfg.trainer)))
    assert settings[0] == settings[1]
    assert settings[0][0]["precision"] == "bf16-mixed" and settings[0][1]["precision"] == "32-true"


def test_auto_precision_is_still_there_when_asked(monkeypatch):
    cfg = compose(["trainer=cpu", "trainer.precision=auto"])
    monkeypatch.setattr(accelerator, "cpu_has_native_bf16", lambda: False)
    assert accelerator.trainer_kwargs(cfg.trainer, lm=True)["precision"] == "32-true"
    monkeypatch.setattr(accelerator, "cpu_has_native_bf16", lambda: True)
    assert accelerator.trainer_kwargs(cfg.trainer, lm=True)["precision"] == "bf16-mixed"


def test_a_clock_cap_renames_a_tokenizer_and_none_keeps_the_name():
    cfg = compose([])
    plain = run.tokenizer_name("image", cfg.tokenizer.image, "data")
    capped = compose(["tokenizer.image.train.max_minutes=3"])
    assert run.tokenizer_name("image", capped.tokenizer.image, "data") != plain
    settings = OmegaConf.to_container(cfg.tokenizer.image, resolve=True)
    settings["train"].pop("max_minutes")
    assert run.tokenizer_name("image", OmegaConf.create(settings), "data") == plain
