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


def _media_ids(vocab, generator) -> torch.Tensor:
    """Two rows of text, an image span (opener, codes, closer) and an audio span: where the table matters."""
    image, audio = vocab.range_of("image"), vocab.range_of("audio")
    rows = []
    for _ in range(2):
        text = torch.randint(0, vocab.text_size, (4,), generator=generator)
        codes = torch.randint(image[0], image[1], (10,), generator=generator)
        sound = torch.randint(audio[0], audio[1], (6,), generator=generator)
        rows.append(torch.cat([torch.tensor([vocab.bos_id]), text, torch.tensor([vocab.special("<boi>")]), codes,
                               torch.tensor([vocab.special("<eoi>"), vocab.special("<boa>")]), sound]))
    return torch.stack(rows)


def test_remote_code_load_reproduces_our_logits(smoke_run, tmp_path):
    """Must show: AutoModelForCausalLM.from_pretrained(export, trust_remote_code=True) gives our logits (1e-5), in a
    forward pass and through generate(); the plain load, which drops the media-position table, does not."""
    import ast

    from transformers import AutoModelForCausalLM

    import unimodal
    from unimodal.commands.export import EXPORT_FILE, export_run
    from unimodal.model.lm import embed_ids

    _, run_dir = smoke_run
    out = export_run(run_dir, tmp_path / "export")
    manifest = json.loads((out / EXPORT_FILE).read_text())
    assert manifest["remote_code"]["file"] == "modeling_unimodal.py"
    imported = {node.names[0].name.split(".")[0] if isinstance(node, ast.Import) else node.module.split(".")[0]
                for node in ast.walk(ast.parse((out / "modeling_unimodal.py").read_text()))
                if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", "x") != "__future__"}
    assert imported == {"torch", "transformers"}
    pipe = unimodal.load(run_dir, device="cpu")
    ours = pipe.model.eval()
    remote = AutoModelForCausalLM.from_pretrained(out, trust_remote_code=True).eval()
    plain = AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(remote).__name__ == "UnimodalLlamaForCausalLM" and type(plain).__name__ == "LlamaForCausalLM"
    ids = _media_ids(pipe.vocab, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = ours(inputs_embeds=embed_ids(ours, ids)).logits
        torch.testing.assert_close(remote(ids).logits, expected, atol=1e-5, rtol=0)
        assert (plain(ids).logits - expected).abs().max() > 1e-3   # the table is not in a plain load
        generated = remote.generate(ids[:1], max_new_tokens=6, do_sample=False, pad_token_id=pipe.vocab.pad_id)
        greedy = ids[:1]
        for _ in range(6):  # our model, the whole sequence each step
            step = ours(inputs_embeds=embed_ids(ours, greedy)).logits[:, -1].argmax(-1, keepdim=True)
            greedy = torch.cat([greedy, step], dim=1)
    assert torch.equal(generated, greedy)
