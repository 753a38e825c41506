"""``scripts/evaluate.py task=tokenizer`` for a video tokenizer (framewise or causal3d): PSNR (mean and per
decoded frame), temporal error, codebook usage, perplexity and tokens per clip on a data split, written as
metrics.json, card.md and frames.png (clips over their reconstructions) into the folder (or ``out=<dir>``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from unimodal.eval.harness import resolve_device

FRAMES_FILE = "frames.png"


@torch.no_grad()
def psnr_per_frame(tokenizer: Any, videos: torch.Tensor, batch_size: int, progress: bool
                   ) -> tuple[list[float], torch.Tensor]:
    """Mean PSNR at each decoded frame position over all clips, and the decoded frames of the first batch."""
    from unimodal.eval.video_metrics import frame_psnr

    device = next(tokenizer.parameters()).device
    total, first = None, None
    for start in tqdm(range(0, len(videos), batch_size), desc="video tokenizer", disable=not progress):
        clips = videos[start:start + batch_size].to(device).float()
        frames = tokenizer.decode(tokenizer.encode(clips)).float()
        index = torch.as_tensor(tokenizer.frame_indices(clips.shape[1]), device=device)
        psnr = frame_psnr(clips.index_select(1, index), frames).sum(dim=0).cpu()   # [T']
        total = psnr if total is None else total + psnr
        first = frames.cpu() if first is None else first
    return (total / len(videos)).tolist(), first


def evaluate_video(tokenizer: Any, folder: Path, data_cfg: Any, options: dict[str, Any]) -> dict[str, Any]:
    from unimodal.data.sources import load_samples
    from unimodal.data.video_sources import tensor_to_videos
    from unimodal.eval.video_figures import reconstruction_strip
    from unimodal.eval.video_metrics import evaluate_video_tokenizer
    from unimodal.tokenizers.base import write_report

    split = str(options["split"])
    samples = load_samples(data_cfg, (split,))[split]
    count = min(len(samples), options["num_images"] or len(samples))
    videos = samples.media("video", 0, count)
    device = resolve_device(options["device"])
    tokenizer.to(device).eval()
    batch_size = min(int(options["batch_size"]), 16)
    per_frame, decoded = psnr_per_frame(tokenizer, videos, batch_size, options["progress"])
    measured = evaluate_video_tokenizer(tokenizer, videos, batch_size)  # the metrics training records, as it does
    try:
        metrics = json.loads((folder / "metrics.json").read_text())  # keep what training recorded
    except (OSError, ValueError):
        metrics = {}
    metrics.update(measured, psnr_per_frame=[round(p, 2) for p in per_frame], eval_data=str(data_cfg.name),
                   eval_split=split, eval_clips=count)
    out = Path(options["out"]) if options["out"] else folder
    out.mkdir(parents=True, exist_ok=True)
    shown = min(int(options["grid"]), 4, count)
    if shown:
        reconstruction_strip(tensor_to_videos(videos[:shown]), tensor_to_videos(decoded[:shown]), out / FRAMES_FILE)
    write_report(tokenizer, out, metrics)
    t, h, w = tokenizer.grid_shape
    rows = [("tokenizer", f"{folder} ({tokenizer.kind}, grid {t}x{h}x{w}, {tokenizer.codebook_size} codes)"),
            ("data", f"{metrics['eval_data']}/{split}, {count} clips of {videos.shape[1]} frames"),
            ("psnr", f"{metrics['psnr']:.2f} dB"),
            ("psnr/frame", " ".join(f"{p:.1f}" for p in per_frame)),
            ("temporal err", f"{metrics['temporal_error']:.4f}"),
            ("codebook usage", f"{100 * metrics['codebook_usage']:.1f}%"),
            ("perplexity", f"{metrics['perplexity']:.1f}"), ("tokens/clip", f"{metrics['tokens_per_clip']:.0f}")]
    print("\n".join(f"{name:<15}{value}" for name, value in rows))
    written = ["metrics.json", "card.md"] + ([FRAMES_FILE] if shown else [])
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return metrics
