"""Config schema and composition.

The YAML tree under ``conf/`` is composed by Hydra (:func:`compose`) and merged onto the dataclasses of
:mod:`unimodal.config.schema` (with ``encoder.*`` and ``projector.*`` in :mod:`unimodal.config.vision`), so a
mistyped key or a value of the wrong type fails at start with a message naming the key (``ConfigError``), as
does a count out of range (:mod:`unimodal.config.checks`).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from unimodal.config.checks import _one_line, validate
from unimodal.config.schema import KNOWN_MEDIA, STRATEGIES, Config
from unimodal.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parent.parent.parent / "conf"
__all__ = ["CONF_DIR", "KNOWN_MEDIA", "STRATEGIES", "Config", "ConfigError", "_one_line", "available", "compose",
           "quote_braces", "validate"]


def quote_braces(override: str) -> str:
    """``data.urls=<dir>/{00000..00099}.tar`` as a shell passes it: Hydra's grammar reads braces inside a value as
    syntax, so such a value is quoted (a value that is itself a dict, a list or already quoted is left alone)."""
    key, sep, value = override.partition("=")
    if not sep or "{" not in value or value[:1] in "{['\"" or "${" in value:
        return override
    return f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def available(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose(overrides: list[str] | None = None, config_name: str = "config",
            validate_schema: bool = True) -> DictConfig:
    """Compose the real config tree (what entry points and tests use), as one validated config."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    overrides = [quote_braces(override) for override in overrides or []]
    for override in overrides:
        key, _, value = override.partition("=")
        group = key.lstrip("+~")
        if (CONF_DIR / group).is_dir() and value and not value.startswith("["):
            options = available(group)
            if value not in options and value != "null":
                raise ConfigError(f"unknown {group} {value!r}; choose one of: {', '.join(options)}")
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise ConfigError(_one_line(err)) from None
    finally:
        GlobalHydra.instance().clear()
    return validate(cfg) if validate_schema else cfg
