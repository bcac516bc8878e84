"""The topics settings are listed under (`serve --help`, docs/configuration.md), and the
maker of each topic's fields: a field's flag, env var, help and topic derive from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import field
from typing import Any, Final

__all__ = ["SETTING_GROUPS", "topic_option"]

# The topics `serve --help` and docs/configuration.md list the settings under, in order.
SETTING_GROUPS: Final = (
    ("network", "where the relay listens, and its clients' connections"),
    ("Redis", "where the heartbeats come from"),
    ("ingestion", "heartbeats from bots that don't speak Redis: push URLs, MQTT, pollers"),
    ("auth", "who may connect: tokens, origins, host names, framing"),
    ("limits", "what one client, address or bot may cost the relay"),
    ("monitoring", "which bots are tracked, and their statistics"),
    ("alerts", "when a bot is silent or slow, and who is told"),
    ("history", "heartbeats kept in Redis Streams, for replay and analytics"),
    ("TLS", "serving wss:// and https:// directly"),
    ("workers", "several relay processes on the same ports"),
    ("logging", "what the relay logs, and in which format"),
)


def topic_option(group: str) -> Callable[..., Any]:
    """The maker of one topic's settings: each field's metadata (flag, env var, --help text
    and topic) derives from what it is given."""
    if group not in {name for name, _ in SETTING_GROUPS}:
        raise ValueError(f"{group!r} is not a topic of SETTING_GROUPS")

    def option(default: Any, help: str, parse: Callable[[str], Any] = str, **extra: Any) -> Any:
        metadata = {"help": help, "parse": parse, "group": group, **extra}
        if isinstance(default, list):
            return field(default_factory=lambda: list(default), metadata=metadata)
        return field(default=default, metadata=metadata)

    return option
