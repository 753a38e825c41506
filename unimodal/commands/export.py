"""``scripts/export.py run=<run dir> out=<folder>``: a trained run as a folder that
``transformers.AutoModelForCausalLM.from_pretrained(out)`` loads as is, beside what it needs.

Only safetensors and JSON are copied, never a pickle. The folder is written under ``<out>.partial`` and
renamed when complete, so a killed export never leaves a folder that looks whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from unimodal.commands.app import is_hydra_arg, run_app
from unimodal.commands.options import options_from, validate_export
from unimodal.errors import UnimodalError
from unimodal.model.lm import MEDIA_POSITIONS_FILE, MEDIA_POSITIONS_KEY
from unimodal.model.vision_input import export_vision, read_vision_config, vision_readme
from unimodal.run_folder import EXPORT_FILE, LM_DIR, RUN_FILE, TOKENIZERS_DIR, VOCAB_FILE
from unimodal.vocab import Vocabulary

USAGE = """usage: python scripts/export.py run=<run dir> out=<new folder>

Writes a folder that transformers.AutoModelForCausalLM.from_pretrained(<folder>) loads as is (safetensors +
config JSON), with the vocabulary JSON, the run's tokenizers and a README.md saying what is where."""

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def _check_run(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise UnimodalError(f"run={run_dir}: no such run folder (train one with scripts/train.py)")
    lm_dir = run_dir / LM_DIR
    if not (lm_dir / "config.json").is_file():
        raise UnimodalError(f"{lm_dir}: no trained language model here (did training finish?)")
    if not any(p.name != MEDIA_POSITIONS_FILE for p in lm_dir.glob("*.safetensors")):
        pickled = [p.name for p in lm_dir.iterdir() if p.suffix in PICKLE_SUFFIXES]
        raise UnimodalError(f"{lm_dir}: no safetensors weights" + (f" (only {pickled}, which are pickles and are "
                                                                  f"not exported)" if pickled else ""))
    for name in (RUN_FILE, VOCAB_FILE):
        if not (run_dir / name).is_file():
            raise UnimodalError(f"{run_dir / name} is missing: {run_dir} is not a complete training run")
    return lm_dir


def _readme(info: dict[str, Any], model_config: dict[str, Any], media_positions: bool) -> str:
    lines = [
        "# unimodal export", "",
        "A language model over one shared vocabulary of text, special and media tokens, with the tokenizers",
        "that turn media into its ids and back.", "",
        "| path | what |", "|---|---|",
        f"| `config.json`, `*.safetensors` | the causal LM ({model_config.get('architectures', ['?'])[0]}, "
        f"{model_config.get('vocab_size')} ids): `AutoModelForCausalLM.from_pretrained(this folder)` |",
        "| `vocab.json` | the id layout: `[text][specials][image][audio]`, each range's start and size |",
        "| `tokenizers/<modality>/` | each modality's tokenizer (`unimodal.tokenizers.base.load_tokenizer`) |",
        "| `run.json` | modalities, tasks, image grid, image layout and AnyRes tiles, audio frames and layout, "
        "tokenizer fingerprints |",
        f"| `{EXPORT_FILE}` | this folder's contents, machine-readable |",
    ]
    if media_positions:
        lines.append(f"| `{MEDIA_POSITIONS_FILE}` | a learned embedding of each token's index inside its media "
                     f"span, **added to the input embeddings** |")
    lines += ["", "```python", "from transformers import AutoModelForCausalLM",
              "model = AutoModelForCausalLM.from_pretrained(\"<this folder>\")", "```", ""]
    if media_positions:
        lines += [f"The model was trained with `{MEDIA_POSITIONS_FILE}` added to its input embeddings (see",
                  "`unimodal.model.lm.embed_ids`); the plain HF model above leaves it out, so feed",
                  "`inputs_embeds = embed(ids) + table[index in span]`, or load the training run with `unimodal.load`.",
                  ""]
    lines += [f"Modalities: text + {', '.join(info.get('media', [])) or 'nothing else'}; "
              f"vocabulary fingerprint `{info.get('vocab_fingerprint')}`.", ""]
    return "\n".join(lines)


def _remote_readme(remote: dict[str, str] | None) -> str:
    if remote is None:
        return ""
    return "\n".join([
        "## Which load gives which logits", "",
        "```python", "from transformers import AutoModelForCausalLM",
        "model = AutoModelForCausalLM.from_pretrained(\"<this folder>\", trust_remote_code=True)", "```", "",
        f"builds `{remote['class']}` from `{remote['file']}` (it imports only torch and transformers and reads the",
        f"table from `{MEDIA_POSITIONS_FILE}`): the logits unimodal computes, in a forward pass and in `generate()`.",
        "Without `trust_remote_code` the same call builds a plain `LlamaForCausalLM` without the table: its logits",
        "equal unimodal's only where no media token is in the input.", ""])


def export_run(run_dir: str | Path, out: str | Path) -> Path:
    """Write the export of ``run_dir`` to ``out`` (which must not exist or be empty); return ``out``."""
    run_dir, out = Path(run_dir), Path(out)
    lm_dir = _check_run(run_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnimodalError(f"out={out} already exists and is not empty; choose a new folder or remove it")
    vocab = Vocabulary.load(run_dir / VOCAB_FILE)
    vocab.check_same(Vocabulary.load(lm_dir / VOCAB_FILE), f"checkpoint {lm_dir}")
    info = json.loads((run_dir / RUN_FILE).read_text())
    model_config = json.loads((lm_dir / "config.json").read_text())

    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for source in sorted(lm_dir.iterdir()):  # config, generation config, weights (and their index), media table
        if source.is_file() and source.suffix in (".json", ".safetensors"):
            shutil.copy2(source, partial / source.name)
    shutil.copy2(run_dir / VOCAB_FILE, partial / VOCAB_FILE)
    shutil.copy2(run_dir / RUN_FILE, partial / RUN_FILE)
    shutil.copytree(run_dir / TOKENIZERS_DIR, partial / TOKENIZERS_DIR)
    media_positions = (lm_dir / MEDIA_POSITIONS_FILE).is_file()
    from unimodal.model.remote_code import add_remote_code, supports_remote_code
    remote = add_remote_code(partial, vocab) if media_positions and supports_remote_code(model_config) else None
    manifest = {
        "format": "unimodal-export/1",
        "model": {"loader": "transformers.AutoModelForCausalLM", "vocab_size": model_config.get("vocab_size")},
        "vocab": {"file": VOCAB_FILE, "fingerprint": vocab.fingerprint},
        "tokenizers": {m: {"folder": f"{TOKENIZERS_DIR}/{m}", **t} for m, t in info.get("tokenizers", {}).items()},
        "media_positions": ({"file": MEDIA_POSITIONS_FILE, "max_span": model_config.get(MEDIA_POSITIONS_KEY),
                             "use": "added to the input embeddings (unimodal.model.lm.embed_ids)"}
                            if media_positions else None),
        "remote_code": remote,   # trust_remote_code: the class that adds the table, unimodal's logits
    }
    manifest["vision"] = export_vision(lm_dir, partial)  # images read as features: encoder folder or reference
    (partial / EXPORT_FILE).write_text(json.dumps(manifest, indent=2))
    vision = read_vision_config(partial)
    (partial / "README.md").write_text(_readme(info, model_config, media_positions) + _remote_readme(remote)
                                       + ("\n".join(vision_readme(vision)) if vision else ""))
    if out.exists():
        out.rmdir()  # empty (checked above)
    partial.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_app(lambda cfg: export_from(str(cfg.run or ""), str(cfg.out or "")), "export", USAGE, argv,
                   check=_check, prepare=lambda arg: arg if "=" not in arg else quote_value(arg))


def _check(args: list[str]) -> None:
    """Names, types and the two required keys, before Hydra sees them (:func:`validate_export`)."""
    validate_export(options_from([arg for arg in args if "=" in arg and not is_hydra_arg(arg)]))


def export(overrides: list[str]) -> Path:
    """``run=<dir> out=<folder>`` from Python."""
    _check(overrides)
    args = dict(item.split("=", 1) for item in overrides)
    return export_from(args["run"], args["out"])


def export_from(run: str, out: str) -> Path:
    folder = export_run(run, out)
    print(f"exported {run} -> {folder}  (AutoModelForCausalLM.from_pretrained(\"{folder}\"))", flush=True)
    return folder


def quote_value(arg: str) -> str:
    """A folder name is text to Hydra, whatever its characters."""
    key, _, value = arg.partition("=")
    if key not in ("run", "out") or not value or value[0] in "'\"":
        return arg
    return f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
