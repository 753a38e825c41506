"""``scripts/evaluate.py task=tokenizer`` for an audio tokenizer: STOI, PESQ, SI-SNR, mel distance, codebook
usage per level, tokens/s and bitrate on a data split, written as metrics.json, card.md, spectrograms.png
and WAV pairs into the tokenizer's folder (or ``out=<dir>``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from unimodal.errors import ConfigError
from unimodal.eval.harness import resolve_device


def evaluate_audio(tokenizer: Any, folder: Path, data_cfg: Any, options: dict[str, Any]) -> dict[str, Any]:
    from unimodal.data.sources import load_samples
    from unimodal.eval.audio_metrics import SAMPLES_DIR, SPECTROGRAM_FILE, evaluate_audio_tokenizer, write_audio_report

    samples = load_samples(data_cfg, (str(options["split"]),))[str(options["split"])]
    count = min(len(samples), options["num_images"] or len(samples))
    waves = samples.media("audio", 0, count)
    device = resolve_device(options["device"])
    tokenizer.to(device).eval()
    levels = options["num_codebooks"]
    if levels is not None and not 1 <= levels <= tokenizer.num_codebooks:
        raise ConfigError(f"num_codebooks={levels}: the tokenizer has {tokenizer.num_codebooks} levels")
    evaluation = evaluate_audio_tokenizer(tokenizer, waves, num_codebooks=levels,
                                          batch_size=min(int(options["batch_size"]), 16),
                                          keep=min(int(options["grid"]), 4), progress=options["progress"])
    try:
        metrics = json.loads((folder / "metrics.json").read_text())  # keep what training recorded
    except (OSError, ValueError):
        metrics = {}
    metrics.update(evaluation.metrics, eval_data=str(data_cfg.name), eval_split=str(options["split"]))
    out = Path(options["out"]) if options["out"] else folder
    write_audio_report(tokenizer, out, metrics, evaluation)
    rows = [("tokenizer", f"{folder} ({tokenizer.kind}, {metrics['num_codebooks_used']} of "
                          f"{tokenizer.num_codebooks} x {tokenizer.codebook_size} codes)"),
            ("data", f"{metrics['eval_data']}/{metrics['eval_split']}, {metrics['eval_clips']} clips"),
            ("stoi", f"{metrics.get('stoi', float('nan')):.3f}"), ("pesq", f"{metrics.get('pesq', float('nan')):.2f}"),
            ("si-snr", f"{metrics['si_snr']:.2f} dB"), ("mel distance", f"{metrics['mel_distance']:.3f}"),
            ("codebook usage", " ".join(f"{100 * u:.0f}%" for u in metrics["codebook_usage_per_level"])),
            ("tokens/s", f"{metrics['tokens_per_second']:.0f}"), ("bitrate", f"{metrics['bitrate'] / 1000:.2f} kbps")]
    print("\n".join(f"{name:<15}{value}" for name, value in rows))
    written = ["metrics.json", "card.md"] + ([SPECTROGRAM_FILE, SAMPLES_DIR + "/"] if evaluation.originals else [])
    print(f"wrote {', '.join(str(out / name) for name in written)}")
    return metrics
