"""Image tokenizers compared on Fashion-MNIST at 32x32: same data, token budget, steps and metrics.

    python benchmarks/image_tokenizers.py [steps=1500] [minutes=10] [batch_size=64] [lr=2e-3]
        [kinds=vq,fsq,lfq,qformer-1d,diffusers-vq] [num_test=10000] [out=benchmarks/out/image_tokenizers]

Every tokenizer gives 64 tokens per image from about 1,024 codes (vq 1024, fsq [8,5,5,5] = 1000,
lfq 2**10, qformer-1d 64 queries x fsq 1000) and trains for the same ``steps`` batches of
``batch_size`` (``minutes`` caps each one). ``diffusers-vq`` is the baseline: diffusers' own
``VQModel`` at the same 8x8 grid, codebook size, widths, losses and steps. Reports test-set PSNR,
SSIM, codebook usage, perplexity, steps/s and parameters as one table, written to ``<out>/results.md``
and ``<out>/results.json``, with each tokenizer's folder (card.md, reconstructions.png) under ``<out>``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

WIDTHS = [16, 32, 32]  # f4 on 32x32 -> 8x8 = 64 tokens; shared by every tokenizer here and the baseline
KIND_OVERRIDES: dict[str, list[str]] = {
    "vq": ["tokenizer/image=vq"],
    "fsq": ["tokenizer/image=fsq", "tokenizer.image.latent_dim=4", "tokenizer.image.quantizer.levels=[8,5,5,5]"],
    "lfq": ["tokenizer/image=lfq"],
    "qformer-1d": ["tokenizer/image=qformer-1d"],
    "diffusers-vq": ["tokenizer/image=vq"],  # only for the shared budget keys; the model is built below
}


def diffusers_baseline(channels: int, image_size: int, codebook_size: int, latent_dim: int) -> Any:
    """diffusers' ``VQModel`` (its defaults, our widths), trainable through our loop and measurable by
    our metrics: the pretrained-codec wrapper gives it encode/decode, the grid tokenizer its loss."""
    from diffusers import VQModel

    from unimodal.tokenizers.image import GridImageTokenizer
    from unimodal.tokenizers.pretrained import PretrainedVQTokenizer

    class DiffusersVQBaseline(PretrainedVQTokenizer):
        trainable = True
        training_loss = GridImageTokenizer.training_loss

    model = VQModel(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * 3,
                    up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=tuple(WIDTHS),
                    layers_per_block=1, latent_channels=latent_dim, num_vq_embeddings=codebook_size,
                    norm_num_groups=8, sample_size=image_size)
    baseline = DiffusersVQBaseline(model_config=dict(model.config), image_size=image_size)
    baseline.l1_weight, baseline.l2_weight = 1.0, 1.0
    return baseline


def main(argv: list[str]) -> None:
    import torch

    from unimodal.config import compose
    from unimodal.data.sources import load_images
    from unimodal.data.tokens import images_to_tensor
    from unimodal.errors import UnimodalError
    from unimodal.eval.tokenizers.card import save_tokenizer
    from unimodal.eval.tokenizers.measure import evaluate_image_tokenizer
    from unimodal.training.run import build_tokenizer, trainer_kwargs
    from unimodal.training.tokenizer_module import fit_tokenizer

    args = dict(a.split("=", 1) for a in argv)
    kinds = args.get("kinds", "vq,fsq,lfq,qformer-1d,diffusers-vq").split(",")
    unknown = [k for k in kinds if k not in KIND_OVERRIDES]
    if unknown:
        raise UnimodalError(f"unknown kinds {unknown}; known: {sorted(KIND_OVERRIDES)}")
    budget = [f"tokenizer.image.train.steps={int(args.get('steps', 1500))}",
              f"tokenizer.image.train.max_minutes={float(args.get('minutes', 10))}",
              f"tokenizer.image.train.batch_size={int(args.get('batch_size', 64))}",
              f"tokenizer.image.train.lr={float(args.get('lr', 2e-3))}",
              f"tokenizer.image.block_channels=[{','.join(map(str, WIDTHS))}]"]
    out = Path(args.get("out", "benchmarks/out/image_tokenizers"))
    out.mkdir(parents=True, exist_ok=True)
    num_test = int(args.get("num_test", 10000))
    seed = int(args.get("seed", 0))

    data_cfg = compose(["data=fashion_mnist", "modality=image"]).data
    train = images_to_tensor(list(load_images(data_cfg, "train").images))
    val = images_to_tensor(list(load_images(data_cfg, "val").images[:512]))
    test = load_images(data_cfg, "test").images[:num_test]
    print(f"[bench] fashion_mnist: {len(train)} train, {len(test)} test images, "
          f"{tuple(train.shape[1:])}; kinds {kinds}", flush=True)

    rows: list[dict[str, Any]] = []
    for kind in kinds:
        cfg = compose(["data=fashion_mnist", "modality=image", *KIND_OVERRIDES[kind], *budget])
        tok_cfg = cfg.tokenizer.image
        torch.manual_seed(seed)
        if kind == "diffusers-vq":
            tokenizer = diffusers_baseline(int(cfg.data.channels), int(cfg.data.image_size),
                                           int(tok_cfg.quantizer.codebook_size), int(tok_cfg.latent_dim))
        else:
            tokenizer = build_tokenizer("image", tok_cfg)
        print(f"[bench] {kind}: training {tok_cfg.train.steps} steps (at most {tok_cfg.train.max_minutes} min)",
              flush=True)
        started = time.perf_counter()
        trained = fit_tokenizer(tokenizer, train, val, tok_cfg.train, trainer_kwargs(cfg.trainer), seed=seed,
                                desc=kind)
        evaluation = evaluate_image_tokenizer(tokenizer.eval(), test, batch_size=256, desc=f"test {kind}")
        metrics = {**evaluation.metrics, **{k: trained[k] for k in ("train_steps", "train_seconds",
                                                                       "steps_per_second", "parameters")}}
        metrics["codebook_size"] = int(tokenizer.codebook_size)
        folder = out / kind
        save_tokenizer(tokenizer, folder, metrics, evaluation)
        rows.append({"kind": kind, **metrics})
        print(f"[bench] {kind}: psnr {metrics['psnr']:.2f} dB, ssim {metrics['ssim']:.3f}, usage "
              f"{metrics['codebook_usage']:.0%} ({time.perf_counter() - started:.0f}s)", flush=True)

    table = format_table(rows)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    print("\n" + table)


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| tokenizer | test PSNR (dB) | SSIM | codebook usage | perplexity | codes | tokens/image | "
             "steps | steps/s | parameters |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {r['codebook_usage']:.1%} | "
                     f"{r['perplexity']:.0f} | {r['codebook_size']} | {r['tokens_per_image']:.0f} | "
                     f"{r['train_steps']} | {r['steps_per_second']:.2f} | {r['parameters'] / 1e6:.2f}M |")
    return "\n".join(lines)


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
