"""Packed training batches (``lm.packing=true``): several task sequences (documents) per row.

Items are drawn as :class:`~unimodal.training.lm_data.TaskBatches` draws them (a fresh sample permutation per
pass, ``len(samples) * len(tasks)`` items an epoch, tasks by ``modality.weights``) but mixed freely, and
placed first-fit into ``lm.batch_size`` rows of ``model.context_length`` tokens; an item that fits no row
waits for the next batch (up to ``patience`` of them, then the batch closes).

Documents stay apart:
- attention: each row's position ids restart at 0 at every document and no 2-D attention mask is passed;
  transformers (``masking_utils.find_packed_sequence_indices``) reads the restarts as document boundaries
  and builds the block-diagonal causal mask itself, so we do not build our own 4-D mask;
- positions: rotary positions are those restarting ids, so a document sees the positions it has alone;
- loss: the first token of every document is never a target, so nothing is predicted across a boundary;
- the padding after the last document is a run of its own (positions from 0 again), never a target.
The optional media-position embedding counts from each span's opener, which always lies in the same
document. ``tests/test_packing.py`` checks that a packed row's logits equal each document's run alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from unimodal.data.tasks import draw_drop
from unimodal.errors import ConfigError
from unimodal.training.lm_data import DataPosition, ResumableLoader, TaskDataset

Item = tuple[int, int, int]          # (sample, task, draw), as TaskDataset takes it


class ItemLengths:
    """Length of an item's composed sequence; it depends on (sample, task, condition dropped) only."""

    def __init__(self, dataset: TaskDataset) -> None:
        self.dataset = dataset
        self.cache: dict[tuple[int, int, bool], int] = {}

    def __call__(self, item: Item) -> int:
        sample, task, draw = item
        dropped = draw_drop(np.random.default_rng((self.dataset.seed, draw)), self.dataset.cond_drop_prob)
        key = (sample, task, dropped)
        if key not in self.cache:
            self.cache[key] = len(self.dataset[item]["ids"])
        return self.cache[key]


def pack(items: list[Item], lengths: Callable[[Item], int], rows: int, capacity: int,
         patience: int) -> list[list[tuple[int, int, int, int]]]:
    """Batches of ``(sample, task, draw, row)``: first-fit into ``rows`` rows of ``capacity`` tokens."""
    batches = []
    queue = deque(items)
    while queue:
        free, batch, waiting = [capacity] * rows, [], []
        while queue and len(waiting) < patience:
            item = queue.popleft()
            size = lengths(item)
            if size > capacity:
                raise ConfigError(f"a task sequence of {size} tokens does not fit model.context_length={capacity}; "
                                  f"raise it")
            row = next((r for r in range(rows) if free[r] >= size), None)
            if row is None:
                waiting.append(item)
                continue
            free[row] -= size
            batch.append((*item, row))
        queue.extendleft(reversed(waiting))
        batches.append(batch)
    return batches


class PackedBatches(DataPosition, Sampler[list[tuple[int, int, int, int]]]):
    """One epoch's packed batches, planned whole at its start (so ``len`` is exact) and the same every
    time for the same ``seed`` and epoch. ``rows`` is per rank: with ``num_replicas`` ranks a global batch
    of ``rows x num_replicas`` rows is planned and each rank takes its own rows, numbered from 0 (a rank
    whose rows stayed empty at the end of an epoch gets an empty batch, which collates to one padding row)."""

    def __init__(self, lengths: Callable[[Item], int], num_samples: int, num_tasks: int, rows: int,
                 context_length: int, weights: list[float] | None = None, seed: int = 0,
                 patience: int | None = None, num_replicas: int = 1, rank: int = 0) -> None:
        probs = np.asarray(weights if weights else [1.0] * num_tasks, dtype=np.float64)
        if len(probs) != num_tasks or (probs < 0).any() or probs.sum() <= 0:
            raise ValueError(f"task weights {list(probs)} do not fit {num_tasks} tasks")
        if num_samples < 1 or rows < 1:
            raise ValueError(f"need samples and rows, got {num_samples} samples, {rows} rows")
        self._set_ranks(num_replicas, rank)
        self.lengths, self.probs = lengths, probs / probs.sum()
        self.rows_per_rank = rows
        rows *= num_replicas  # the global batch's rows
        self.num_samples, self.num_tasks, self.rows, self.capacity = num_samples, num_tasks, rows, context_length
        self.seed, self.epoch, self.patience = seed, 0, patience or rows
        self.handed_out = 0  # batches of epoch ``self.epoch`` yielded so far (the data position for resume)
        self._planned: tuple[int, list[list[tuple[int, int, int, int]]]] | None = None

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.handed_out = self._saved_position(state)

    def _shape(self) -> dict[str, int]:
        return {"seed": self.seed, "num_samples": self.num_samples, "num_tasks": self.num_tasks, "rows": self.rows,
                "packed": 1}

    def items(self, epoch: int) -> list[Item]:
        count = self.num_samples * self.num_tasks
        rng = np.random.default_rng((self.seed, epoch))
        samples = np.concatenate([rng.permutation(self.num_samples) for _ in range(self.num_tasks)])
        tasks = rng.choice(self.num_tasks, size=count, p=self.probs)
        base = epoch * count
        return [(int(s), int(t), base + k) for k, (s, t) in enumerate(zip(samples, tasks, strict=True))]

    def plan(self, epoch: int) -> list[list[tuple[int, int, int, int]]]:
        if self._planned is None or self._planned[0] != epoch:
            self._planned = epoch, pack(self.items(epoch), self.lengths, self.rows, self.capacity, self.patience)
        return self._planned[1]

    def __len__(self) -> int:
        return len(self.plan(self.epoch))

    def __iter__(self):
        if self.handed_out >= len(self.plan(self.epoch)):  # the previous pass was complete: the next epoch
            self.epoch, self.handed_out = self.epoch + 1, 0
        low = self.rank * self.rows_per_rank
        for batch in self.plan(self.epoch)[self.handed_out:]:
            self.handed_out += 1
            yield [(s, t, d, row - low) for s, t, d, row in batch if low <= row < low + self.rows_per_rank]


