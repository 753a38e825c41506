"""Train tokenizers and the language model: `python scripts/train.py modality=image+audio`."""

from __future__ import annotations

import sys

from unimodal.cli import run_cli
from unimodal.config import available, compose

USAGE = f"""usage: python scripts/train.py [key=value ...]

Config groups (conf/): modality={'|'.join(available('modality'))}  model={'|'.join(available('model'))}
  stage={'|'.join(available('stage'))}  data={'|'.join(available('data'))}  trainer={'|'.join(available('trainer'))}
  tokenizer/image={'|'.join(available('tokenizer/image'))}  debug=smoke
Examples:
  python scripts/train.py modality=image+audio
  python scripts/train.py modality=image model=tiny lm.max_steps=200 run_dir=runs/quick
  python scripts/train.py stage=tokenizers
  python scripts/train.py -m tokenizer/image=fsq,lfq,vq     # one run per value, then the compare command"""


def main(overrides: list[str]) -> None:
    from unimodal.training.run import train
    from unimodal.training.sweep import MULTIRUN_FLAGS, train_sweep

    if any(flag in overrides for flag in MULTIRUN_FLAGS):
        train_sweep(overrides)
        return

    train(compose(overrides))


if __name__ == "__main__":
    sys.exit(run_cli(main, USAGE))
