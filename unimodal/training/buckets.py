"""Shuffled batches of items of similar length (conversations run from ~80 to ~250 ids).

A window of ``batch_size * window`` shuffled items is sorted by length and cut into batches, whose order is
shuffled again: padding to the longest row of a batch then costs little, while every batch is still a
random draw. (The fixed-shape paired tasks need none of this: ``lm_data.TaskBatches`` groups them by task.)
The batches handed out so far are the data position a checkpoint carries (``lm_data.DataPosition``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import Sampler

from unimodal.training.lm_data import DataPosition


class LengthBuckets(DataPosition, Sampler[list[int]]):
    """``batch_size`` is per rank: with ``num_replicas`` ranks a global batch of similar lengths is cut into one
    slice per rank (``DataPosition``)."""

    def __init__(self, length_of: Callable[[int], int], size: int, batch_size: int, seed: int = 0,
                 window: int = 16, num_replicas: int = 1, rank: int = 0) -> None:
        if size < batch_size * num_replicas or batch_size < 1:
            raise ValueError(f"need at least one batch: {size} items, batch size {batch_size} x {num_replicas} ranks")
        self._set_ranks(num_replicas, rank)
        self.length_of, self.size, self.batch_size = length_of, size, batch_size * num_replicas  # global
        self.seed, self.window, self.epoch = seed, window, 0
        self.handed_out = 0  # batches of epoch ``self.epoch`` yielded so far

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.handed_out = self._saved_position(state)

    def _shape(self) -> dict[str, int]:
        return {"seed": self.seed, "size": self.size, "batch_size": self.batch_size, "window": self.window}

    def __len__(self) -> int:
        return self.size // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        if self.handed_out >= len(self):  # the previous pass was complete: this one is the next epoch
            self.epoch, self.handed_out = self.epoch + 1, 0
        # A resumed epoch replays its draws and continues after the batches trained on before the stop.
        skip = self.handed_out
        for k, batch in enumerate(self._batches(self.epoch)):
            if k >= skip:
                self.handed_out = k + 1
                yield self._share(batch)

    def _batches(self, epoch: int) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, epoch))
        order = rng.permutation(self.size)[:len(self) * self.batch_size]
        span = self.batch_size * self.window
        for start in range(0, len(order), span):
            chunk = order[start:start + span]
            chunk = chunk[np.argsort([self.length_of(int(i)) for i in chunk], kind="stable")]
            batches = [chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
            for b in rng.permutation(len(batches)):
                yield [int(i) for i in batches[b]]
