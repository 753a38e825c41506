"""Tokenize data splits into token shards once: `python scripts/tokenize.py modality=image+audio`."""

from __future__ import annotations

import os
import sys

# This script's folder is first on sys.path, and its name would shadow the standard library's `tokenize`
# (which inspect, hence torch, imports): drop the folder before anything else is imported.
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]

from unimodal.cli import run_cli  # noqa: E402
from unimodal.config import available  # noqa: E402

USAGE = f"""usage: python scripts/tokenize.py [splits=[train,val]] [key=value ...]

Trains (or reuses) the tokenizers as scripts/train.py does, then writes one token shard per split
(paths.shards_dir, default <paths.cache_dir>/shards/<hash>) and prints where; train.py reuses them.
Config groups (conf/): modality={'|'.join(available('modality'))}  data={'|'.join(available('data'))}
  tokenizer/image={'|'.join(available('tokenizer/image'))}  stage=pretrain (only reuse tokenizers)
Examples:
  python scripts/tokenize.py modality=image+audio
  python scripts/tokenize.py modality=image data=fashion_mnist splits=[train,val,test]"""


def main(overrides: list[str]) -> None:
    from unimodal.training.shards_run import tokenize

    tokenize(overrides)


if __name__ == "__main__":
    sys.exit(run_cli(main, USAGE))
