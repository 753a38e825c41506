"""``python scripts/train.py -m tokenizer/image=fsq,lfq,vq``: one training run per combination of values.

Hydra's override grammar parses the sweep (``a,b,c``, ``range(...)``, ``choice(...)``); the runs go one after
the other into ``<paths.runs_dir>/multirun-<date>-<time>/<index>-<values>`` (or under ``run_dir=``), and the
command that compares them all is printed at the end.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

from unimodal.errors import ConfigError

MULTIRUN_FLAGS = ("-m", "--multirun")


def expand_sweep(overrides: list[str]) -> tuple[list[list[str]], list[list[str]]]:
    """Every combination of the sweep values, as override lists, and the swept values of each (for names)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"cannot parse the sweep: {str(err).splitlines()[0]}") from None
    options = []
    for override in parsed:
        if override.is_sweep_override():
            key = override.get_key_element()
            options.append([(f"{key}={value}", value) for value in override.sweep_string_iterator()])
        else:
            options.append([(override.input_line, None)])
    jobs = [[line for line, _ in combo] for combo in itertools.product(*options)]
    values = [[value for _, value in combo if value is not None] for combo in itertools.product(*options)]
    return jobs, values


def train_sweep(overrides: list[str]) -> list[Path]:
    """Train every combination in turn; return the run folders."""
    from unimodal.config import compose
    from unimodal.training.run import train

    overrides = [o for o in overrides if o not in MULTIRUN_FLAGS]
    roots = [o.partition("=")[2] for o in overrides if o.startswith("run_dir=")]
    rest = [o for o in overrides if not o.startswith("run_dir=")]
    jobs, values = expand_sweep(rest)
    if roots:
        root = Path(roots[-1])
    else:
        root = Path(str(compose(jobs[0]).paths.runs_dir)) / f"multirun-{time.strftime('%Y%m%d-%H%M%S')}"
    runs = []
    for index, (job, swept) in enumerate(zip(jobs, values, strict=True)):
        name = re.sub(r"[^A-Za-z0-9._+-]+", "_", "-".join(swept)) or "run"
        run_dir = root / f"{index}-{name}"
        print(f"[multirun] job {index + 1}/{len(jobs)}: {' '.join(job)} -> {run_dir}", flush=True)
        runs.append(train(compose([*job, f"run_dir={run_dir}"])) or run_dir)
    print(f"[multirun] {len(runs)} runs under {root}; compare them with:\n"
          f"  python scripts/evaluate.py compare=[{','.join(str(r) for r in runs)}] out={root}/compare")
    return runs
