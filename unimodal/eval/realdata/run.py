"""``scripts/evaluate.py run=<dir>`` for a run on real images (clipart, fashion_mnist, folder): text->image
judged by a CLIP-style score and a Fréchet distance on Fashion-MNIST classifier features (see :mod:`.judges`), and
the standard FID when ``inception=<weights file>`` is given (:mod:`unimodal.eval.metrics.fid`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unimodal.errors import DataError
from unimodal.eval.sampling import recipe_text

KEY = "fid_inception"   # the standard FID's entry in metrics.json


def generate_images(pipe: Any, captions: list[str], batch_size: int, cfg_scale: float | None, seed: int,
                    progress: bool = True) -> np.ndarray:
    """One image per caption, ``batch_size`` captions per ``generate_ids`` call."""
    from unimodal.eval.sampling import sampling_for
    from unimodal.model.generate import generate_ids
    from unimodal.sequence import Segment

    sampling = sampling_for(pipe, "image", cfg_scale)
    images = []
    for start in tqdm(range(0, len(captions), batch_size), desc="text->image", disable=not progress):
        texts = pipe.tokenizers["text"].encode(captions[start:start + batch_size])
        prompts = [pipe.codec.encode([Segment("text", ids)], add_eos=False).ids for ids in texts]
        for ids in generate_ids(pipe.model, pipe.codec, prompts, ["image"], sampling, seed=seed + start):
            generated = pipe.decode(ids).images
            images.append(generated[0] if generated else None)
    shape = next((im.shape for im in images if im is not None), None)
    if shape is None:
        raise DataError("the run generated no decodable image; is its LM trained (see <run>/lm)?")
    return np.stack([im if im is not None else np.zeros(shape, np.uint8) for im in images])


def _fd_features(options: dict[str, Any], steps: int) -> tuple[Any, float] | None:
    """The Fashion-MNIST classifier and its test accuracy, or None where the data is not installed."""
    from unimodal.config import compose
    from unimodal.data.sources import load_images
    from unimodal.eval.realdata.judges import classifier_accuracy, train_classifier

    data = compose(["data=fashion_mnist", "data.num_train=20000", "data.num_test=2000"]).data
    try:
        train, test = load_images(data, "train"), load_images(data, "test")
    except DataError as err:
        print(f"FD skipped: {err}")
        return None
    model = train_classifier(train.images, train.labels, steps=steps, progress=options["progress"])
    return model, classifier_accuracy(model, test.images, test.labels)


def evaluate_real_run(options: dict[str, Any], run: str, pipe: Any, cfg: Any, out: Path) -> dict[str, Any]:
    from unimodal.data.sources import load_images
    from unimodal.eval.metrics.fid import frechet_distance
    from unimodal.eval.plots import generation_grid
    from unimodal.eval.realdata.judges import clip_score, features, retrieval_accuracy, train_contrastive

    if "image" not in cfg.modality.media:
        raise DataError(f"{run} is a modality={cfg.modality.name} run on data={cfg.data.name}: the real-data "
                        f"judges score text->image only; clips are scored on data=synthetic, by the motion analyzer")
    started = time.perf_counter()
    inception = load_option(options, options["device"])
    steps = options["judge_steps"]
    train, test = load_images(cfg.data, "train"), load_images(cfg.data, "test")
    count = min(options["samples"], len(test))
    order = np.random.default_rng(options["seed"]).permutation(len(test))[:count]
    test = test.subset(order)
    judge = train_contrastive(train.images, train.captions, steps=steps, progress=options["progress"])
    retrieval, distinct = retrieval_accuracy(judge, test.images, test.captions)
    generated = generate_images(pipe, test.captions, options["batch_size"], options["cfg_scale"], options["seed"],
                                options["progress"])
    shuffled = test.captions[1:] + test.captions[:1]
    metrics: dict[str, Any] = {
        "run": str(run), "data": str(cfg.data.name), "date": time.strftime("%Y-%m-%d %H:%M:%S"), "samples": count,
        "seed": options["seed"], "cfg_scale": options["cfg_scale"], "judge_steps": steps,
        "clip_style": {"generated": clip_score(judge, generated, test.captions),
                       "real": clip_score(judge, test.images, test.captions),
                       "real_wrong_caption": clip_score(judge, test.images, shuffled),
                       "retrieval_accuracy": retrieval, "distinct_captions": distinct,
                       "trained_on": f"{len(train)} {cfg.data.name} training images and captions"}}
    classifier = _fd_features(options, steps)
    if classifier is not None:
        model, accuracy = classifier
        half = count // 2
        real = features(model, test.images)
        metrics["fd_fashion_mnist_classifier"] = {
            "generated_vs_real": frechet_distance(features(model, generated), real),
            "real_half_vs_half": frechet_distance(real[:half], real[half:]) if half > 1 else None,
            "classifier_test_accuracy": accuracy}
    metrics[KEY] = fid_entry(options, inception, generated, test.images)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    examples = [{"split": "test", "prompt": c, "hit": None, "media": im}
                for c, im in zip(test.captions[:16], generated[:16], strict=True)]
    generation_grid(examples, out / "grid.png", splits=("test",))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    write_real_report(metrics, out / "report.md")
    print((out / "report.md").read_text())
    return metrics


def load_option(options: dict[str, Any], device: str) -> Any:
    """The network named by ``inception=``, loaded before anything is generated (a bad file fails at once), or
    None where no file was given."""
    from unimodal.eval.metrics.fid import load_inception

    return load_inception(options["inception"], device) if options.get("inception") else None


def fid_entry(options: dict[str, Any], model: Any, generated: np.ndarray, real: np.ndarray) -> dict[str, Any]:
    """What ``metrics.json`` records under ``fid_inception``: the scores, or why they were skipped."""
    if model is None:
        return {"skipped": "no inception=<weights file> given (it is never downloaded)"}
    from unimodal.eval.metrics.fid import standard_fid

    return standard_fid(generated, real, options["inception"], batch_size=min(options["batch_size"], 32),
                        progress=options["progress"], model=model)


def report_lines(entry: dict[str, Any] | None) -> list[str]:
    """The report's section on the standard FID."""
    if not entry or "skipped" in entry:
        return ["", "Standard FID skipped: no Inception weights were given (`inception=<path to "
                "pt_inception-2015-12-05-6726825d.pth>`; nothing is downloaded)."]
    floor = f"{entry['real_half_vs_half']:.2f}" if entry["real_half_vs_half"] is not None else "-"
    return ["", "## FID (Inception-v3 pool features, torch-fidelity)", "",
            "| compared | FID |", "|---|---|",
            f"| generated vs real test images | {entry['generated_vs_real']:.2f} |",
            f"| real test images, one half vs the other (floor) | {floor} |", "",
            f"Weights: `{entry['weights']}`. On {entry['samples']} images; FID is biased upwards for small sample "
            "sizes, so compare it only with FIDs on the same number of images."]