class RowTagged(Dataset):
    """A TaskDataset whose items also carry the row they are packed into."""

    def __init__(self, dataset: TaskDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int, int]) -> dict[str, torch.Tensor]:
        return dict(self.dataset[key[:3]], row=key[3])


def collate_packed(batch: list[dict[str, Any]], pad_id: int, rows: int | None = None) -> dict[str, torch.Tensor]:
    """Items tagged with rows -> ``ids``, ``loss_mask``, ``position_ids``, ``modality`` of ``[rows, L]`` (L: the
    longest row), ``task`` per item and ``documents`` per row; no ``attention_mask`` (see the module doc).
    ``rows`` (default: up to the last row used) keeps empty rows: all padding, never a target."""
    count = rows or max((item["row"] + 1 for item in batch), default=1)
    rows: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    for item in batch:
        rows[item["row"]].append(item)
    length = max(2, max(sum(len(item["ids"]) for item in row) for row in rows))  # an empty batch: a padding row
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    loss_mask = torch.zeros((len(rows), length), dtype=torch.bool)
    positions = torch.zeros((len(rows), length), dtype=torch.long)
    modality = torch.zeros((len(rows), length), dtype=torch.long)
    for r, row in enumerate(rows):
        cursor = 0
        for item in row:
            n = len(item["ids"])
            ids[r, cursor:cursor + n] = item["ids"]
            loss_mask[r, cursor:cursor + n] = item["loss_mask"]
            loss_mask[r, cursor] = False  # a document's first token is never predicted from the one before
            positions[r, cursor:cursor + n] = torch.arange(n)
            modality[r, cursor:cursor + n] = item["modality"]
            cursor += n
        positions[r, cursor:] = torch.arange(length - cursor)  # padding: a run of its own
    return {"ids": ids, "loss_mask": loss_mask, "position_ids": positions, "modality": modality,
            "task": torch.stack([item["task"] for item in batch]) if batch else torch.zeros(0, dtype=torch.long),
            "documents": torch.tensor([len(row) for row in rows])}


def check_packing_supported() -> None:
    from transformers import masking_utils

    if not hasattr(masking_utils, "find_packed_sequence_indices"):
        raise ConfigError("lm.packing=true needs a transformers release whose masking_utils has "
                          "find_packed_sequence_indices (packed rows from position ids); upgrade transformers "
                          "or set lm.packing=false")


def packed_loader(dataset: TaskDataset, rows: int, weights: list[float] | None, seed: int,
                  num_replicas: int = 1, rank: int = 0) -> DataLoader:
    """The training loader of ``lm.packing=true`` over a TaskDataset (``rows``: lm.batch_size, per rank)."""
    check_packing_supported()
    sampler = PackedBatches(ItemLengths(dataset), len(dataset.tokens), len(dataset.tasks), rows,
                            dataset.context_length, weights, seed, num_replicas=num_replicas, rank=rank)
    return ResumableLoader(RowTagged(dataset), batch_sampler=sampler,
                           collate_fn=partial(collate_packed, pad_id=dataset.codec.vocab.pad_id, rows=rows))
