"""LM loggers by config: CSV and TensorBoard by default, W&B only when asked, one-line errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from unimodal.config import compose
from unimodal.errors import ConfigError
from unimodal.training import loggers


def test_default_loggers_are_csv_and_tensorboard(tmp_path):
    cfg = compose()
    built = loggers.build_loggers(list(cfg.loggers), tmp_path, 10, cfg.wandb)
    assert [type(logger) for logger in built] == [CSVLogger, TensorBoardLogger]
    assert Path(built[0].log_dir) == tmp_path / "logs"  # <run>/logs/metrics.csv, as before


def test_csv_is_always_kept(tmp_path):
    assert [type(logger) for logger in loggers.build_loggers(["tensorboard"], tmp_path, 10, None)] == [
        CSVLogger, TensorBoardLogger]


def test_unknown_logger_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="loggers: unknown \\['mlflow'\\]"):
        loggers.build_loggers(["csv", "mlflow"], tmp_path, 10, None)


def test_wandb_without_the_package_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(loggers, "_installed", lambda package: package != "wandb")
    cfg = compose(["loggers=[csv,tensorboard,wandb]"])
    with pytest.raises(ConfigError, match="pip install wandb"):
        loggers.build_loggers(list(cfg.loggers), tmp_path, 10, cfg.wandb)
