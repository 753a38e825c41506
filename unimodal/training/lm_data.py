"""Language-model batches: tokenized samples x task directions -> padded id tensors."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from unimodal.data.tasks import draw_drop, task_segments
from unimodal.data.tokens import TokenizedSet
from unimodal.sequence import SequenceCodec


class TaskDataset(Dataset):
    """Each sample ``len(tasks)`` times per epoch, each time with a task drawn by ``weights`` (uniform:
    every task once); the condition is dropped with ``cond_drop_prob``."""

    def __init__(self, tokens: TokenizedSet, codec: SequenceCodec, tasks: list[str],
                 context_length: int, cond_drop_prob: float = 0.0, seed: int = 0,
                 weights: list[float] | None = None) -> None:
        self.tokens = tokens
        self.codec = codec
        self.tasks = list(tasks)
        probs = np.asarray(weights if weights else [1.0] * len(self.tasks), dtype=np.float64)
        if len(probs) != len(self.tasks) or (probs < 0).any() or probs.sum() <= 0:
            raise ValueError(f"task weights {list(probs)} do not fit tasks {self.tasks}")
        self.probs = None if weights is None or np.allclose(probs, probs[0]) else probs / probs.sum()
        self.context_length = context_length
        self.cond_drop_prob = cond_drop_prob
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.tokens) * len(self.tasks)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample, task_index = divmod(index, len(self.tasks))
        rng = np.random.default_rng((self.seed, self.epoch, index))
        if self.probs is not None:
            task_index = int(rng.choice(len(self.tasks), p=self.probs))
        segments = task_segments(self.tokens.payloads(sample), self.tasks[task_index],
                                 drop_condition=draw_drop(rng, self.cond_drop_prob))
        encoded = self.codec.encode(segments)
        if len(encoded) > self.context_length:
            raise ValueError(f"task {self.tasks[task_index]!r} needs {len(encoded)} tokens but "
                             f"model.context_length is {self.context_length}; raise it")
        return {"ids": torch.from_numpy(encoded.ids), "loss_mask": torch.from_numpy(encoded.loss_mask),
                "modality": torch.from_numpy(encoded.modality_of_position.astype(np.int64)),
                "task": torch.tensor(task_index)}


def collate(batch: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    length = max(len(item["ids"]) for item in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((len(batch), length), dtype=torch.bool)
    attention = torch.zeros((len(batch), length), dtype=torch.long)
    modality = torch.zeros((len(batch), length), dtype=torch.long)
    for row, item in enumerate(batch):
        n = len(item["ids"])
        ids[row, :n] = item["ids"]
        loss_mask[row, :n] = item["loss_mask"]
        attention[row, :n] = 1
        modality[row, :n] = item["modality"]
    return {"ids": ids, "loss_mask": loss_mask, "attention_mask": attention, "modality": modality,
            "task": torch.stack([item["task"] for item in batch])}
