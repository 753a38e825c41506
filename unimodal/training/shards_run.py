"""Token shards for a run: where they live, and reusing or building them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from unimodal.data.shards import META, TokenShard, write_shard
from unimodal.data.sources import Samples, data_fingerprint
from unimodal.data.stream_shards import STREAM, StreamTokenShard, stream_complete, write_stream_shard
from unimodal.errors import ConfigError
from unimodal.tokenizers.anyres_settings import AnyResEncoder, AnyResSettings
from unimodal.tokenizers.base import hash_json
from unimodal.vocab import Vocabulary

SHARD_FORMATS = ("memmap", STREAM)   # paths.shards_format: memmap (one machine, the default) or litdata (streaming)


def shard_expectations(cfg: DictConfig, tokenizers: dict[str, Any]) -> dict[str, Any]:
    """What a reusable shard must have been built with (the keys of its shard.json that are checked). Not the
    vocabulary: local codes stay valid when a layout adds special tokens or modality ranges move."""
    return {"tokenizers": {m: t.fingerprint for m, t in tokenizers.items()}, "data": data_fingerprint(cfg.data)}


def shard_root(cfg: DictConfig, expect: dict[str, Any], staging: bool = False) -> Path:
    """``paths.shards_dir`` when given, else ``<paths.cache_dir>/shards/<hash of data + tokenizers>`` (always the
    latter for the local ``staging`` copy of streaming shards)."""
    if cfg.paths.get("shards_dir") and not staging:
        return Path(cfg.paths.shards_dir)
    key = hash_json({"data": expect["data"], "tokenizers": expect["tokenizers"]})[:12]
    return Path(cfg.paths.cache_dir) / "shards" / key


def prepare_shards(cfg: DictConfig, samples: dict[str, Samples], tokenizers: dict[str, Any],
                   vocab: Vocabulary, say: Any = print) -> dict[str, Any]:
    """Each split's shard: reused when complete and built with these tokenizers and data, else written.
    ``tokenizers`` maps modality -> tokenizer for text and every medium the run uses. With AnyRes on, images are
    stored as their thumbnail and tiles (the data fingerprint covers the settings). With
    ``paths.shards_format=litdata`` the memmap shard is the local staging copy and training reads the streaming
    shard made from it (``unimodal/data/stream_shards.py``)."""
    anyres = AnyResSettings.from_config(cfg.data.get("anyres"))   # tokenizer.image.anyres, as the data follows it
    if anyres is not None and "image" in tokenizers:
        tokenizers = {**tokenizers, "image": AnyResEncoder(tokenizers["image"], anyres)}
    expect = shard_expectations(cfg, tokenizers)
    streaming = shards_format(cfg) == "litdata"
    root = shard_root(cfg, expect, staging=streaming)
    shards = {}
    for split, split_samples in samples.items():
        folder = root / split
        if streaming and stream_complete(stream_location(cfg, root, split)):
            shards[split] = reuse(StreamTokenShard(stream_location(cfg, root, split)), expect, say)
            continue
        if (folder / META).is_file():
            shard = reuse(TokenShard(folder), expect, say)
        else:
            shard = write_shard(folder, split_samples, tokenizers, vocab, expect, progress=bool(cfg.progress),
                                desc=f"tokenize {split}")
            say(f"[tokens] {split}: {len(shard)} samples, {shard.meta['num_tokens']} {shard.dtype.name} tokens "
                f"-> {folder}")
        if streaming:
            shard = write_stream_shard(stream_location(cfg, root, split), shard)
            say(f"[tokens] {split}: streaming shard (litdata) -> {shard.folder}")
        shards[split] = shard
    return shards


def reuse(shard: Any, expect: dict[str, Any], say: Any) -> Any:
    shard.check(expect)
    say(f"[tokens] reusing {shard.folder} ({len(shard)} samples)")
    return shard


def shards_format(cfg: DictConfig) -> str:
    name = str(cfg.paths.get("shards_format") or "memmap")
    if name not in SHARD_FORMATS:
        raise ConfigError(f"paths.shards_format={name!r}: choose {' or '.join(SHARD_FORMATS)}")
    return name


def stream_location(cfg: DictConfig, staging_root: Path, split: str) -> str:
    """Where a split's streaming shard lives: ``<paths.shards_dir>/<split>`` (a folder or an object-store URL),
    else beside its memmap staging copy."""
    if cfg.paths.get("shards_dir"):
        return f"{str(cfg.paths.shards_dir).rstrip('/')}/{split}"
    return str(staging_root / f"{split}.{STREAM}")
