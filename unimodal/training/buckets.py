"""Shuffled batches of items of similar length (conversations run from ~80 to ~250 ids).

A window of ``batch_size * window`` shuffled items is sorted by length and cut into batches, whose order is
shuffled again: padding to the longest row of a batch then costs little, while every batch is still a
random draw. (The fixed-shape paired tasks need none of this: ``lm_data.TaskBatches`` groups them by task.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import Sampler


class LengthBuckets(Sampler[list[int]]):
    def __init__(self, length_of: Callable[[int], int], size: int, batch_size: int, seed: int = 0,
                 window: int = 16) -> None:
        if size < batch_size or batch_size < 1:
            raise ValueError(f"need at least one batch: {size} items, batch size {batch_size}")
        self.length_of, self.size, self.batch_size = length_of, size, batch_size
        self.seed, self.window, self.epoch = seed, window, 0

    def set_epoch(self, epoch: int) -> None:  # Lightning calls this at the start of every epoch
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size // self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng((self.seed, self.epoch))
        order = rng.permutation(self.size)[:len(self) * self.batch_size]
        span = self.batch_size * self.window
        for start in range(0, len(order), span):
            chunk = order[start:start + span]
            chunk = chunk[np.argsort([self.length_of(int(i)) for i in chunk], kind="stable")]
            batches = [chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
            for b in rng.permutation(len(batches)):
                yield [int(i) for i in batches[b]]
