"""Settings from the outside: a flag and a PINGPONG_* env var per Settings field, derived.

Also the precedence between them (flag, then env var, then default), and the table of both
in docs/configuration.md."""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Final

from pingpong_relay.parsing import boolean
from pingpong_relay.settings import Settings

__all__ = [
    "add_settings_arguments",
    "current_environ",
    "env_name",
    "flag_name",
    "markdown_reference",
    "settings_from_args",
]

ENV_PREFIX: Final = "PINGPONG_"


def env_name(name: str) -> str:
    """A setting's env var: max_bots → PINGPONG_MAX_BOTS."""
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    """A setting's flag: max_bots → --max-bots."""
    return "--" + name.replace("_", "-")


def _default(spec: dataclasses.Field[Any]) -> Any:
    if spec.default is dataclasses.MISSING:
        return spec.default_factory()  # type: ignore[operator]
    return spec.default


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per Settings field; defaults are resolved later so env vars can apply."""
    for spec in Settings.options():
        default = _default(spec)
        shown = ",".join(default) if isinstance(default, list) else default
        help_text = f"{spec.metadata['help']} (default: {shown}; env {env_name(spec.name)})"
        shape: dict[str, Any] = {"metavar": spec.name.upper()}
        if spec.metadata["parse"] is boolean:  # a bare flag means true
            shape = {"nargs": "?", "const": True, "metavar": "BOOL"}
        elif spec.metadata.get("repeat"):
            shape["action"] = "append"
        parser.add_argument(
            flag_name(spec.name),
            dest=spec.name,
            type=spec.metadata["parse"],
            default=None,
            help=help_text,
            **shape,
        )


def settings_from_args(namespace: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """Flags win over env vars, env vars over defaults. Raises ValueError on a bad env value."""
    values: dict[str, Any] = {}
    for spec in Settings.options():
        given = getattr(namespace, spec.name, None)
        if given is None and env_name(spec.name) in environ:
            raw = environ[env_name(spec.name)]
            parse = spec.metadata["parse"]
            try:
                if spec.metadata.get("repeat"):
                    given = [parse(part.strip()) for part in raw.split(",") if part.strip()]
                    if not given:
                        raise ValueError("names no value")
                else:
                    given = parse(raw)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                raise ValueError(f"{env_name(spec.name)}={raw!r}: {exc}") from None
        if given is not None:
            values[spec.name] = given
    for name in ("channel", "channel_pattern"):
        if name in values:
            # Keep order, drop repeats: subscribing twice would deliver twice.
            values[name] = list(dict.fromkeys(values[name]))
    values["redis_url_explicit"] = "redis_url" in values
    return Settings(**values)


def current_environ() -> Mapping[str, str]:
    """The process environment; read here once, by the CLI, and passed down."""
    return os.environ


def markdown_reference() -> str:
    """docs/configuration.md's table, generated from Settings so the two cannot drift."""
    rows = ["| flag | env var | default | meaning |", "|---|---|---|---|"]
    for spec in Settings.options():
        default = _default(spec)
        shown = ", ".join(default) if isinstance(default, list) else str(default)
        repeat = " (repeatable)" if spec.metadata.get("repeat") else ""
        rows.append(
            f"| `{flag_name(spec.name)}`{repeat} | `{env_name(spec.name)}` | `{shown}` "
            f"| {spec.metadata['help']} |"
        )
    return "\n".join(rows)
