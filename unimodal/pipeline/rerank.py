"""Reranking by the inverse direction: draw several answers, keep the one under which the prompt is most likely.

An any-to-any model holds every task's inverse. For ``image->text`` it can score p(image | caption); for
``text->image``, p(caption | image). :func:`rerank_ids` draws ``n`` candidate answers for each prompt (text: the
greedy answer, then samples at :data:`TEXT_CANDIDATE_TEMPERATURE`; media: ``n`` samples of the given sampling),
scores every candidate by the nats the model spends writing the prompt's segment after it (the inverse task,
teacher-forced, one batched forward pass), and keeps the candidate with the fewest. Only the model's own
likelihoods choose; no judge is involved. This is noisy-channel reranking (Yee et al., 2019, for translation) with
the channel model being the same network: the inverse of a direction can be the stronger reader (a small model's
p(image | caption) names the shape of a lone object far more often than its greedy caption does:
benchmarks/RESULTS.md, *Reranking by the inverse direction*).

The cost is ``n`` generations and ``n`` scoring passes per prompt; ``n=1`` is plain generation.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from unimodal.data.tasks import task_segments
from unimodal.errors import UnimodalError
from unimodal.model.generate import SamplingConfig
from unimodal.model.lm import embed_ids
from unimodal.sequence import Encoded, Segment

TEXT_CANDIDATE_TEMPERATURE = 1.5  # text candidates after the greedy one: spread wide enough to hold the answer
CANDIDATE_SEED_STRIDE = 100_003   # candidate j samples with seed + j * stride: apart from every batch offset


@torch.no_grad()
def token_nats(pipe: Any, encoded: list[Encoded]) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forced nats of every next token of each sequence (one right-padded batch), and where training's
    loss would count them: ``(nats [B, T-1], counted [B, T-1])``, both on the CPU."""
    width = max(len(e) for e in encoded)
    ids = torch.full((len(encoded), width), pipe.vocab.pad_id, dtype=torch.long)
    counted = torch.zeros((len(encoded), width), dtype=torch.bool)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    for row, e in enumerate(encoded):  # right padding: positions start at 0 in every row
        ids[row, :len(e)] = torch.from_numpy(np.asarray(e.ids, dtype=np.int64))
        counted[row, :len(e)] = torch.from_numpy(np.asarray(e.loss_mask, dtype=bool))
        attention[row, :len(e)] = 1
    device = next(pipe.model.parameters()).device
    images = pipe.pixel_values(encoded)  # images read as features, in order
    logits = pipe.model(inputs_embeds=embed_ids(pipe.model, ids.to(device), images=images),
                        attention_mask=attention.to(device), use_cache=False).logits[:, :-1].float().cpu()
    following = ids[:, 1:].masked_fill(ids[:, 1:] < 0, -100)  # feature slots (negative ids) are never predicted
    nats = F.cross_entropy(logits.transpose(1, 2), following, reduction="none", ignore_index=-100)
    return nats, counted[:, 1:]


def sequence_nats(pipe: Any, encoded: list[Encoded], batch_size: int = 64) -> np.ndarray:
    """The nats of each sequence's counted tokens (its target segment, closer and ``<eos>``), summed."""
    totals: list[float] = []
    for start in range(0, len(encoded), batch_size):
        nats, counted = token_nats(pipe, encoded[start:start + batch_size])
        totals += (nats * counted).sum(dim=1).tolist()
    return np.asarray(totals, dtype=np.float64)


def prompt_segment(pipe: Any, prompt: Encoded) -> Segment:
    """The one content segment of a generation prompt: what the inverse task writes."""
    segments = pipe.codec.decode(prompt.ids)
    if len(segments) != 1 or segments[0].truncated:
        raise UnimodalError(f"rerank scores prompts of one text or media segment; this prompt has "
                            f"{[s.modality for s in segments]}: generate it with rerank=1")
    return segments[0]


def check_rerankable(pipe: Any, source: str, target: str) -> None:
    """Refuse what cannot be scored: a run without the inverse task, or images read as features."""
    if source == target:
        raise UnimodalError(f"rerank: {source}->{target} has no inverse direction to score with; use rerank=1")
    inverse = f"{target}->{source}"
    if inverse not in pipe.info.get("tasks", []):
        raise UnimodalError(f"rerank scores {source}->{target} answers with the inverse task {inverse}, which this "
                            f"run did not train (its tasks: {pipe.info.get('tasks')}); use rerank=1")
    if pipe.reads_features and "image" in (source, target):
        raise UnimodalError("rerank scores images as tokens, but this run reads input images as features "
                            "(model.vision_input=features); use rerank=1")


def candidate_sampling(sampling: SamplingConfig, target: str, index: int) -> SamplingConfig:
    """Candidate ``index``'s sampling: media as asked; text greedy first, then :data:`TEXT_CANDIDATE_TEMPERATURE`."""
    if target != "text":
        return sampling
    temperature = 0.0 if index == 0 else TEXT_CANDIDATE_TEMPERATURE
    return replace(sampling, temperature={**sampling.temperature, "default": temperature, "text": temperature})


def answer_segment(pipe: Any, ids: np.ndarray, target: str) -> Segment | None:
    """The first complete ``target`` segment of generated ids, or None."""
    for segment in pipe.codec.decode(ids):
        if segment.modality == target and not segment.truncated:
            return segment
    return None


def rerank_ids(pipe: Any, prompts: list[Encoded], target: str, sampling: SamplingConfig, n: int,
               seed: int = 0, batch_size: int = 64) -> list[np.ndarray]:
    """For each prompt, the new ids of the best of ``n`` candidate ``target`` answers by the inverse task's nats
    (see the module's doc). ``n=1`` is plain generation; for ``n > 1`` a media answer's candidate 0 is what plain
    generation with ``seed`` gives, a text answer's the greedy caption (whatever text temperature ``sampling`` has)."""
    if n < 1:
        raise UnimodalError(f"rerank={n}: draw at least one candidate (1 = plain generation)")
    if n == 1:
        return pipe.generate_ids(prompts, [target], sampling, seed=seed)
    sources = [prompt_segment(pipe, p) for p in prompts]
    for modality in {s.modality for s in sources}:
        check_rerankable(pipe, modality, target)
    drawn = [pipe.generate_ids(prompts, [target], candidate_sampling(sampling, target, j),
                               seed=seed + j * CANDIDATE_SEED_STRIDE) for j in range(n)]
    jobs: list[tuple[int, int]] = []  # (prompt, candidate) pairs to score; repeated answers are scored once
    encoded: list[Encoded] = []
    seen: list[dict[bytes, int]] = [{} for _ in prompts]
    for i, source in enumerate(sources):
        for j in range(n):
            key = np.asarray(drawn[j][i], dtype=np.int64).tobytes()
            answer = answer_segment(pipe, drawn[j][i], target)
            if answer is None or key in seen[i]:
                continue
            seen[i][key] = j
            payloads = {target: answer.payload, source.modality: source.payload}
            encoded.append(pipe.codec.encode(task_segments(payloads, f"{target}->{source.modality}")))
            jobs.append((i, j))
    scores = np.full((len(prompts), n), np.inf)
    for (i, j), nats in zip(jobs, sequence_nats(pipe, encoded, batch_size), strict=True):
        scores[i, j] = nats
    best = [int(np.argmin(row)) if np.isfinite(row).any() else 0 for row in scores]
    return [drawn[j][i] for i, j in enumerate(best)]
