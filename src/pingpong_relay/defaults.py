"""Constants several modules need, defined once: statistics windows, default URLs, policies."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = [
    "DEFAULT_CHANNEL",
    "DEFAULT_REDIS_URL",
    "EMBEDDED_REDIS",
    "MAX_CLOCK_SKEW_S",
    "SLOW_CLIENT_POLICIES",
    "WINDOWS",
    "WINDOW_NAMES",
]

DEFAULT_REDIS_URL: Final = "redis://127.0.0.1:6379/0"
# `serve --redis-url embedded`: a redis-server of the relay's own, whatever answers on 6379.
EMBEDDED_REDIS: Final = "embedded"
DEFAULT_CHANNEL: Final = "bot:pingpong"
# The statistics windows, by name, in seconds: /stats, alert rules and the dashboard share them.
WINDOWS: Final = MappingProxyType({"1m": 60.0, "5m": 300.0, "15m": 900.0, "1h": 3600.0})
WINDOW_NAMES: Final = tuple(WINDOWS)
# How far a bot's timestamp may be from the relay's clock and still count as a transit
# time (--max-clock-skew): past it the bot's clock is wrong, not the network slow.
MAX_CLOCK_SKEW_S: Final = 300.0
# What the hub does with a client whose socket stops draining (--slow-client).
SLOW_CLIENT_POLICIES: Final = ("close", "conflate")
