"""Bad input gives one line naming the problem, with no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_with_retrained_tokenizer
from unimodal.config import compose
from unimodal.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_unknown_modality_is_one_line():
    result = run_script("scripts/train.py", "modality=vidoe")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: unknown modality 'vidoe'; choose one of: all, audio, image, image+audio, text, video"]


def test_missing_run_dir_is_one_line(tmp_path):
    result = run_script("scripts/generate.py", f"run={tmp_path}/nope", "prompt=a red circle")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not exist" in lines[0] and "Traceback" not in result.stderr


def test_prompt_longer_than_context(smoke_run):
    _, run_dir = smoke_run
    result = run_script("scripts/generate.py", f"run={run_dir}", "prompt=" + "a red circle " * 200)
    assert result.returncode == 2
    assert "exceeds the model context" in result.stderr and "Traceback" not in result.stderr


def test_checkpoint_with_other_tokenizers_is_one_line(smoke_run, tmp_path):
    copy = copy_with_retrained_tokenizer(smoke_run[1], tmp_path / "run", "audio")
    result = run_script("scripts/generate.py", f"run={copy}", "prompt=a red circle")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "fingerprint" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("override, key", [("model.hiden_size=3", "hiden_size"),
                                           ("model.hidden_size=abc", "model.hidden_size"),
                                           ("+lm.bach_size=3", "bach_size")])
def test_mistyped_keys_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        compose([override])


def test_a_context_too_short_for_a_task_is_one_line_before_training(smoke_run, tmp_path):
    from tests.conftest import smoke_overrides
    from unimodal.training.run import train

    root, _ = smoke_run   # its tokenizers and shards are reused: only the check runs
    with pytest.raises(ConfigError, match="model.context_length is 50; raise it"):
        train(compose(smoke_overrides(root, "model.context_length=50", f"run_dir={tmp_path}/run")))
