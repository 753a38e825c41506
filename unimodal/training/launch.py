"""Starting the data-parallel ranks of this node, before anything heavy is imported.

A plain ``python scripts/train.py trainer.devices=N`` is the launcher of its node: it starts ranks 1..N-1 as
``python -m unimodal.training.rank_entry <config>`` (each runs the same resolved config, so the run folder and
every override are rank 0's) and sets ``LOCAL_RANK``, ``NODE_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` as Lightning's own launcher does; it stops every rank when one of them fails, and a started rank
ends when its launcher dies. Nothing is started when SLURM or torchrun started the ranks (``LOCAL_RANK`` or
SLURM's task variables are set), nor for one device. This module imports no torch: the entry point calls it
right after composing the config, so that the other ranks import torch while this one does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from unimodal.errors import ConfigError

CHILD_MODULE = "unimodal.training.rank_entry"
_children: list[subprocess.Popen] = []
_config_files: list[str] = []
_saved_env: dict[str, str | None] = {}   # what launch() changed in os.environ, to restore after the run


def run_dir_for(cfg: DictConfig) -> Path:
    """``run_dir``, or ``<paths.runs_dir>/<modality>-<date>-<time>`` (rank 0's clock: the ranks share it)."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(cfg.paths.runs_dir) / f"{cfg.modality.name}-{stamp}"


def devices_per_node(trainer_cfg: Any) -> int:
    devices = int(trainer_cfg.devices)
    if devices != -1:
        return devices
    import torch

    if trainer_cfg.accelerator == "cpu" or not torch.cuda.is_available():
        raise ConfigError("trainer.devices=-1 means every GPU of the node, and none is visible; give a count, "
                          "e.g. trainer.devices=2")
    return torch.cuda.device_count()


def world_size(trainer_cfg: Any) -> int:
    """Processes the LM stages train on: devices x nodes (1 for a single device)."""
    return devices_per_node(trainer_cfg) * int(trainer_cfg.num_nodes)


def under_slurm() -> bool:
    """SLURM started this process as one of its tasks (an interactive allocation's shell does not count)."""
    return "SLURM_NTASKS" in os.environ and os.environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def launch(cfg: DictConfig) -> DictConfig:
    """The config every rank runs (``run_dir`` fixed), after starting this node's other ranks where this process
    is their launcher. Without LM stages, with one device, or when the ranks were started already: no-op."""
    if not cfg.stage.train_lm:
        return cfg
    cfg = cfg.copy()
    cfg.run_dir = str(run_dir_for(cfg))
    per_node = devices_per_node(cfg.trainer)
    size = per_node * int(cfg.trainer.num_nodes)
    if size == 1 or "LOCAL_RANK" in os.environ or under_slurm():
        return cfg
    handle, path = tempfile.mkstemp(prefix="unimodal-ranks-", suffix=".yaml")
    with os.fdopen(handle, "w") as file:
        file.write(OmegaConf.to_yaml(cfg, resolve=True))
    _config_files.append(path)
    _set_env(MASTER_ADDR=os.environ.get("MASTER_ADDR", "127.0.0.1"),   # other nodes: node 0's address and port
             MASTER_PORT=os.environ.get("MASTER_PORT", str(_free_port())), NODE_RANK=os.environ.get("NODE_RANK", "0"),
             LOCAL_RANK="0", WORLD_SIZE=str(size))
    for local in range(1, per_node):
        _children.append(subprocess.Popen([sys.executable, "-m", CHILD_MODULE, path],
                                          env={**os.environ, "LOCAL_RANK": str(local)}))
    threading.Thread(target=_watch_children, daemon=True, name="rank-watch").start()
    return cfg


def ranks_met() -> None:
    """Every rank has joined the rendezvous, so each has read its config: the file can go."""
    for path in _config_files:
        Path(path).unlink(missing_ok=True)
    _config_files.clear()


def wait_for_started_ranks() -> None:
    """At the end of a run: wait for the ranks it started and give the environment back as it was (the next run
    of a sweep in this process starts its own)."""
    for process in _children:
        process.wait()
    _children.clear()
    for name, value in _saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _saved_env.clear()


def _set_env(**values: str) -> None:
    for name, value in values.items():
        _saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def _watch_children() -> None:
    """A rank that fails leaves the others waiting at a collective forever: stop them all (Lightning's launcher
    does the same)."""
    while _children:
        time.sleep(1.0)
        for local, process in enumerate(list(_children), start=1):
            code = process.poll()
            if code:
                print(f"[ranks] local rank {local} stopped with exit code {code}; stopping the others", file=sys.stderr,
                      flush=True)
                for other in _children:
                    if other.poll() is None:
                        other.kill()
                os._exit(1)
        if all(process.poll() == 0 for process in list(_children)):
            return


def watch_parent() -> None:
    """In a started rank: end when the launching process has died (SIGKILL gives it no chance to stop us)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()
