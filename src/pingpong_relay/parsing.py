"""Parsers for setting values (flags, env vars, rule files): the value, or an error saying why."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import urlsplit

from pingpong_relay.defaults import EMBEDDED_REDIS, WINDOW_NAMES
from pingpong_relay.messages import check_source
from pingpong_relay.urls import check_redis_url

__all__ = [
    "Choice",
    "boolean",
    "bot_pattern",
    "bot_source",
    "choice",
    "csp_source_list",
    "duration",
    "duration_or_zero",
    "frame_ancestors",
    "http_url",
    "non_negative_float",
    "non_negative_int",
    "parse_duration",
    "percentile",
    "port_number",
    "positive_float",
    "positive_int",
    "redis_url",
    "redis_url_or_embedded",
    "window",
    "worker_count",
    "ws_url_or_empty",
]

# --- durations -----------------------------------------------------------------------------

_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"
# "ms" comes before "m" so that "250ms" is not read as 250 minutes and a stray "s".
_DURATION_PART: Final = re.compile(rf"({_NUMBER})(ms|s|m|h|d)")
_DURATION: Final = re.compile(rf"(?:{_NUMBER}(?:ms|s|m|h|d))+")
_PLAIN_NUMBER: Final = re.compile(_NUMBER)


def parse_duration(text: str) -> float:
    """Seconds in "30s", "5m", "1h30m", "250ms", "2d" or a plain number of seconds ("1.5")."""
    stripped = text.strip()
    if _PLAIN_NUMBER.fullmatch(stripped):
        return float(stripped)
    if not _DURATION.fullmatch(stripped):
        raise ValueError(
            f"{text!r} is not a duration; write e.g. 30s, 5m, 1h30m, 250ms or seconds as a number"
        )
    return sum(float(number) * _UNIT_S[unit] for number, unit in _DURATION_PART.findall(stripped))


_CSP_FORBIDDEN: Final = frozenset(";,\r\n\0")


def csp_source_list(text: str) -> str:
    """A --frame-ancestors value (e.g. 'none', 'self', https://ops.example) as one normalised
    CSP source list; ValueError when it could smuggle another directive or header."""
    if not text.isascii() or any(c in _CSP_FORBIDDEN or not c.isprintable() for c in text):
        raise ValueError(f"{text!r} is not a CSP source list (no ; , or control characters)")
    sources = text.split()
    if not sources:
        raise ValueError("an empty source list; 'none' forbids every frame")
    return " ".join(sources)


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def port_number(text: str) -> int:
    """A TCP port, 0 to 65535 (0: the system picks a free one)."""
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535)")
    return value


def positive_float(text: str) -> float:
    """A number greater than 0; argparse reports anything else as the flag's error."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number > 0")
    return value


def non_negative_float(text: str) -> float:
    """A number of 0 or more."""
    value = _number(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a number >= 0")
    return value


def non_negative_int(text: str) -> int:
    """A whole number of 0 or more."""
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number >= 0")
    return value


def positive_int(text: str) -> int:
    """A whole number of 1 or more."""
    value = _whole_number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a whole number > 0")
    return value


def worker_count(text: str) -> int:
    """A number of worker processes, or "auto": one per core."""
    if text.strip().lower() == "auto":
        return os.cpu_count() or 1
    value = positive_int(text)
    if value > 64:
        raise argparse.ArgumentTypeError(f"{text} workers is more than 64")
    return value


def boolean(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0; a bare flag (--allow-anonymous) means true."""
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not true or false")


class Choice:
    """A parser of one of `choices`, compared after `normalise` (e.g. str.lower); its
    `choices` are what --help and the error list."""

    def __init__(self, choices: Sequence[str], normalise: Callable[[str], str]) -> None:
        self.choices = tuple(choices)
        self._normalise = normalise

    def __call__(self, text: str) -> str:
        """The choice `text` names; ArgumentTypeError listing them when it names none."""
        value = self._normalise(text)
        if value not in self.choices:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(self.choices)}")
        return value


def choice(choices: Sequence[str], normalise: Callable[[str], str]) -> Choice:
    """A parser of one of `choices`, compared after `normalise` (e.g. str.lower)."""
    return Choice(choices, normalise)


def duration_or_zero(text: str) -> float:
    """Seconds from "30s", "5m", "1h", "250ms" or a plain number; 0 turns a feature off."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def duration(text: str) -> float:
    """Like `duration_or_zero`, but the value must be > 0."""
    value = duration_or_zero(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be longer than 0 s")
    return value


def percentile(text: str) -> float:
    """0.95 or p95."""
    raw = text.strip().lower()
    try:
        value = float(raw[1:]) / 100 if raw.startswith("p") else float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a percentile (e.g. p95 or 0.95)"
        ) from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must lie in (0, 1], e.g. p95 or 0.95")
    return value


def http_url(text: str) -> str:
    """An http:// or https:// URL with a host (a webhook, a JWKS document), as given."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def redis_url(text: str) -> str:
    """A Redis URL of a scheme the relay connects with (see `urls.check_redis_url`)."""
    if text.strip().lower() == EMBEDDED_REDIS:
        # Only `serve` starts one; a bot needs the URL that relay logged.
        raise argparse.ArgumentTypeError(
            f"{text!r} is for serve, which starts the embedded Redis; give the URL it logged "
            "(started embedded Redis …; bots publish to redis://127.0.0.1:PORT/0)"
        )
    try:
        return check_redis_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def redis_url_or_embedded(text: str) -> str:
    """`redis_url`, or "embedded": a redis-server of the relay's own (any case)."""
    if text.strip().lower() == EMBEDDED_REDIS:
        return EMBEDDED_REDIS
    return redis_url(text)


def ws_url_or_empty(text: str) -> str:
    """A ws:// or wss:// URL with a host, as given; empty for none."""
    parts = urlsplit(text)
    if text and (parts.scheme not in ("ws", "wss") or not parts.hostname):
        raise argparse.ArgumentTypeError(f"{text!r} is not a ws:// or wss:// URL")
    return text


def frame_ancestors(text: str) -> str:
    """--frame-ancestors: the CSP source list of `csp_source_list`, as a flag's error."""
    try:
        return csp_source_list(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# The name of a statistics window (one of defaults.WINDOW_NAMES, e.g. "5m"), as written.
window: Final = Choice(WINDOW_NAMES, str)


def bot_pattern(text: str) -> str:
    """A shell-style pattern of bot ids (`<channel>/<source>`), e.g. bot:pingpong/gate-*."""
    if not text.strip():
        raise argparse.ArgumentTypeError("a bot pattern must not be empty")
    return text.strip()


def bot_source(text: str) -> str:
    """A bot's name, its messages' "source" (the relay's bot id is `<channel>/<source>`)."""
    try:
        return check_source(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
