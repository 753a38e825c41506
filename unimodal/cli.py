"""Shared plumbing of the entry points: Hydra-style overrides in, one-line errors out."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from unimodal.errors import UnimodalError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_cli(main: Callable[[list[str]], Any], usage: str, argv: list[str] | None = None) -> int:
    """Call ``main(overrides)``; user errors print one line on stderr and exit 2, without a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(usage)
        return 0
    bad = [a for a in args if "=" not in a and a not in ("-m", "--multirun")]  # -m: scripts/train.py sweeps
    if bad:
        print(f"error: arguments are key=value overrides; got {bad[0]!r}\n{usage.splitlines()[0]}",
              file=sys.stderr)
        return 2
    try:
        main(args)
    except UnimodalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the last checkpoint is kept; rerun with run_dir=<the run folder printed above> "
              "to resume", file=sys.stderr)
        return 130
    return 0
