"""Measure an exported tokenizer: `python scripts/evaluate.py task=tokenizer tokenizer=<folder>`."""

from __future__ import annotations

import sys

from unimodal.cli import run_cli

USAGE = """usage: python scripts/evaluate.py task=tokenizer tokenizer=<folder> [data=<name>] [split=test] [key=value]

  Measures an image tokenizer (PSNR, SSIM, codebook usage, perplexity, tokens and bits per image) and
  writes metrics.json, card.md and reconstructions.png into its folder (or out=<dir>); an audio codec:
  STOI, PESQ, SI-SNR, mel distance, usage per level, tokens/s, bitrate, spectrograms.png and samples/.
  data=<name>      default: the data recorded in the tokenizer's metrics.json, else synthetic
  data.<key>=...   any data config key, e.g. data.num_val=100
  num_images=N     first N images (or clips) of the split (default: all)   grid=8 (images in the PNG; 0 = none)
  num_codebooks=K  audio: decode with the first K RVQ levels (a lower bitrate; default all)
  batch_size=64  progress=true  device=auto|cpu|cuda  out=<dir>"""


def main(overrides: list[str]) -> None:
    from unimodal.eval.evaluate_cli import evaluate_tokenizer

    evaluate_tokenizer(overrides)


if __name__ == "__main__":
    sys.exit(run_cli(main, USAGE))
