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

    def check_fits(self) -> None:
        """Before training: the first sample of every task fits the context (media spans have one length, so a
        too-small model.context_length shows here, not steps into a run), else a one-line ConfigError."""
        for task in self.tasks if len(self.tokens) else []:
            length = len(self.codec.encode(task_segments(self.tokens.payloads(0), task)))
            if length > self.context_length:
                raise ConfigError(f"task {task!r} needs {length} tokens but model.context_length is "
                                  f"{self.context_length}; raise it (e.g. model.context_length={length + 64})")

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
            raise ConfigError(f"task {self.tasks[task_index]!r} needs {len(encoded)} tokens but "
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
    """Epoch and batches handed out so far: the data position a checkpoint carries (TaskBatches, the length
    buckets of instruction tuning and the packed batches of ``lm.packing``). Subclasses keep ``epoch`` and
    ``handed_out`` and name in ``_shape`` what their order depends on.

    Under data parallelism every rank draws the same seeded *global* batches (``batch_size x num_replicas``
    items) and keeps its own slice (``rank``): the slices of one step are disjoint, together they are the
    whole global batch, every rank has as many batches as the others (no rank waits at a collective), and
    one process with the same global batch trains on exactly the same items. The position counts global
    batches, so it is the same on every rank, and a resume with another rank count but the same global
    batch continues exactly.
    """

    epoch: int
    handed_out: int
    num_replicas: int = 1
    rank: int = 0

    def _set_ranks(self, num_replicas: int, rank: int) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} of {num_replicas} ranks: need 0 <= rank < num_replicas")
        self.num_replicas, self.rank = num_replicas, rank

    def _share(self, batch: list[Any]) -> list[Any]:
        """This rank's slice of one global batch (equal slices, in rank order)."""
        size = len(batch) // self.num_replicas
        return batch[self.rank * size:(self.rank + 1) * size]

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
                              f"resume with the same seed, data, modality and global batch (lm.batch_size x "
                              f"trainer.devices x trainer.num_nodes), or set resume=false")
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
    order of one-task batches, interleaving the tasks (validation). ``batch_size`` is per rank; with
    ``num_replicas`` ranks each global batch is dealt out in slices (``DataPosition``).
    """

    def __init__(self, num_samples: int, num_tasks: int, batch_size: int, weights: list[float] | None = None,
                 seed: int = 0, shuffle: bool = True, groups: list[list[int]] | None = None,
                 num_replicas: int = 1, rank: int = 0) -> None:
        probs = np.asarray(weights if weights else [1.0] * num_tasks, dtype=np.float64)
        if len(probs) != num_tasks or (probs < 0).any() or probs.sum() <= 0:
            raise ValueError(f"task weights {list(probs)} do not fit {num_tasks} tasks")
        if num_samples < num_replicas or batch_size < 1:
            raise ValueError(f"need a sample per rank and a batch size, got {num_samples} samples for "
                             f"{num_replicas} ranks, batch {batch_size}")
        self._set_ranks(num_replicas, rank)
        groups = [list(g) for g in (groups or [[t] for t in range(num_tasks)])]
        if sorted(t for g in groups for t in g) != list(range(num_tasks)):
            raise ValueError(f"task groups {groups} must hold every task index 0..{num_tasks - 1} once")
        self.probs = probs / probs.sum()
        self.groups = [g for g in groups if self.probs[g].sum() > 0]
        self.group_probs = np.array([self.probs[g].sum() for g in self.groups])
        self.num_samples, self.num_tasks = num_samples, num_tasks
        # The global batch: at most every sample once, in equal slices per rank.
        self.batch_size = min(batch_size * num_replicas, num_samples) // num_replicas * num_replicas
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
                samples = range(block * size, (block + 1) * size)
                yield self._share([(s, task, s * self.num_tasks + task) for s in samples])
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
            yield self._share([(int(s), int(t), base + k * size + j)
                               for j, (s, t) in enumerate(zip(chunk, tasks, strict=True))])


def in_order(count: int, batch_size: int, num_replicas: int = 1, rank: int = 0) -> list[list[int]]:
    """Items ``0..count-1`` in order, in global batches of ``batch_size x num_replicas`` (whole ones only), this
    rank's slice of each: a validation order every rank agrees on."""
    size = min(batch_size, count // num_replicas)
    step = size * num_replicas
    return [list(range(start + rank * size, start + (rank + 1) * size)) for start in range(0, count - step + 1, step)]


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
