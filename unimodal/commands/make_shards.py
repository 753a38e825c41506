"""``scripts/make_shards.py``: tokenize data splits into token shards once (training reuses them). The tokenizers and
shards themselves are :mod:`unimodal.training`'s."""

from __future__ import annotations

from unimodal.cli import run_cli
from unimodal.command_config import options_from, validate_make_shards
from unimodal.config import available, compose

USAGE = f"""usage: python scripts/make_shards.py [splits=[train,val]] [key=value ...]

Trains (or reuses) the tokenizers as scripts/train.py does, then writes one token shard per split
(paths.shards_dir, default <paths.cache_dir>/shards/<hash>) and prints where; train.py reuses them.
Config groups (conf/): modality={'|'.join(available('modality'))}  data={'|'.join(available('data'))}
  tokenizer/image={'|'.join(available('tokenizer/image'))}  stage=pretrain (only reuse tokenizers)
Examples:
  python scripts/make_shards.py modality=image+audio
  python scripts/make_shards.py modality=image data=fashion_mnist splits=[train,val,test]"""


def main(argv: list[str] | None = None) -> int:
    return run_cli(make_shards, USAGE, argv)


def make_shards(overrides: list[str]) -> dict:
    """Tokenizers (reused, or trained as ``stage`` allows), then one shard per split; prints each shard's folder."""
    from unimodal.training.run import shards_for_splits

    rest, splits = parse_splits(overrides)
    shards = shards_for_splits(compose(rest), splits)
    for split, shard in shards.items():
        print(f"{split}: {shard.folder.resolve()}")
    return shards


def parse_splits(overrides: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``splits=[train,val,test]`` (or ``splits=test``) out of the overrides; the rest go to the config."""
    rest = [o for o in overrides if o.partition("=")[0] != "splits"]
    given = options_from([o for o in overrides if o.partition("=")[0] == "splits"])
    if given.get("splits") is not None and not isinstance(given["splits"], list):
        given["splits"] = [given["splits"]]
    return rest, tuple(validate_make_shards(given).splits)
