"""DDP is the same training: ``trainer=cpu trainer.devices=2 trainer.strategy=ddp debug=smoke`` as two processes on
gloo against one process with the same global batch (first-step gradients to 1e-5, losses to 1e-4), only rank 0
writes files, and a DDP run SIGKILLed mid-epoch resumes to the losses of an uninterrupted DDP run (1e-5).

Every process (rank 1 is started by rank 0) loads a ``sitecustomize`` from a folder the test puts first on
PYTHONPATH: it records the paths the process writes (an audit hook), saves rank 0's gradients before the first
optimizer step, can sleep after each step (so that the kill lands mid-run) and disables ``torch.load``.
fp32 (``trainer.precision=32-true``): bf16 rounds differently for a batch of 8 rows and one of 16.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from tests.conftest import smoke_overrides
from tests.test_resume import _steps_logged, _train_losses

ROOT = Path(__file__).resolve().parent.parent
STEPS, KILL_AFTER = 8, 4
# modality=image: 48 samples x 2 tasks / 16 = 6 batches a pass, so the kill at step 4 lands mid-epoch and every
# run crosses into the second epoch.
COMMON = ["trainer=cpu", "modality=image", "trainer.precision=32-true", "trainer.num_threads=1",
          f"lm.max_steps={STEPS}", "lm.log_every_steps=1", "lm.checkpoint_every_steps=1", "lm.val_every_steps=4"]
DDP = ["trainer.devices=2", "trainer.strategy=ddp"]           # lm.batch_size=8 (debug=smoke) per process
ONE = ["trainer.devices=1", "lm.batch_size=16"]               # the same global batch in one process

PROBE = r'''
import json, os, sys, time
from pathlib import Path
out = os.environ.get("UNIMODAL_PROBE")
if out:
    watched = tuple(os.environ["UNIMODAL_PROBE_WATCH"].split(os.pathsep))
    rank = os.environ.get("LOCAL_RANK", "0")
    writes = set()
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def record(path):
        path = os.path.abspath(os.fsdecode(path)) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if path.startswith(watched):
            writes.add(path)

    def hook(event, args):
        if event == "open" and args[0] is not None:
            mode, flags = args[1] or "", args[2] or 0
            if any(c in mode for c in "wax+") or flags & WRITE_FLAGS:
                record(args[0])
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "shutil.copytree"):
            record(args[0] if event != "shutil.copytree" else args[1])
        elif event == "os.rename":
            record(args[0]); record(args[1])

    sys.addaudithook(hook)
    import atexit
    atexit.register(lambda: Path(out, f"writes-{os.getpid()}-rank{rank}.json").write_text(json.dumps(sorted(writes))))

    import torch
    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load called: checkpoints must load without unpickling")
    torch.load = no_unpickling
    from safetensors.torch import save_file
    from unimodal.training.lm_module import LMModule
    before = LMModule.on_before_optimizer_step
    def probe(self, optimizer):
        if self.trainer.global_step == 0 and rank == "0":
            save_file({n: p.grad.detach().clone() for n, p in self.model.named_parameters() if p.grad is not None},
                      str(Path(out, "grads.safetensors")))
        return before(self, optimizer)
    LMModule.on_before_optimizer_step = probe
    pause = float(os.environ.get("UNIMODAL_PROBE_PAUSE", "0"))
    LMModule.on_train_batch_end = lambda self, *args: time.sleep(pause)
'''


def _start(root: Path, name: str, extra: list[str], pause: float = 0.0) -> subprocess.Popen:
    probe = root / f"probe-{name}"
    probe.mkdir(exist_ok=True)
    (root / "site").mkdir(exist_ok=True)
    (root / "site" / "sitecustomize.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "site"), str(ROOT)]),
           "TOKENIZERS_PARALLELISM": "false", "UNIMODAL_PROBE": str(probe), "UNIMODAL_PROBE_PAUSE": str(pause),
           "UNIMODAL_PROBE_WATCH": os.pathsep.join(str(root / d) for d in ("runs", "tokenizers", "cache"))}
    args = [sys.executable, "scripts/train.py",
            *smoke_overrides(root, f"run_dir={root / 'runs' / name}", *COMMON, *extra)]
    # Its own session: the kill below stops every rank at once, as a cluster's scheduler does.
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _finish(process: subprocess.Popen) -> str:
    try:
        out, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)   # no rank left behind
        raise
    assert process.returncode == 0, out[-3000:]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted two-rank run (trains the tokenizers and shards the others reuse), then one process."""
    root = tmp_path_factory.mktemp("ddp")
    ddp_out = _finish(_start(root, "ddp", DDP))
    one_out = _finish(_start(root, "one", ONE))
    return root, ddp_out, one_out


