"""The model class an export ships for ``trust_remote_code``: the media-position table that a plain load drops.

A model trained with ``model.media_positions`` adds a learned table to its input embeddings (``lm.embed_ids``). A
plain ``AutoModelForCausalLM.from_pretrained(<export>)`` builds a ``LlamaForCausalLM`` without it, whose logits
differ wherever media tokens are in the input. :func:`add_remote_code` copies
:mod:`unimodal.model.media_llama` into the export and points ``config.json``'s ``auto_map`` at it, so
``from_pretrained(<export>, trust_remote_code=True)`` builds the model unimodal runs, table included.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from unimodal.model import media_llama
from unimodal.model.lm import media_start, span_resets
from unimodal.vocab import Vocabulary

MODULE_FILE = "modeling_unimodal.py"
CLASS_NAME = "UnimodalLlamaForCausalLM"
LOADER = "AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)"


def supports_remote_code(model_config: dict[str, Any]) -> bool:
    """The shipped class is a Llama: other families (a ``stage=align`` start) keep the plain load only."""
    return model_config.get("model_type") == "llama"


def add_remote_code(folder: Path, vocab: Vocabulary) -> dict[str, str]:
    """Write the class file into ``folder`` and register it in its ``config.json``; return the manifest entry."""
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config["auto_map"] = {"AutoModelForCausalLM": f"{Path(MODULE_FILE).stem}.{CLASS_NAME}"}
    config[media_llama.RESETS_KEY] = span_resets(vocab)
    config[media_llama.START_KEY] = media_start(vocab)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    shutil.copy2(media_llama.__file__, folder / MODULE_FILE)
    return {"file": MODULE_FILE, "class": CLASS_NAME, "loader": LOADER}
