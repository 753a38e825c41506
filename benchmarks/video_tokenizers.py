"""Video tokenizers compared on held-out moving Fashion-MNIST, 16 frames at 32x32: framewise vs causal3d.

    python benchmarks/video_tokenizers.py [steps=600] [batch_size=8] [lr=2e-3] [minutes=30] [num_train=2000]
        [num_test=200] [threads=1] [kinds=framewise,causal3d(,causal3d-64k)] [out=benchmarks/out/video_tokenizers]

Both tokenizers use the same quantizer (fsq [8,5,5,5], 1000 codes), the same f4 spatial grid (8x8 per
code frame), widths, losses and ``steps`` batches of ``batch_size`` clips (``minutes`` caps each one).
``framewise`` tokenizes all 16 frames (sample_frames=16): 16 x 64 = 1024 tokens; ``causal3d`` compresses
time 4x after the first frame: (1 + 4) x 64 = 320 tokens. Clips are made from the Fashion-MNIST train file
for training and from the t10k file for the test. Reports tokens per clip, PSNR per frame (mean over frames
and test clips), the temporal error (mean |change between frames, reconstructed - original|), codebook
usage, steps/s and parameters as one table in ``<out>/results.md`` and ``<out>/results.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

COMMON = ["modality=video", "data=moving_fashion_mnist", "data.video_frames=16", "data.image_size=32"]
KIND_OVERRIDES: dict[str, list[str]] = {
    "framewise": ["tokenizer/video=framewise", "tokenizer.video.sample_frames=16", "tokenizer.image.latent_dim=4",
                  "tokenizer.image.quantizer.levels=[8,5,5,5]", "tokenizer.image.block_channels=[16,32,32]"],
    "causal3d": ["tokenizer/video=causal3d", "tokenizer.video.latent_dim=4",
                 "tokenizer.video.quantizer.levels=[8,5,5,5]", "tokenizer.video.block_channels=[16,32,32]"],
    # Same tokens, a larger code per token (fsq 64,000 codes, ~16 bits; MAGVIT-v2 uses 2**18): fewer tokens need
    # more bits each. Not in the default `kinds`.
    "causal3d-64k": ["tokenizer/video=causal3d", "tokenizer.video.latent_dim=6",
                     "tokenizer.video.quantizer.levels=[8,8,8,5,5,5]", "tokenizer.video.block_channels=[16,32,32]"],
}


def main(argv: list[str]) -> None:
    import torch

    from unimodal.config import compose
    from unimodal.data.sources import load_samples
    from unimodal.errors import UnimodalError
    from unimodal.eval.tokenizers.card import save_tokenizer
    from unimodal.training.run import build_tokenizer, trainer_kwargs
    from unimodal.training.tokenizer_module import fit_tokenizer

    args = dict(a.split("=", 1) for a in argv)
    torch.set_num_threads(int(args.get("threads", 1)))
    kinds = args.get("kinds", "framewise,causal3d").split(",")
    unknown = [k for k in kinds if k not in KIND_OVERRIDES]
    if unknown:
        raise UnimodalError(f"kinds: unknown {unknown}; choose from {list(KIND_OVERRIDES)}")
    out = Path(args.get("out", "benchmarks/out/video_tokenizers"))
    out.mkdir(parents=True, exist_ok=True)
    budget = [f"tokenizer.video.train.steps={int(args.get('steps', 600))}",
              f"tokenizer.video.train.batch_size={int(args.get('batch_size', 8))}",
              f"tokenizer.video.train.lr={float(args.get('lr', 2e-3))}",
              f"tokenizer.video.train.max_minutes={float(args.get('minutes', 30))}",
              f"data.num_train={int(args.get('num_train', 2000))}", f"data.num_test={int(args.get('num_test', 200))}",
              "data.num_val=8"]
    cfg = compose(COMMON + budget)
    samples = load_samples(cfg.data, ("train", "test"))
    train = samples["train"].media("video", 0, len(samples["train"]))
    test = samples["test"].media("video", 0, len(samples["test"]))
    print(f"clips: train {tuple(train.shape)}, test {tuple(test.shape)}", flush=True)
    rows = []
    for kind in kinds:
        cfg = compose(COMMON + budget + KIND_OVERRIDES[kind])
        torch.manual_seed(0)
        tokenizer = build_tokenizer("video", cfg.tokenizer.video)
        started = time.perf_counter()
        metrics = fit_tokenizer(tokenizer, train, test, cfg.tokenizer.video.train, trainer_kwargs(cfg.trainer),
                                progress=True, seed=0, desc="video")
        metrics.update(kind=kind, wall_seconds=round(time.perf_counter() - started, 1))
        save_tokenizer(tokenizer.cpu().eval(), out / kind, metrics)
        print(json.dumps(metrics), flush=True)
        rows.append(metrics)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    table = ["| tokenizer | tokens / clip | PSNR / frame (dB) | temporal error | codebook usage | steps | steps/s "
             "| parameters |", "|---|---|---|---|---|---|---|---|"]
    table += [f"| {r['kind']} | {r['tokens_per_clip']:.0f} | {r['psnr']:.2f} | {r['temporal_error']:.4f} | "
              f"{100 * r['codebook_usage']:.1f}% | {r['train_steps']} | {r['steps_per_second']:.2f} | "
              f"{r['parameters'] / 1e3:.0f}k |" for r in rows]
    (out / "results.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
