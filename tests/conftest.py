"""Shared fixtures: one tiny end-to-end run (debug=smoke) reused by every test that needs a trained run."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def smoke_overrides(root, *extra: str) -> list[str]:
    return ["debug=smoke", f"paths.tokenizers_dir={root}/tokenizers", f"paths.cache_dir={root}/cache",
            f"paths.runs_dir={root}/runs", *extra]


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Every stage of the real config tree, for a few steps: tokenizers, token cache, LM."""
    from unimodal.config import compose
    from unimodal.training.run import train

    root = tmp_path_factory.mktemp("smoke")
    run_dir = train(compose(smoke_overrides(root, f"run_dir={root}/run")))
    return root, run_dir


def copy_with_retrained_tokenizer(run_dir, target, modality: str):
    """A copy of ``run_dir`` whose ``modality`` tokenizer has other weights (as if retrained)."""
    import shutil

    from unimodal.tokenizers.base import load_tokenizer

    shutil.copytree(run_dir, target)
    tokenizer = load_tokenizer(target / "tokenizers" / modality)
    with torch.no_grad():
        for param in tokenizer.parameters():
            param.mul_(1.5).add_(0.01)
    tokenizer.save(target / "tokenizers" / modality)
    return target


@pytest.fixture(scope="module")
def one_thread():
    """Tiny convs on a shared 2-core box: extra intra-op threads only spin (10x slower here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def first_step(monkeypatch):
    """The first training batch and its loss, as the Lightning step computed them."""
    from unimodal.training.lm_module import LMModule

    seen: dict = {}
    step = LMModule.training_step

    def record(self, batch, batch_idx):
        loss = step(self, batch, batch_idx)
        if not seen:
            seen.update(batch={k: v.detach().clone() for k, v in batch.items()}, loss=float(loss))
        return loss

    monkeypatch.setattr(LMModule, "training_step", record)
    return seen


def loss_of(run_dir, batch) -> float:
    """The loss of the model in ``run_dir/lm`` on ``batch``, by the training loss function."""
    from unimodal.model.lm import load_lm
    from unimodal.training.lm_module import masked_lm_loss
    from unimodal.vocab import Vocabulary

    model = load_lm(run_dir / "lm", Vocabulary.load(run_dir / "vocab.json")).train()
    with torch.no_grad():
        loss, _ = masked_lm_loss(model, batch["ids"], batch["loss_mask"], batch["attention_mask"])
    return float(loss)
