"""What ``scripts/evaluate.py`` does, importable (tests call it without a subprocess).

``task=tokenizer tokenizer=<folder>`` measures an exported image, audio or video tokenizer on a data split
and writes ``metrics.json``, ``card.md`` and figures into the folder (or ``out=<dir>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from unimodal.errors import ConfigError, UnimodalError
from unimodal.eval.harness import resolve_device

TASKS = ("tokenizer",)
DEFAULT_DATA = "synthetic"
# Keys this command reads itself; `data=<name>` and `data.<key>=...` go to the config tree.
OPTIONS: dict[str, Any] = {"task": None, "tokenizer": None, "split": "test", "num_images": None, "out": None,
                           "batch_size": 64, "grid": 8, "progress": True, "device": "auto",
                           "num_codebooks": None}   # audio: RVQ levels to decode with (default all)


def parse_overrides(overrides: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Split ``key=value`` overrides into this command's options and data-config overrides."""
    options, data_overrides = dict(OPTIONS), []
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "data" or key.startswith("data."):
            data_overrides.append(override)
        elif key in OPTIONS:
            options[key] = value
        else:
            raise ConfigError(f"unknown key {key!r}; evaluate takes {', '.join(f'{k}=' for k in OPTIONS)}, "
                              f"data=<name> and data.<key>=<value>")
    for key in ("num_images", "batch_size", "grid", "num_codebooks"):
        value = options[key]
        if value is not None and not isinstance(value, int):
            if not str(value).isdigit() or int(value) < (0 if key == "grid" else 1):
                raise ConfigError(f"{key}={value!r}: expected a positive whole number")
            options[key] = int(value)
    if not isinstance(options["progress"], bool):
        options["progress"] = str(options["progress"]).lower() not in ("false", "0", "no", "off")
    return options, data_overrides


def load_image_tokenizer(path: str | None) -> Any:
    """The tokenizer in folder ``path``, or a one-line error naming it."""
    from safetensors import SafetensorError

    from unimodal.tokenizers.base import TokenizerLoadError, load_tokenizer

    if not path:
        raise ConfigError("tokenizer=<folder> is required (an exported tokenizer, e.g. tokenizers/image-...)")
    folder = Path(path)
    if not folder.is_dir():
        raise UnimodalError(f"tokenizer={path}: no such folder")
    try:
        tokenizer = load_tokenizer(folder)
    except (TokenizerLoadError, SafetensorError, OSError, ValueError, KeyError) as err:
        raise UnimodalError(f"tokenizer={path}: not a loadable tokenizer ({str(err).splitlines()[0]})") from None
    if tokenizer.modality not in ("image", "audio", "video"):
        raise UnimodalError(f"tokenizer={path} holds a {tokenizer.modality} tokenizer; task=tokenizer measures "
                            f"image, audio and video tokenizers")
    return tokenizer


def recorded_data(folder: Path) -> str:
    """The data the tokenizer was trained on, as recorded in its metrics.json (``data``), else synthetic."""
    try:
        recorded = json.loads((folder / "metrics.json").read_text()).get("data")
    except (OSError, ValueError, AttributeError):
        return DEFAULT_DATA
    if isinstance(recorded, dict):
        recorded = recorded.get("name")
    return str(recorded) if recorded else DEFAULT_DATA


def data_config(folder: Path, tokenizer: Any, data_overrides: list[str]) -> Any:
    """``cfg.data`` from the config tree: ``data=`` if given, else the recorded data; images at the
    tokenizer's own size unless ``data.image_size`` is given."""
    from unimodal.config import compose

    overrides = list(data_overrides)
    if not any(o.startswith("data=") for o in overrides):
        overrides.insert(0, f"data={recorded_data(folder)}")
    if getattr(tokenizer, "image_size", None) and not any(o.startswith("data.image_size=") for o in overrides):
        overrides.append(f"data.image_size={int(tokenizer.image_size)}")
    audio = getattr(tokenizer, "modality", None) == "audio"
    if audio and not any(o.startswith("data.sample_rate=") for o in overrides):
        overrides.append(f"data.sample_rate={int(tokenizer.sample_rate)}")   # clips at the codec's own rate
    video = getattr(tokenizer, "modality", None) == "video"
    if video:  # modality=video turns the data's clips on; clips as long as the tokenizer's unless given
        overrides.insert(0, "modality=video")
        if not any(o.startswith("data.video_frames=") for o in overrides):
            overrides.append(f"data.video_frames={int(tokenizer.num_frames)}")
    return compose(overrides).data


