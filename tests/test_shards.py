"""Token shards: memmap round trip, dtype by vocabulary size, crash safety, fingerprint refusal, make_shards.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from unimodal.data.shards import TokenShard, token_dtype, write_shard
from unimodal.errors import VocabularyMismatch
from unimodal.vocab import Vocabulary

ROOT = Path(__file__).resolve().parent.parent


class FakeText:
    fingerprint = "text-fp"

    def encode(self, captions: list[str]) -> list[list[int]]:
        return [[len(word) for word in caption.split()] for caption in captions]


class FakeImage:
    """Codes ``[2, 3]`` from the sample index; ``die_at`` SIGKILLs the process on that batch start."""

    def __init__(self, fingerprint: str = "image-fp", die_at: int | None = None) -> None:
        self.fingerprint, self.die_at = fingerprint, die_at

    def eval(self) -> FakeImage:
        return self

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        first = int(batch[0, 0])
        if self.die_at is not None and first >= self.die_at:
            os.kill(os.getpid(), signal.SIGKILL)  # a real crash: no exception handler, no cleanup
        return (batch[:, :1] * 7 + torch.arange(6)).reshape(-1, 2, 3) % 50


class FakeSamples:
    def __init__(self, count: int) -> None:
        self.captions = [" ".join(["ab"] * (1 + i % 4)) for i in range(count)]
        self.attributes = [[["red", "circle"]] for _ in range(count)]

    def __len__(self) -> int:
        return len(self.captions)

    def media(self, modality: str, start: int, stop: int) -> torch.Tensor:
        return torch.arange(start, stop).reshape(-1, 1)


def expect(image_fp: str = "image-fp") -> dict:
    return {"tokenizers": {"text": "text-fp", "image": image_fp}, "data": "data-fp"}


def write(folder: Path, count: int = 20, vocab_text: int = 100, image_fp: str = "image-fp",
          die_at: int | None = None) -> TokenShard:
    vocab = Vocabulary(vocab_text, {"image": (50, 1)})
    tokenizers = {"text": FakeText(), "image": FakeImage(image_fp, die_at)}
    return write_shard(folder, FakeSamples(count), tokenizers, vocab, expect(image_fp), batch_size=8,
                       progress=False)


def test_round_trip_through_memmaps(tmp_path):
    shard = write(tmp_path / "train")
    samples = FakeSamples(20)
    assert len(shard) == 20 and shard.captions == samples.captions
    assert isinstance(shard.tokens, np.memmap) and shard.tokens.dtype == np.uint16
    for i in (0, 7, 19):
        payloads = shard.payloads(i)
        assert payloads["text"].tolist() == [2] * (1 + i % 4)
        expected = (torch.tensor([[i]]) * 7 + torch.arange(6)).reshape(2, 3) % 50
        assert payloads["image"].dtype == np.int64 and np.array_equal(payloads["image"], expected.numpy())
    meta = json.loads((tmp_path / "train" / "shard.json").read_text())
    assert meta["tokenizers"] == {"text": "text-fp", "image": "image-fp"} and meta["shapes"]["image"] == [2, 3]
    vocab = Vocabulary.load(tmp_path / "train" / "vocab.json")
    assert vocab.size == 100 + 15 + 50 and meta["vocab"] == vocab.fingerprint
    assert not list(tmp_path.glob("*.partial-*"))


def test_dtype_follows_vocabulary_size(tmp_path):
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32
    shard = write(tmp_path / "big", count=3, vocab_text=70000)
    assert shard.tokens.dtype == np.uint32 and shard.payloads(2)["text"].tolist() == [2, 2, 2]


def test_other_tokenizers_are_refused_naming_both_fingerprints(tmp_path):
    shard = write(tmp_path / "train")
    with pytest.raises(VocabularyMismatch) as err:
        shard.check(expect("retrained-fp"))
    assert "image-fp" in str(err.value) and "retrained-fp" in str(err.value)


def test_a_killed_write_leaves_no_shard_and_the_next_run_rebuilds(tmp_path):
    folder = tmp_path / "train"
    code = (f"from tests.test_shards import write; from pathlib import Path; "
            f"write(Path({str(folder)!r}), die_at=16)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    partials = list(tmp_path.glob("train.partial-*"))
    assert not folder.exists() and len(partials) == 1
    assert (partials[0] / "tokens.bin").is_file() and not (partials[0] / "shard.json").exists()  # died mid-write

    shard = write(folder)  # the next run: builds afresh and sweeps the dead run's partial folder
    assert len(shard) == 20 and not list(tmp_path.glob("train.partial-*"))


def test_prepare_shards_reuses_and_refuses_explicit_folder(tmp_path):
    from unimodal.training.shards_run import prepare_shards

    cfg = OmegaConf.create({"data": {"name": "synthetic", "num_train": 4, "num_val": 2, "seed": 0},
                            "paths": {"cache_dir": str(tmp_path / "cache"), "shards_dir": str(tmp_path / "mine")},
                            "progress": False})
    vocab = Vocabulary(100, {"image": (50, 1)})
    said: list[str] = []
    tokenizers = {"text": FakeText(), "image": FakeImage()}
    prepare_shards(cfg, {"train": FakeSamples(5)}, tokenizers, vocab, say=said.append)
    prepare_shards(cfg, {"train": FakeSamples(5)}, tokenizers, vocab, say=said.append)
    assert "-> " in said[0] and said[1].startswith("[tokens] reusing")
    with pytest.raises(VocabularyMismatch, match="image-fp.*other-fp"):
        prepare_shards(cfg, {"train": FakeSamples(5)}, {"text": FakeText(), "image": FakeImage("other-fp")},
                       vocab, say=said.append)


def test_make_shards_script_writes_then_reuses(tmp_path, capsys):
    from unimodal.commands.make_shards import make_shards

    overrides = ["debug=smoke", "modality=text", f"paths.tokenizers_dir={tmp_path}/tok",
                 f"paths.cache_dir={tmp_path}/cache", "splits=[train,test]"]
    first = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_shards.py"), *overrides], cwd=tmp_path,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    shards = list((tmp_path / "cache" / "shards").glob("*/test/shard.json"))
    assert len(shards) == 1 and f"test: {shards[0].parent}" in first.stdout
    make_shards(overrides)  # what train.py does too: the same shards, reused
    assert capsys.readouterr().out.count("[tokens] reusing") == 2


def test_splits_override():
    from unimodal.commands.make_shards import parse_splits
    from unimodal.errors import ConfigError

    assert parse_splits(["a=1", "splits=[val,test]"]) == (["a=1"], ("val", "test"))
    assert parse_splits(["splits=test"]) == ([], ("test",))
    assert parse_splits([])[1] == ("train", "val")
    with pytest.raises(ConfigError, match="splits"):
        parse_splits(["splits=[]"])
