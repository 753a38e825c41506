"""Every entry point is a Hydra app over ``conf/``: Hydra parses the command line, composes the config and runs
``-m`` sweeps through its launchers (one after the other here, ``hydra/launcher=submitit_local`` in processes of
their own, ``hydra/launcher=slurm`` on a SLURM cluster). What stays ours: ``-h``, the checks that turn a bad
override into one line naming it before Hydra sees it, and one line (exit 2, no traceback) for a user error raised
inside the app.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from unimodal.config import CONF_DIR, ConfigError, compose, quote_braces
from unimodal.errors import UnimodalError

MULTIRUN_FLAGS = ("-m", "--multirun")


def _sweep_dir(run_dir: str | None, default: str) -> str:
    return str(run_dir) if run_dir else default


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+=,-]+", "_", str(text)).strip("_")[:120] or "run"


# Named in conf/config.yaml's hydra section: a sweep's folder (run_dir= or runs/multirun-<time>) and each job's.
for _name, _resolver in (("unimodal_sweep_dir", _sweep_dir), ("unimodal_slug", _slug)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _resolver)


def is_hydra_arg(arg: str) -> bool:
    """Hydra's own arguments: ``-m``, ``hydra.<key>=...``, ``hydra/<group>=...`` (a launcher, a sweeper)."""
    return arg in MULTIRUN_FLAGS or arg.lstrip("+~").startswith(("hydra.", "hydra/"))


def check_overrides(args: list[str], config_name: str, validate_schema: bool = True) -> None:
    """A one-line ConfigError for an override Hydra would refuse with a traceback-like message: bad syntax, an
    unknown group option (in any swept value), an unknown key or a wrong type (in the first combination)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    overrides = [arg for arg in args if not is_hydra_arg(arg)]
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as err:
        raise ConfigError(f"cannot parse the overrides: {str(err).strip().splitlines()[0]}") from None
    first = []
    for override in parsed:
        if not override.is_sweep_override():
            first.append(override.input_line)
            continue
        key = override.get_key_element()
        values = list(override.sweep_string_iterator())
        for value in values[1:]:
            compose_group_check(key, value)
        first.append(f"{key}={values[0]}")
    compose(first, config_name=config_name, validate_schema=validate_schema)


def compose_group_check(key: str, value: str) -> None:
    from unimodal.config import available

    group = key.lstrip("+~")
    if (CONF_DIR / group).is_dir() and value not in available(group) and value != "null":
        raise ConfigError(f"unknown {group} {value!r}; choose one of: {', '.join(available(group))}")


def run_app(task: Callable[[DictConfig], Any], config_name: str, usage: str, argv: list[str] | None = None,
            check: Callable[[list[str]], None] | None = None,
            prepare: Callable[[str], str] = quote_braces) -> int:
    """Run ``task`` as a Hydra app over ``conf/<config_name>.yaml`` with ``argv`` (default: the command line)."""
    import hydra

    args = [prepare(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if any(arg in ("-h", "--help") for arg in args):
        print(usage)
        return 0
    bad = [arg for arg in args if "=" not in arg and arg not in MULTIRUN_FLAGS]
    if bad:
        print(f"error: arguments are key=value overrides; got {bad[0]!r}\n{usage.splitlines()[0]}", file=sys.stderr)
        return 2
    try:
        if check is not None:
            check(args)
    except UnimodalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    app = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(guarded(task))
    saved = sys.argv
    sys.argv = [saved[0] if saved else config_name, *args]
    try:
        app()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = saved
    return 0


def guarded(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """``task`` with user errors as one line on stderr and exit 2 (Hydra would print them with a traceback hint)."""
    def job(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except UnimodalError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: the last checkpoint is kept; rerun with run_dir=<the run folder printed above> "
                  "to resume", file=sys.stderr, flush=True)
            raise SystemExit(130) from None

    return job
