"""``scripts/train.py``: train tokenizers and the language model, one run (or, with ``-m``, one per combination of
the swept values). The stages themselves are :mod:`unimodal.training.run`'s."""

from __future__ import annotations

from pathlib import Path

from unimodal.cli import run_cli
from unimodal.config import available, compose

USAGE = f"""usage: python scripts/train.py [key=value ...]

Config groups (conf/): modality={'|'.join(available('modality'))}  model={'|'.join(available('model'))}
  stage={'|'.join(available('stage'))}  data={'|'.join(available('data'))}  trainer={'|'.join(available('trainer'))}
  tokenizer/image={'|'.join(available('tokenizer/image'))}  debug=smoke
Examples:
  python scripts/train.py modality=image+audio
  python scripts/train.py modality=image model=tiny lm.max_minutes=2 run_dir=runs/quick
  python scripts/train.py stage=tokenizers
  python scripts/train.py -m tokenizer/image=fsq,lfq,vq     # one run per value, then the compare command"""


def main(argv: list[str] | None = None) -> int:
    return run_cli(train, USAGE, argv)


def train(overrides: list[str]) -> Path | list[Path] | None:
    """One run (its folder; None for stage 0 alone), or every run of a ``-m`` sweep."""
    from unimodal.training.run import train as run_stages
    from unimodal.training.sweep import MULTIRUN_FLAGS, train_sweep

    if any(flag in overrides for flag in MULTIRUN_FLAGS):
        return train_sweep(overrides)
    from unimodal.training.launch import launch

    return run_stages(launch(compose(overrides)))   # this node's other ranks start importing now, beside this one
