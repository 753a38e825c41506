"""``scripts/evaluate.py``: score a run (``run=``), compare runs (``compare=``) or measure a tokenizer
(``task=tokenizer``). The scoring itself is :mod:`unimodal.eval`'s."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from unimodal.commands.app import is_hydra_arg, run_app
from unimodal.commands.options import options_from, validate_evaluate, validate_tokenizer_evaluation
from unimodal.errors import ConfigError

USAGE = """usage: python scripts/evaluate.py run=<run dir> [samples=100] [key=value]
       python scripts/evaluate.py compare=[<run A>,<run B>,...] [out=<dir>]
       python scripts/evaluate.py task=tokenizer tokenizer=<folder> [data=<name>] [split=test] [key=value]

  run=: scores every direction of a run trained on data=synthetic with the world's exact analyzers, on scenes
  of seen and of held-out colour-shape combinations; writes report.md, metrics.json and PNG figures into
  <run>/eval (or out=<dir>). modality=video runs: text->video and video->text on clips, by the motion analyzer.
  Every score is the pooled hits of seeds=3 seeds (seed, seed+1, ...: each its own scenes and sampling), with
  a 95% Wilson interval, each seed's value and two chance rates measured alongside: the outputs judged against
  shuffled prompts, and noise (noise inputs for directions from media, noise outputs for directions from text;
  controls=false skips the noise generations). A bar is met when the interval's lower bound reaches it.
  samples=100 (scenes per split, direction and seed)  lm_samples=100 (scenes per split for bits per token; 0 = off)
  vqa_scenes=100 (instruct runs)  batch_size=64  seed=0  seeds=3  controls=true  directions=[text->image,...]
  cfg_scale=2.5 temperature=1.0: one guidance scale / temperature for every media output (default: the recipe
  per modality, unimodal/eval/sampling.py)
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


def main(argv: list[str] | None = None) -> int:
    return run_app(evaluate_job, "evaluate", USAGE, argv, check=_check, prepare=for_hydra)


def _check(args: list[str]) -> None:
    overrides = [from_hydra(arg) for arg in args if not is_hydra_arg(arg)]
    if any(o.startswith(("run=", "compare=")) for o in overrides):
        parse_run_options(overrides)
    else:
        parse_tokenizer_options(overrides)


def evaluate_job(cfg: Any) -> dict[str, Any]:
    """The Hydra job: ``conf/evaluate.yaml`` names the keys Hydra accepts; the overrides it recorded are read as the
    command line always was (each mode's defaults, checks and data overrides)."""
    from hydra.core.hydra_config import HydraConfig

    return evaluate([from_hydra(o) for o in HydraConfig.get().overrides.task if not is_hydra_arg(o)])


# Hydra reads ``tokenizer=`` as the conf/tokenizer config group: the command line's key goes to Hydra under this name.
TOKENIZER_KEY = "tokenizer_folder"


def for_hydra(arg: str) -> str:
    if arg.startswith("tokenizer="):
        return f"{TOKENIZER_KEY}=" + arg.split("=", 1)[1]
    return quote_directions(arg)


def from_hydra(override: str) -> str:
    return "tokenizer=" + override.split("=", 1)[1] if override.startswith(f"{TOKENIZER_KEY}=") else override


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
    from unimodal.eval.world.run import evaluate_run

    return evaluate_run(options)


def evaluate_tokenizer(overrides: list[str]) -> dict[str, Any]:
    """``task=tokenizer tokenizer=<folder>``: measure a tokenizer and rewrite its report."""
    from unimodal.eval.tokenizers.run import measure_tokenizer

    options, data_overrides = parse_tokenizer_options(overrides)
    return measure_tokenizer(options, data_overrides)


def _list(value: str) -> list[str]:
    parts = (part.strip().strip("'\"") for part in value.strip().strip("[]").split(","))
    return [part for part in parts if part]


def quote_directions(arg: str) -> str:
    """``directions=[text->image]``: Hydra's grammar has no ``>`` in a bare value, so each direction is quoted."""
    key, _, value = arg.partition("=")
    if key != "directions" or not value or "'" in value or '"' in value:
        return arg
    return f"{key}=[" + ",".join(f"'{part}'" for part in _list(value)) + "]"


def parse_run_options(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides of ``run=`` / ``compare=`` -> checked options; a one-line error names a bad key."""
    given = options_from(overrides)
    for key in ("compare", "directions"):  # compare=runA: a list of one
        if isinstance(given.get(key), str):
            given[key] = [given[key]]
    options = OmegaConf.to_container(validate_evaluate(given))
    options["device"] = resolve_device(str(options["device"]))
    return options


def parse_tokenizer_options(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """``task=tokenizer`` overrides -> its checked options, and the data-config overrides."""
    data_overrides = [o for o in overrides if o.partition("=")[0] == "data" or o.startswith("data.")]
    given = options_from([o for o in overrides if o not in data_overrides])
    options = OmegaConf.to_container(validate_tokenizer_evaluation(given))
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
