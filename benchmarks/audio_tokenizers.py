"""One quantizer-dropout EnCodec trained on espeak speech, measured at 2, 4 and 8 codebooks (1, 2 and 4 kbps).

    python benchmarks/audio_tokenizers.py [steps=1800] [minutes=25] [levels=2,4,8] [num_test=60]
        [out=benchmarks/out/audio_tokenizers] [<any config override, e.g. tokenizer.audio.filters=32>]

Config: ``tokenizer/audio=encodec_speech data=speech`` (16 kHz, hop 320 = 50 frames/s, 8 x 1,024 codes).
Training: ``steps`` batches of 1-second windows cut from the train split's utterances (silent windows
dropped); ``minutes`` only caps a run that is far slower than expected. Held out: the test split (sentences
and voices that training never has), utterances up to 3 s (longer ones cut, shorter ones padded with
silence that the metrics trim off). Reports STOI, PESQ (wide band), SI-SNR, multi-scale
mel distance and the codebook usage of every level per bitrate, as ``<out>/results.md`` and
``results.json``; the codec and its card (``card.md``, ``spectrograms.png``, ``samples/``, all at 8
levels) go to ``<out>/codec`` (``scripts/evaluate.py task=tokenizer tokenizer=<out>/codec`` re-measures it).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

OPTIONS = {"steps": None, "minutes": None, "levels": "2,4,8", "num_test": "60",
           "out": "benchmarks/out/audio_tokenizers"}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| codebooks | kbps | tokens/s | STOI | PESQ | SI-SNR (dB) | mel distance | usage per level (min) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        usage = " ".join(f"{100 * u:.0f}" for u in row["codebook_usage_per_level"])
        lowest = 100 * row["min_codebook_usage"]
        lines.append(f"| {row['num_codebooks_used']} | {row['bitrate'] / 1000:.1f} | {row['tokens_per_second']:.0f} | "
                     f"{row.get('stoi', float('nan')):.3f} | {row.get('pesq', float('nan')):.2f} | "
                     f"{row['si_snr']:.2f} | {row['mel_distance']:.3f} | {usage} % ({lowest:.0f}%) |")
    return "\n".join(lines)


def log_losses(tokenizer: Any, every: int, started: float) -> None:
    """Print the training losses every ``every`` steps (a line per report, readable in a log file)."""
    inner = tokenizer.training_loss
    count = [0]

    def logged(waves: Any) -> Any:
        loss, logs = inner(waves)
        count[0] += 1
        if count[0] % every == 0:
            parts = ", ".join(f"{k}={v:.4g}" for k, v in logs.items() if k != "n_q")
            print(f"[audio benchmark] step {count[0]}: {parts}; {time.perf_counter() - started:.0f} s; "
                  f"load average {os.getloadavg()[0]:.1f}", flush=True)
        return loss, logs

    tokenizer.training_loss = logged


def main(argv: list[str]) -> None:
    import torch

    from unimodal.config import compose
    from unimodal.data.sources import load_samples
    from unimodal.eval.tokenizers.card import save_tokenizer
    from unimodal.eval.tokenizers.measure import evaluate_audio_tokenizer
    from unimodal.training.run import build_tokenizer, trainer_kwargs
    from unimodal.training.tokenizer_module import fit_tokenizer

    options, overrides = dict(OPTIONS), []
    for arg in argv:
        key, _, value = arg.partition("=")
        if key in options:
            options[key] = value
        else:
            overrides.append(arg)
    cfg = compose(["data=speech", "tokenizer/audio=encodec_speech", "modality=audio", "data.audio_seconds=3.0",
                   f"data.num_test={options['num_test']}", *overrides])
    if cfg.trainer.num_threads:
        torch.set_num_threads(int(cfg.trainer.num_threads))
    budget = cfg.tokenizer.audio.train
    if options["steps"]:
        budget.steps = int(options["steps"])
    if options["minutes"]:
        budget.max_minutes = float(options["minutes"])
    torch.manual_seed(int(cfg.seed))
    data = load_samples(cfg.data, ("train", "test"))
    sample_rate = int(cfg.data.sample_rate)
    train = data["train"].crops(sample_rate)   # 1-second windows
    test = data["test"].media("audio", 0, len(data["test"]))
    print(f"[audio benchmark] {len(train)} training windows of 1 s, {len(test)} held-out utterances; "
          f"{budget.steps} steps of {budget.batch_size}; load average {os.getloadavg()}", flush=True)
    tokenizer = build_tokenizer("audio", cfg.tokenizer.audio)
    started = time.perf_counter()
    log_losses(tokenizer, every=50, started=started)
    fit = fit_tokenizer(tokenizer, train, test[:16], budget, trainer_kwargs(cfg.trainer), progress=cfg.progress,
                        seed=int(cfg.seed), desc="audio")
    load = os.getloadavg()
    print(f"[audio benchmark] trained {fit['train_steps']} steps in {fit['train_seconds']} s; load average {load}",
          flush=True)
    tokenizer.eval()
    rows = []
    out = Path(options["out"])
    for levels in [int(v) for v in options["levels"].split(",")]:
        evaluation = evaluate_audio_tokenizer(tokenizer, test, num_codebooks=levels, desc=f"{levels} codebooks")
        rows.append(evaluation.metrics)
        print(table(rows[-1:]).splitlines()[-1], flush=True)
        if levels == tokenizer.num_codebooks:
            metrics = {**evaluation.metrics, "data": "speech",
                       **{k: fit[k] for k in ("train_steps", "train_seconds", "steps_per_second", "parameters")}}
            save_tokenizer(tokenizer, out / "codec", metrics, evaluation)
    result = {"rows": rows, "train": fit, "wall_seconds": round(time.perf_counter() - started, 1),
              "load_average_after_training": load,
              "command": " ".join(["python benchmarks/audio_tokenizers.py", *argv]),
              "config": {"tokenizer": dict(tokenizer.get_config()), "train": {k: budget[k] for k in
                                                                              ("steps", "batch_size", "lr")}}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result, indent=2))
    (out / "results.md").write_text(table(rows) + "\n")
    print(table(rows))


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
