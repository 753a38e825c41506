"""A Llama with unimodal's media-position table, loadable by ``transformers`` alone.

``AutoModelForCausalLM.from_pretrained(<export>, trust_remote_code=True)`` builds
:class:`UnimodalLlamaForCausalLM` from this file, which ``scripts/export.py`` copies into every export whose model
has the table (as ``modeling_unimodal.py``). So it imports only torch and transformers and fetches nothing: the
table comes from ``media_positions.safetensors`` beside the weights. unimodal's own model uses :class:`SpanTable`
from here too (``unimodal.model.lm.MediaPositions``), so training and the export share one definition.

The table is a learned embedding of each token's index inside its media span, added to the token embedding:
the index restarts at every span opener, ``<tile>`` and ``<frame>`` (``unimodal_span_resets`` in config.json),
counts media tokens (ids from ``unimodal_media_start`` on) and is 0 everywhere else, capped at
``unimodal_media_positions``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaForCausalLM

TABLE_FILE = "media_positions.safetensors"
SPAN_KEY, RESETS_KEY, START_KEY = "unimodal_media_positions", "unimodal_span_resets", "unimodal_media_start"


class SpanTable(nn.Module):
    """Embedding of a token's index inside its media span (row 0, outside spans, kept at zero)."""

    def __init__(self, resets: list[int], media_start: int, hidden_size: int, max_span: int) -> None:
        super().__init__()
        self.max_span = int(max_span)
        self.media_start = int(media_start)
        self.embed = nn.Embedding(self.max_span + 1, hidden_size, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=0.02)
        with torch.no_grad():
            self.embed.weight[0].zero_()
        self.register_buffer("resets", torch.tensor(list(resets), dtype=torch.long), persistent=False)

    def positions(self, ids: torch.Tensor) -> torch.Tensor:
        index = torch.arange(ids.shape[-1], device=ids.device).expand_as(ids)
        start = torch.where(torch.isin(ids, self.resets), index, -1).cummax(dim=-1).values
        inside = (ids >= self.media_start) & (start >= 0)
        return torch.where(inside, index - start, 0).clamp(max=self.max_span)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(self.positions(ids))


class UnimodalLlamaForCausalLM(LlamaForCausalLM):
    """``LlamaForCausalLM`` whose input embeddings add the media-position table: the logits unimodal computes."""

    _keys_to_ignore_on_load_missing = [r"media_positions\."]

    def __init__(self, config) -> None:
        super().__init__(config)
        self.media_positions = SpanTable(getattr(config, RESETS_KEY), getattr(config, START_KEY),
                                         config.hidden_size, getattr(config, SPAN_KEY))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        from transformers.modeling_utils import load_state_dict
        from transformers.utils import cached_file

        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        options = {k: kwargs[k] for k in ("cache_dir", "local_files_only", "revision", "token") if k in kwargs}
        path = cached_file(pretrained_model_name_or_path, TABLE_FILE, **options)
        weight = load_state_dict(path)["weight"]
        table = model.media_positions
        with torch.no_grad():
            table.embed.weight.copy_(weight.to(table.embed.weight))
            # Not a saved buffer, so from_pretrained's meta-device start leaves it unset: rebuilt from config.json.
            table.resets = torch.tensor(getattr(model.config, RESETS_KEY), dtype=torch.long, device=table.resets.device)
        return model

    def prepare_inputs_for_generation(self, input_ids, *args, **kwargs):
        inputs = super().prepare_inputs_for_generation(input_ids, *args, **kwargs)
        inputs["media_context"] = input_ids  # the whole sequence: a cached step's index needs its span's start
        return inputs

    def forward(self, input_ids=None, inputs_embeds=None, media_context=None, **kwargs):
        if input_ids is not None and inputs_embeds is None:
            context = input_ids if media_context is None else media_context
            index = self.media_positions.positions(context)[..., context.shape[-1] - input_ids.shape[-1]:]
            inputs_embeds = self.get_input_embeddings()(input_ids) + self.media_positions.embed(index)
            input_ids = None
        return super().forward(input_ids=input_ids, inputs_embeds=inputs_embeds, **kwargs)
