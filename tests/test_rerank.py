"""Reranking by the inverse direction: the kept answer is the candidate the inverse task scores best, n=1 is plain
generation, and what cannot be scored is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from unimodal.data.tasks import task_segments
from unimodal.errors import UnimodalError
from unimodal.eval.sampling import sampling_for
from unimodal.eval.world.engine import prompt_ids
from unimodal.eval.world.suite import make_scenes
from unimodal.pipeline.rerank import (
    CANDIDATE_SEED_STRIDE,
    answer_segment,
    candidate_sampling,
    rerank_ids,
    sequence_nats,
)


@pytest.fixture(scope="module")
def loaded(smoke_run):
    from unimodal.eval.world.run import load_run

    _, run_dir = smoke_run
    pipe, _, world = load_run(str(run_dir), "cpu")
    return pipe, world


def _inverse_nats(pipe, prompt, ids, target):
    source = pipe.codec.decode(prompt.ids)[0]
    answer = answer_segment(pipe, ids, target)
    if answer is None:
        return np.inf
    payloads = {target: answer.payload, source.modality: source.payload}
    return sequence_nats(pipe, [pipe.codec.encode(task_segments(payloads, f"{target}->{source.modality}"))])[0]


@pytest.mark.parametrize("direction", ["image->text", "text->image"])
def test_rerank_keeps_the_candidate_the_inverse_task_scores_best(loaded, one_thread, direction):
    pipe, world = loaded
    source, _, target = direction.partition("->")
    scenes = make_scenes(world, "seen", 3, seed=0)
    prompts = prompt_ids(pipe, world, scenes, source)
    sampling = sampling_for(pipe, target)
    n = 4
    chosen = rerank_ids(pipe, prompts, target, sampling, n, seed=5)
    for i, prompt in enumerate(prompts):  # every candidate drawn again, one prompt at a time, and scored
        candidates = [pipe.generate_ids(prompts, [target], candidate_sampling(sampling, target, j),
                                        seed=5 + j * CANDIDATE_SEED_STRIDE)[i] for j in range(n)]
        scores = [_inverse_nats(pipe, prompt, ids, target) for ids in candidates]
        assert any(np.array_equal(chosen[i], c) for c in candidates)
        kept = _inverse_nats(pipe, prompt, chosen[i], target)
        assert kept == pytest.approx(min(scores), rel=1e-4, abs=1e-4)
    plain = pipe.generate_ids(prompts, [target], sampling, seed=5)
    for a, b in zip(rerank_ids(pipe, prompts, target, sampling, 1, seed=5), plain, strict=True):
        assert np.array_equal(a, b)  # n=1 is plain generation


def test_text_candidates_start_greedy_then_spread(loaded):
    pipe, _ = loaded
    sampling = sampling_for(pipe, "text")
    assert candidate_sampling(sampling, "text", 0).get("temperature", "text") == 0.0
    assert candidate_sampling(sampling, "text", 1).get("temperature", "text") > 1.0
    image = sampling_for(pipe, "image")
    assert candidate_sampling(image, "image", 3) is image  # media candidates: the given sampling


def test_what_cannot_be_scored_is_refused(loaded):
    pipe, world = loaded
    scenes = make_scenes(world, "seen", 1, seed=0)
    prompts = prompt_ids(pipe, world, scenes, "text")
    with pytest.raises(UnimodalError, match="no inverse direction"):
        rerank_ids(pipe, prompts, "text", sampling_for(pipe, "text"), 2)
    with pytest.raises(UnimodalError, match="at least one candidate"):
        rerank_ids(pipe, prompts, "image", sampling_for(pipe, "image"), 0)
    info = dict(pipe.info)
    try:  # a run that never trained image->text cannot score text->image answers
        pipe.info = {**info, "tasks": [t for t in info["tasks"] if t != "image->text"]}
        with pytest.raises(UnimodalError, match="inverse task image->text"):
            rerank_ids(pipe, prompts, "image", sampling_for(pipe, "image"), 2)
    finally:
        pipe.info = info


def test_evaluate_takes_rerank(smoke_run, tmp_path, one_thread):
    from unimodal.commands.evaluate import evaluate, evaluate_runs

    _, run_dir = smoke_run
    metrics = evaluate([f"run={run_dir}", "samples=2", "seeds=1", "lm_samples=0", "vqa_scenes=0", "rerank=3",
                        "directions=[image->text]", f"out={tmp_path / 'eval'}", "progress=false"])
    assert metrics["rerank"] == 3
    assert "best of 3 candidates by the inverse direction" in (tmp_path / "eval" / "report.md").read_text()
    with pytest.raises(UnimodalError, match="rerank=0: must be at least 1"):
        evaluate_runs([f"run={run_dir}", "rerank=0"])



def test_generate_takes_rerank(smoke_run, tmp_path, one_thread):
    from unimodal.commands.generate import generate
    from unimodal.pipeline import load

    _, run_dir = smoke_run
    written = generate([f"run={run_dir}", "prompt=a red circle", "output=image", "rerank=3", "num_samples=2",
                        f"out_dir={tmp_path}"])
    assert len([p for p in written if p.suffix == ".png"]) == 2
    pipe = load(run_dir, "cpu")
    with pytest.raises(UnimodalError, match="one modality"):
        pipe.generate("a red circle", output=["text", "image"], rerank=2)
