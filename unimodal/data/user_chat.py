"""A user's conversations (``data=chat``, read by :mod:`unimodal.data.llava`) as training items for
``stage=instruct``: every image encoded once by the run's image tokenizer, every conversation written with the chat
template (:func:`unimodal.data.chat.encode_chat`: the loss on the assistant's turns only)."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from unimodal.data.chat import Turn, encode_chat
from unimodal.data.llava import Conversation
from unimodal.errors import ConfigError
from unimodal.media import images_to_tensor, to_channels
from unimodal.sequence import Encoded, Segment, SequenceCodec

VAL_EVERY = 20   # one conversation in this many (by a hash of where it is) validates, once there are this many


class ConversationSet(Dataset):
    """Encoded conversations; item ``i`` is ``ids``, ``loss_mask``, ``modality`` and ``task`` (always 0)."""

    kinds = ["chat"]

    def __init__(self, items: list[Encoded]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def length_of(self, index: int) -> int:
        return len(self.items[index])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        encoded = self.items[index]
        return {"ids": torch.from_numpy(encoded.ids), "loss_mask": torch.from_numpy(encoded.loss_mask),
                "modality": torch.from_numpy(encoded.modality_of_position.astype(np.int64)),
                "task": torch.tensor(0)}


def _image_codes(conversations: list[Conversation], tokenizer: Any, batch_size: int) -> list[list[np.ndarray]]:
    flat = [image for conversation in conversations for image in conversation.images]
    codes: list[np.ndarray] = []
    channels = int(getattr(tokenizer, "channels", 3))
    for start in range(0, len(flat), batch_size):
        batch = to_channels(np.stack(flat[start:start + batch_size]), channels)
        with torch.no_grad():
            codes.extend(tokenizer.eval().encode(images_to_tensor(list(batch))).cpu().numpy())
    out, cursor = [], 0
    for conversation in conversations:
        out.append(codes[cursor:cursor + len(conversation.images)])
        cursor += len(conversation.images)
    return out


def _fit(codec: SequenceCodec, turns: list[Turn], context_length: int) -> Encoded | None:
    """The conversation encoded, its last exchanges left off while it is longer than the context (None when
    even its first answer does not fit)."""
    while turns:
        encoded = encode_chat(codec, turns)
        if len(encoded) <= context_length:
            return encoded
        turns = turns[:-1]
        while turns and turns[-1].role != "assistant":
            turns = turns[:-1]
    return None


def encode_conversations(conversations: list[Conversation], codec: SequenceCodec, text_tokenizer: Any,
                         image_tokenizer: Any | None, context_length: int,
                         batch_size: int = 64) -> tuple[list[Encoded], list[str], list[str]]:
    """``(encoded, where each came from, skipped)``: a conversation longer than the context even with one answer
    is skipped and named."""
    if image_tokenizer is None and any(c.images for c in conversations):
        raise ConfigError("data=chat: the conversations hold images but the run has no image tokenizer; tune a "
                          "run whose modality includes image")
    codes = _image_codes(conversations, image_tokenizer, batch_size) if image_tokenizer is not None else []
    encoded, origin, skipped = [], [], []
    for index, conversation in enumerate(conversations):
        turns = []
        for role, parts in conversation.turns:
            segments = [Segment("image", codes[index][part]) if isinstance(part, int)
                        else Segment("text", np.asarray(text_tokenizer.encode([part])[0], dtype=np.int64))
                        for part in parts]
            turns.append(Turn(role, segments))
        item = _fit(codec, turns, context_length)
        if item is None:
            skipped.append(f"{conversation.where}: its first answer needs {len(encode_chat(codec, turns[:2]))}+ "
                           f"tokens, more than model.context_length={context_length}")
            continue
        encoded.append(item)
        origin.append(conversation.where)
    return encoded, origin, skipped


def split_conversations(items: list[Encoded], origin: list[str]) -> tuple[ConversationSet, ConversationSet | None]:
    """Train and validation sets: one in :data:`VAL_EVERY` by a hash of its place validates; none below that."""
    if len(items) < VAL_EVERY:
        return ConversationSet(items), None
    val = [int(hashlib.sha1(where.encode()).hexdigest(), 16) % VAL_EVERY == 0 for where in origin]
    train = [item for item, v in zip(items, val, strict=True) if not v]
    held = [item for item, v in zip(items, val, strict=True) if v]
    return ConversationSet(train), (ConversationSet(held) if held else None)
