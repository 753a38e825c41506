"""Checkpoint folders of safetensors + JSON: every value comes back as saved, with nothing unpickled; a save
killed at any point leaves the previous checkpoint whole."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from unimodal.errors import UnimodalError
from unimodal.training import checkpoint_io
from unimodal.training.checkpoint_io import SafetensorsCheckpointIO, recover_checkpoint
from unimodal.training.resume import checkpoint_step, checkpoint_to_resume


def _no_unpickling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("unpickling called")

    for module, name in ((torch, "load"), (pickle, "load"), (pickle, "loads"), (pickle, "Unpickler")):
        monkeypatch.setattr(module, name, refuse)


def _tied_model() -> torch.nn.Module:
    model = torch.nn.Sequential(torch.nn.Embedding(5, 4), torch.nn.Linear(4, 5, bias=False))
    model[1].weight = model[0].weight  # tied, as embedding and output head can be
    return model


def _trained_state() -> dict:
    """A checkpoint shaped like Lightning's: tied weights, a stepped AdamW and LambdaLR, RNG and loop states."""
    torch.manual_seed(0)
    model = _tied_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, betas=(0.9, 0.95))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (step + 1))
    for _ in range(2):
        model(torch.tensor([1, 2])).sum().backward()
        optimizer.step()
        scheduler.step()
    return {"global_step": 2, "state_dict": model.state_dict(), "optimizer_states": [optimizer.state_dict()],
            "lr_schedulers": [scheduler.state_dict()],
            "callbacks": {"RngState": {"torch": torch.get_rng_state(), "python": [3, [1, 2], None]},
                          "ModelCheckpoint{'monitor': None}": {"kth_value": torch.tensor(math.inf),
                                                               "best_model_score": None}},
            "loops": {"position": {"epoch": 1, "batches": 3}, "ratio": float("nan"), "raw": b"\x00\xff",
                      "table": np.arange(6, dtype=np.uint32).reshape(2, 3), "count": np.int64(7)}}


def test_round_trip_without_unpickling(tmp_path, monkeypatch):
    state = _trained_state()
    target = tmp_path / "last.ckpt"
    io = SafetensorsCheckpointIO()
    io.save_checkpoint(state, target)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["checkpoint.json", "last.ckpt", "model.safetensors",
                                                           "optimizer.safetensors", "state.safetensors"]
    _no_unpickling(monkeypatch)
    loaded = io.load_checkpoint(target)
    assert checkpoint_step(target) == 2
    for name, tensor in state["state_dict"].items():
        assert torch.equal(loaded["state_dict"][name], tensor)
    saved_opt, loaded_opt = state["optimizer_states"][0], loaded["optimizer_states"][0]
    assert loaded_opt["param_groups"] == saved_opt["param_groups"]        # betas still a tuple
    assert sorted(loaded_opt["state"]) == sorted(saved_opt["state"])      # integer keys
    for index, slots in saved_opt["state"].items():
        for key, value in slots.items():
            assert torch.equal(loaded_opt["state"][index][key], value), (index, key)
    assert loaded["lr_schedulers"] == state["lr_schedulers"]
    assert torch.equal(loaded["callbacks"]["RngState"]["torch"], state["callbacks"]["RngState"]["torch"])
    assert loaded["callbacks"]["RngState"]["python"] == [3, [1, 2], None]
    loops = loaded["loops"]
    assert loops["position"] == {"epoch": 1, "batches": 3} and math.isnan(loops["ratio"])
    assert loops["raw"] == b"\x00\xff"
    assert loops["table"].dtype == np.uint32 and (loops["table"] == np.arange(6).reshape(2, 3)).all()
    assert loops["count"] == 7
    model = _tied_model()
    model.load_state_dict(loaded["state_dict"])
    torch.optim.AdamW(model.parameters(), lr=0.1).load_state_dict(loaded_opt)


def test_values_json_cannot_hold_are_refused_by_name(tmp_path):
    with pytest.raises(UnimodalError, match=r"loops\.fn is a builtin_function_or_method"):
        SafetensorsCheckpointIO().save_checkpoint({"global_step": 1, "loops": {"fn": len}}, tmp_path / "c")
    assert not list(tmp_path.iterdir())  # nothing written


def test_a_killed_save_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    target = tmp_path / "checkpoints" / "last.ckpt"
    io = SafetensorsCheckpointIO()
    io.save_checkpoint({"global_step": 3, "state_dict": {"w": torch.ones(2)}}, target)

    def killed_mid_write(tensors, filename, *args, **kwargs):
        open(filename, "wb").write(b"half a file")
        raise KeyboardInterrupt  # what a kill at this point would leave behind

    monkeypatch.setattr(checkpoint_io, "save_file", killed_mid_write)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 4, "state_dict": {"w": torch.zeros(2)}}, target)
    monkeypatch.undo()
    assert checkpoint_to_resume(target.parent, True) == target
    assert checkpoint_step(target) == 3 and torch.equal(io.load_checkpoint(target)["state_dict"]["w"], torch.ones(2))
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]  # the partial folder is gone

    # Killed between the two renames: the old folder moved aside, the new one complete but not yet in place.
    io.save_checkpoint({"global_step": 5}, target.with_name("last.ckpt.partial"))
    target.rename(target.with_name("last.ckpt.previous"))
    recover_checkpoint(target)
    assert checkpoint_step(target) == 3 and sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]


def test_a_pickle_checkpoint_is_refused_not_loaded(tmp_path):
    old = tmp_path / "checkpoints" / "last.ckpt"
    old.parent.mkdir()
    old.write_bytes(b"\x80\x04 a pickle")
    with pytest.raises(UnimodalError, match="resume=false"):
        checkpoint_step(checkpoint_to_resume(old.parent, True))
