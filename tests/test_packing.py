"""Packed rows: documents never see each other (logits and loss as if run alone), batches fill and cover
every item, and a packed training run goes through the real Lightning path."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from unimodal.data.tokens import TokenizedSet
from unimodal.model.lm import build_lm, embed_ids
from unimodal.sequence import SequenceCodec
from unimodal.training.lm_data import TaskDataset, collate
from unimodal.training.lm_module import masked_lm_loss
from unimodal.training.packing import ItemLengths, PackedBatches, RowTagged, collate_packed, pack
from unimodal.vocab import Vocabulary

VOCAB = Vocabulary(40, {"image": (16, 1), "audio": (8, 2)})
CODEC = SequenceCodec(VOCAB, (2, 3), 3, "flat")
TASKS = ["text->image", "image->text", "text->audio", "audio->text", "image->audio", "audio->image"]


def tokens(count: int, seed: int = 0) -> TokenizedSet:
    rng = np.random.default_rng(seed)
    text = [rng.integers(0, 40, size=int(rng.integers(2, 9))) for _ in range(count)]
    return TokenizedSet(text, {"image": rng.integers(0, 16, (count, 2, 3)), "audio": rng.integers(0, 8, (count, 2, 3))})


DATASET = TaskDataset(tokens(12), CODEC, TASKS, context_length=64, cond_drop_prob=0.3, seed=0)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = OmegaConf.create({"hidden_size": 32, "num_layers": 2, "num_heads": 2, "intermediate_size": 64,
                            "context_length": 64, "dropout": 0.0, "media_positions": True})
    return build_lm(cfg, VOCAB).eval()


def packed_batch(items: list[tuple[int, int, int, int]]) -> dict[str, torch.Tensor]:
    return collate_packed([RowTagged(DATASET)[item] for item in items], pad_id=VOCAB.pad_id)


# Row 0: three documents (one with its condition dropped) then padding; row 1: two documents, no padding
# beyond the longest row. Draw 2 drops the condition (cond_drop_prob 0.3, seed 0).
ITEMS = [(0, 0, 0, 0), (1, 3, 2, 0), (2, 4, 3, 0), (3, 1, 5, 1), (4, 5, 6, 1)]


def test_packed_logits_equal_each_document_alone(model):
    assert len(DATASET[(1, 3, 2)]["ids"]) < len(DATASET[(1, 3, 4)]["ids"])  # draw 2 really drops the condition
    batch = packed_batch(ITEMS)
    with torch.no_grad():
        hidden = model.model(inputs_embeds=embed_ids(model, batch["ids"]), position_ids=batch["position_ids"],
                             use_cache=False).last_hidden_state
        packed = model.lm_head(hidden)
        cursor = Counter()
        for sample, task, draw, row in ITEMS:
            ids = DATASET[(sample, task, draw)]["ids"][None]
            alone = model(inputs_embeds=embed_ids(model, ids)).logits[0]
            start = cursor[row]
            torch.testing.assert_close(packed[row, start:start + ids.shape[1]], alone, atol=1e-5, rtol=0)
            cursor[row] += ids.shape[1]
        # The check has teeth: with positions running on across documents, attention crosses them.
        crossing = model.model(inputs_embeds=embed_ids(model, batch["ids"]), use_cache=False).last_hidden_state
    first = len(DATASET[ITEMS[0][:3]]["ids"])
    assert not torch.allclose(model.lm_head(crossing)[0, first:first + 4], packed[0, first:first + 4], atol=1e-3)
    assert batch["documents"].tolist() == [3, 2]


def test_packed_loss_equals_padded_loss_of_the_same_documents(model):
    batch = packed_batch(ITEMS)
    padded = collate([DATASET[item[:3]] for item in ITEMS], pad_id=VOCAB.pad_id)
    with torch.no_grad():
        loss_packed, parts_packed = masked_lm_loss(model, batch["ids"], batch["loss_mask"], None, batch["modality"],
                                                   batch["position_ids"])
        loss_padded, parts_padded = masked_lm_loss(model, padded["ids"], padded["loss_mask"],
                                                   padded["attention_mask"], padded["modality"])
    torch.testing.assert_close(loss_packed, loss_padded, atol=1e-5, rtol=0)
    assert parts_packed.keys() == parts_padded.keys()
    assert int(batch["loss_mask"].sum()) == int(padded["loss_mask"].sum())


def test_rows_restart_positions_and_never_target_a_document_start():
    batch = packed_batch(ITEMS)
    width = batch["ids"].shape[1]
    padded_rows = 0
    for row in (0, 1):
        lengths = [len(DATASET[item[:3]]["ids"]) for item in ITEMS if item[3] == row]
        starts = np.cumsum([0, *lengths])  # the last one starts the padding run, if the row has one
        if starts[-1] < width:
            padded_rows += 1
            assert (batch["ids"][row, starts[-1]:] == VOCAB.pad_id).all()
        starts = [int(s) for s in starts if s < width]
        positions = batch["position_ids"][row]
        assert all(positions[s] == 0 for s in starts) and positions[1] == 1
        assert not batch["loss_mask"][row, starts].any()
        assert int((positions == 0).sum()) == len(starts)
    assert padded_rows == 1 and width == max(sum(len(DATASET[i[:3]]["ids"]) for i in ITEMS if i[3] == r)
                                             for r in (0, 1))


def test_packed_batches_cover_each_item_once_within_capacity():
    lengths = ItemLengths(DATASET)
    sampler = PackedBatches(lengths, num_samples=12, num_tasks=6, rows=3, context_length=64,
                            weights=[3, 2, 1, 1, 1, 2], seed=1)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    draws = [draw for batch in batches for _, _, draw, _ in batch]
    assert sorted(draws) == list(range(72))  # every item of the epoch once
    assert Counter(s for batch in batches for s, _, _, _ in batch) == {s: 6 for s in range(12)}
    fill = []
    for batch in batches:
        used = Counter()
        for sample, task, draw, row in batch:
            used[row] += lengths((sample, task, draw))
        assert max(used.values()) <= 64 and set(used) <= {0, 1, 2}
        fill.append(sum(used.values()) / (3 * 64))
    assert np.mean(fill[:-1]) > 0.85  # first-fit with patience leaves little padding
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches


def test_packed_batches_move_on_by_themselves_and_resume_mid_epoch():
    make = lambda: PackedBatches(ItemLengths(DATASET), num_samples=12, num_tasks=6, rows=3,  # noqa: E731
                                 context_length=64, seed=2)
    sampler = make()
    first, second = list(sampler), list(sampler)  # Lightning never calls set_epoch on a batch sampler
    assert second != first and sampler.epoch == 1
    stopped = make()
    consumed = iter(stopped)
    for _ in range(3):
        next(consumed)
    resumed = make()
    resumed.load_state_dict(stopped.state_dict())
    assert list(resumed) == first[3:]


def test_task_weights_hold_when_packed():
    sampler = PackedBatches(lambda item: 10, num_samples=200, num_tasks=3, rows=2, context_length=40,
                            weights=[6, 3, 1], seed=0)
    counts = Counter(task for batch in sampler for _, task, _, _ in batch)
    assert np.allclose([counts[t] / 600 for t in range(3)], [0.6, 0.3, 0.1], atol=0.04)


def test_an_item_longer_than_the_context_is_refused():
    from unimodal.errors import ConfigError

    with pytest.raises(ConfigError, match="model.context_length=8"):
        pack([(0, 0, 0)], lambda item: 9, rows=2, capacity=8, patience=2)


def test_packed_training_runs_through_lightning(tmp_path, one_thread, monkeypatch):
    from unimodal.config import compose
    from unimodal.training import packing
    from unimodal.training.lm_trainer import fit_lm

    rows_seen = []
    monkeypatch.setattr(packing, "collate_packed", lambda batch, pad_id, **kwargs: rows_seen.append(batch) or
                        collate_packed(batch, pad_id, **kwargs))

    cfg = compose(["debug=smoke", "lm.packing=true", "lm.max_steps=3", "lm.val_every_steps=3", "lm.batch_size=2",
                   "model.context_length=64"])
    shapes = {"image_grid": [2, 3], "audio_frames": 3}
    sets = {"train": tokens(16, 1), "val": tokens(4, 2)}
    fit_lm(cfg, VOCAB, shapes, sets, tmp_path)
    summary = (tmp_path / "train_summary.json").read_text()
    assert '"steps": 3' in summary and (tmp_path / "lm" / "config.json").is_file()
    assert len(rows_seen) >= 3 and all("row" in item for item in rows_seen[0])
