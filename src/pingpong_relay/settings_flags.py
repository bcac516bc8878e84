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
from pingpong_relay.setting_topics import SETTING_GROUPS
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


def _shown(value: Any, separator: str) -> str:
    """A default as a person writes it: 20 not 20.0, false not False, lists joined."""
    if isinstance(value, list):
        return separator.join(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _help_line(spec: dataclasses.Field[Any]) -> str:
    """A setting's help, then its choices, default and env var: "… (choices: close,
    conflate; default: conflate; env PINGPONG_SLOW_CLIENT)"."""
    notes = []
    choices = getattr(spec.metadata["parse"], "choices", None)
    if choices:
        notes.append(f"choices: {', '.join(choices)}")
    shown = _shown(_default(spec), ",")
    notes.append(f"default: {shown}" if shown else "no default")
    notes.append(f"env {env_name(spec.name)}")
    return f"{spec.metadata['help']} ({'; '.join(notes)})"


def _by_topic() -> list[tuple[str, str, list[dataclasses.Field[Any]]]]:
    """(topic, what it covers, its settings in declaration order), in SETTING_GROUPS order."""
    options = Settings.options()
    return [
        (name, about, [spec for spec in options if spec.metadata["group"] == name])
        for name, about in SETTING_GROUPS
    ]


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds one flag per Settings field, grouped by topic; defaults are resolved later so
    env vars can apply."""
    for topic, about, specs in _by_topic():
        group = parser.add_argument_group(topic, about)
        for spec in specs:
            shape: dict[str, Any] = {"metavar": spec.name.upper()}
            if spec.metadata["parse"] is boolean:  # a bare flag means true
                shape = {"nargs": "?", "const": True, "metavar": "BOOL"}
            elif spec.metadata.get("repeat"):
                shape["action"] = "append"
            group.add_argument(
                flag_name(spec.name),
                dest=spec.name,
                type=spec.metadata["parse"],
                default=None,
                help=_help_line(spec),
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
                    # Most lists are comma-separated; a URL list (separator None) is split
                    # by whitespace, as Apprise URLs hold commas.
                    parts = raw.split(spec.metadata.get("separator", ","))
                    given = [parse(part.strip()) for part in parts if part.strip()]
                    if not given:
                        raise ValueError("names no value")
                else:
                    given = parse(raw)
            except (ValueError, argparse.ArgumentTypeError) as exc:
                # The parsers quote the value where it helps; a password is never repeated.
                raise ValueError(f"{env_name(spec.name)}: {exc}") from None
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
    """docs/configuration.md's tables, one per topic, generated from Settings so the two
    cannot drift."""
    parts = []
    for topic, about, specs in _by_topic():
        rows = [f"### {topic[0].upper()}{topic[1:]}", "", f"{about[0].upper()}{about[1:]}.", ""]
        rows += ["| flag | env var | default | meaning |", "|---|---|---|---|"]
        for spec in specs:
            shown = _shown(_default(spec), ", ")
            repeat = " (repeatable)" if spec.metadata.get("repeat") else ""
            choices = getattr(spec.metadata["parse"], "choices", None)
            meaning = spec.metadata["help"]
            if choices:
                meaning += f" (choices: {', '.join(choices)})"
            rows.append(
                f"| `{flag_name(spec.name)}`{repeat} | `{env_name(spec.name)}` "
                f"| {f'`{shown}`' if shown else 'none'} | {meaning} |"
            )
        parts.append("\n".join(rows))
    return "\n\n".join(parts)
