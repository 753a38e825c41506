"""stage=align: a tiny saved HF Llama + its tokenizer, extended with our tokens; only the new rows train."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import smoke_overrides
from tests.tiny_llm import save_tiny_llm
from unimodal.config import compose
from unimodal.errors import ConfigError
from unimodal.vocab import Vocabulary


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return save_tiny_llm(tmp_path_factory.mktemp("llm") / "tiny-llama")


def align_overrides(root, llm, *extra: str) -> list[str]:
    return smoke_overrides(root, "modality=image", "stage=align", "model=from_pretrained", f"model.pretrained={llm}",
                           "tokenizer/text=pretrained", *extra)


def test_hf_text_tokenizer_round_trips_through_its_folder(tiny_llm, tmp_path):
    from unimodal.tokenizers.base import load_tokenizer
    from unimodal.tokenizers.hf_text import PretrainedTextTokenizer

    tokenizer = PretrainedTextTokenizer(str(tiny_llm))
    ids = tokenizer.encode(["a red circle left of a blue square"])
    assert tokenizer.decode(ids[0]) == "a red circle left of a blue square"
    tokenizer.save(tmp_path / "tok")
    loaded = load_tokenizer(tmp_path / "tok")  # reads only the copy in tok/hf, never the original path
    assert loaded.fingerprint == tokenizer.fingerprint and loaded.encode(["a red circle left of a blue square"]) == ids
    assert PretrainedTextTokenizer(str(tiny_llm), pad_to=320).codebook_size == 320
    with pytest.raises(ConfigError, match="tokenizer.text.path"):
        PretrainedTextTokenizer(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("tied", [False, True])
def test_extended_model_merges_into_a_plain_hf_model(tmp_path, tied):
    """Parity: logits of the extended training model equal those of the merged, saved and reloaded HF model."""
    from transformers import AutoTokenizer

    from unimodal.model.extend import build_aligned_lm, merge_new_rows
    from unimodal.model.lm import embed_ids, load_lm, save_lm

    llm = save_tiny_llm(tmp_path / "llm", tie_word_embeddings=tied)
    rows = len(AutoTokenizer.from_pretrained(llm))
    vocab = Vocabulary(rows, {"image": (16, 1)})
    cfg = compose(["model=from_pretrained", f"model.pretrained={llm}", "model.media_positions=true"]).model
    model = build_aligned_lm(cfg, vocab, seed=0)
    with torch.no_grad():  # make the new rows and the media table non-trivial
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)
    assert all(not p.requires_grad for n, p in model.named_parameters() if "new_" not in n and "media_" not in n)
    ids = torch.tensor([[vocab.bos_id, 5, 7, vocab.special("<boi>"), *range(vocab.size - 16, vocab.size - 8),
                         vocab.special("<eoi>"), 9]])
    with torch.no_grad():
        hidden = model.model(inputs_embeds=embed_ids(model, ids)).last_hidden_state
        expected = model.lm_head(hidden)
        merged = merge_new_rows(model)
        assert merged.config.vocab_size == vocab.size
        assert (merged.get_output_embeddings().weight is merged.get_input_embeddings().weight) == tied
        save_lm(merged, tmp_path / "lm")
        reloaded = load_lm(tmp_path / "lm", vocab)
        got = reloaded(inputs_embeds=embed_ids(reloaded, ids)).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_align_freezes_every_pretrained_weight(tiny_llm, tmp_path, one_thread):
    """Must show: after stage=align every pre-existing parameter is bit-identical; the new rows changed."""
    from transformers import AutoModelForCausalLM

    import unimodal
    from unimodal.model.extend import build_aligned_lm
    from unimodal.training.run import train

    # No weight decay here, so a new row changes only where its token's gradient moved it.
    cfg = compose(align_overrides(tmp_path, tiny_llm, f"run_dir={tmp_path}/run", "model.media_positions=true",
                                  "lm.weight_decay=0.0"))
    run_dir = train(cfg)
    before = AutoModelForCausalLM.from_pretrained(tiny_llm).state_dict()
    after = AutoModelForCausalLM.from_pretrained(run_dir / "lm").state_dict()
    vocab = Vocabulary.load(run_dir / "vocab.json")
    rows = vocab.text_size
    assert rows == before["model.embed_tokens.weight"].shape[0]
    assert after["model.embed_tokens.weight"].shape[0] == vocab.size
    for name, weight in before.items():
        kept = after[name][:rows] if name in ("model.embed_tokens.weight", "lm_head.weight") else after[name]
        assert torch.equal(kept, weight), f"{name} changed in stage=align"
    initial = build_aligned_lm(cfg.model, vocab, int(cfg.seed))  # same seed: the new rows as training began
    # <bos> is only ever read and <eos> only ever predicted, so each trains one of the two matrices.
    for name, module, tokens in (("model.embed_tokens.weight", initial.get_input_embeddings(), ("<bos>", "<boi>")),
                                 ("lm_head.weight", initial.get_output_embeddings(), ("<boi>", "<eoi>", "<eos>"))):
        changed = (after[name][rows:] != module.new_rows.detach()).any(dim=1)
        for token in tokens:
            assert changed[vocab.special(token) - rows], f"{name}: the {token} row did not train"
        image_start, image_stop = vocab.range_of("image")
        assert changed[image_start - rows:image_stop - rows].sum() >= 8, f"{name}: image code rows did not train"
    pipe = unimodal.load(run_dir, device="cpu")
    assert pipe.model.media_positions.embed.weight.abs().sum() > 0  # zero at the start; it trained
    assert len(pipe.generate("a red circle", output="image")[0].images) == 1


def test_align_config_errors_are_one_line(tiny_llm, tmp_path):
    from unimodal.training.run import train

    with pytest.raises(ConfigError, match="model=from_pretrained"):
        train(compose(smoke_overrides(tmp_path, "modality=image", "stage=align")))
    with pytest.raises(ConfigError, match="tokenizer/text=pretrained"):
        train(compose(smoke_overrides(tmp_path, "modality=image", "stage=align", "model=from_pretrained",
                                      f"model.pretrained={tiny_llm}")))
    with pytest.raises(ConfigError, match="stage=align"):
        train(compose(smoke_overrides(tmp_path, "modality=image", "stage=pretrain", "model=from_pretrained",
                                      f"model.pretrained={tiny_llm}")))