def write_real_report(metrics: dict[str, Any], path: Path) -> None:
    clip = metrics["clip_style"]
    lines = [f"# Evaluation of `{metrics['run']}` (data={metrics['data']})", "",
             f"{metrics['date']}; text->image on {metrics['samples']} test captions, seed {metrics['seed']}, "
             f"{recipe_text(metrics['cfg_scale'], ('image',))}; {metrics['seconds']:.0f} s. No exact analyzer "
             "exists for real images, and no pretrained CLIP or Inception network can be downloaded here, so both "
             f"judges below are small CNNs trained for {metrics['judge_steps']} steps by this command (the standard "
             "FID, at the end, "
             "needs Inception weights given as a file).", "",
             "## CLIP-style score (a contrastive model trained on this dataset's own captions)", "",
             "| images | score |", "|---|---|",
             f"| generated, with their prompts | {clip['generated']:.1f} |",
             f"| real test images, with their captions (ceiling) | {clip['real']:.1f} |",
             f"| real test images, with another image's caption (floor) | {clip['real_wrong_caption']:.1f} |", "",
             f"The judge picks a real test image's own caption among the {clip['distinct_captions']} distinct ones "
             f"{100 * clip['retrieval_accuracy']:.1f}% of the time (trained on {clip['trained_on']})."]
    fd = metrics.get("fd_fashion_mnist_classifier")
    if fd:
        floor = f"{fd['real_half_vs_half']:.2f}" if fd["real_half_vs_half"] is not None else "-"
        lines += ["", "## FD on Fashion-MNIST classifier features (not the Inception FID)", "",
                  "| compared | FD |", "|---|---|",
                  f"| generated vs real test images | {fd['generated_vs_real']:.2f} |",
                  f"| real test images, one half vs the other (floor) | {floor} |", "",
                  "The feature network classifies Fashion-MNIST test images "
                  f"{100 * fd['classifier_test_accuracy']:.1f}% correctly; the features are its 64-d penultimate "
                  "layer."]
    else:
        lines += ["", "FD skipped: Fashion-MNIST is not installed (`sudo apt-get install dataset-fashion-mnist`)."]
    lines += report_lines(metrics.get(KEY))
    lines += ["", "![test captions over generated images](grid.png)"]
    path.write_text("\n".join(lines) + "\n")
