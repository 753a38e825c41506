"""stage=align with model.vision_input=features: a tiny CLIPVisionModel and a tiny Llama, both saved here; only the
projector trains (LLaVA's first stage)."""

from __future__ import annotations

import numpy as np
import torch

from tests.conftest import smoke_overrides
from tests.tiny_llm import save_tiny_llm
from tests.tiny_pipeline import save_tiny_clip
from unimodal.config import compose


def test_align_with_features_trains_the_projector_and_nothing_else(tmp_path, one_thread):
    """Must show: after stage=align every encoder and LM weight is bit-identical, the projector changed, and
    gradients reach the projector only."""
    from transformers import AutoModelForCausalLM, CLIPVisionModel

    import unimodal
    from unimodal.data.pixels import FeatureTokens
    from unimodal.data.sources import load_samples
    from unimodal.data.tokens import TokenizedSet
    from unimodal.media import tensor_to_images
    from unimodal.run_folder import build_vocab, load_run_tokenizers, make_codec, read_run_info
    from unimodal.training.lm_data import TaskDataset
    from unimodal.training.lm_module import masked_lm_loss
    from unimodal.training.run import train
    from unimodal.training.vision_stage import aligned_feature_lm, attach_vision

    llm = save_tiny_llm(tmp_path / "llama")
    clip = save_tiny_clip(tmp_path / "clip", image_size=32)
    cfg = compose(smoke_overrides(tmp_path, "modality=image", "stage=align", "model=from_pretrained",
                                  f"model.pretrained={llm}", "tokenizer/text=pretrained", "model.vision_input=features",
                                  "encoder=pretrained", f"encoder.path={clip}", f"run_dir={tmp_path}/run"))
    run_dir = train(cfg)
    vocab = build_vocab(load_run_tokenizers(run_dir, read_run_info(run_dir)))

    before = AutoModelForCausalLM.from_pretrained(llm).state_dict()
    after = AutoModelForCausalLM.from_pretrained(run_dir / "lm").state_dict()
    for name, weight in before.items():
        kept = after[name][:vocab.text_size] if name in ("model.embed_tokens.weight", "lm_head.weight") else after[name]
        assert torch.equal(kept, weight), f"LM weight {name} changed in stage=align"
    torch.manual_seed(int(cfg.seed))   # the LM's new rows and the projector as fit_lm built them
    initial = aligned_feature_lm(cfg, vocab, int(cfg.seed))
    collate = attach_vision(cfg, initial, run_dir, vocab.pad_id, aligning=True)
    new_rows = torch.cat([initial.get_input_embeddings().new_rows, initial.get_output_embeddings().new_rows])
    torch.testing.assert_close(torch.cat([after["model.embed_tokens.weight"][vocab.text_size:],
                                          after["lm_head.weight"][vocab.text_size:]]), new_rows, atol=0, rtol=0)
    encoder_before = CLIPVisionModel.from_pretrained(clip).state_dict()
    pipe = unimodal.load(run_dir, device="cpu")
    trained = pipe.model.vision_input
    for name, weight in trained.encoder.model.state_dict().items():
        assert torch.equal(weight, encoder_before[name]), f"encoder weight {name} changed in stage=align"
    start = initial.vision_input.projector.state_dict()
    assert all(not torch.equal(w, start[n]) for n, w in trained.projector.state_dict().items()), "projector unchanged"

    # one batch of what align trains on, through the model and collate fit_lm sets up: only the projector gets gradients
    samples = load_samples(cfg.data, ("train",))["train"]
    texts = pipe.tokenizers["text"].encode(samples.captions[:4])
    codes = pipe.tokenizers["image"].encode(samples.media("image", 0, 4)).numpy()
    tokens = FeatureTokens(TokenizedSet(texts, {"image": codes}, samples.captions[:4]),
                           np.stack(tensor_to_images(samples.media("image", 0, 4))), trained.crop_size)
    dataset = TaskDataset(tokens, make_codec(read_run_info(run_dir), vocab), ["image->text"], 256)
    batch = collate([dataset[i] for i in range(4)])
    loss, _ = masked_lm_loss(initial, batch["ids"], batch["loss_mask"], batch["attention_mask"],
                             images=batch["pixel_values"])
    loss.backward()
    reached = {name for name, p in initial.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert reached == {name for name, _ in initial.named_parameters() if name.startswith("vision_input.projector.")}
