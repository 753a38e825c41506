"""Packed rows against length-grouped padded batches: tokens/s and padding, same model, same data.

    python benchmarks/packing.py [steps=30] [warmup=5] [model=small] [rows=32] [num_train=6000] [threads=2]

Data: the default run's sequences (modality=image+audio, every direction, condition dropped 10%): captions
of the synthetic world through a BPE trained on them, and media codes drawn at random in the default
tokenizers' shapes and codebooks (8x8 image codes of 64, 2x40 audio codes of 256). Step time does not
depend on code values, only on lengths, which are the real ones. Each mode trains a fresh ``model=`` LM
(same seed) for ``warmup`` + ``steps`` steps of ``masked_lm_loss`` + fused AdamW, steps of the two
modes alternating, under bf16 autocast when the CPU has native bf16 (what training uses). ``padded`` is
the training default (``lm.batch_size`` sequences of one length group, padded to the longest), ``packed``
is ``lm.packing=true`` (``rows`` rows of ``model.context_length`` tokens). Reported: real (non-padding)
tokens/s, target tokens/s, padding fraction, s/step.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from functools import partial


def main(argv: list[str]) -> None:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    from unimodal.config import compose
    from unimodal.data.sources import load_samples
    from unimodal.data.tokens import TokenizedSet
    from unimodal.model.lm import build_lm, count_parameters
    from unimodal.run_folder import build_vocab, make_codec
    from unimodal.tokenizers.text import TextTokenizer
    from unimodal.training.lm_data import TaskBatches, TaskDataset, collate, length_groups
    from unimodal.training.lm_module import LMModule, masked_lm_loss
    from unimodal.training.packing import packed_loader
    from unimodal.training.run import build_tokenizer, cpu_has_native_bf16, media_shapes, tokenizer_options

    args = dict(a.split("=", 1) for a in argv)
    steps, warmup = int(args.get("steps", 30)), int(args.get("warmup", 5))
    torch.set_num_threads(int(args.get("threads", 2)))
    cfg = compose([f"model={args.get('model', 'small')}", f"data.num_train={args.get('num_train', 6000)}"])
    rows = int(args.get("rows", cfg.lm.batch_size))
    load = os.getloadavg()[0]
    print(f"load average {load:.2f}" + ("  (above 2.5: timings are not trustworthy)" if load > 2.5 else ""))

    samples = load_samples(cfg.data, ("train",))["train"]
    text = TextTokenizer.train(samples.captions, **tokenizer_options("text", cfg.tokenizer.text))
    tokenizers = {"text": text, **{m: build_tokenizer(m, cfg.tokenizer[m]) for m in cfg.modality.media}}
    vocab, shapes = build_vocab(tokenizers), media_shapes(tokenizers, cfg.data)
    rng = np.random.default_rng(0)
    count = len(samples)
    media = {"image": rng.integers(0, tokenizers["image"].codebook_size, (count, *shapes["image_grid"])),
             "audio": rng.integers(0, tokenizers["audio"].codebook_size,
                                   (count, tokenizers["audio"].num_codebooks, shapes["audio_frames"]))}
    tokens = TokenizedSet([np.asarray(ids) for ids in text.encode(samples.captions)], media)
    tasks, weights = list(cfg.modality.tasks), list(cfg.modality.weights) or None
    dataset = TaskDataset(tokens, make_codec({**shapes, "audio_layout": cfg.tokenizer.audio.layout}, vocab), tasks,
                          int(cfg.model.context_length), float(cfg.lm.cond_drop_prob), int(cfg.seed))
    batch = int(cfg.lm.batch_size)
    padded = DataLoader(dataset, collate_fn=partial(collate, pad_id=vocab.pad_id), batch_sampler=TaskBatches(
        count, len(tasks), batch, weights, seed=int(cfg.seed), groups=length_groups(tasks)))
    started = time.perf_counter()
    packed = packed_loader(dataset, rows, weights, int(cfg.seed))
    batches = len(packed)  # plans the epoch: item lengths and first-fit
    plan_seconds = time.perf_counter() - started
    print(f"packing plan: {batches} batches of {rows} x {cfg.model.context_length} for "
          f"{count * len(tasks)} items in {plan_seconds:.1f}s (once per epoch; item lengths are cached)")
    bf16 = cpu_has_native_bf16()
    autocast = partial(torch.autocast, "cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext

    # Steps alternate between the modes, so load from other processes slows both alike.
    runs = {}
    for mode, loader in (("padded", padded), ("packed", packed)):
        torch.manual_seed(0)
        model = build_lm(cfg.model, vocab)
        runs[mode] = {"model": model, "optimizer": LMModule(model, cfg.lm).configure_optimizers()["optimizer"],
                      "batches": iter(loader), "real": 0, "positions": 0, "targets": 0, "seconds": 0.0}
    for step in range(warmup + steps):
        for run in runs.values():
            item = next(run["batches"])  # loader time is excluded: both modes compose the same items
            started = time.perf_counter()
            with autocast():
                loss, _ = masked_lm_loss(run["model"], item["ids"], item["loss_mask"], item.get("attention_mask"),
                                         None, item.get("position_ids"))
            loss.backward()
            run["optimizer"].step()
            run["optimizer"].zero_grad(set_to_none=True)
            if step >= warmup:
                run["seconds"] += time.perf_counter() - started
                run["real"] += int((item["ids"] != vocab.pad_id).sum())
                run["positions"] += item["ids"].numel()
                run["targets"] += int(item["loss_mask"].sum())
    results = {mode: {"tokens_per_s": r["real"] / r["seconds"], "padding": 1 - r["real"] / r["positions"],
                      "s_per_step": r["seconds"] / steps, "tokens_per_step": r["real"] / steps,
                      "targets_per_s": r["targets"] / r["seconds"]} for mode, r in runs.items()}

    size = count_parameters(runs["packed"]["model"]) / 1e6
    print(f"\nmodel={cfg.model.name} ({size:.2f}M), {'bf16 autocast' if bf16 else 'fp32'}, "
          f"{torch.get_num_threads()} threads, {steps} timed steps each, load average {os.getloadavg()[0]:.2f}")
    print(f"{'mode':<8}{'tokens/s':>10}{'targets/s':>11}{'padding':>9}{'s/step':>8}{'tokens/step':>13}")
    for mode, r in results.items():
        print(f"{mode:<8}{r['tokens_per_s']:>10.0f}{r['targets_per_s']:>11.0f}{r['padding']:>9.1%}"
              f"{r['s_per_step']:>8.3f}{r['tokens_per_step']:>13.0f}")
    ratio = results["packed"]["tokens_per_s"] / results["padded"]["tokens_per_s"]
    print(f"packed / padded tokens/s: {ratio:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
