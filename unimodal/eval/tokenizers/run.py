"""``scripts/evaluate.py task=tokenizer tokenizer=<folder>``: measure an exported image, audio or video tokenizer on
a data split and write ``metrics.json``, ``card.md`` and figures into the folder (or ``out=<dir>``).

One path for every modality: load the tokenizer, read the split, measure (:mod:`.measure`), keep what training
recorded, write the report (:mod:`.card`), print a table. Images: PSNR, SSIM, codebook usage, perplexity, tokens
and bits per image. Sounds: STOI, PESQ, SI-SNR, mel distance, usage per level, tokens/s and bitrate, at
``num_codebooks`` levels. Clips: PSNR (mean and per decoded frame), temporal error, usage, tokens per clip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from unimodal.errors import ConfigError, UnimodalError
from unimodal.eval.tokenizers.card import (
    FRAMES_FILE,
    GRID_FILE,
    METRICS_FILE,
    SAMPLES_DIR,
    SPECTROGRAM_FILE,
    write_card,
)
from unimodal.eval.tokenizers.measure import (
    VideoEvaluation,
    evaluate_audio_tokenizer,
    evaluate_image_tokenizer,
    evaluate_video_tokenizer,
    psnr_per_frame,
)

DEFAULT_DATA = "synthetic"


def load_measured_tokenizer(path: str | None) -> Any:
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
        recorded = json.loads((folder / METRICS_FILE).read_text()).get("data")
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


def measure_tokenizer(options: dict[str, Any], data_overrides: list[str]) -> dict[str, Any]:
    """Measure the tokenizer of ``options["tokenizer"]`` on ``options["split"]``; write and return its metrics."""
    folder = Path(options["tokenizer"] or "")
    tokenizer = load_measured_tokenizer(options["tokenizer"])
    data_cfg = data_config(folder, tokenizer, data_overrides)
    if isinstance(tokenizer, torch.nn.Module):
        tokenizer.to(options["device"]).eval()
    measure = {"image": _measure_images, "audio": _measure_audio, "video": _measure_video}[tokenizer.modality]
    evaluation, written, rows = measure(tokenizer, data_cfg, options)
    try:
        metrics = json.loads((folder / METRICS_FILE).read_text())  # keep what training recorded
    except (OSError, ValueError):
        metrics = {}
    # eval_*: where these numbers come from; `data` stays the data the tokenizer was trained on.
    metrics.update(evaluation.metrics, eval_data=str(data_cfg.name), eval_split=str(options["split"]))
    out = Path(options["out"]) if options["out"] else folder
    write_card(tokenizer, out, metrics, evaluation)
    print("\n".join(f"{name:<15}{value}" for name, value in rows(folder, metrics)))
    print(f"wrote {', '.join(str(out / name) for name in [METRICS_FILE, 'card.md', *written])}")
    return metrics


def _measure_images(tokenizer: Any, data_cfg: Any, options: dict[str, Any]) -> tuple[Any, list[str], Any]:
    from unimodal.data.sources import load_images

    dataset = load_images(data_cfg, options["split"])
    images = dataset.images[: options["num_images"]] if options["num_images"] else dataset.images
    evaluation = evaluate_image_tokenizer(tokenizer, images, batch_size=options["batch_size"],
                                          progress=options["progress"], keep=options["grid"],
                                          size=getattr(tokenizer, "image_size", None))
    evaluation.metrics["eval_images"] = len(images)

    def rows(folder: Path, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        return [
            ("tokenizer", f"{folder} ({tokenizer.kind}, {tokenizer.num_codebooks} x {tokenizer.codebook_size} codes)"),
            ("data", f"{metrics['eval_data']}/{metrics['eval_split']}, {metrics['eval_images']} images"),
            ("psnr", f"{metrics['psnr']:.2f} dB"),
            ("ssim", f"{metrics['ssim']:.4f}"),
            ("codebook usage", f"{100 * metrics['codebook_usage']:.1f}%"),
            ("perplexity", f"{metrics['perplexity']:.1f}"),
            ("tokens/image", f"{metrics['tokens_per_image']:.0f}"),
            ("bits/image", f"{metrics['bits_per_image']:.0f}"),
        ]

    return evaluation, [GRID_FILE] if len(evaluation.originals) else [], rows


def _split_media(data_cfg: Any, options: dict[str, Any], modality: str) -> torch.Tensor:
    from unimodal.data.sources import load_samples

    split = str(options["split"])
    samples = load_samples(data_cfg, (split,))[split]
    return samples.media(modality, 0, min(len(samples), options["num_images"] or len(samples)))


def _measure_audio(tokenizer: Any, data_cfg: Any, options: dict[str, Any]) -> tuple[Any, list[str], Any]:
    waves = _split_media(data_cfg, options, "audio")
    levels = options["num_codebooks"]
    if levels is not None and not 1 <= levels <= tokenizer.num_codebooks:
        raise ConfigError(f"num_codebooks={levels}: the tokenizer has {tokenizer.num_codebooks} levels")
    evaluation = evaluate_audio_tokenizer(tokenizer, waves, num_codebooks=levels,
                                          batch_size=min(int(options["batch_size"]), 16),
                                          keep=min(int(options["grid"]), 4), progress=options["progress"])

    def rows(folder: Path, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        return [("tokenizer", f"{folder} ({tokenizer.kind}, {metrics['num_codebooks_used']} of "
                              f"{tokenizer.num_codebooks} x {tokenizer.codebook_size} codes)"),
                ("data", f"{metrics['eval_data']}/{metrics['eval_split']}, {metrics['eval_clips']} clips"),
                ("stoi", f"{metrics.get('stoi', float('nan')):.3f}"),
                ("pesq", f"{metrics.get('pesq', float('nan')):.2f}"),
                ("si-snr", f"{metrics['si_snr']:.2f} dB"), ("mel distance", f"{metrics['mel_distance']:.3f}"),
                ("codebook usage", " ".join(f"{100 * u:.0f}%" for u in metrics["codebook_usage_per_level"])),
                ("tokens/s", f"{metrics['tokens_per_second']:.0f}"),
                ("bitrate", f"{metrics['bitrate'] / 1000:.2f} kbps")]

    return evaluation, [SPECTROGRAM_FILE, SAMPLES_DIR + "/"] if evaluation.originals else [], rows


def _measure_video(tokenizer: Any, data_cfg: Any, options: dict[str, Any]) -> tuple[Any, list[str], Any]:
    from unimodal.data.video_sources import tensor_to_videos

    videos = _split_media(data_cfg, options, "video")
    count = len(videos)
    batch_size = min(int(options["batch_size"]), 16)
    per_frame, decoded = psnr_per_frame(tokenizer, videos, batch_size, options["progress"])
    measured = evaluate_video_tokenizer(tokenizer, videos, batch_size)  # the metrics training records, as it does
    evaluation = VideoEvaluation({**measured, "psnr_per_frame": [round(p, 2) for p in per_frame],
                                  "eval_clips": count})
    shown = min(int(options["grid"]), 4, count)
    if shown:
        evaluation.originals = tensor_to_videos(videos[:shown])
        evaluation.reconstructions = tensor_to_videos(decoded[:shown])

    def rows(folder: Path, metrics: dict[str, Any]) -> list[tuple[str, str]]:
        t, h, w = tokenizer.grid_shape
        return [("tokenizer", f"{folder} ({tokenizer.kind}, grid {t}x{h}x{w}, {tokenizer.codebook_size} codes)"),
                ("data", f"{metrics['eval_data']}/{metrics['eval_split']}, {count} clips of {videos.shape[1]} "
                         f"frames"),
                ("psnr", f"{metrics['psnr']:.2f} dB"),
                ("psnr/frame", " ".join(f"{p:.1f}" for p in per_frame)),
                ("temporal err", f"{metrics['temporal_error']:.4f}"),
                ("codebook usage", f"{100 * metrics['codebook_usage']:.1f}%"),
                ("perplexity", f"{metrics['perplexity']:.1f}"), ("tokens/clip", f"{metrics['tokens_per_clip']:.0f}")]

    return evaluation, [FRAMES_FILE] if shown else [], rows
