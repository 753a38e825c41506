"""``scripts/evaluate.py``: score a run (``run=``), compare runs (``compare=``) or measure a tokenizer
(``task=tokenizer``). The scoring itself is :mod:`unimodal.eval`'s."""

from __future__ import annotations

from typing import Any

from unimodal.cli import run_cli
from unimodal.errors import ConfigError

USAGE = """usage: python scripts/evaluate.py run=<run dir> [samples=100] [key=value]
       python scripts/evaluate.py compare=[<run A>,<run B>,...] [out=<dir>]
       python scripts/evaluate.py task=tokenizer tokenizer=<folder> [data=<name>] [split=test] [key=value]

  run=: scores every direction of a run trained on data=synthetic with the world's exact analyzers, on scenes
  of seen and of held-out colour-shape combinations; writes report.md, metrics.json and PNG figures into
  <run>/eval (or out=<dir>). modality=video runs: text->video and video->text on clips, by the motion analyzer.
  samples=100 (scenes per split and direction)  lm_samples=100 (scenes per split for bits per token; 0 = off)
  vqa_scenes=100 (instruct runs)  batch_size=64  seed=0  cfg_scale=3.0  directions=[text->image,...]
  Runs on real images (data=clipart|fashion_mnist|folder): text->image on test captions, judged by a CLIP-style
  score (a small contrastive model trained here on the dataset's captions) and an FD on Fashion-MNIST
  classifier features; judge_steps=400 (training steps of each judge). inception=<file>: also the standard FID
  (torch-fidelity's Inception-v3, weights pt_inception-2015-12-05-6726825d.pth from a local file; never downloaded).
  compare=: one table and one figure of several runs (runs without <run>/eval/metrics.json are scored first;
  reuse=false scores all again); out=<dir> (default runs/compare-<time>).

  task=tokenizer: measures an image tokenizer (PSNR, SSIM, codebook usage, perplexity, tokens and bits per image)
  and writes metrics.json, card.md and reconstructions.png into its folder (or out=<dir>); an audio codec:
  STOI, PESQ, SI-SNR, mel distance, usage per level, tokens/s, bitrate, spectrograms.png and samples/; a video
  tokenizer: PSNR (mean and per frame), temporal error, codebook usage, tokens per clip and frames.png.
  data=<name>      default: the data recorded in the tokenizer's metrics.json, else synthetic
  data.<key>=...   any data config key, e.g. data.num_val=100
  num_images=N     first N images (or clips) of the split (default: all)   grid=8 (images in the PNG; 0 = none)
  num_codebooks=K  audio: decode with the first K RVQ levels (a lower bitrate; default all)
  batch_size=64  progress=true  device=auto|cpu|cuda  out=<dir>"""

RUN_OPTIONS: dict[str, Any] = {"run": None, "compare": None, "out": None, "samples": 100, "lm_samples": 100,
                               "vqa_scenes": 100, "batch_size": 64, "seed": 0, "cfg_scale": 3.0, "directions": None,
                               "progress": True, "device": "auto", "reuse": True, "judge_steps": 400,
                               "inception": None}   # real-image runs: Inception-v3 FID weights file (standard FID)
_RUN_INTS = ("samples", "lm_samples", "vqa_scenes", "batch_size", "seed", "judge_steps")
_RUN_FLAGS = ("progress", "reuse")
TASKS = ("tokenizer",)
# Keys task=tokenizer reads itself; `data=<name>` and `data.<key>=...` go to the config tree.
TOKENIZER_OPTIONS: dict[str, Any] = {"task": None, "tokenizer": None, "split": "test", "num_images": None,
                                     "out": None, "batch_size": 64, "grid": 8, "progress": True, "device": "auto",
                                     "num_codebooks": None}   # audio: RVQ levels to decode with (default all)


def main(argv: list[str] | None = None) -> int:
    return run_cli(evaluate, USAGE, argv)


