"""Exact-answer accuracy of an instruction-tuned run on scenes it never saw (another seed).

Each scene is asked one question of every kind that fits it (unimodal/data/instruct.py). Text answers are
decoded greedily and must equal the computed answer; an edit's image must hold exactly the edited scene's
objects by the world's image analyzer. No learned judge is involved.

The interleaved ``swap`` question ("describe this image, then draw it with the colours swapped", asked of scenes
of two objects of different colours) is generated with ``output=["text", "image"]`` (greedy text, then the
image sampled like an edit's) and scored four ways: ``interleaved`` (the answer is text followed by one whole
image), ``swap-text`` (the text is exactly the caption), ``swap-image`` (the analyzer finds exactly the swapped
scene's objects) and ``swap-colours`` (the colours it finds, left to right, are the swapped colours: shapes may
be wrong).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from unimodal.data.chat import chat_prompt
from unimodal.data.instruct import KINDS, SWAP_QUESTION, VISUAL, ask, compare_question, edit_scene, swap_scene
from unimodal.data.synthetic.analyze import analyze_image
from unimodal.eval.world.engine import Score, encode_media
from unimodal.model.generate import SamplingConfig, generate_ids
from unimodal.sequence import Segment


@dataclass
class Question:
    kind: str
    segments: list[Segment]
    answer: Any             # text, the edited scene's (colour, shape) list, or (caption, that list) for swap
    question: str
    scene: Any = None       # the scene asked about (swap: for the figure of examples)


def build_questions(pipe: Any, world: Any, scenes: list[Any], seed: int = 0) -> list[Question]:
    """One question of each fitting kind per scene; ``compare`` pairs neighbouring scenes."""
    encode = pipe.tokenizers["text"].encode
    media = [m for m in ("image", "audio") if m in pipe.tokenizers]
    codes = {m: encode_media(pipe, world, scenes, m) for m in media}
    questions: list[Question] = []

    def text(value: str) -> Segment:
        return Segment("text", encode(value)[0])

    for index, scene in enumerate(scenes):
        objects, caption = scene.attributes(), world.caption(scene)
        if "image" in codes:
            image = Segment("image", codes["image"][index])
            for kind in ("count", "colour", "shape", "describe"):
                qa = ask(kind, objects, np.random.default_rng((seed, index, KINDS.index(kind))), caption)
                if qa is not None:
                    questions.append(Question(kind, [image, text(qa[0])], qa[1], qa[0]))
            edit = edit_scene(scene, np.random.default_rng((seed, index, KINDS.index("edit"))), world.held_out)
            if edit is not None:
                questions.append(Question("edit", [image, text(edit[0])], edit[1].attributes(), edit[0]))
            swapped = swap_scene(scene, world.held_out)
            if swapped is not None:
                questions.append(Question("swap", [image, text(SWAP_QUESTION)], (caption, swapped.attributes()),
                                          SWAP_QUESTION, scene))
            if index % 2 == 1:
                previous = scenes[index - 1]
                question, answer = compare_question(previous.attributes(), objects)
                pair = [Segment("image", codes["image"][index - 1]), image, text(question)]
                questions.append(Question("compare", pair, answer, question))
        if "audio" in codes:
            qa = ask("sound", objects, np.random.default_rng((seed, index, KINDS.index("sound"))), caption)
            questions.append(Question("sound", [Segment("audio", codes["audio"][index]), text(qa[0])], qa[1], qa[0]))
    return questions


def _normal(text: str) -> str:
    return " ".join(text.strip().lower().split())


SWAP_SCORES = ("interleaved", "swap-text", "swap-image", "swap-colours")
TEXT_BUDGET = 32   # new tokens for a text answer (a caption is about ten)


def score_instruct(pipe: Any, world: Any, scenes: list[Any], seed: int = 0, batch_size: int = 32,
                   image_sampling: SamplingConfig | None = None, progress: bool = True,
                   swap_samples: list[dict[str, Any]] | None = None) -> dict[str, Score]:
    """Accuracy per kind, plus ``visual`` (count, colour and shape together) and the swap scores (module doc).
    ``swap_samples``: a list that receives the first few swap answers for a figure (:func:`.figures.swap_figure`)."""
    questions = build_questions(pipe, world, scenes, seed)
    text_sampling = SamplingConfig(temperature={"default": 0.0}, max_new_tokens=TEXT_BUDGET)
    if image_sampling is None:  # an edit's answer is one image span (opener, codes, closer) and <eos>
        span = len(pipe.codec.span_plan("image")) + 3 if "image" in pipe.tokenizers else 1
        image_sampling = SamplingConfig(temperature={"default": 1.0}, cfg_scale={"default": 3.0}, max_new_tokens=span)
    # swap: the caption greedy and unguided as a text answer, then the image as an edit's
    swap_sampling = replace(image_sampling, temperature={**image_sampling.temperature, "text": 0.0},
                            cfg_scale={**image_sampling.cfg_scale, "text": 1.0},
                            max_new_tokens=image_sampling.max_new_tokens + TEXT_BUDGET)
    kinds = dict.fromkeys(q.kind for q in questions)
    scores = {kind: Score(kind) for kind in kinds if kind != "swap"}
    scores.update({name: Score(name) for name in (SWAP_SCORES if "swap" in kinds else ())})
    groups = [(["text"], text_sampling, [q for q in questions if q.kind not in ("edit", "swap")]),
              (["image"], image_sampling, [q for q in questions if q.kind == "edit"]),
              (["text", "image"], swap_sampling, [q for q in questions if q.kind == "swap"])]
    bar = tqdm(total=len(questions), desc="instruct questions", disable=not progress)
    for outputs, sampling, items in groups:
        for start in range(0, len(items), batch_size):
            chunk = items[start:start + batch_size]
            prompts = [chat_prompt(pipe.codec, q.segments) for q in chunk]
            generated = generate_ids(pipe.model, pipe.codec, prompts, outputs, sampling, seed=seed + start)
            for item, ids in zip(chunk, generated, strict=True):
                result = pipe.decode(ids)
                if item.kind == "swap":
                    _score_swap(world, item, result, scores, swap_samples)
                    continue
                if outputs == ["text"]:
                    got: Any = result.text
                    hit = _normal(got) == _normal(item.answer)
                else:
                    got = [(o.color, o.shape) for o in analyze_image(result.images[0])] if result.images else []
                    hit = got == [tuple(pair) for pair in item.answer]
                score = scores[item.kind]
                score.hits += int(hit)
                score.total += 1
                if len(score.examples) < 20:
                    score.examples.append({"question": item.question, "want": item.answer, "got": got, "hit": hit})
            bar.update(len(chunk))
    bar.close()
    visual = Score("visual")
    for kind in VISUAL:
        if kind in scores:
            visual.hits += scores[kind].hits
            visual.total += scores[kind].total
    if visual.total:
        scores["visual"] = visual
    return scores


def _score_swap(world: Any, item: Question, result: Any, scores: dict[str, Score],
                samples: list[dict[str, Any]] | None, keep: int = 6) -> None:
    caption, want = item.answer[0], [tuple(pair) for pair in item.answer[1]]
    interleaved = [p.modality for p in result.parts] == ["text", "image"] and not result.truncated
    found = [(o.color, o.shape) for o in analyze_image(result.images[0])] if result.images else []
    hits = {"interleaved": interleaved, "swap-text": _normal(result.text) == _normal(caption),
            "swap-image": found == want, "swap-colours": [c for c, _ in found] == [c for c, _ in want]}
    for name, hit in hits.items():
        score = scores[name]
        score.hits += int(hit)
        score.total += 1
        if len(score.examples) < 20:
            score.examples.append({"question": item.question, "want": [caption, want],
                                   "got": [result.text, found], "hit": hit})
    if samples is not None and len(samples) < keep:
        verdict = "exact" if hits["swap-image"] else "colours match" if hits["swap-colours"] else "wrong"
        samples.append({"image": world.render_image(item.scene), "text": result.text,
                        "generated": result.images[0] if result.images else None,
                        "target": world.render_image(swap_scene(item.scene, world.held_out)), "want": caption,
                        "verdict": f"{verdict} ({', '.join(' '.join(o) for o in found) or 'nothing found'})"})
