"""Loggers of LM training by config: ``loggers: [csv, tensorboard]`` by default, ``wandb`` when asked."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger

from unimodal.errors import ConfigError

KNOWN = ("csv", "tensorboard", "wandb")


def build_loggers(names: list[str], run_dir: Path, log_every_steps: int, wandb_cfg: Any,
                  run_name: str | None = None) -> list[Logger]:
    """One Lightning logger per name, writing under ``run_dir``. CSV is always on: ``<run>/metrics.csv`` is part
    of the run folder. ``run_name`` names the W&B run (default: the folder's name)."""
    unknown = [name for name in names if name not in KNOWN]
    if unknown:
        raise ConfigError(f"loggers: unknown {unknown}; choose from {list(KNOWN)}")
    # Flushed as often as logged, so that a killed run keeps its rows up to the last logged step.
    loggers: list[Logger] = [CSVLogger(run_dir, name="logs", version="", flush_logs_every_n_steps=log_every_steps)]
    if "tensorboard" in names:
        if not (_installed("tensorboard") or _installed("tensorboardX")):
            raise ConfigError("loggers: tensorboard needs the tensorboard package (pip install tensorboard), "
                              "or drop it: loggers=[csv]")
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(run_dir, name="tensorboard", version="", default_hp_metric=False))
    if "wandb" in names:
        if not _installed("wandb"):
            raise ConfigError("loggers: wandb needs the wandb package (pip install wandb, or pip install "
                              "'unimodal[wandb]'), or drop it from loggers")
        from lightning.pytorch.loggers import WandbLogger

        # One W&B run per run folder, so that a resumed run continues its curves; offline unless asked,
        # which writes under <run>/wandb and needs no network (`wandb sync` uploads it later).
        name = run_name or run_dir.resolve().name
        run_id = re.sub(r"[^A-Za-z0-9_-]", "-", name)
        loggers.append(WandbLogger(save_dir=str(run_dir), project=str(wandb_cfg.project), name=name,
                                   id=run_id, offline=bool(wandb_cfg.offline), resume="allow"))
    return loggers


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None
