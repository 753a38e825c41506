"""A tiny pretrained-LM stand-in: a BPE tokenizer and a Llama, both written with ``save_pretrained``
(what ``model.pretrained`` and ``tokenizer.text.path`` read), so no test needs a model hub."""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = ["a", "an", "the", "red", "green", "blue", "yellow", "circle", "square", "triangle", "left", "right", "of",
         "above", "below", "and", "small", "large", "shape", "scene"]


def save_tiny_llm(folder: Path, tie_word_embeddings: bool = False, seed: int = 0) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<s>", "</s>"], show_progress=False)
    backend.train_from_iterator([" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>")
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, intermediate_size=64, max_position_embeddings=256,
                         tie_word_embeddings=tie_word_embeddings, bos_token_id=0, eos_token_id=1)
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return Path(folder)
