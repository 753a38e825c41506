"""Generate from a trained run: `python scripts/generate.py run=<dir> prompt="a red circle" output=image`."""

from __future__ import annotations

import sys

from unimodal.cli import run_cli

USAGE = """usage: python scripts/generate.py run=<dir> (prompt="..."|image=<png>|audio=<wav>|video=<gif>) output=<...>

  output=image|audio|video|text, or a list: output=[text,image]; a video is written as a GIF (and an MP4)
  num_samples=4 seed=0 cfg_scale.image=3.0 temperature.image=1.0 top_k.image=0 top_p.image=1.0
  cfg_schedule.image=constant|linear|cosine repetition_penalty=1.0 max_new_tokens=256
  out_dir=<folder> (default: <run>/samples)
  chat (a stage=instruct run): image=<png> question="how many circles are there?" output=text"""


def main(overrides: list[str]) -> None:
    from unimodal.generation_cli import generate_from_config

    generate_from_config(overrides)


if __name__ == "__main__":
    sys.exit(run_cli(main, USAGE))
