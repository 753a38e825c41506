"""``scripts/demo.py``: load a run, build its page (:mod:`unimodal.demo`), serve it until Ctrl-C."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from unimodal.cli import run_cli
from unimodal.errors import ConfigError, UnimodalError

USAGE = """usage: python scripts/demo.py run=<run dir> [port=7860] [host=127.0.0.1] [device=cpu|cuda] [key=value]

  Serves a trained run as a page in the browser (gradio; pip install -e ".[demo]"): generate text, images,
  sounds or clips from a prompt, an uploaded image, sound or clip; chat with a stage=instruct run; see the
  run's config, tokenizer cards, evaluation figures, and reconstruct your own image or sound.
  host=0.0.0.0 serves other machines too. device: default the run's (cuda when there is one).
  The page starts from the sampling settings of conf/generate.yaml; any of them can be set here, e.g.
  cfg_scale.image=2.0 temperature.text=0.5 top_k.audio=50 cfg_schedule.image=linear max_new_tokens=128"""
OPTIONS: dict[str, Any] = {"run": None, "port": 7860, "host": "127.0.0.1", "device": None}
# conf/generate.yaml keys that set the page's starting sampling settings
SAMPLING_KEYS = ("cfg_scale", "temperature", "top_k", "top_p", "cfg_schedule", "repetition_penalty",
                 "max_new_tokens", "min_text_tokens", "fast")


def parse_options(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides -> this command's options, each checked (a one-line message names the key);
    sampling keys are kept, as overrides of conf/generate.yaml, under ``sampling``."""
    options = {**OPTIONS, "sampling": []}
    for override in overrides:
        key, _, value = override.partition("=")
        if key.split(".")[0] in SAMPLING_KEYS:
            options["sampling"].append(override)
            continue
        if key not in OPTIONS:
            raise ConfigError(f"unknown key {key!r}; demo takes {', '.join(f'{k}=' for k in OPTIONS)} and the "
                              f"sampling keys of conf/generate.yaml ({', '.join(SAMPLING_KEYS)})")
        options[key] = value.strip("'\"")
    if not options["run"]:
        raise ConfigError("run=<run dir> is required (a folder written by scripts/train.py)")
    port = str(options["port"])
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"port={port!r}: expected a TCP port number from 1 to 65535")
    options["port"] = int(port)
    if options["device"] not in (None, "cpu", "cuda") and not str(options["device"]).startswith("cuda:"):
        raise ConfigError(f"device={options['device']!r}: expected cpu, cuda or cuda:<index>")
    return options


def start(options: dict[str, Any], workdir: Path) -> tuple[Any, str]:
    """Load the run and serve its page in a background thread: ``(page, address)``; ``page.close()`` stops it."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UnimodalError('the demo needs gradio: pip install -e ".[demo]"') from None
    from unimodal.commands.generate import sampling_from
    from unimodal.config import compose
    from unimodal.demo.actions import Actions
    from unimodal.demo.examples import run_examples
    from unimodal.demo.page import build_page, launch
    from unimodal.demo.run_info import is_instruct
    from unimodal.pipeline import Pipeline

    pipeline = Pipeline.load(options["run"], options["device"])
    defaults = sampling_from(compose(options["sampling"], config_name="generate", validate_schema=False))
    actions = Actions(pipeline, defaults, workdir / "answers")
    examples = run_examples(pipeline.run_dir, actions.media, workdir / "examples", chat=is_instruct(pipeline.run_dir))
    page = build_page(actions, examples)
    return page, launch(page, options["host"], options["port"])


def main(argv: list[str] | None = None) -> int:
    return run_cli(serve, USAGE, argv)


def serve(overrides: list[str]) -> None:
    """Serve the page until Ctrl-C (which is how a page is meant to stop: no message about checkpoints)."""
    options = parse_options(overrides)
    with tempfile.TemporaryDirectory(prefix="unimodal-demo-") as folder:
        page, url = start(options, Path(folder))
        print(f"serving {options['run']} at {url}  (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            print("stopped")
        finally:
            page.close()
