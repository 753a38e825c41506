"""Language-model batches: tokenized samples x task directions -> padded id tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from unimodal.data.shards import TokenShard
from unimodal.data.tasks import draw_drop, task_segments
from unimodal.data.tokens import TokenizedSet
from unimodal.errors import ConfigError
from unimodal.sequence import SequenceCodec


class TaskDataset(Dataset):
    """Tokenized samples x task directions. Item ``(sample, task, draw)`` is one sample cast as one task;
    ``draw`` seeds whether its condition is dropped (probability ``cond_drop_prob``). An int index ``i``
    means ``divmod(i, len(tasks))`` with ``draw = i``."""

    def __init__(self, tokens: TokenizedSet | TokenShard, codec: SequenceCodec, tasks: list[str],
                 context_length: int, cond_drop_prob: float = 0.0, seed: int = 0) -> None:
        self.tokens = tokens
        self.codec = codec
        self.tasks = list(tasks)
        self.context_length = context_length
        self.cond_drop_prob = cond_drop_prob
        self.seed = seed

    def __len__(self) -> int:
        return len(self.tokens) * len(self.tasks)

    def __getitem__(self, index: int | tuple[int, int, int]) -> dict[str, torch.Tensor]:
        if isinstance(index, tuple):
            sample, task_index, draw = index
        else:
            (sample, task_index), draw = divmod(int(index), len(self.tasks)), int(index)
        rng = np.random.default_rng((self.seed, draw))
        segments = task_segments(self.tokens.payloads(sample), self.tasks[task_index],
                                 drop_condition=draw_drop(rng, self.cond_drop_prob))
        encoded = self.codec.encode(segments)
        if len(encoded) > self.context_length:
            raise ValueError(f"task {self.tasks[task_index]!r} needs {len(encoded)} tokens but "
                             f"model.context_length is {self.context_length}; raise it")
        item = {"ids": torch.from_numpy(encoded.ids), "loss_mask": torch.from_numpy(encoded.loss_mask),
                "modality": torch.from_numpy(encoded.modality_of_position.astype(np.int64)),
                "task": torch.tensor(task_index)}
        if encoded.images:  # images read as features (model.vision_input=features): their collate adds the pixels
            item["images"] = encoded.images
        return item


def length_groups(tasks: list[str]) -> list[list[int]]:
    """Task indices grouped by the media they hold: a direction and its reverse (caption->image,
    image->caption) make sequences of the same length."""
    groups: dict[frozenset[str], list[int]] = {}
    for index, task in enumerate(tasks):
        groups.setdefault(frozenset(task.split("->")), []).append(index)
    return list(groups.values())


class DataPosition:
    """Epoch and batches handed out so far: the data position a checkpoint carries (TaskBatches and the
    packed batches of ``lm.packing``). Subclasses keep ``epoch`` and ``handed_out`` and name in ``_shape``
    what their order depends on."""

    epoch: int
    handed_out: int

    def set_epoch(self, epoch: int) -> None:
        # Lightning's set_epoch reaches a loader's sampler, not its batch sampler, so a new pass after a
        # complete one advances ``epoch`` itself (__iter__); this stays for loaders that do call it.
        if epoch != self.epoch:
            self.handed_out = 0
        self.epoch = epoch

    def state_dict(self) -> dict[str, int]:
        """The data position. Exact while the loader prefetches nothing (``num_workers=0``, as fit_lm
        builds it, and Lightning's fetcher skips prefetching for loaders with a length)."""
        return {"epoch": self.epoch, "batches": self.handed_out, **self._shape()}

    def _saved_position(self, state: dict[str, int]) -> tuple[int, int]:
        """``(epoch, batches)`` of a saved state, refused when it counts batches of another order."""
        changed = {key: (state[key], now) for key, now in self._shape().items() if key in state and state[key] != now}
        if changed:
            raise ConfigError(f"the checkpoint's data order differs from this run's ({changed}, saved -> now): "
                              f"resume with the same seed, lm.batch_size, data and modality, or set resume=false")
        return int(state["epoch"]), int(state["batches"])

    def _shape(self) -> dict[str, int]:
        raise NotImplementedError


class TaskBatches(DataPosition, Sampler[list[tuple[int, int, int]]]):
    """Batches drawn from one length group of tasks at a time; inside a batch tasks mix by ``weights``.

    Task directions differ a lot in length (caption->image ~90 ids, image->sound ~160), so fully mixed
    batches pad most rows to the longest task. A task and its reverse are as long as each other, so a
    batch of one ``groups`` entry wastes almost nothing on padding, while the per-token loss still weighs
    a 6-token caption beside a 64-code image as mixed batches do. A group is drawn with the summed weight
    of its tasks. Samples are dealt from a fresh permutation each pass; an epoch holds
    ``len(samples) * len(tasks)`` items, as with a plain shuffled loader. ``shuffle=False`` gives a fixed
    order of one-task batches, interleaving the tasks (validation).
    """

    def __init__(self, num_samples: int, num_tasks: int, batch_size: int, weights: list[float] | None = None,
                 seed: int = 0, shuffle: bool = True, groups: list[list[int]] | None = None) -> None:
        probs = np.asarray(weights if weights else [1.0] * num_tasks, dtype=np.float64)
        if len(probs) != num_tasks or (probs < 0).any() or probs.sum() <= 0:
            raise ValueError(f"task weights {list(probs)} do not fit {num_tasks} tasks")
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"need samples and a batch size, got {num_samples} samples, batch {batch_size}")
        groups = [list(g) for g in (groups or [[t] for t in range(num_tasks)])]
        if sorted(t for g in groups for t in g) != list(range(num_tasks)):
            raise ValueError(f"task groups {groups} must hold every task index 0..{num_tasks - 1} once")
        self.probs = probs / probs.sum()
        self.groups = [g for g in groups if self.probs[g].sum() > 0]
        self.group_probs = np.array([self.probs[g].sum() for g in self.groups])
        self.num_samples, self.num_tasks = num_samples, num_tasks
        self.batch_size = min(batch_size, num_samples)
        self.seed, self.shuffle, self.epoch = seed, shuffle, 0
        self.handed_out = 0           # batches of epoch ``self.epoch`` yielded so far
        self._skip: tuple[int, int] | None = None   # (epoch, batches) already trained on, set by a resume

    def load_state_dict(self, state: dict[str, int]) -> None:
        epoch, batches = self._saved_position(state)
        if batches >= len(self):  # saved on the last batch of a pass: continue with the next pass
            epoch, batches = epoch + 1, 0
        self.epoch, self.handed_out, self._skip = epoch, batches, (epoch, batches)

    def _shape(self) -> dict[str, int]:
        return {"seed": self.seed, "num_samples": self.num_samples, "num_tasks": self.num_tasks,
                "batch_size": self.batch_size}

    def __len__(self) -> int:
        if not self.shuffle:
            return self.num_tasks * (self.num_samples // self.batch_size)
        return self.num_samples * self.num_tasks // self.batch_size

    def __iter__(self):
        n, size = self.num_samples, self.batch_size
        if not self.shuffle:  # batch k: task k % T, the (k // T)-th block of samples
            for k in range(len(self)):
                block, task = divmod(k, self.num_tasks)
                yield [(s, task, s * self.num_tasks + task) for s in range(block * size, (block + 1) * size)]
            return
        if self.handed_out >= len(self):  # the previous pass was complete: this one is the next epoch
            self.epoch, self.handed_out = self.epoch + 1, 0
        rng = np.random.default_rng((self.seed, self.epoch))
        order, cursor = rng.permutation(n), 0
        base = self.epoch * len(self) * size
        # A resumed epoch replays its draws (cheap) without yielding the batches trained on before the kill.
        skip = self._skip[1] if self._skip is not None and self._skip[0] == self.epoch else 0
        self._skip, self.handed_out = None, skip
        for k in range(len(self)):
            group = self.groups[int(rng.choice(len(self.groups), p=self.group_probs))]
            inside = self.probs[group] / self.probs[group].sum()
            tasks = rng.choice(group, size=size, p=inside)
            if cursor + size > n:
                order, cursor = rng.permutation(n), 0
            chunk = order[cursor:cursor + size]
            cursor += size
            if k < skip:
                continue
            self.handed_out = k + 1
            yield [(int(s), int(t), base + k * size + j) for j, (s, t) in enumerate(zip(chunk, tasks, strict=True))]


class ResumableLoader(DataLoader):
    """A DataLoader whose batch sampler's position goes into Lightning checkpoints: Lightning saves and
    restores ``state_dict``/``load_state_dict`` of a train loader that has them, before its first batch."""

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)


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
