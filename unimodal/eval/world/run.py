"""``scripts/evaluate.py run=<dir>``: score a trained run on every direction it was trained on, both splits.

Writes ``report.md``, ``metrics.json`` and PNG figures into ``<run>/eval`` (or ``out=<dir>``).
``compare=[runA,runB]`` puts the metrics of several runs side by side (evaluating those that have none).
A run on real images goes to :mod:`unimodal.eval.realdata.run`. ``options`` are the command's, checked by
:mod:`unimodal.commands.evaluate` (``device`` already resolved).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from unimodal.errors import ConfigError, UnimodalError
from unimodal.run_folder import CONFIG_FILE

METRICS_FILE = "metrics.json"
KEEP_MEDIA = 24  # generated media of the first seed kept per split for the figures


def load_run(run: str | Path, device: str | None = None, synthetic: bool = False) -> tuple[Any, Any, Any]:
    """The run's pipeline (on ``device``; default cuda when there is one), saved config and synthetic world: what
    every evaluation of a run starts from. The world is None for runs on real images, unless ``synthetic`` asks
    for one (then such a run is refused, naming its data)."""
    from omegaconf import OmegaConf

    from unimodal.data.sources import make_world
    from unimodal.pipeline import Pipeline

    run_dir = Path(run)
    if not (run_dir / CONFIG_FILE).is_file():
        raise UnimodalError(f"run={run}: no config.yaml there; point run= at a folder written by scripts/train.py")
    cfg = OmegaConf.load(run_dir / CONFIG_FILE)
    world = make_world(cfg.data) if synthetic or str(cfg.data.name) == "synthetic" else None
    pipe = Pipeline.load(run_dir, device)
    if pipe.codec.anyres and "image" in pipe.tokenizers:
        # AnyRes runs are scored on the square images the analyzers and judges know: generated at the tokenizer's
        # size, beside real images read square (data.anyres off).
        side = int(pipe.tokenizers["image"].image_size)
        pipe = pipe.at_image_size((side, side))
        if cfg.data.get("anyres") is not None:
            cfg.data.anyres = None
    return pipe, cfg, world


def _directions(pipe: Any, wanted: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """Directions to score, and the skipped ones with the reason."""
    from unimodal.eval.world.engine import scorable

    tasks = [t for t in pipe.info["tasks"] if "->" in t]
    skipped = {t: "no exact analyzer for its modality yet" for t in tasks if not scorable(t)}
    chosen = [t for t in tasks if scorable(t)]
    if wanted:
        unknown = [d for d in wanted if d not in tasks]
        if unknown:
            raise ConfigError(f"directions={unknown[0]!r} is not a task of this run (it has {', '.join(tasks)})")
        chosen = [t for t in chosen if t in wanted]
    return chosen, skipped


def _codebook_usage(results: dict[str, Any], pipe: Any) -> dict[str, np.ndarray]:
    usage: dict[str, np.ndarray] = {}
    for direction, result in results.items():
        target = direction.split("->")[1]
        if target == "text" or not result.codes:
            continue
        size = int(pipe.tokenizers[target].codebook_size)
        counts = usage.setdefault(target, np.zeros(size, dtype=np.int64))
        counts += np.bincount(np.concatenate(result.codes).astype(np.int64), minlength=size)[:size]
    return usage


def evaluate_run(options: dict[str, Any], run: str | None = None) -> dict[str, Any]:
    """Score one run; write report.md, metrics.json and figures; return the metrics."""
    from unimodal.eval.plots import generation_grid
    from unimodal.eval.world import figures
    from unimodal.eval.world.lm_loss import bits_per_token_groups
    from unimodal.eval.world.report import write_report
    from unimodal.eval.world.stats import bar_verdicts, pool, with_controls
    from unimodal.eval.world.suite import SPLITS, colour_chance

    run = run or options["run"]
    pipe, cfg, world = load_run(run, options["device"])
    out = Path(options["out"]) if options["out"] and not options["compare"] else Path(run) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    if world is None and str(cfg.data.name) == "chat":
        raise UnimodalError(f"run {run} was tuned on your conversations (data=chat), which hold no answers to score "
                            f"against; score the run it started from ({cfg.get('init_from')}), or ask it with "
                            f"scripts/generate.py run={run} image=<file> question=\"...\" output=text")
    if world is None:
        if options["compare"]:
            raise UnimodalError(f"run {run} is on data={cfg.data.name}: compare= takes runs on data=synthetic")
        from unimodal.eval.realdata.run import evaluate_real_run

        return evaluate_real_run(options, run, pipe, cfg, out)
    started = time.perf_counter()
    chosen, skipped = _directions(pipe, options["directions"])
    seeds = [options["seed"] + i for i in range(options["seeds"])]
    results, tables, count = {}, {}, 0
    for judged, make, read, judge, group in _footings(pipe, cfg, world, chosen):
        count += sum(len(make(judged, split, options["samples"], options["seed"])) for split in SPLITS)
        first, seed_tables = score_seeds(pipe, judged, group, make, read, judge, seeds, options)
        results.update(first)
        tables.update(seed_tables)
    results = {d: results[d] for d in chosen}
    directions = {d: with_controls(pool(tables[d]["score"]), {k: pool(v) for k, v in tables[d].items() if k != "score"})
                  for d in chosen}
    metrics: dict[str, Any] = {
        "run": str(run), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "samples_per_split": options["samples"],
        "seed": options["seed"], "seeds": seeds, "cfg_scale": options["cfg_scale"],
        "temperature": options["temperature"], "rerank": options["rerank"],
        "directions": directions, "bars": bar_verdicts(directions), "not_scored": skipped,
        "colour_chance": {split: colour_chance(world, split) for split in SPLITS},
        "held_out_combinations": sorted(f"{c} {s}" for c, s in world.held_out)}
    if options["lm_samples"]:
        tasks = [t for t in pipe.info["tasks"] if "->" in t]
        groups = [(judged, [s for split in SPLITS for s in make(judged, split, options["lm_samples"],
                                                                 options["seed"] + 1)], directions)
                  for judged, make, _, _, directions in _footings(pipe, cfg, world, tasks)]
        metrics["lm_bits_per_token"] = bits_per_token_groups(pipe, groups, progress=options["progress"])
    if options["vqa_scenes"] and _is_instruct(Path(run), cfg):
        metrics["vqa"] = _vqa(pipe, world, options)
    usage = _codebook_usage(results, pipe)
    metrics["codebook_usage"] = {m: {"used": int((c > 0).sum()), "size": len(c)} for m, c in usage.items()}
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    pictures = []
    if "text->image" in results and generation_grid(results["text->image"].examples, out / "grid.png"):
        pictures.append(("text->image prompts and generations (green frame: exact)", "grid.png"))
    if results:
        figures.accuracy_bars(metrics["directions"], out / "accuracy.png")
        pictures.append(("accuracy per category and split", "accuracy.png"))
    if usage:
        figures.codebook_histograms(usage, out / "codebook_usage.png")
        pictures.append(("codes generated, per media modality", "codebook_usage.png"))
    if "text->video" in results and figures.frame_strip(results["text->video"].examples, out / "frames.png"):
        pictures.append(("text->video prompts and frames of the generated clips (green frame: motion right)",
                         "frames.png"))
    if "text->audio" in results and figures.spectrograms(results["text->audio"].examples, pipe.sample_rate,
                                                          out / "spectrograms.png"):
        pictures.append(("text->audio spectrograms", "spectrograms.png"))
    metrics["figures"] = [name for _, name in pictures]
    metrics["examples"] = {d: [{k: v for k, v in e.items() if k != "media"} for e in r.examples[:40]]
                           for d, r in results.items()}
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2, default=str))
    write_report(metrics, pictures, out / "report.md")
    print(f"\nrun {run}: {count} scenes and clips x {len(results)} directions x {len(seeds)} seeds in "
          f"{metrics['seconds']:.0f}s; exact [95% interval] (noise / shuffled control)")
    for direction, table in metrics["directions"].items():
        print(f"  {direction:<14} " + "  ".join(f"{split} {headline_cell(table[split]['exact'])}" for split in table))
    for verdict in metrics["bars"]:
        print(f"  bar {verdict['direction']} {verdict['split']} {verdict['category']} >= {verdict['bar']:.2f}: "
              f"{'met' if verdict['met'] else 'NOT met'} (lower bound {verdict['low']:.3f})")
    print(f"wrote {out / 'report.md'}, {out / METRICS_FILE} and {len(pictures)} figures")
    return metrics


def score_seeds(pipe: Any, world: Any, chosen: list[str], make: Any, read: Any, judge: Any, seeds: list[int],
                options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, list]]]:
    """Every direction at every seed (its own scenes and sampling stream), with the controls of each seed.

    Returns the first seed's results (examples, media and codes for the figures) and, per direction, the tables
    of every seed: ``score``, ``shuffled`` and (with ``controls``) ``noise``."""
    from unimodal.eval.world.controls import noise_producer, shuffled
    from unimodal.eval.world.engine import batched_producer, score_direction
    from unimodal.eval.world.suite import SPLITS

    first: dict[str, Any] = {}
    tables: dict[str, dict[str, list]] = {d: {"score": [], "shuffled": [], "noise": []} for d in chosen}
    for seed in seeds:
        scenes = [s for split in SPLITS for s in make(world, split, options["samples"], seed)]
        for d in chosen:
            common = dict(batch_size=options["batch_size"], sample_rate=pipe.sample_rate,
                          progress=options["progress"], read=read, judge=judge)
            result = score_direction(batched_producer(pipe, world, d, options["cfg_scale"], seed,
                                                      options["temperature"], options["rerank"]), world, d, scenes,
                                     keep_media=KEEP_MEDIA if seed == seeds[0] else 0, **common)
            first.setdefault(d, result)
            tables[d]["score"].append(result.metrics())
            tables[d]["shuffled"].append(shuffled(result, judge, seed))
            if options["controls"]:
                noise = noise_producer(pipe, world, d, options["cfg_scale"], seed, options["temperature"],
                                       options["rerank"])
                tables[d]["noise"].append(score_direction(noise, world, d, scenes, keep_media=0, **common).metrics())
    return first, {d: {k: v for k, v in t.items() if v} for d, t in tables.items()}


def headline_cell(cell: dict[str, Any]) -> str:
    """``0.62 [0.55, 0.68] (noise 0.00 / shuffled 0.05)``: a score, its interval and its controls."""
    controls = " / ".join(f"{k} {cell[k]['accuracy']:.2f}" for k in ("noise", "shuffled") if k in cell)
    return f"{cell['accuracy']:.2f} [{cell['low']:.2f}, {cell['high']:.2f}]" + (f" ({controls})" if controls else "")


def _footings(pipe: Any, cfg: Any, world: Any, directions: list[str]) -> list[tuple[Any, Any, Any, Any, list[str]]]:
    """What is asked and how outputs are judged, with the directions judged so: (world, make scenes, read, judge,
    directions). Directions with video are asked of clips; the others of still scenes (both in a modality=all run)."""
    from unimodal.eval.world.engine import read_motion
    from unimodal.eval.world.suite import categories, make_clips, make_scenes, motion_categories, motion_world

    moving = [d for d in directions if "video" in d.split("->")]
    still = [d for d in directions if d not in moving]
    footings = [(world, make_scenes, None, categories, still)] if still else []
    if moving:
        footings.append((motion_world(world, cfg), make_clips, read_motion, motion_categories, moving))
    return footings


def _is_instruct(run_dir: Path, cfg: Any) -> bool:
    from unimodal.run_folder import PRETRAINED_DIR

    return (run_dir / PRETRAINED_DIR).is_dir() or str(cfg.get("stage", {}).get("name", "")) == "instruct"


def _vqa(pipe: Any, world: Any, options: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """Exact-match answers of an instruction-tuned run, per question kind, on both splits."""
    from unimodal.eval.world.instruct import score_instruct
    from unimodal.eval.world.suite import SPLITS, make_scenes

    table = {}
    for split in SPLITS:
        scenes = [s.scene for s in make_scenes(world, split, options["vqa_scenes"], options["seed"] + 2)]
        scores = score_instruct(pipe, world, scenes, seed=options["seed"], progress=options["progress"])
        table[split] = {k: {"accuracy": s.accuracy, "hits": s.hits, "total": s.total} for k, s in scores.items()}
    return table


def _names(runs: list[str]) -> list[str]:
    """Short distinct labels: the folder name, with its parent where two runs share one."""
    names = [Path(r).name for r in runs]
    return [f"{Path(r).parent.name}/{n}" if names.count(n) > 1 else n for r, n in zip(runs, names, strict=True)]


def compare_runs(options: dict[str, Any]) -> dict[str, Any]:
    """One table and one figure of several runs' per-category accuracies (and LM bits per token)."""
    from unimodal.eval.world import figures
    from unimodal.eval.world.report import write_compare

    runs = options["compare"]
    metrics = {}
    for name, run in zip(_names(runs), runs, strict=True):
        path = Path(run) / "eval" / METRICS_FILE
        if options["reuse"] and path.is_file():
            metrics[name] = json.loads(path.read_text())
            print(f"{run}: reusing {path} (reuse=false evaluates again)")
        else:
            metrics[name] = evaluate_run(options, run)
    out = Path(options["out"] or f"runs/compare-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    figures.compare_bars(metrics, out / "compare.png")
    table = write_compare(metrics, dict(zip(_names(runs), runs, strict=True)), out / "compare.md")
    (out / "compare.json").write_text(json.dumps({n: {k: m.get(k) for k in ("run", "directions", "lm_bits_per_token",
                                                                         "vqa")} for n, m in metrics.items()},
                                                 indent=2))
    print(table)
    print(f"wrote {out / 'compare.md'}, {out / 'compare.json'} and {out / 'compare.png'}")
    return metrics
