"""The chat template over the shared vocabulary: roles, several turns, several media per turn.

A conversation is a list of :class:`Turn`; each turn is a role and its segments (text, images, sounds,
in any number and order). It is written as

    <bos> [<system> ...] <user> segments <assistant> segments <eos> <user> segments <assistant> ... <eos>

Each assistant turn ends with ``<eos>`` (Llama 2's chat format does the same with ``</s>``), so generation
stops at the end of the turn with no extra special token, and the vocabulary layout stays that of the
pretraining run. The loss mask covers exactly the assistant turns: every token after an ``<assistant>``
marker up to and including that turn's ``<eos>`` (media openers too: in a chat the answer decides whether
it is an image). Role markers, system and user turns carry no loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unimodal.sequence import MODALITY_CODES, Encoded, Segment, SequenceCodec

ROLES = ("system", "user", "assistant")


@dataclass
class Turn:
    role: str
    segments: list[Segment] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown chat role {self.role!r}; known: {ROLES}")


def _special(codec: SequenceCodec, name: str) -> Encoded:
    token = codec.vocab.special(name)
    return Encoded(np.array([token], np.int64), np.zeros(1, bool),
                   np.full(1, MODALITY_CODES["special"], np.int8))


def encode_chat(codec: SequenceCodec, turns: list[Turn], add_generation_prompt: bool = False) -> Encoded:
    """Turns -> ids, loss mask (assistant tokens only) and modality per position.

    ``add_generation_prompt``: end with an open ``<assistant>`` marker (the last turn must be the user's),
    the prompt that generation continues.
    """
    if add_generation_prompt and (not turns or turns[-1].role == "assistant"):
        raise ValueError("a generation prompt must end with a user (or system) turn")
    vocab = codec.vocab
    pieces = [_special(codec, "<bos>")]
    images = []   # images read as features, in order
    for turn in turns:
        pieces.append(_special(codec, f"<{turn.role}>"))
        answer = turn.role == "assistant"
        segments = [Segment(s.modality, s.payload, role=turn.role, loss=answer) for s in turn.segments]
        body = codec.encode(segments, add_bos=False, add_eos=False) if segments else None
        images += body.images if body is not None else []
        if answer:
            end = _special(codec, "<eos>")
            parts = ([body] if body is not None else []) + [end]
            ids = np.concatenate([p.ids for p in parts])
            kinds = np.concatenate([p.modality_of_position for p in parts])
            pieces.append(Encoded(ids, np.ones(len(ids), bool), kinds))
        elif body is not None:
            pieces.append(Encoded(body.ids, np.zeros(len(body), bool), body.modality_of_position))
    if add_generation_prompt:
        pieces.append(_special(codec, "<assistant>"))
    ids = np.concatenate([p.ids for p in pieces])
    if ids.max(initial=0) >= vocab.size:
        raise ValueError(f"chat ids exceed the vocabulary size {vocab.size}")
    return Encoded(ids, np.concatenate([p.loss_mask for p in pieces]),
                   np.concatenate([p.modality_of_position for p in pieces]), images)


def chat_prompt(codec: SequenceCodec, segments: list[Segment], system: list[Segment] | None = None) -> np.ndarray:
    """Ids of one user turn holding ``segments`` (and an optional system turn), then ``<assistant>``."""
    turns = ([Turn("system", list(system))] if system else []) + [Turn("user", list(segments))]
    return encode_chat(codec, turns, add_generation_prompt=True).ids
