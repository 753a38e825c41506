"""Decode speed: one 256-token image with classifier-free guidance, our engine against HF ``generate()``.

    python benchmarks/generate_speed.py [model=large] [batches=1,16] [device=cuda] [dtype=bf16] [repeats=3]
        [warmup=1] [variants=ours,ours_step,eager,generate,generate_static] [grid=16] [codes=8192] [vocab=16384]
        [prompt=16]
        [cfg=3.0] [temperature=1.0] [threads=]

Every variant decodes after the same ``batch`` prompts (``<bos>`` and ``prompt`` random text ids) with the same
model (``conf/model/<model>.yaml`` with random weights over a ``vocab``-id vocabulary: text ids, the special
tokens and ``codes`` image codes; seed 0) in ``dtype`` (default bf16 on CUDA, fp32 on a CPU). Guidance doubles
the batch: each prompt runs beside its unconditional twin (``<bos>`` alone), as ``generate_ids`` does.

- ``ours``: ``generate_ids(..., fast=true)``, the whole engine: static KV cache with the one-token step compiled
  on CUDA (``unimodal/model/fast_decode.py``; uncompiled on a CPU), span constraints (``<boi>``, the
  ``grid`` x ``grid`` codes, ``<eoi>``, ``<eos>``: 3 more tokens than the image), CFG, sampling per row.
- ``ours_step``: the same static decoder stepped alone for as many tokens, fed a fixed token, with no
  sampling, constraints or CFG mixing: the model's share of ``ours`` (the rest is the Python sampling loop).
- ``eager``: ``generate_ids(..., fast=false)``, the same engine over the HF forward with its dynamic cache.
- ``generate``: ``model.generate()`` with the default dynamic cache, uncompiled, sampling at the same
  temperature with ``top_k=0``, exactly as many new tokens (``min_new_tokens`` = ``max_new_tokens``, no
  constraints) and a logits processor that mixes each conditional row with its twin (``uncond + cfg * (cond -
  uncond)``) and hands the mix to both; twins then draw their own samples (same compute per step). It embeds
  ids plainly (no media-position table: identical to ours for ``model=large``, which has none).
- ``generate_static``: the same ``model.generate()`` call with ``cache_implementation="static"`` and a
  ``CompileConfig``, the Hugging Face recipe for fast decoding: ``generate`` then compiles the model's forward
  with ``torch.compile`` (``mode="reduce-overhead"``, i.e. CUDA graphs, on CUDA; inductor's default mode on a
  CPU, where HF compiles only when asked to). Compilation happens in the warm-up. If it fails, the row records
  the error instead of a time.

The reference to beat is not one of these: LlamaGen's compiled static-cache decoder, 1.34 ms/token for a 343M
model, 256 image tokens with CFG at batch 1 on an H200 (see benchmarks/RESULTS.md).

ms/token is the wall time of one whole generation (prompt prefill included) over its number of decode steps
(``grid**2 + 3``), i.e. the latency of one token position for the whole batch; tokens/s counts every prompt's
tokens. Each variant runs ``warmup`` untimed generations (compilation happens there), then ``repeats`` timed
ones, round-robin over the variants; the best is kept (other load only ever slows a run down).
Prints a table and appends the rows to ``benchmarks/results/generate_speed-<commit>.json``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("ours", "ours_step", "eager", "generate", "generate_static")
# What to beat: the fastest open image generator's decoder, measured on an H200 on 2026-11-28 (RESULTS.md).
REFERENCE = {"what": "LlamaGen's compiled static-KV-cache decoder", "ms_per_token": 1.34, "device": "H200",
             "parameters": 343_000_000, "setup": "256 image tokens with CFG, batch 1"}


def _sync(device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def make_prompts(vocab: Any, batch: int, length: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.concatenate([[vocab.bos_id], rng.integers(0, vocab.text_size, length)]) for _ in range(batch)]


def guided_batch(prompts: list[np.ndarray], pad_id: int, bos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts and their unconditional twins (``<bos>``), left-padded as ``generate_ids`` lays them out."""
    rows = prompts + [np.array([bos_id])] * len(prompts)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.from_numpy(row)
        attention[i, width - len(row):] = 1
    return ids, attention


