"""Token shards for a run: where they live, and reusing or building them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unimodal.data.shards import META, TokenShard, write_shard
from unimodal.data.sources import Samples, data_fingerprint
from unimodal.tokenizers.anyres_settings import AnyResEncoder, AnyResSettings
from unimodal.tokenizers.base import hash_json
from unimodal.vocab import Vocabulary


def shard_expectations(cfg: DictConfig, tokenizers: dict[str, Any]) -> dict[str, Any]:
    """What a reusable shard must have been built with (the keys of its shard.json that are checked). Not the
    vocabulary: local codes stay valid when a layout adds special tokens or modality ranges move."""
    return {"tokenizers": {m: t.fingerprint for m, t in tokenizers.items()}, "data": data_fingerprint(cfg.data)}


def shard_root(cfg: DictConfig, expect: dict[str, Any]) -> Path:
    """``paths.shards_dir`` when given, else ``<paths.cache_dir>/shards/<hash of data + tokenizers>``."""
    if cfg.paths.get("shards_dir"):
        return Path(cfg.paths.shards_dir)
    key = hash_json({"data": expect["data"], "tokenizers": expect["tokenizers"]})[:12]
    return Path(cfg.paths.cache_dir) / "shards" / key


def prepare_shards(cfg: DictConfig, samples: dict[str, Samples], tokenizers: dict[str, Any],
                   vocab: Vocabulary, say: Any = print) -> dict[str, TokenShard]:
    """Each split's shard: reused when complete and built with these tokenizers and data, else written.
    ``tokenizers`` maps modality -> tokenizer for text and every medium the run uses. With AnyRes on, images are
    stored as their thumbnail and tiles (the data fingerprint covers the settings)."""
    anyres = AnyResSettings.from_config(cfg.data.get("anyres"))   # tokenizer.image.anyres, as the data follows it
    if anyres is not None and "image" in tokenizers:
        tokenizers = {**tokenizers, "image": AnyResEncoder(tokenizers["image"], anyres)}
    expect = shard_expectations(cfg, tokenizers)
    root = shard_root(cfg, expect)
    shards = {}
    for split, split_samples in samples.items():
        folder = root / split
        if (folder / META).is_file():
            shard = TokenShard(folder)
            shard.check(expect)
            say(f"[tokens] reusing {folder} ({len(shard)} samples)")
        else:
            shard = write_shard(folder, split_samples, tokenizers, vocab, expect, progress=bool(cfg.progress),
                                desc=f"tokenize {split}")
            say(f"[tokens] {split}: {len(shard)} samples, {shard.meta['num_tokens']} {shard.dtype.name} tokens "
                f"-> {folder}")
        shards[split] = shard
    return shards

