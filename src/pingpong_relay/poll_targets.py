"""What --poll names: a bot's health URL, how to read it, how often, and with which
credentials (pure: parsing and checking only; `ingestion.pollers` does the polling)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from pingpong_relay.messages import check_source
from pingpong_relay.parsing import parse_duration

__all__ = ["POLL_MODES", "PollMode", "PollTarget", "parse_poll_target"]

PollMode: TypeAlias = Literal["generic", "freqtrade"]
POLL_MODES: Final = ("generic", "freqtrade")
DEFAULT_INTERVAL_S: Final = 30.0
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_STALE_S: Final = 300.0
_OPTIONS: Final = ("mode", "interval", "timeout", "stale", "user", "password", "token")


@dataclass(frozen=True, slots=True)
class PollTarget:
    """One bot to poll: `name` is its source (bot id `<channel>/<name>`), `url` its base URL
    without credentials; basic auth from `user`/`password` (or the URL's user info), or a
    bearer `token`. freqtrade mode reads /api/v1/ping and /api/v1/health under `url`, and
    calls the bot degraded when its last process is older than `stale_s`."""

    name: str
    url: str
    mode: PollMode = "generic"
    interval_s: float = DEFAULT_INTERVAL_S
    timeout_s: float = DEFAULT_TIMEOUT_S
    stale_s: float = DEFAULT_STALE_S
    user: str = ""
    password: str = ""
    token: str = ""

    def __repr__(self) -> str:  # never the credentials
        return f"PollTarget({self.name!r}, {self.url!r}, mode={self.mode!r})"


def _seconds(name: str, text: str) -> float:
    value = parse_duration(text)
    if not value > 0:
        raise ValueError(f"{name} must be more than 0, not {text!r}")
    return value


def parse_poll_target(text: str) -> PollTarget:
    """`NAME=URL [mode=generic|freqtrade] [interval=30s] [timeout=5s] [stale=5m]
    [user=U] [password=P] [token=T]`; ValueError saying what is wrong (never echoing a
    password or token)."""
    head, *options = text.split()
    name, equals, url = head.partition("=")
    if not equals or not name or not url:
        raise ValueError("write NAME=URL [mode=freqtrade] [interval=30s] [timeout=5s] …")
    name = check_source(name)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"poll target {name}: the URL must be http:// or https:// with a host")
    values: dict[str, str] = {}
    for option in options:
        key, equals, value = option.partition("=")
        if not equals or key not in _OPTIONS:
            shown = key if key in _OPTIONS else option[:20]
            raise ValueError(
                f"poll target {name}: {shown!r} is not an option; use {', '.join(_OPTIONS)}"
            )
        values[key] = value
    mode = values.get("mode", "generic")
    if mode not in POLL_MODES:
        raise ValueError(f"poll target {name}: mode is generic or freqtrade, not {mode!r}")
    timeout_s = _seconds("timeout", values.get("timeout", str(DEFAULT_TIMEOUT_S)))
    interval_s = _seconds("interval", values.get("interval", str(DEFAULT_INTERVAL_S)))
    if timeout_s > interval_s:
        raise ValueError(f"poll target {name}: timeout must not exceed interval")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if ":" in parts.hostname:  # an IPv6 literal keeps its brackets
        netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    return PollTarget(
        name=name,
        url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
        mode="freqtrade" if mode == "freqtrade" else "generic",
        interval_s=interval_s,
        timeout_s=timeout_s,
        stale_s=_seconds("stale", values.get("stale", str(DEFAULT_STALE_S))),
        user=values.get("user", parts.username or ""),
        password=values.get("password", parts.password or ""),
        token=values.get("token", ""),
    )
