"""Resume is exact: a training process SIGKILLed mid-run continues from its last checkpoint with the losses
of an uninterrupted run, loading a checkpoint folder of safetensors + JSON with ``torch.load`` disabled; the
data position survives a resume. (The checkpoint format and its atomic save: test_checkpoint_io.py.)"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import smoke_overrides
from unimodal.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
STEPS, KILL_AFTER = 8, 4
# Every step logged and checkpointed; 16 samples x 2 tasks / batch 8 = 4 batches per epoch, so the kill
# lands in the second epoch and the uninterrupted run crosses an epoch boundary too.
OVERRIDES = ["modality=image", "data.num_train=16", f"lm.max_steps={STEPS}", "lm.log_every_steps=1",
             "lm.checkpoint_every_steps=1", "lm.val_every_steps=3", "trainer.num_threads=1"]
# The child sleeps after each step (numerics untouched) so that the kill lands mid-run, not after the end,
# and has no torch.load: a resume that unpickled anything would fail.
CHILD = """import sys, time
import torch
def no_unpickling(*args, **kwargs):
    raise AssertionError("torch.load called: checkpoints must load without unpickling")
torch.load = no_unpickling
from unimodal.training.lm_module import LMModule
LMModule.on_train_batch_end = lambda self, *args: time.sleep(float(sys.argv[1]))
from unimodal.config import compose
from unimodal.training.run import train
train(compose(sys.argv[2:]))
"""


def _start(root: Path, run: str, pause: float, overrides: list[str] = OVERRIDES) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    args = [sys.executable, "-c", CHILD, str(pause), *smoke_overrides(root, f"run_dir={root / run}", *overrides)]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0, out[-2000:]
    return out


def _train_losses(path: Path) -> dict[int, float]:
    with path.open(newline="") as handle:
        return {int(row["step"]): float(row["train/loss"]) for row in csv.DictReader(handle) if row["train/loss"]}


def _steps_logged(path: Path) -> int:
    try:
        return len(_train_losses(path))
    except (OSError, KeyError, ValueError):  # not written yet, or caught mid-write
        return 0


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    reference = _finish(_start(tmp_path, "reference", 0.0))  # also trains the tokenizers the others reuse
    assert "resuming" not in reference

    killed = _start(tmp_path, "killed", 0.3)
    log = tmp_path / "killed" / "logs" / "metrics.csv"
    deadline = time.monotonic() + 90
    while _steps_logged(log) < KILL_AFTER:
        assert killed.poll() is None, "the run ended before it was killed"
        assert time.monotonic() < deadline, "no training step logged in time"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "killed" / "lm").exists()  # it really died mid-run

    out = _finish(_start(tmp_path, "killed", 0.0))
    resumed_at = int(out.split("resuming from")[1].split("at step")[1].split()[0])
    assert KILL_AFTER <= resumed_at < STEPS
    want = _train_losses(tmp_path / "reference" / "metrics.csv")
    got = _train_losses(tmp_path / "killed" / "logs" / "metrics.csv")  # the resumed process only
    assert sorted(got) == list(range(resumed_at, STEPS))  # same step count: continues at the next step
    for step in got:
        assert abs(got[step] - want[step]) <= 1e-5, (step, got[step], want[step])
    merged = _train_losses(tmp_path / "killed" / "metrics.csv")  # the whole run, across the resume
    assert sorted(merged) == list(range(STEPS))
    assert all(abs(merged[s] - want[s]) <= 1e-5 for s in range(STEPS))
    assert list((tmp_path / "killed" / "tensorboard").glob("events.out.tfevents.*"))
    files = list((tmp_path / "killed" / "checkpoints").rglob("*"))
    assert {f.name for f in files} == {"last.ckpt", "checkpoint.json", "model.safetensors", "optimizer.safetensors",
                                       "state.safetensors"}  # no pickle, and no partial or previous folder


@pytest.mark.slow  # three runs of every stage: about 100 s on the shared 2-core box
def test_sigkill_during_instruct_then_resume_matches_uninterrupted_run(tmp_path):
    overrides = ["modality=image", "stage=instruct", "data.num_train=16", "lm.max_steps=4", "lm.log_every_steps=1",
                 f"instruct.max_steps={STEPS}", "instruct.checkpoint_every_steps=1", "instruct.val_every_steps=3",
                 "instruct.num_edits=4", "trainer.num_threads=1"]
    _finish(_start(tmp_path, "reference", 0.0, overrides))
    killed = _start(tmp_path, "killed", 0.3, overrides)
    log = tmp_path / "killed" / "instruct" / "logs" / "metrics.csv"
    deadline = time.monotonic() + 120
    while _steps_logged(log) < KILL_AFTER:
        assert killed.poll() is None, "the run ended before it was killed"
        assert time.monotonic() < deadline, "no instruct step logged in time"
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    out = _finish(_start(tmp_path, "killed", 0.0, overrides))
    assert "[instruct] resuming from" in out and "[stage 1] resuming" not in out
    want = _train_losses(tmp_path / "reference" / "instruct" / "metrics.csv")
    got = _train_losses(tmp_path / "killed" / "instruct" / "metrics.csv")
    assert sorted(got) == sorted(want) == list(range(STEPS))
    assert all(abs(got[s] - want[s]) <= 1e-5 for s in want), (got, want)


def _check_resumes_mid_epoch_and_across_epochs(sampler, other_batch_size) -> None:
    """``sampler()`` makes a fresh one; a state saved mid-pass or on a pass's last batch resumes exactly, and
    ``other_batch_size`` refuses the state."""
    full = sampler()
    passes = [list(full) for _ in range(3)]
    assert passes[0] != passes[1] and full.epoch == 2  # each pass is a new epoch with a new order
    first = sampler()
    iterator = iter(first)
    consumed = [next(iterator) for _ in range(3)]
    second = sampler()
    second.load_state_dict(first.state_dict())
    assert consumed + list(second) == passes[0]
    assert list(second) == passes[1]
    consumed = [next(iterator) for _ in range(len(first) - 3)]  # saved on the last batch of the pass
    third = sampler()
    third.load_state_dict(first.state_dict())
    assert list(third) == passes[1]
    with pytest.raises(ConfigError, match="lm.batch_size"):
        other_batch_size.load_state_dict(first.state_dict())


def test_sampler_resumes_mid_epoch_and_across_epochs():
    from unimodal.training.lm_data import TaskBatches

    _check_resumes_mid_epoch_and_across_epochs(
        lambda: TaskBatches(10, 3, 4, [1.0, 2.0, 1.0], seed=3, groups=[[0, 1], [2]]), TaskBatches(10, 3, 2, seed=3))


def test_instruct_length_buckets_resume_mid_epoch_and_across_epochs():
    from unimodal.training.buckets import LengthBuckets

    _check_resumes_mid_epoch_and_across_epochs(lambda: LengthBuckets(lambda i: i % 7, 40, 4, seed=2, window=2),
                                               LengthBuckets(lambda i: i, 40, 5, seed=2, window=2))


def test_a_second_process_on_a_run_folder_is_refused_until_the_first_dies(tmp_path):
    from unimodal.errors import UnimodalError
    from unimodal.training.resume import run_lock

    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pathlib import Path\n"
         "from unimodal.training.resume import run_lock\n"
         "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(60)\n", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UnimodalError, match=f"in use by another training process \\(pid {holder.pid}\\)"):
            with run_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops a dead holder's lock: no stale lock to clear
        holder.wait()
    with run_lock(tmp_path):
        with pytest.raises(UnimodalError, match=f"pid {os.getpid()}"):
            with run_lock(tmp_path):
                pass
    with run_lock(tmp_path):  # released on exit
        pass


def test_run_metrics_survive_rows_longer_than_their_header(tmp_path, capsys):
    from unimodal.training.resume import keep_history, write_run_metrics

    logs = tmp_path / "logs"
    logs.mkdir()
    # Rows appended under a shorter header (two writers on one file) once crashed the run after training.
    (logs / "metrics.csv").write_text("step,train/loss\n1,2.0\n2,1.5,0.9\n3,1.0\n")
    keep_history(logs, 3)
    write_run_metrics(tmp_path)
    assert "1 rows had more values than its header" in capsys.readouterr().out
    assert _train_losses(tmp_path / "metrics.csv") == {1: 2.0, 2: 1.5}