def run_engine(model: Any, codec: Any, prompts: list[np.ndarray], args: dict[str, Any], fast: str) -> int:
    """One guided image generation through ``generate_ids``; returns the decode steps it took."""
    from unimodal.model.generate import SamplingConfig, generate_ids

    steps = codec.image_grid[0] * codec.image_grid[1] + 3
    sampling = SamplingConfig(temperature={"default": args["temperature"]}, cfg_scale={"default": args["cfg"]},
                              max_new_tokens=steps, fast=fast)
    ids = generate_ids(model, codec, prompts, ["image"], sampling, seed=0)
    if any(len(row) != steps for row in ids):
        raise RuntimeError(f"expected {steps} tokens per row, got {[len(row) for row in ids]}")
    return steps


def run_step(model: Any, codec: Any, prompts: list[np.ndarray], args: dict[str, Any]) -> int:
    """The static decoder alone: prefill the guided batch, then one fixed token per step."""
    from unimodal.model.fast_decode import fast_decoder

    vocab = codec.vocab
    steps = codec.image_grid[0] * codec.image_grid[1] + 3
    decoder = fast_decoder(model, "true", steps)
    decoder.prefill(*guided_batch(prompts, vocab.pad_id, vocab.bos_id))
    token = torch.full((2 * len(prompts),), vocab.range_of("image", 0)[0])
    for _ in range(steps - 1):
        decoder.step(token)
    return steps


