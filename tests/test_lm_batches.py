"""Language-model batches: one task per batch, tasks drawn by weight, validation order fixed."""

from collections import Counter

import numpy as np
import pytest

from unimodal.training.lm_data import TaskBatches, length_groups


def test_every_batch_holds_one_task_and_fresh_samples():
    sampler = TaskBatches(num_samples=50, num_tasks=3, batch_size=8, seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 50 * 3 // 8
    for batch in batches:
        assert len(batch) == 8
        assert len({task for _, task, _ in batch}) == 1
        assert len({sample for sample, _, _ in batch}) == 8  # no repeats inside a batch
    draws = [draw for batch in batches for _, _, draw in batch]
    assert len(set(draws)) == len(draws)  # every item gets its own condition-drop draw


def test_tasks_follow_the_weights():
    sampler = TaskBatches(num_samples=64, num_tasks=3, batch_size=4, weights=[6, 3, 1], seed=0)
    counts = Counter(batch[0][1] for epoch in range(20) for batch in (sampler.set_epoch(epoch) or list(sampler)))
    shares = np.array([counts[t] for t in range(3)]) / sum(counts.values())
    assert np.allclose(shares, [0.6, 0.3, 0.1], atol=0.03)


def test_epochs_differ_and_repeat():
    sampler = TaskBatches(num_samples=40, num_tasks=2, batch_size=5, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    sampler.set_epoch(0)
    assert list(sampler) == first
    assert second != first


def test_validation_order_interleaves_tasks():
    sampler = TaskBatches(num_samples=10, num_tasks=3, batch_size=4, shuffle=False)
    tasks = [batch[0][1] for batch in sampler]
    assert tasks == [0, 1, 2, 0, 1, 2]  # a few batches already cover every task
    assert all(len({t for _, t, _ in batch}) == 1 for batch in sampler)


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="weights"):
        TaskBatches(10, 3, 4, weights=[1, 2])
    with pytest.raises(ValueError, match="weights"):
        TaskBatches(10, 2, 4, weights=[1, -1])


def test_length_groups_pair_each_direction_with_its_reverse():
    tasks = ["text->image", "image->text", "text->audio", "audio->text", "image->audio", "audio->image"]
    assert length_groups(tasks) == [[0, 1], [2, 3], [4, 5]]
    assert length_groups(["text"]) == [[0]]


def test_grouped_batches_mix_only_inside_a_group_by_weight():
    groups = [[0, 1], [2, 3]]
    sampler = TaskBatches(num_samples=100, num_tasks=4, batch_size=20, weights=[3, 1, 1, 1], seed=0, groups=groups)
    per_group, tasks = Counter(), Counter()
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for batch in sampler:
            present = {t for _, t, _ in batch}
            group = 0 if present <= {0, 1} else 1
            assert present <= set(groups[group])
            per_group[group] += 1
            tasks.update(t for _, t, _ in batch)
    assert abs(per_group[0] / sum(per_group.values()) - 4 / 6) < 0.05  # group weight 3+1 of 6
    assert abs(tasks[0] / (tasks[0] + tasks[1]) - 0.75) < 0.03


def test_groups_must_cover_every_task():
    with pytest.raises(ValueError, match="groups"):
        TaskBatches(10, 3, 4, groups=[[0, 1]])