def evaluate_tokenizer(overrides: list[str]) -> dict[str, Any]:
    """Run ``task=tokenizer``; return the metrics written."""
    from unimodal.data import sources
    from unimodal.eval.tokenizer_metrics import GRID_FILE, evaluate_image_tokenizer, write_image_report

    options, data_overrides = parse_overrides(overrides)
    if options["task"] not in TASKS:
        given = f"task={options['task']!r} is not a task" if options["task"] else "task= is required"
        raise ConfigError(f"{given}; choose one of: {', '.join(TASKS)}")
    folder = Path(options["tokenizer"] or "")
    tokenizer = load_image_tokenizer(options["tokenizer"])
    data_cfg = data_config(folder, tokenizer, data_overrides)
    if tokenizer.modality == "audio":
        from unimodal.eval.evaluate_audio import evaluate_audio
        return evaluate_audio(tokenizer, folder, data_cfg, options)
    if tokenizer.modality == "video":
        from unimodal.eval.evaluate_video import evaluate_video
        return evaluate_video(tokenizer, folder, data_cfg, options)
    load_images = getattr(sources, "load_images", None)
    if load_images is None:
        raise UnimodalError("unimodal.data.sources.load_images is missing: this checkout cannot load "
                            "evaluation images yet")
    dataset = load_images(data_cfg, options["split"])
    images = dataset.images[: options["num_images"]] if options["num_images"] else dataset.images
    device = resolve_device(options["device"])
    if isinstance(tokenizer, torch.nn.Module):
        tokenizer.to(device).eval()
    evaluation = evaluate_image_tokenizer(tokenizer, images, batch_size=options["batch_size"],
                                          progress=options["progress"], keep=options["grid"],
                                          size=getattr(tokenizer, "image_size", None))
    try:
        metrics = json.loads((folder / "metrics.json").read_text())  # keep what training recorded
    except (OSError, ValueError):
        metrics = {}
    # eval_*: where these numbers come from; `data` stays the data the tokenizer was trained on.
    metrics.update(evaluation.metrics, eval_data=str(data_cfg.name), eval_split=str(options["split"]),
                   eval_images=len(images))
    out = Path(options["out"]) if options["out"] else folder
    write_image_report(tokenizer, out, metrics, evaluation)
    print(summary_table(folder, tokenizer, metrics))
    written = ["metrics.json", "card.md"] + ([GRID_FILE] if len(evaluation.originals) else [])
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return metrics


def summary_table(folder: Path, tokenizer: Any, metrics: dict[str, Any]) -> str:
    rows = [
        ("tokenizer", f"{folder} ({tokenizer.kind}, {tokenizer.num_codebooks} x {tokenizer.codebook_size} codes)"),
        ("data", f"{metrics['eval_data']}/{metrics['eval_split']}, {metrics['eval_images']} images"),
        ("psnr", f"{metrics['psnr']:.2f} dB"),
        ("ssim", f"{metrics['ssim']:.4f}"),
        ("codebook usage", f"{100 * metrics['codebook_usage']:.1f}%"),
        ("perplexity", f"{metrics['perplexity']:.1f}"),
        ("tokens/image", f"{metrics['tokens_per_image']:.0f}"),
        ("bits/image", f"{metrics['bits_per_image']:.0f}"),
    ]
    return "\n".join(f"{name:<15}{value}" for name, value in rows)
