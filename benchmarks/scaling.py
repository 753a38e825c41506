"""CPU data-parallel scaling: the same training as 1 process x 1 thread and as 2 DDP processes x 1 thread each.

    python benchmarks/scaling.py [model=small] [modality=image+audio] [batch=32] [steps=60] [warmup=10]

Both runs train ``model=<model>`` through ``scripts/train.py``'s own path (``unimodal.training.run.train``) on
the same data with the same global batch: ``lm.batch_size=<batch>`` in one process, ``<batch>/2`` on each of two
gloo ranks (``trainer.devices=2 trainer.strategy=ddp``), so every step trains on the same sequences
(``training/lm_data.py`` deals each global batch across the ranks). Each run is a subprocess with
``trainer.num_threads=1`` (and OMP_NUM_THREADS=1); its rank 0 stamps the end of every training step, and
tokens/s is the global batch's tokens (padding included, identical in both runs) over the steps after
``warmup``, so start-up, stage 0 and the first steps are left out. Validation and checkpoints fall outside the
timed steps. Stage 0 runs first with a few tokenizer steps (sequence lengths, not codec quality, set the cost).

Appends to ``benchmarks/results/scaling-<commit>.json`` (``unimodal/records.py``: command, commit, date, machine) with
the load average before and after, and prints the ratio: a CPU shared with other work gives a lower one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def worker(stamps_file: str, overrides: list[str]) -> None:
    """One run, in this process as rank 0 (a second rank, if any, is started by the run itself)."""
    sys.path.insert(0, str(ROOT))
    from unimodal.config import compose
    from unimodal.training.lm_module import LMModule
    from unimodal.training.run import train

    stamps: list[float] = []
    tokens: list[int] = []
    step = LMModule.training_step

    def counted(self, batch, batch_idx):
        tokens.append(int(batch["ids"].numel()))   # this rank's padded tokens
        return step(self, batch, batch_idx)

    LMModule.training_step = counted
    LMModule.on_train_batch_end = lambda self, *args: stamps.append(time.perf_counter())
    train(compose(overrides))
    Path(stamps_file).write_text(json.dumps({"stamps": stamps, "tokens": tokens}))


def run(name: str, overrides: list[str], out: Path) -> dict:
    stamps_file = out / f"{name}.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, f"worker={stamps_file}", *overrides], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{name} run failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    recorded = json.loads(stamps_file.read_text())
    return {**recorded, "wall_seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str]) -> None:
    started = time.time()
    args = dict(a.split("=", 1) for a in argv)
    model, modality = args.get("model", "small"), args.get("modality", "image+audio")
    batch, steps, warmup = int(args.get("batch", 32)), int(args.get("steps", 60)), int(args.get("warmup", 10))
    if batch % 2 or warmup + 5 > steps:
        raise SystemExit("batch must be even (two ranks share it) and steps at least warmup + 5")
    out = ROOT / "benchmarks" / "out" / "scaling"
    out.mkdir(parents=True, exist_ok=True)
    common = [f"model={model}", f"modality={modality}", "trainer=cpu", "trainer.num_threads=1", "progress=false",
              f"paths.tokenizers_dir={out}/tokenizers", f"paths.cache_dir={out}/cache", f"paths.runs_dir={out}/runs",
              "data.num_train=2000", "tokenizer.image.train.steps=20", "tokenizer.audio.train.steps=20",
              f"lm.max_steps={steps}", "lm.max_minutes=60", f"lm.val_every_steps={steps}",
              f"lm.checkpoint_every_steps={steps}", "loggers=[csv]"]
    load_before = os.getloadavg()
    print(f"[scaling] load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; stage 0 ...",
          flush=True)
    subprocess.run([sys.executable, "scripts/train.py", "stage=tokenizers", *common], cwd=ROOT, check=True,
                   capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    stamp = time.strftime("%Y%m%d-%H%M%S")
    runs = {}
    for name, extra in (("one_process", [f"lm.batch_size={batch}"]),
                        ("two_ddp_processes", [f"lm.batch_size={batch // 2}", "trainer.devices=2",
                                               "trainer.strategy=ddp"])):
        print(f"[scaling] {name} ...", flush=True)
        recorded = run(name, [*common, *extra, f"run_dir={out}/runs/{name}-{stamp}"], out)
        stamps = recorded["stamps"]
        seconds = stamps[-1] - stamps[warmup - 1]
        runs[name] = {"steps_timed": len(stamps) - warmup, "seconds": round(seconds, 2),
                      "rank0_tokens": sum(recorded["tokens"][warmup:]), "wall_seconds": recorded["wall_seconds"]}
    global_tokens = runs["one_process"]["rank0_tokens"]   # one process sees each whole global batch
    for row in runs.values():
        row["tokens_per_s"] = round(global_tokens / row["seconds"], 1)
    ratio = runs["two_ddp_processes"]["tokens_per_s"] / runs["one_process"]["tokens_per_s"]
    load_after = os.getloadavg()
    from unimodal.records import write_record

    path = write_record("scaling", {"model": model, "modality": modality, "global_batch": batch, "steps": steps,
                                    "warmup": warmup, "threads_per_process": 1,
                                    "load_before": [round(v, 2) for v in load_before],
                                    "load_after": [round(v, 2) for v in load_after], "runs": runs,
                                    "ratio": round(ratio, 3)}, ROOT, argv, started)
    for name, row in runs.items():
        print(f"[scaling] {name:<18} {row['tokens_per_s']:>9.0f} tokens/s ({row['steps_timed']} steps in "
              f"{row['seconds']:.1f}s)")
    print(f"[scaling] 2 DDP processes / 1 process: {ratio:.2f}x (aim 1.7x); load average before "
          f"{load_before[0]:.2f}, after {load_after[0]:.2f}; wrote {path}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("worker="):
        worker(sys.argv[1].split("=", 1)[1], sys.argv[2:])
    else:
        sys.path.insert(0, str(ROOT))
        from unimodal.cli import run_cli

        sys.exit(run_cli(main, __doc__.split("\n\n")[1]))
