"""stage=instruct init_from=<run>: tuning starts from an earlier run's model (aligned LLM or ours) and tokenizers."""

from __future__ import annotations

import json

import pytest

from tests.conftest import copy_with_retrained_tokenizer, loss_of, smoke_overrides
from tests.test_align import align_overrides, tiny_llm  # noqa: F401  (a fixture)
from unimodal.config import compose
from unimodal.errors import ConfigError, VocabularyMismatch


def instruct_from(root, source, *extra: str) -> list[str]:
    return smoke_overrides(root, "stage=instruct", f"init_from={source}", f"run_dir={root}/instruct",
                           "trainer.precision=32-true", *extra)


def test_align_then_instruct_starts_from_the_aligned_weights(tiny_llm, tmp_path, first_step,  # noqa: F811
                                                             one_thread):
    """Must show: stage=align on a tiny saved Llama, then stage=instruct init_from= that run; the first instruct
    loss is the aligned model's loss on the same batch."""
    from unimodal.training.run import train

    aligned = train(compose(align_overrides(tmp_path, tiny_llm, f"run_dir={tmp_path}/align")))
    first_step.clear()  # only modality=image: no tokenizer or model override, both come from the aligned run
    tuned = train(compose(instruct_from(tmp_path, aligned, "modality=image")))
    assert first_step["loss"] == pytest.approx(loss_of(aligned, first_step["batch"]), abs=1e-6)
    info = json.loads((tuned / "run.json").read_text())
    assert info["init_from"] == str(aligned) and info["tokenizers"]["text"]["kind"] == "hf"
    assert (tuned / "lm-pretrain" / "model.safetensors").read_bytes() == (aligned / "lm" /
                                                                          "model.safetensors").read_bytes()
    assert json.loads((tuned / "instruct" / "summary.json").read_text())["steps"] == 4
    assert loss_of(tuned, first_step["batch"]) != pytest.approx(first_step["loss"], abs=1e-6)  # it tuned


def test_init_from_refuses_other_tokenizers_and_mismatched_settings(smoke_run, tmp_path):
    from unimodal.training.run import train

    _, source = smoke_run
    copy = copy_with_retrained_tokenizer(source, tmp_path / "retrained", "image")
    with pytest.raises(VocabularyMismatch) as caught:
        train(compose(instruct_from(tmp_path, copy)))
    message = str(caught.value)
    info = json.loads((source / "run.json").read_text())
    assert len(message.splitlines()) == 1 and info["tokenizers"]["image"]["fingerprint"] in message
    with pytest.raises(ConfigError, match="add modality=image\\+audio"):
        train(compose(instruct_from(tmp_path, source, "modality=image")))
    with pytest.raises(ConfigError, match="only stage=instruct"):
        train(compose(smoke_overrides(tmp_path, f"init_from={source}")))
    with pytest.raises(ConfigError, match="data.image_size=32"):
        train(compose(instruct_from(tmp_path, source, "data.image_size=16")))


def test_instruct_with_a_pretrained_model_but_no_init_from_is_refused(tiny_llm, tmp_path):  # noqa: F811
    from unimodal.training.run import train

    with pytest.raises(ConfigError, match="init_from"):
        train(compose(smoke_overrides(tmp_path, "modality=image", "stage=instruct", "model=from_pretrained",
                                      f"model.pretrained={tiny_llm}", "tokenizer/text=pretrained")))
