"""Export a trained run for transformers: `python scripts/export.py run=<run dir> out=<folder>`."""

from __future__ import annotations

import sys

from unimodal.cli import run_cli

USAGE = """usage: python scripts/export.py run=<run dir> out=<new folder>

Writes a folder that transformers.AutoModelForCausalLM.from_pretrained(<folder>) loads as is (safetensors +
config JSON), with the vocabulary JSON, the run's tokenizers and a README.md saying what is where."""


def main(overrides: list[str]) -> None:
    from unimodal.export import export_from_args

    export_from_args(overrides)


if __name__ == "__main__":
    sys.exit(run_cli(main, USAGE))
