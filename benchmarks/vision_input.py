"""Reading images as tokens or as features, compared: ``tokens``, ``features + mlp`` and ``features + qformer`` with the
same LM size, steps and data, over several seeds.

    nice -n 5 python benchmarks/vision_input.py [rows=tokens,mlp,qformer] [seeds=0,1,2] [parts=synthetic,fashion]
        [model=tiny] [width=128] [lm_steps=250] [instruct_steps=250] [fashion_steps=250] [scenes=60]
        [fashion_samples=300] [fashion_train=20000] [out=runs/bench-vision]

Every row trains with ``scripts/train.py`` (one run at a time, ``trainer.num_threads=1``, step-bound: no time cap, the
tokenizer and encoder stages included) from the same tokenizers, encoder and token shards (under ``out``, trained by
the first run that needs them: the first features row trains the encoder):

- ``synthetic``: ``modality=image stage=instruct`` (pretraining ``lm_steps``, then chat tuning ``instruct_steps``).
  Scored on ``scenes`` scenes of each split (``seen``: colour-shape combinations training holds; ``held_out``: at least
  one it never shows): image->text exact caption accuracy (greedy, the caption parsed, every object in order), and
  visual-question accuracy (count, colour and shape questions, ``visual``; greedy, exact answers)
- ``fashion``: ``modality=image data=fashion_mnist stage=all`` (``fashion_steps``): class-caption accuracy, the greedy
  caption of ``fashion_samples`` test images equal to "a sneaker", "an ankle boot", ...
- tokens per image (``<boi>`` to ``<eoi>``) and LM time per training step: forward and backward of the run's model on
  one batch of ``lm.batch_size`` synthetic samples (half image->text, half text->image), the median of 10 after 2
  warm-ups, one thread

Each run's numbers go to ``<run>/bench.json`` (a rerun skips finished runs); the table (mean +- sample std over seeds)
is printed and every number is recorded in ``benchmarks/results/vision_input-<commit>.json``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROWS = {"tokens": [], "mlp": ["model.vision_input=features", "projector=mlp"],
        "qformer": ["model.vision_input=features", "projector=qformer"]}
LABELS = {"tokens": "tokens", "mlp": "features + mlp", "qformer": "features + qformer"}
# The LM: model=tiny at width 128 (0.5M parameters), so that 3 rows x 3 seeds x 2 data sets fit in about two hours of
# one shared CPU thread; every row gets the same.
DEFAULTS = {"rows": "tokens,mlp,qformer", "seeds": "0,1,2", "parts": "synthetic,fashion", "model": "tiny",
            "width": "128", "lm_steps": "250", "instruct_steps": "250", "fashion_steps": "250", "scenes": "60",
            "fashion_samples": "300", "fashion_train": "20000", "out": "runs/bench-vision"}


def train_overrides(part: str, row: str, seed: int, args: dict[str, str]) -> list[str]:
    out = Path(args["out"])
    width = int(args["width"])
    common = ["trainer=cpu", "trainer.num_threads=1", f"model={args['model']}", f"model.hidden_size={width}",
              "model.num_heads=4", f"model.intermediate_size={2 * width}", "progress=false", f"seed={seed}",
              f"paths.tokenizers_dir={out}/tokenizers", f"paths.cache_dir={out}/cache", "lm.max_minutes=600",
              "tokenizer.image.train.max_minutes=600", "encoder.train.max_minutes=600",   # step-bound, not load-bound
              f"run_dir={out}/{part}-{row}-s{seed}", "modality=image", *ROWS[row]]
    if part == "synthetic":
        return [*common, "stage=instruct", f"lm.max_steps={args['lm_steps']}",
                f"instruct.max_steps={args['instruct_steps']}", "instruct.max_minutes=600"]
    return [*common, "data=fashion_mnist", "stage=all", f"data.num_train={args['fashion_train']}",
            f"lm.max_steps={args['fashion_steps']}"]


def train_run(overrides: list[str], run_dir: Path) -> float:
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    with (run_dir / "train.log").open("a") as log:
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *overrides], cwd=ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    if done.returncode:
        raise RuntimeError(f"training failed ({run_dir / 'train.log'})")
    return time.perf_counter() - started


def tokens_per_image(pipe: Any) -> int:
    """Positions an input image takes, ``<boi>`` and ``<eoi>`` included."""
    from unimodal.feature_spans import feature_span_length

    if pipe.reads_features:
        return feature_span_length(None, pipe.codec.feature_slots) + 2
    return len(pipe.codec.span_plan("image")) + 2


def step_ms(pipe: Any, world: Any, batch_size: int, repeats: int = 10) -> float:
    """Median ms of one training step's forward and backward on a batch like pretraining's."""
    import torch

    from unimodal.data.tasks import task_segments
    from unimodal.eval.world.engine import media_payloads
    from unimodal.eval.world.suite import make_scenes
    from unimodal.training.lm_data import collate
    from unimodal.training.lm_module import masked_lm_loss

    scenes = [s.scene for s in make_scenes(world, "seen", batch_size, seed=7)][:batch_size]
    images = media_payloads(pipe, world, scenes, "image")
    texts = pipe.tokenizers["text"].encode([world.caption(s) for s in scenes])
    items = []
    for index, (text, image) in enumerate(zip(texts, images, strict=True)):
        task = "image->text" if index % 2 else "text->image"
        encoded = pipe.codec.encode(task_segments({"text": text, "image": image}, task))
        items.append({"ids": torch.from_numpy(encoded.ids), "loss_mask": torch.from_numpy(encoded.loss_mask),
                      "modality": torch.from_numpy(encoded.modality_of_position.astype("int64")),
                      "task": torch.tensor(0), "encoded": encoded})
    batch = collate(items, pipe.vocab.pad_id)
    pixels = pipe.pixel_values([item["encoded"] for item in items])
    model = pipe.model.train()
    times = []
    for _ in range(repeats + 2):
        started = time.perf_counter()
        loss, _ = masked_lm_loss(model, batch["ids"], batch["loss_mask"], batch["attention_mask"], images=pixels)
        loss.backward()
        times.append(time.perf_counter() - started)
        model.zero_grad(set_to_none=True)
    model.eval()
    return 1000 * statistics.median(times[2:])


def score_synthetic(run_dir: Path, scenes: int) -> dict[str, Any]:
    from omegaconf import OmegaConf

    import unimodal
    from unimodal.data.sources import make_world
    from unimodal.eval.world.engine import batched_producer, score_direction
    from unimodal.eval.world.instruct import score_instruct
    from unimodal.eval.world.suite import SPLITS, make_scenes

    cfg = OmegaConf.load(run_dir / "config.yaml")
    pipe, world = unimodal.load(run_dir, device="cpu"), make_world(cfg.data)
    evaluation = [s for split in SPLITS for s in make_scenes(world, split, scenes, seed=0)]
    captions = score_direction(batched_producer(pipe, world, "image->text"), world, "image->text", evaluation,
                               progress=False)
    result: dict[str, Any] = {"caption_exact": {s: captions.scores[s]["exact"].accuracy for s in SPLITS}, "vqa": {}}
    for split in SPLITS:
        asked = [s.scene for s in make_scenes(world, split, scenes, seed=2)]
        kinds = score_instruct(pipe, world, asked, progress=False, kinds=("count", "colour", "shape", "describe"))
        result["vqa"][split] = {k: {"accuracy": v.accuracy, "total": v.total} for k, v in kinds.items()}
    result["tokens_per_image"] = tokens_per_image(pipe)
    result["step_ms"] = step_ms(pipe, world, int(cfg.lm.batch_size))
    summary = json.loads((run_dir / "train_summary.json").read_text())
    tuned = json.loads((run_dir / "instruct" / "summary.json").read_text())
    result["train_seconds"] = {"pretrain": summary["train_seconds"], "instruct": tuned["train_seconds"]}
    result["steps"] = {"pretrain": summary["steps"], "instruct": tuned["steps"]}
    return result


def score_fashion(run_dir: Path, samples: int) -> dict[str, Any]:
    from omegaconf import OmegaConf

    import unimodal
    from unimodal.data.sources import load_images
    from unimodal.model.generate import SamplingConfig

    cfg = OmegaConf.load(run_dir / "config.yaml")
    pipe = unimodal.load(run_dir, device="cpu")
    test = load_images(cfg.data, "test")
    greedy = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=12)
    hits = 0
    for start in range(0, samples, 64):
        images = [test.images[i] for i in range(start, min(samples, start + 64))]
        for index, answer in enumerate(pipe.generate_batch(images, output="text", sampling=greedy), start):
            hits += " ".join(answer.text.split()) == test.captions[index]
    summary = json.loads((run_dir / "train_summary.json").read_text())
    return {"class_caption": hits / samples, "samples": samples, "tokens_per_image": tokens_per_image(pipe),
            "train_seconds": summary["train_seconds"], "steps": summary["steps"]}


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table(results: dict[str, dict[str, list[dict[str, Any]]]]) -> str:
    """Markdown: one row per input, mean +- std over seeds of every headline number."""
    def cell(values: list[float], percent: bool = True) -> str:
        mean, std = mean_std(values)
        return f"{100 * mean:.1f} ± {100 * std:.1f}" if percent else f"{mean:.0f} ± {std:.0f}"

    head = ("| input | tokens / image | LM ms / step | caption exact, seen | caption exact, held out "
            "| VQA visual, seen | VQA visual, held out | Fashion-MNIST class caption |\n" + "|---" * 8 + "|")
    lines = [head]
    for row in ROWS:
        synth, fashion = results.get("synthetic", {}).get(row, []), results.get("fashion", {}).get(row, [])
        if not synth and not fashion:
            continue
        tokens = (synth or fashion)[0]["tokens_per_image"]
        cells = [LABELS[row], str(tokens), cell([r["step_ms"] for r in synth], False) if synth else "-"]
        for key in ("seen", "held_out"):
            cells.append(cell([r["caption_exact"][key] for r in synth]) if synth else "-")
        for key in ("seen", "held_out"):
            cells.append(cell([r["vqa"][key]["visual"]["accuracy"] for r in synth]) if synth else "-")
        cells.append(cell([r["class_caption"] for r in fashion]) if fashion else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    from unimodal.errors import ConfigError
    from unimodal.records import write_record

    args = dict(DEFAULTS)
    for item in argv:
        key, _, value = item.partition("=")
        if key not in DEFAULTS:
            raise ConfigError(f"unknown key {key!r}; vision_input.py takes {', '.join(f'{k}=' for k in DEFAULTS)}")
        args[key] = value
    rows = [r for r in args["rows"].split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"rows={unknown[0]!r}: choose from {', '.join(ROWS)}")
    seeds = [int(s) for s in args["seeds"].split(",") if s]
    parts = [p for p in args["parts"].split(",") if p]
    started = time.time()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for part in parts:
        for seed in seeds:
            for row in rows:
                overrides = train_overrides(part, row, seed, args)
                run_dir = Path(args["out"]) / f"{part}-{row}-s{seed}"
                record = run_dir / "bench.json"
                if not record.is_file():
                    wall = train_run(overrides, run_dir)
                    scored = (score_synthetic(run_dir, int(args["scenes"])) if part == "synthetic"
                              else score_fashion(run_dir, int(args["fashion_samples"])))
                    scored.update(wall_seconds=round(wall, 1), command="python scripts/train.py " + " ".join(overrides),
                                  load_average=[round(x, 2) for x in os.getloadavg()])
                    record.write_text(json.dumps(scored, indent=2))
                scored = json.loads(record.read_text())
                results.setdefault(part, {}).setdefault(row, []).append({**scored, "seed": seed})
                print(f"[{part}] {LABELS[row]} seed {seed}: " + json.dumps(
                    {k: v for k, v in scored.items() if k not in ("command", "vqa")}), flush=True)
    print("\n" + table(results))
    write_record("vision_input", {"args": args, "table": table(results), "runs": results}, ROOT, argv, started)


if __name__ == "__main__":
    from unimodal.cli import run_cli

    sys.exit(run_cli(main, __doc__))
