"""``-m`` is Hydra's multirun: through the submitit launcher here (each run its own process), the compare command
printed at the end, one-line errors for a bad sweep, Hydra's own files never left in the working folder, and the
SLURM preset taking nodes and GPUs per node from the trainer config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import smoke_overrides

ROOT = Path(__file__).resolve().parent.parent


def _script(cwd: Path, name: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_submitit_sweep_runs_every_job_and_prints_the_compare_command(tmp_path):
    result = _script(tmp_path, "train.py", "-m", "hydra/launcher=submitit_local", "debug=smoke",
                     "tokenizer/image=fsq,vq", *smoke_overrides(tmp_path), "trainer.num_threads=1")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    sweep = next((tmp_path / "runs").glob("multirun-*"))
    runs = sorted(p for p in sweep.iterdir() if (p / "lm" / "model.safetensors").is_file())
    assert [p.name for p in runs] == ["0-tokenizer_image=fsq", "1-tokenizer_image=vq"]   # job number, swept values
    assert list((sweep / ".submitit").iterdir())   # each job went through submitit
    lines = result.stdout.splitlines()
    command = lines[lines.index(next(line for line in lines if line.startswith("[multirun] 2 runs"))) + 1]
    assert command.strip() == f"python scripts/evaluate.py compare=[{runs[0]},{runs[1]}] out={sweep}/compare"
    # A single run of another entry point: Hydra writes nothing of its own (no outputs/, .hydra, logs) either.
    shards = _script(tmp_path, "make_shards.py", "debug=smoke", *smoke_overrides(tmp_path), "splits=[val]")
    assert shards.returncode == 0, shards.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "runs", "tokenizers"]


def test_a_bad_sweep_is_one_line():
    for args, message in ((["tokenizer/image=fsq,vqq"], "unknown tokenizer/image 'vqq'; choose one of"),
                          (["model=tiny,"], "cannot parse the overrides"),
                          (["model.hiden_size=3,4"], "hiden_size")):
        result = _script(ROOT, "train.py", "-m", *args, timeout=300)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, lines


def test_the_slurm_preset_maps_nodes_and_gpus_per_node():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from unimodal.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", ["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=2"],
                      return_hydra_config=True)
    launcher = {key: OmegaConf.select(cfg, f"hydra.launcher.{key}")
                for key in ("_target_", "nodes", "tasks_per_node", "gpus_per_node")}
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["nodes"], launcher["tasks_per_node"], launcher["gpus_per_node"]) == (2, 8, 8)
