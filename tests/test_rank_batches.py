"""Every batch sampler deals its batches across data-parallel ranks: for 1 to 8 ranks the slices are disjoint,
together they are exactly the batches one process with the same global batch draws, and every rank gets as many
batches as the others (no rank waits alone at a collective). A rank's position resumes exactly mid-epoch."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_resume import _check_resumes_mid_epoch_and_across_epochs
from unimodal.training.buckets import LengthBuckets
from unimodal.training.lm_data import TaskBatches
from unimodal.training.packing import PackedBatches


def _item(entry):
    """What identifies one item of an epoch: its draw for the task samplers, its index for the length buckets."""
    return entry[:3] if isinstance(entry, tuple) else entry


def _check_dealt(make, ranks: int, epochs: int = 2) -> None:
    """``make(num_replicas, rank, batch)`` builds a sampler; per-rank batch 3 on ``ranks`` ranks must equal a global
    batch of 3 x ``ranks`` on one rank, step for step."""
    single = make(1, 0, 3 * ranks)
    dealt = [make(ranks, rank, 3) for rank in range(ranks)]
    for _ in range(epochs):
        whole = [[_item(e) for e in batch] for batch in single]
        shares = [[[_item(e) for e in batch] for batch in sampler] for sampler in dealt]
        assert len({len(share) for share in shares}) == 1 and len(shares[0]) == len(whole) == len(dealt[0])
        for step, batch in enumerate(whole):
            parts = [share[step] for share in shares]
            flat = [item for part in parts for item in part]
            assert len(set(flat)) == len(flat)                      # disjoint
            assert sorted(flat) == sorted(batch)                    # complete: the global batch, nothing else
        everything = [item for share in shares for batch in share for item in batch]
        assert len(set(everything)) == len(everything)              # no item twice in an epoch


@settings(max_examples=25, deadline=None)
@given(ranks=st.integers(1, 8), samples=st.integers(24, 80), tasks=st.integers(1, 4), seed=st.integers(0, 99),
       shuffle=st.booleans())
def test_task_batches_deal_fairly(ranks, samples, tasks, seed, shuffle):
    _check_dealt(lambda w, r, b: TaskBatches(samples, tasks, b, seed=seed, shuffle=shuffle, num_replicas=w, rank=r),
                 ranks)


@settings(max_examples=25, deadline=None)
@given(ranks=st.integers(1, 8), size=st.integers(24, 90), seed=st.integers(0, 99), window=st.integers(1, 4))
def test_length_buckets_deal_fairly(ranks, size, seed, window):
    _check_dealt(lambda w, r, b: LengthBuckets(lambda i: (i * 7) % 11, size, b, seed=seed, window=window,
                                               num_replicas=w, rank=r), ranks)
    buckets = [LengthBuckets(lambda i: (i * 7) % 11, size, 3, seed=seed, window=window, num_replicas=ranks, rank=r)
               for r in range(ranks)]
    for step in zip(*buckets, strict=True):   # a global batch is sorted by length before it is sliced
        lengths = [[(i * 7) % 11 for i in part] for part in step]
        assert all(max(a) <= min(b) for a, b in zip(lengths, lengths[1:], strict=False))


@settings(max_examples=15, deadline=None)
@given(ranks=st.integers(1, 8), samples=st.integers(4, 30), tasks=st.integers(1, 3), seed=st.integers(0, 99))
def test_packed_batches_deal_fairly(ranks, samples, tasks, seed):
    def make(w, r, rows):
        return PackedBatches(lambda item: 3 + (item[0] * 5 + item[1]) % 9, samples, tasks, rows, context_length=16,
                             seed=seed, num_replicas=w, rank=r)

    single, dealt = make(1, 0, 2 * ranks), [make(ranks, r, 2) for r in range(ranks)]   # 2 rows per rank
    plan = single.plan(0)
    shares = [list(sampler) for sampler in dealt]
    assert {len(share) for share in shares} == {len(plan)}
    for step, batch in enumerate(plan):
        for rank, share in enumerate(shares):
            mine = sorted((s, t, d, row - 2 * rank) for s, t, d, row in batch if row // 2 == rank)
            assert sorted(share[step]) == mine and all(0 <= e[3] < 2 for e in share[step])
    flat = [e[:3] for share in shares for batch in share for e in batch]
    assert sorted(flat) == sorted(single.items(0)) and len(set(flat)) == len(flat)


def test_a_rank_resumes_mid_epoch_and_across_epochs():
    for rank in range(3):
        _check_resumes_mid_epoch_and_across_epochs(
            lambda rank=rank: TaskBatches(30, 3, 2, [1.0, 2.0, 1.0], seed=3, groups=[[0, 1], [2]], num_replicas=3,
                                          rank=rank), TaskBatches(30, 3, 3, seed=3, num_replicas=3, rank=rank))
        _check_resumes_mid_epoch_and_across_epochs(
            lambda rank=rank: LengthBuckets(lambda i: i % 7, 60, 2, seed=2, window=2, num_replicas=3, rank=rank),
            LengthBuckets(lambda i: i, 60, 3, seed=2, window=2, num_replicas=3, rank=rank))


def test_a_position_saved_on_two_ranks_resumes_on_one_with_the_same_global_batch():
    two = TaskBatches(40, 2, 4, seed=1, num_replicas=2, rank=0)
    iterator = iter(two)
    for _ in range(3):
        next(iterator)
    one = TaskBatches(40, 2, 8, seed=1)
    one.load_state_dict(two.state_dict())
    reference = list(TaskBatches(40, 2, 8, seed=1))
    assert list(one) == reference[3:]