def run_generate(model: Any, codec: Any, prompts: list[np.ndarray], args: dict[str, Any], static: bool = False) -> int:
    """HF ``generate()`` and batched CFG through a logits processor; with ``static``, a static cache and the forward
    compiled by ``generate`` itself."""
    from transformers import CompileConfig, LogitsProcessor, LogitsProcessorList

    vocab, device, scale = codec.vocab, next(model.parameters()).device, args["cfg"]
    steps = codec.image_grid[0] * codec.image_grid[1] + 3

    class BatchedGuidance(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            cond, uncond = scores.chunk(2)
            # min_new_tokens has set <eos> to -inf in both rows; the mix there would be nan
            mixed = torch.where(torch.isinf(cond), cond, uncond + scale * (cond - uncond))
            return torch.cat([mixed, mixed])

    ids, attention = guided_batch(prompts, vocab.pad_id, vocab.bos_id)
    width = ids.shape[1]
    sample = args["temperature"] > 0
    extra: dict[str, Any] = {}
    if static:
        compile_config = CompileConfig(mode="reduce-overhead" if device.type == "cuda" else "default")
        compile_config._compile_all_devices = True  # HF compiles on CUDA by itself; on a CPU only when asked
        extra = {"cache_implementation": "static", "compile_config": compile_config}
    out = model.generate(input_ids=ids.to(device), attention_mask=attention.to(device),
                         max_new_tokens=steps, min_new_tokens=steps, do_sample=sample,
                         temperature=args["temperature"] if sample else None, top_k=0 if sample else None,
                         top_p=None, logits_processor=LogitsProcessorList([BatchedGuidance()]),
                         pad_token_id=vocab.pad_id, eos_token_id=vocab.eos_id, **extra)
    if out.shape[1] != width + steps:
        raise RuntimeError(f"generate() made {out.shape[1] - width} tokens, expected {steps}")
    return steps


def main(argv: list[str]) -> None:
    from tqdm import tqdm

    from unimodal.config import compose
    from unimodal.errors import ConfigError
    from unimodal.model.lm import build_lm, count_parameters
    from unimodal.records import write_record
    from unimodal.sequence import SequenceCodec
    from unimodal.vocab import SPECIALS, Vocabulary

    args: dict[str, Any] = dict(a.split("=", 1) for a in argv)
    device = args.get("device", "cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda but torch sees no CUDA device; use device=cpu")
    dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    dtype_name = args.get("dtype", "bf16" if device == "cuda" else "fp32")
    if dtype_name not in dtypes:
        raise ConfigError(f"dtype={dtype_name}: choose from {', '.join(dtypes)}")
    if "threads" in args:
        torch.set_num_threads(int(args["threads"]))
    variants = args.get("variants", ",".join(VARIANTS)).split(",")
    if set(variants) - set(VARIANTS):
        raise ConfigError(f"variants={args['variants']}: choose from {','.join(VARIANTS)}")
    batches = [int(b) for b in str(args.get("batches", "1,16")).split(",")]
    grid, codes = int(args.get("grid", 16)), int(args.get("codes", 8192))
    text_size = int(args.get("vocab", 16384)) - len(SPECIALS) - codes
    if text_size < 1:
        raise ConfigError(f"vocab={args.get('vocab', 16384)} leaves no text ids beside codes={codes} image codes")
    args.update(cfg=float(args.get("cfg", 3.0)), temperature=float(args.get("temperature", 1.0)))
    repeats, warmup = int(args.get("repeats", 3)), int(args.get("warmup", 1))

    cfg = compose([f"model={args.get('model', 'large')}"])
    vocab = Vocabulary(text_size, {"image": (codes, 1)})
    codec = SequenceCodec(vocab, (grid, grid))
    torch.manual_seed(0)
    model = build_lm(cfg.model, vocab).to(device=device, dtype=dtypes[dtype_name]).eval()
    runners = {"ours": lambda p: run_engine(model, codec, p, args, "true"),
               "ours_step": lambda p: run_step(model, codec, p, args),
               "eager": lambda p: run_engine(model, codec, p, args, "false"),
               "generate": lambda p: run_generate(model, codec, p, args),
               "generate_static": lambda p: run_generate(model, codec, p, args, static=True)}

    rows: list[dict[str, Any]] = []
    warm: dict[tuple[int, str], float] = {}
    for batch in batches:
        prompts = make_prompts(vocab, batch, int(args.get("prompt", 16)))
        best: dict[str, float] = {}
        failed: dict[str, str] = {}
        with torch.no_grad():
            for variant in variants:
                started = time.perf_counter()
                for _ in tqdm(range(warmup), desc=f"warm-up {variant} batch {batch}", leave=False):
                    try:
                        runners[variant](prompts)
                    except Exception as err:  # a baseline that cannot run here is a result too: record why
                        failed[variant] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                        print(f"[generate_speed] batch {batch} {variant} failed: {failed[variant]}", flush=True)
                        break
                warm[(batch, variant)] = round(time.perf_counter() - started, 1)
            for _ in tqdm(range(repeats), desc=f"batch {batch}", leave=False):
                for variant in (v for v in variants if v not in failed):
                    start = _sync(device)
                    steps = runners[variant](prompts)
                    ms = 1000 * (_sync(device) - start) / steps
                    best[variant] = min(best.get(variant, ms), ms)
        for variant in variants:
            reference = best.get("generate")
            if variant in failed:
                rows.append({"batch": batch, "variant": variant, "error": failed[variant]})
                continue
            rows.append({"batch": batch, "variant": variant, "ms_per_token": round(best[variant], 3),
                         "tokens_per_s": round(1000 * batch / best[variant], 1),
                         "vs_generate": round(best[variant] / reference, 3) if reference else None,
                         "warmup_seconds": warm[(batch, variant)]})
            print(f"[generate_speed] batch {batch} {variant}: {best[variant]:.3f} ms/token", flush=True)

    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"\nmodel={cfg.model.name} ({count_parameters(model) / 1e6:.1f}M parameters, vocab {vocab.size}), "
          f"{grid}x{grid} image + 3 tokens, cfg {args['cfg']}, temperature {args['temperature']}, {dtype_name}, "
          f"{name}; best of {repeats} after {warmup} warm-up")
    print(f"{'batch':>5}  {'variant':<16}{'ms/token':>10}{'tokens/s':>11}{'/ generate':>11}")
    for row in rows:
        if "error" in row:
            print(f"{row['batch']:>5}  {row['variant']:<16}  failed: {row['error']}")
            continue
        ratio = "" if row["vs_generate"] is None else f"{row['vs_generate']:.3f}"
        print(f"{row['batch']:>5}  {row['variant']:<16}{row['ms_per_token']:>10.3f}{row['tokens_per_s']:>11.1f}"
              f"{ratio:>11}")
    write_record("generate_speed", {"model": cfg.model.name, "parameters": count_parameters(model),
                                    "vocab": vocab.size, "grid": grid, "cfg": args["cfg"],
                                    "temperature": args["temperature"], "dtype": dtype_name, "device": name,
                                    "repeats": repeats, "warmup": warmup, "rows": rows, "reference": REFERENCE},
                 ROOT, argv)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__.split("\n\n")[1]))
