"""Score a trained run (`run=<dir>`), compare runs (`compare=[a,b]`) or measure a tokenizer (`task=tokenizer`)."""

from __future__ import annotations

import sys

from unimodal.cli import run_cli

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


def main(overrides: list[str]) -> None:
    if any(o.startswith(("run=", "compare=")) for o in overrides):
        from unimodal.eval.harness import evaluate

        evaluate(overrides)
        return
    from unimodal.eval.evaluate_cli import evaluate_tokenizer

    evaluate_tokenizer(overrides)


if __name__ == "__main__":
    sys.exit(run_cli(main, USAGE))
