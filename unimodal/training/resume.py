"""Exact resume of LM training: RNG state in the checkpoint, the checkpoint to resume from, metrics kept across
resumes, and one training process per run folder.

The rest of the training state needs nothing here: Lightning's checkpoint holds the step count, optimizer
and LR-scheduler state, and the train loader's position (``ResumableLoader`` in lm_data.py); it is written
as safetensors + JSON, atomically, by ``checkpoint_io.SafetensorsCheckpointIO``.
"""

from __future__ import annotations

import csv
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist

from unimodal.errors import UnimodalError
from unimodal.training.checkpoint_io import read_meta, recover_checkpoint
from unimodal.training.distributed import current, rank_zero_first

try:
    import fcntl
except ImportError:  # not on Windows: runs there are not locked
    fcntl = None

PARTIAL_SUFFIX = ".partial"
HISTORY_FILE = "history.csv"   # in <run>/logs: rows of the runs before the last resume
LOCK_FILE = ".lock"            # in <run>: the pid of the training process that holds the folder


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process; a second training process on the same folder is refused.

    Two processes on one folder interleave their log rows and overwrite each other's checkpoints (a resume
    started while the first run is still going). fcntl directly, not the filelock package: the kernel drops
    the lock when its holder dies, SIGKILL included, and the file can name the holder's pid.
    """
    if fcntl is None:
        yield
        return
    handle = (run_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise UnimodalError(f"{run_dir} is in use by another training process (pid {holder}); wait for it to "
                            f"end, or stop it and rerun with run_dir={run_dir} to resume") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


class RngState(L.Callback):
    """Global torch/CUDA/numpy/Python RNG states, saved in and restored from the checkpoint.

    Dropout, and anything else that draws from the global generators during training, then continues
    with the draws an uninterrupted run would have made. Lightning saves no RNG state in a checkpoint; here
    every state is a tensor or plain Python values, which the safetensors + JSON checkpoint holds as is.

    Under data parallelism each rank draws from its own torch generators (dropout): every rank's torch and CUDA
    states are gathered into the checkpoint by rank (``rank_torch``, ``rank_cuda``; tensors, not pickles) and each
    rank gets its own back. numpy's and Python's are rank 0's: training draws nothing from them.
    """

    def state_dict(self) -> dict[str, Any]:
        state = _rng_states()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            # All ranks save a checkpoint together (rank 0 writes it): gather theirs.
            state["rank_torch"] = _gather(torch.get_rng_state())
            if torch.cuda.is_available():
                state["rank_cuda"] = _gather(torch.cuda.get_rng_state())
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "torch" not in state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        if state_dict["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
        name, keys, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        version, words, python_gauss = state_dict["python"]
        random.setstate((version, tuple(words), python_gauss))
        ranks = state_dict.get("rank_torch")
        if ranks and dist.is_available() and dist.is_initialized() and len(ranks) == dist.get_world_size():
            torch.set_rng_state(ranks[dist.get_rank()])
            if state_dict.get("rank_cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state(state_dict["rank_cuda"][dist.get_rank()])


def _gather(state: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``state`` (a byte tensor of one size on every rank), in rank order."""
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else state.device
    mine = state.to(device)
    every = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(every, mine)
    return [tensor.cpu() for tensor in every]


def _rng_states() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, words, python_gauss = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "python": [version, list(words), python_gauss]}


def prepare_resume(run_dir: Path, resume: bool, stage: str = "stage 1") -> Path | None:
    """The checkpoint to resume from (``<run_dir>/checkpoints/last.ckpt``), with the logs made ready for it.
    Rank 0 cleans up and moves log rows; the other ranks then only find the checkpoint."""
    last = None
    with rank_zero_first():
        if current().is_zero:
            last = checkpoint_to_resume(run_dir / "checkpoints", resume)
            if last is not None:
                step = checkpoint_step(last)
                keep_history(run_dir / "logs", step)
                print(f"[{stage}] resuming from {last} at step {step}", flush=True)
        elif resume and (run_dir / "checkpoints" / "last.ckpt").exists():
            last = run_dir / "checkpoints" / "last.ckpt"
    return last


def checkpoint_to_resume(ckpt_dir: Path, resume: bool) -> Path | None:
    """``<ckpt_dir>/last.ckpt`` when resuming and it exists; leftovers of a killed save are cleaned up first."""
    last = ckpt_dir / "last.ckpt"
    recover_checkpoint(last)
    return last if resume and last.exists() else None


def checkpoint_step(path: Path) -> int:
    """The global step stored in a checkpoint folder (its JSON only: the tensors are not read)."""
    return int(read_meta(path)["checkpoint"]["global_step"])


def keep_history(log_dir: Path, step: int) -> None:
    """Before resuming from ``step``: move the log rows of steps before it into ``history.csv``.

    Lightning's CSV logger deletes ``metrics.csv`` when it starts in a folder that has one; rows of
    steps at or after ``step`` were logged by the killed run after its last checkpoint and are replayed.
    """
    current = log_dir / "metrics.csv"
    if not current.is_file():
        return
    rows = [row for row in _read(current) if _step(row) < step]
    history = [row for row in _read(log_dir / HISTORY_FILE) if _step(row) < step]
    _write(log_dir / HISTORY_FILE, history + rows)
    current.unlink()


def write_run_metrics(run_dir: Path) -> None:
    """``<run>/metrics.csv``: every logged row of the run, across resumes, in the order logged."""
    rows = _read(run_dir / "logs" / HISTORY_FILE) + _read(run_dir / "logs" / "metrics.csv")
    if rows:
        _write(run_dir / "metrics.csv", rows)


def _step(row: dict[str, str]) -> int:
    return int(float(row.get("step") or 0))


def _read(path: Path) -> list[dict[str, str]]:
    """The rows of a metrics CSV; values beyond its header (rows appended under another header) are dropped."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    extra = sum(row.pop(None, None) is not None for row in rows)
    if extra:
        print(f"[logs] {path}: {extra} rows had more values than its header; the extra values are dropped",
              flush=True)
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    keys = sorted({key for row in rows for key in row})
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(partial, path)