def evaluate(overrides: list[str]) -> dict[str, Any]:
    """``run=`` / ``compare=`` overrides score runs; anything else is ``task=tokenizer``. Returns the metrics."""
    if any(o.startswith(("run=", "compare=")) for o in overrides):
        return evaluate_runs(overrides)
    return evaluate_tokenizer(overrides)


def evaluate_runs(overrides: list[str]) -> dict[str, Any]:
    """Score one run (``run=``), or compare several (``compare=``)."""
    options = parse_run_options(overrides)
    if options["compare"]:
        from unimodal.eval.world.run import compare_runs

        return compare_runs(options)
    if not options["run"]:
        raise ConfigError("run=<run dir> or compare=[runA,runB] is required")
    from unimodal.eval.world.run import evaluate_run

    return evaluate_run(options)


def evaluate_tokenizer(overrides: list[str]) -> dict[str, Any]:
    """``task=tokenizer tokenizer=<folder>``: measure a tokenizer and rewrite its report."""
    from unimodal.eval.tokenizers.run import measure_tokenizer

    options, data_overrides = parse_tokenizer_options(overrides)
    return measure_tokenizer(options, data_overrides)


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.strip().strip("[]").split(",") if part.strip()]


def _flag(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() not in ("false", "0", "no", "off")


def parse_run_options(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides of ``run=`` / ``compare=`` -> checked options; a one-line error names a bad key."""
    options = dict(RUN_OPTIONS)
    for override in overrides:
        key, _, value = override.partition("=")
        if key not in RUN_OPTIONS:
            raise ConfigError(f"unknown key {key!r} for run=/compare=; evaluate takes "
                              f"{', '.join(f'{k}=' for k in RUN_OPTIONS)}")
        options[key] = value
    for key in _RUN_INTS:
        value = str(options[key])
        if not value.isdigit() or (int(value) < 1 and key not in ("seed", "lm_samples", "vqa_scenes")):
            raise ConfigError(f"{key}={value!r}: expected a whole number (>= 1)")
        options[key] = int(value)
    try:
        options["cfg_scale"] = float(options["cfg_scale"])
    except ValueError:
        raise ConfigError(f"cfg_scale={options['cfg_scale']!r}: expected a number, e.g. 3.0") from None
    for key in _RUN_FLAGS:
        options[key] = _flag(options[key])
    if options["directions"] is not None:
        options["directions"] = _list(str(options["directions"]))
    if options["compare"] is not None:
        options["compare"] = _list(str(options["compare"]))
        if len(options["compare"]) < 1:
            raise ConfigError("compare=[runA,runB,...]: name at least one run folder")
    options["device"] = resolve_device(str(options["device"]))
    return options


def parse_tokenizer_options(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``task=tokenizer`` overrides -> its checked options, and the data-config overrides."""
    options, data_overrides = dict(TOKENIZER_OPTIONS), []
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "data" or key.startswith("data."):
            data_overrides.append(override)
        elif key in TOKENIZER_OPTIONS:
            options[key] = value
        else:
            raise ConfigError(f"unknown key {key!r}; evaluate takes {', '.join(f'{k}=' for k in TOKENIZER_OPTIONS)}, "
                              f"data=<name> and data.<key>=<value>")
    for key in ("num_images", "batch_size", "grid", "num_codebooks"):
        value = options[key]
        if value is not None and not isinstance(value, int):
            if not str(value).isdigit() or int(value) < (0 if key == "grid" else 1):
                raise ConfigError(f"{key}={value!r}: expected a positive whole number")
            options[key] = int(value)
    options["progress"] = _flag(options["progress"])
    if options["task"] not in TASKS:
        given = f"task={options['task']!r} is not a task" if options["task"] else "task= is required"
        raise ConfigError(f"{given}; choose one of: {', '.join(TASKS)}")
    options["device"] = resolve_device(str(options["device"]))
    return options, data_overrides


def resolve_device(name: str) -> str:
    """``device=auto|cpu|cuda[:n]`` as a torch device name; cuda without a CUDA device is refused."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name}: no CUDA device here; use device=cpu or device=auto")
    return name