def test_two_ranks_train_as_one_process_with_the_same_global_batch(runs):
    root, ddp_out, one_out = runs
    assert "global batch 16 sequences per optimizer step = 8 per device x 2 devices" in ddp_out
    assert "global batch 16 sequences per optimizer step = 16 per device x 1 devices" in one_out
    two, one = load_file(str(root / "probe-ddp" / "grads.safetensors")), load_file(str(root / "probe-one" /
                                                                                       "grads.safetensors"))
    assert two.keys() == one.keys() and len(two) > 10
    worst = max(float((two[k] - one[k]).abs().max()) for k in two)
    assert worst <= 1e-5, worst
    assert any(float(g.abs().max()) > 1e-3 for g in two.values())   # gradients, not zeros
    want, got = _train_losses(root / "runs" / "one" / "metrics.csv"), _train_losses(root / "runs" / "ddp" /
                                                                                    "metrics.csv")
    assert sorted(got) == sorted(want) == list(range(STEPS))
    assert all(abs(got[s] - want[s]) <= 1e-4 for s in want), (got, want)
    print(f"[ddp] first-step gradients: largest difference {worst:.2e}; losses over {STEPS} steps: largest "
          f"difference {max(abs(got[s] - want[s]) for s in want):.2e}")


def test_only_rank_zero_writes_run_files(runs):
    root = runs[0]
    ranks = {}
    for file in (root / "probe-ddp").glob("writes-*.json"):
        ranks.setdefault(file.stem.rsplit("rank", 1)[1], []).extend(json.loads(file.read_text()))
    assert sorted(ranks) == ["0", "1"]
    assert ranks["1"] == [], ranks["1"][:5]
    written = {Path(p).relative_to(root).parts[:3] for p in ranks["0"]}
    for want in [("runs", "ddp", "run.json"), ("runs", "ddp", "lm"), ("runs", "ddp", "checkpoints"),
                 ("runs", "ddp", "metrics.csv")]:
        assert want in written, want
    run = root / "runs" / "ddp"
    assert (run / "lm" / "model.safetensors").is_file() and (run / "checkpoints" / "last.ckpt").is_dir()


def test_sigkilled_ddp_run_resumes_to_the_uninterrupted_losses(runs):
    root = runs[0]
    killed = _start(root, "killed", DDP, pause=0.4)
    log = root / "runs" / "killed" / "logs" / "metrics.csv"
    deadline = time.monotonic() + 240
    while _steps_logged(log) < KILL_AFTER:
        assert killed.poll() is None, killed.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "no training step logged in time"
        time.sleep(0.05)
    os.killpg(killed.pid, signal.SIGKILL)   # every rank of the run
    killed.wait()
    assert not (root / "runs" / "killed" / "lm").exists()   # it died mid-run, mid-epoch

    out = _finish(_start(root, "killed", DDP))
    resumed_at = int(out.split("resuming from")[1].split("at step")[1].split()[0])
    assert KILL_AFTER <= resumed_at < STEPS
    want = _train_losses(root / "runs" / "ddp" / "metrics.csv")
    got = _train_losses(root / "runs" / "killed" / "logs" / "metrics.csv")   # the resumed run only
    assert sorted(got) == list(range(resumed_at, STEPS))
    assert all(abs(got[s] - want[s]) <= 1e-5 for s in got), (got, want)
    print(f"[ddp] resumed at step {resumed_at}: largest loss difference "
          f"{max(abs(got[s] - want[s]) for s in got):.2e}")
    merged = _train_losses(root / "runs" / "killed" / "metrics.csv")
    assert sorted(merged) == list(range(STEPS)) and all(abs(merged[s] - want[s]) <= 1e-5 for s in merged)

