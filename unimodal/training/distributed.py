"""Data-parallel ranks for a run: joining them, rank 0's work before the others', barriers.

Lightning starts the other ranks only when ``trainer.fit`` is reached, but stage 0 (the tokenizers) and the
token shards come first and must be made once, by rank 0, while the other ranks wait. So the ranks meet at the
start of the run, before stage 0: started by ``launch.py`` on this node, or by SLURM (one task per GPU, e.g.
through Hydra's submitit launcher) or torchrun, and told apart by Lightning's cluster environments.

Until the LM stage the ranks only share torch.distributed's rendezvous store (``env://``): the others wait there
for rank 0's keys. No process group exists yet, on purpose: codecs' quantizers (encodec's, vector-quantize's)
all-reduce their codebooks whenever one does, which would hang rank 0's stage 0 while the others wait. The LM
stage then makes the process group over the same store (``init_group``); Lightning's DDP and FSDP strategies find
``LOCAL_RANK`` set (so they launch nothing) and the group initialised (so they reuse it), and train as usual.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from omegaconf import DictConfig

from unimodal.errors import ConfigError
from unimodal.training import launch


@dataclass(frozen=True)
class Ranks:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_zero(self) -> bool:
        return self.rank == 0


def current() -> Ranks:
    """This process's place among the ranks (one rank when this run started none)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)))
    return _joined or Ranks()


def say(message: str) -> None:
    """Print on rank 0 only: N ranks would print every line N times."""
    if current().is_zero:
        print(message, flush=True)


def uses_cuda(trainer_cfg: Any) -> bool:
    return trainer_cfg.accelerator in ("gpu", "cuda") or (trainer_cfg.accelerator == "auto"
                                                          and torch.cuda.is_available())


def start(cfg: DictConfig) -> DictConfig:
    """Start (or join) the ranks ``cfg.trainer`` asks for and return the config every rank runs: ``run_dir``
    fixed to rank 0's. One rank: ``cfg`` with ``run_dir`` set, nothing started."""
    global _joined, _store, _backend
    cfg = launch.launch(cfg)   # a no-op where the entry point (or SLURM, torchrun) started the ranks already
    size = launch.world_size(cfg.trainer)
    if size == 1 or _joined is not None:
        return cfg
    env = _cluster_environment()
    per_node = launch.devices_per_node(cfg.trainer)
    local = env.local_rank()
    if _is_lightning(env):
        rank = env.node_rank() * per_node + local
    else:
        rank = env.global_rank()
        if env.world_size() != size:
            raise ConfigError(f"the launcher started {env.world_size()} processes but trainer.devices x "
                              f"trainer.num_nodes is {size}; make them agree (one process per device)")
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = env.main_address, str(env.main_port)
    timeout = timedelta(minutes=float(cfg.trainer.timeout_minutes))
    _store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=size, timeout=timeout))
    launch.ranks_met()
    _joined = Ranks(size, rank, local)
    _backend = "nccl" if uses_cuda(cfg.trainer) else "gloo"   # what Lightning would choose for the device
    if rank == 0:   # another node's clock would name another run folder
        _store.set(RUN_DIR_KEY, str(cfg.run_dir))
    run_dir = _store.get(RUN_DIR_KEY).decode()
    say(f"[ranks] {size} processes ({per_node} per node x {cfg.trainer.num_nodes} nodes), backend {_backend}")
    cfg = cfg.copy()
    cfg.run_dir = run_dir
    return cfg


def init_group(timeout_minutes: float) -> None:
    """The process group of the LM stages, over the rendezvous store of ``start`` (no-op with one rank)."""
    if _joined is None or dist.is_initialized():
        return
    if _backend == "nccl":
        torch.cuda.set_device(_joined.local_rank)
    dist.init_process_group(_backend, store=_store, rank=_joined.rank, world_size=_joined.world_size,
                            timeout=timedelta(minutes=timeout_minutes))


def finish() -> None:
    """Wait for every rank, leave the process group, and wait for the ranks this process started (a later run
    in this process starts afresh)."""
    global _joined, _store, _waits
    barrier()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    launch.wait_for_started_ranks()
    _joined, _store, _waits = None, None, 0


def barrier() -> None:
    """Every rank waits for all the others (through the store before the process group exists)."""
    global _waits
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    elif _joined is not None:
        _waits += 1
        key = f"{WAIT_KEY}/{_waits}"
        if _store.add(key, 1) == _joined.world_size:   # the last one to arrive lets everyone go
            _store.set(f"{key}/all", "here")
        _store.wait([f"{key}/all"])


@contextmanager
def rank_zero_first() -> Iterator[None]:
    """Rank 0 runs the block first (it may write: tokenizers, shards); the others wait, then run it and find
    what rank 0 wrote. Nothing changes with one rank."""
    global _waits
    ranks = current()
    if ranks.world_size == 1:
        yield
        return
    _waits += 1
    key = f"{WAIT_KEY}/{_waits}"
    if dist.is_initialized():
        if not ranks.is_zero:
            dist.barrier()
        yield
        if ranks.is_zero:
            dist.barrier()
        return
    if not ranks.is_zero:
        _store.wait([key])
    yield
    if ranks.is_zero:
        _store.set(key, "done")


# --- the rendezvous -----------------------------------------------------------------------------------------
RUN_DIR_KEY, WAIT_KEY = "unimodal/run_dir", "unimodal/wait"
_joined: Ranks | None = None   # set by start(): this process's rank before the process group exists
_store: Any = None             # the rendezvous store the ranks share
_backend = "gloo"
_waits = 0                     # waits at the store so far (every rank counts the same ones)


def _cluster_environment() -> Any:
    """Lightning's view of who started this process: SLURM, torchrun, or a plain command (Lightning's own)."""
    from lightning.fabric.plugins.environments import LightningEnvironment, SLURMEnvironment, TorchElasticEnvironment

    if launch.under_slurm():
        return SLURMEnvironment()
    if TorchElasticEnvironment.detect():
        return TorchElasticEnvironment()
    return LightningEnvironment()


def _is_lightning(env: Any) -> bool:
    from lightning.fabric.plugins.environments import LightningEnvironment

    return isinstance(env, LightningEnvironment)
