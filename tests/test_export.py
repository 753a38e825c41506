"""scripts/export.py: a run as a folder that transformers loads as is, with the same logits as unimodal's."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from unimodal.errors import UnimodalError


def test_export_loads_with_automodel_and_matches_unimodal(smoke_run, tmp_path):
    from transformers import AutoModelForCausalLM

    import unimodal
    from unimodal.commands.export import EXPORT_FILE, export

    _, run_dir = smoke_run
    out = export([f"run={run_dir}", f"out={tmp_path / 'export'}"])
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "vocab.json", "run.json", "README.md", EXPORT_FILE,
            "tokenizers"} <= names
    assert not [p for p in out.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
    assert {p.name for p in (out / "tokenizers").iterdir()} == {"text", "image", "audio"}
    manifest = json.loads((out / EXPORT_FILE).read_text())
    assert manifest["vocab"]["fingerprint"]
    exported = AutoModelForCausalLM.from_pretrained(out).eval()
    reference = unimodal.load(run_dir, device="cpu").model
    # the default model has the media-position table (model.media_positions): exported beside the model
    table = load_file(str(out / manifest["media_positions"]["file"]))["weight"]
    torch.testing.assert_close(table, reference.media_positions.embed.weight, atol=0, rtol=0)
    ids = torch.randint(0, exported.config.vocab_size, (2, 24), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(exported(ids).logits, reference(ids).logits, atol=1e-6, rtol=0)


def test_export_errors_name_the_fix(smoke_run, tmp_path):
    from unimodal.commands.export import export_run

    with pytest.raises(UnimodalError, match="no such run folder"):
        export_run(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    with pytest.raises(UnimodalError, match="not empty"):
        export_run(smoke_run[1], tmp_path / "taken")


def test_export_script_prints_one_line_error(tmp_path, capsys):
    from unimodal.commands.export import main

    assert main([f"run={tmp_path / 'nope'}", f"out={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such run folder" in err[0]
