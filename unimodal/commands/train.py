"""``scripts/train.py``: train tokenizers and the language model, as a Hydra app over ``conf/config.yaml``: one run,
or with ``-m`` one run per combination of the swept values through Hydra's launcher (``CompareCommand`` prints
the command that compares them). The stages themselves are :mod:`unimodal.training.run`'s."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from unimodal.commands.app import MULTIRUN_FLAGS, check_overrides, is_hydra_arg, run_app
from unimodal.config import available, compose, quote_braces, validate

# Never part of a job folder's name (conf/config.yaml lists the same): where things go, and debug presets.
EXCLUDED_FROM_NAMES = ("run_dir", "paths.runs_dir", "paths.tokenizers_dir", "paths.cache_dir", "paths.shards_dir",
                       "hydra/launcher", "debug", "progress")
USAGE = f"""usage: python scripts/train.py [-m] [key=value ...]

Config groups (conf/): modality={'|'.join(available('modality'))}  model={'|'.join(available('model'))}
  stage={'|'.join(available('stage'))}  data={'|'.join(available('data'))}  trainer={'|'.join(available('trainer'))}
  tokenizer/image={'|'.join(available('tokenizer/image'))}  debug=smoke
Examples:
  python scripts/train.py modality=image+audio
  python scripts/train.py modality=image model=tiny lm.max_minutes=2 run_dir=runs/quick
  python scripts/train.py stage=tokenizers
  python scripts/train.py trainer=ddp trainer.devices=8                 # data parallel on 8 GPUs (fsdp: sharded)
  python scripts/train.py -m tokenizer/image=fsq,lfq,vq                 # one run per value, then the compare command
  python scripts/train.py -m hydra/launcher=slurm trainer=ddp trainer.devices=8 trainer.num_nodes=2 ...   # SLURM"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return run_app(train_job, "config", USAGE, named_by_swept_keys(args),
                   check=lambda given: check_overrides(given, "config"))


def named_by_swept_keys(args: list[str]) -> list[str]:
    """A sweep's job folders named by the values swept only (``0-tokenizer_image=fsq``): every key that is not
    swept joins Hydra's ``override_dirname.exclude_keys``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if not any(arg in MULTIRUN_FLAGS for arg in args):
        return args
    try:
        parsed = OverridesParser.create().parse_overrides([quote_braces(a) for a in args if not is_hydra_arg(a)])
    except HydraException:
        return args   # the check reports it
    fixed = [o.get_key_element() for o in parsed if not o.is_sweep_override()]
    excluded = [*EXCLUDED_FROM_NAMES, *fixed]
    return [*args, f"hydra.job.config.override_dirname.exclude_keys=[{','.join(excluded)}]"]


def train_job(cfg: DictConfig) -> str | None:
    """One Hydra job: the run's folder (a sweep job's is Hydra's job folder), or None for stage 0 alone."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    cfg = validate(cfg)
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        cfg.run_dir = HydraConfig.get().runtime.output_dir
    run_dir = run_stages(cfg)
    return None if run_dir is None else str(run_dir)


def train(overrides: list[str]) -> Path | None:
    """One run from Python, without Hydra's command line: its folder (None for stage 0 alone)."""
    return run_stages(compose(overrides))


def run_stages(cfg: DictConfig) -> Path | None:
    from unimodal.training.launch import launch

    cfg = launch(cfg)   # this node's other ranks (trainer.devices > 1) start importing now, beside this one
    from unimodal.training.run import train as stages

    return stages(cfg)


class CompareCommand(Callback):
    """After a sweep (in the process that launched it, whatever the launcher), print the command that compares
    its runs: every job folder that holds a run."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from unimodal.run_folder import RUN_FILE

        sweep = Path(str(config.hydra.sweep.dir))
        runs = sorted((p for p in sweep.iterdir() if (p / RUN_FILE).is_file()) if sweep.is_dir() else [],
                      key=lambda p: (int(p.name.split("-", 1)[0]) if p.name.split("-", 1)[0].isdigit() else 0, p.name))
        if not runs:
            print(f"[multirun] no run finished under {sweep}", flush=True)
            return
        listed = ",".join(str(run) for run in runs)
        print(f"[multirun] {len(runs)} runs under {sweep}; compare them with:\n"
              f"  python scripts/evaluate.py compare=[{listed}] out={sweep}/compare", flush=True)
