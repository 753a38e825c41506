"""Tokenize data splits into token shards once: `python scripts/tokenize.py modality=image+audio`."""

from __future__ import annotations

import os
import sys


def usage() -> str:
    from unimodal.config import available

    return f"""usage: python scripts/tokenize.py [splits=[train,val]] [key=value ...]

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


def _stand_in_for_the_standard_library() -> None:
    """Another script in this folder runs with the folder first on sys.path, so its `import tokenize`
    (made by inspect, hence by torch) finds this file: load the standard library's module in its place."""
    import importlib.util
    import sysconfig

    spec = importlib.util.spec_from_file_location("tokenize", os.path.join(sysconfig.get_paths()["stdlib"],
                                                                           "tokenize.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["tokenize"] = module  # what the importer receives once this file has run
    spec.loader.exec_module(module)


if __name__ != "__main__":
    _stand_in_for_the_standard_library()
else:
    # Run as a script: drop this folder from sys.path first, so the standard library's `tokenize` is found.
    _HERE = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, usage()))
