"""``scripts/make_shards.py``: tokenize data splits into token shards once (training reuses them), as a Hydra app over
``conf/make_shards.yaml`` (the training config plus ``splits``). The tokenizers and shards themselves are
:mod:`unimodal.training`'s."""

from __future__ import annotations

from omegaconf import DictConfig, open_dict

from unimodal.commands.app import check_overrides, is_hydra_arg, run_app
from unimodal.commands.options import options_from, validate_make_shards
from unimodal.config import available, compose, validate

USAGE = f"""usage: python scripts/make_shards.py [splits=[train,val]] [key=value ...]

Trains (or reuses) the tokenizers as scripts/train.py does, then writes one token shard per split
(paths.shards_dir, default <paths.cache_dir>/shards/<hash>) and prints where; train.py reuses them.
Config groups (conf/): modality={'|'.join(available('modality'))}  data={'|'.join(available('data'))}
  tokenizer/image={'|'.join(available('tokenizer/image'))}  stage=pretrain (only reuse tokenizers)
Examples:
  python scripts/make_shards.py modality=image+audio
  python scripts/make_shards.py modality=image data=fashion_mnist splits=[train,val,test]"""


def main(argv: list[str] | None = None) -> int:
    return run_app(make_shards_job, "make_shards", USAGE, argv, check=_check)


def _check(args: list[str]) -> None:
    rest, _ = parse_splits([arg for arg in args if not is_hydra_arg(arg)])
    check_overrides(rest, "config")


def make_shards_job(cfg: DictConfig) -> dict:
    with open_dict(cfg):
        given = cfg.pop("splits")
    splits = tuple(validate_make_shards({"splits": [str(s) for s in given]}).splits)
    return shard_splits(validate(cfg), splits)


def make_shards(overrides: list[str]) -> dict:
    """From Python: ``splits=[...]`` and config overrides, without Hydra's command line."""
    rest, splits = parse_splits(overrides)
    return shard_splits(compose(rest), splits)


def shard_splits(cfg: DictConfig, splits: tuple[str, ...]) -> dict:
    """Tokenizers (reused, or trained as ``stage`` allows), then one shard per split; prints each shard's folder."""
    from unimodal.training.run import shards_for_splits

    shards = shards_for_splits(cfg, splits)
    for split, shard in shards.items():
        print(f"{split}: {shard.folder if isinstance(shard.folder, str) else shard.folder.resolve()}")
    return shards


def parse_splits(overrides: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``splits=[train,val,test]`` (or ``splits=test``) out of the overrides; the rest go to the config."""
    rest = [o for o in overrides if o.partition("=")[0] != "splits"]
    given = options_from([o for o in overrides if o.partition("=")[0] == "splits"])
    if given.get("splits") is not None and not isinstance(given["splits"], list):
        given["splits"] = [given["splits"]]
    return rest, tuple(validate_make_shards(given).splits)
