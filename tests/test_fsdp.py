"""FSDP on GPUs (``pytest -m gpu``; torch's FSDP needs an accelerator): every Llama decoder layer sharded, a
checkpoint folder of safetensors gathered on rank 0 and resumed from, and the export one whole HF model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import smoke_overrides

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _train(root: Path, *extra: str) -> str:
    devices = min(2, torch.cuda.device_count())
    args = [sys.executable, "scripts/train.py", *smoke_overrides(root, f"run_dir={root}/run", "modality=image",
                                                                 "trainer=gpu", f"trainer.devices={devices}",
                                                                 "trainer.strategy=fsdp",
                                                                 "model.gradient_checkpointing=true",
                                                                 "lm.checkpoint_every_steps=2", *extra)]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_fsdp_checkpoints_resume_and_export_one_whole_model(tmp_path):
    from safetensors.torch import load_file

    from unimodal.model.lm import load_lm
    from unimodal.vocab import Vocabulary

    _train(tmp_path, "lm.max_steps=4")
    out = _train(tmp_path, "lm.max_steps=6")
    assert "resuming from" in out and "at step 4" in out
    run = tmp_path / "run"
    saved = load_file(str(run / "checkpoints" / "last.ckpt" / "model.safetensors"))
    assert not any("_fsdp_wrapped_module" in key or "_checkpoint_wrapped" in key for key in saved)
    model = load_lm(run / "lm", Vocabulary.load(run / "vocab.json"))
    for name, value in model.state_dict().items():   # the export is the gathered, whole model of the last step
        torch.testing.assert_close(value, saved[f"model.{name}"].to(value.dtype), rtol=0, atol=0)
