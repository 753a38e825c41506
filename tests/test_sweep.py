"""`scripts/train.py -m`: Hydra's sweep grammar expands into one override list per run."""

from __future__ import annotations

import pytest

from unimodal.errors import ConfigError
from unimodal.training.sweep import expand_sweep


def test_sweep_expands_every_combination():
    jobs, values = expand_sweep(["tokenizer/image=fsq,lfq,vq", "model=tiny", "lm.max_steps=10,20"])
    assert len(jobs) == 6
    assert jobs[0] == ["tokenizer/image=fsq", "model=tiny", "lm.max_steps=10"]
    assert jobs[-1] == ["tokenizer/image=vq", "model=tiny", "lm.max_steps=20"]
    assert values[1] == ["fsq", "20"]


def test_plain_overrides_are_one_job():
    jobs, values = expand_sweep(["model=tiny"])
    assert jobs == [["model=tiny"]] and values == [[]]


def test_bad_sweep_is_a_config_error():
    with pytest.raises(ConfigError, match="sweep"):
        expand_sweep(["model=tiny,"])
