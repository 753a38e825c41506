"""Token shards for a run: where they live, reuse or build, and ``scripts/tokenize.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unimodal.data.shards import META, TokenShard, write_shard
from unimodal.data.sources import Samples, data_fingerprint
from unimodal.errors import ConfigError
from unimodal.tokenizers.base import hash_json
from unimodal.vocab import Vocabulary

DEFAULT_SPLITS = ("train", "val")


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
    ``tokenizers`` maps modality -> tokenizer for text and every medium the run uses."""
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


def parse_splits(overrides: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``splits=[train,val,test]`` (or ``splits=test``) out of the overrides; the rest go to the config."""
    rest, splits = [], DEFAULT_SPLITS
    for override in overrides:
        key, _, value = override.partition("=")
        if key != "splits":
            rest.append(override)
            continue
        splits = tuple(s.strip() for s in value.strip("[]").split(",") if s.strip())
        if not splits:
            raise ConfigError("splits= is empty; give e.g. splits=[train,val,test]")
    return rest, splits


def tokenize(overrides: list[str]) -> dict[str, TokenShard]:
    """``scripts/tokenize.py``: tokenizers (reused, or trained as ``stage`` allows), then shards per split."""
    from unimodal.config import compose
    from unimodal.data.sources import check_source, load_samples
    from unimodal.run_folder import build_vocab
    from unimodal.training.run import prepare_tokenizers

    rest, splits = parse_splits(overrides)
    cfg = compose(rest)
    media = list(cfg.modality.media)
    check_source(cfg.data, media)
    samples = load_samples(cfg.data, tuple(dict.fromkeys(("train", "val", *splits))))
    prepared = prepare_tokenizers(cfg, samples, media)  # tokenizers train on train and measure on val
    tokenizers = {m: prepared[m][0] for m in ["text", *media]}
    shards = prepare_shards(cfg, {s: samples[s] for s in splits}, tokenizers, build_vocab(tokenizers))
    for split, shard in shards.items():
        print(f"{split}: {shard.folder.resolve()}")
    return shards
