"""What --poll names: a bot's health URL, how to read it, how often, and with which
credentials; and what an answer means (pure: `ingestion.pollers` does the polling)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

from pingpong_relay.ingest import Report
from pingpong_relay.messages import check_source
from pingpong_relay.parsing import parse_duration

__all__ = [
    "FREQTRADE_HEALTH_PATH",
    "FREQTRADE_PING_PATH",
    "POLL_MODES",
    "PollMode",
    "PollTarget",
    "age_text",
    "first_line",
    "freqtrade_health_report",
    "freqtrade_ping_problem",
    "http_problem",
    "parse_poll_target",
    "timeout_reason",
]

PollMode: TypeAlias = Literal["generic", "freqtrade"]
POLL_MODES: Final = ("generic", "freqtrade")
DEFAULT_INTERVAL_S: Final = 30.0
DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_STALE_S: Final = 300.0
_OPTIONS: Final = ("mode", "interval", "timeout", "stale", "user", "password", "token")
# freqtrade's REST API (its api_server): ping is public and answers {"status": "pong"};
# health needs the api_server's credentials (HTTP basic, or a JWT as bearer) and answers
# {"last_process": …, "last_process_ts": <unix seconds, or null before the first loop>, …}.
FREQTRADE_PING_PATH: Final = "/api/v1/ping"
FREQTRADE_HEALTH_PATH: Final = "/api/v1/health"
EXCERPT_CHARS: Final = 80


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
        if not equals:  # not echoed: it may be a password that lost its "password="
            raise ValueError(f"poll target {name}: write each option as KEY=VALUE")
        if key not in _OPTIONS:  # only the key: its value may be a secret
            raise ValueError(
                f"poll target {name}: {key[:20]!r} is not an option; use {', '.join(_OPTIONS)}"
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
        # The URL's user info is percent-encoded (p%40ss is p@ss); the options are verbatim.
        user=values.get("user", unquote(parts.username or "")),
        password=values.get("password", unquote(parts.password or "")),
        token=values.get("token", ""),
    )


# --- what an answer means ---------------------------------------------------------------


def age_text(seconds: float) -> str:
    """A duration as people say it in a reason: 45s, 7m, 3h, 2d (rounded down, at least 0)."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    if seconds >= 10:
        return f"{seconds:.0f}s"
    return f"{seconds:.2f}".rstrip("0").rstrip(".") + "s"


def timeout_reason(timeout_s: float) -> str:
    """Why a target that did not answer in time is down."""
    return f"no answer within {age_text(timeout_s)}"


def first_line(body: bytes) -> str:
    """The start of a body's first non-empty line, for a reason: short and one line."""
    for line in body[:1000].decode("utf-8", "replace").splitlines():
        if line.strip():
            text = line.strip()
            return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"
    return ""


def http_problem(status: int, body: bytes) -> str | None:
    """None for a 2xx answer; else the reason a target is down: "HTTP 503: <first line>"."""
    if 200 <= status < 300:
        return None
    excerpt = first_line(body)
    redirect = " (redirects are not followed: poll the final URL)" if 300 <= status < 400 else ""
    return f"HTTP {status}" + (f": {excerpt}" if excerpt else "") + redirect


def freqtrade_ping_problem(status: int, body: bytes) -> str | None:
    """None when /api/v1/ping answered freqtrade's pong; else why the bot is down."""
    problem = http_problem(status, body)
    if problem is not None:
        return f"ping: {problem}"
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict) or answer.get("status") != "pong":
        return f"ping answered what freqtrade does not: {first_line(body) or 'an empty body'}"
    return None


def freqtrade_health_report(
    status: int, body: bytes, now_s: float, stale_s: float, latency_ms: float | None
) -> Report:
    """What /api/v1/health's answer says of a freqtrade bot whose ping took `latency_ms`:
    up while its last process (`last_process_ts`, unix seconds) is at most `stale_s` old,
    degraded past that or before its first one, down when the answer is not freqtrade's."""
    if status == 401:
        return Report("down", latency_ms, "freqtrade refused the credentials (401)")
    problem = http_problem(status, body)
    if problem is not None:
        return Report("down", latency_ms, f"health: {problem}")
    try:
        health = orjson.loads(body)
    except orjson.JSONDecodeError:
        health = None
    if not isinstance(health, dict) or "last_process_ts" not in health:
        excerpt = first_line(body) or "an empty body"
        return Report("down", latency_ms, f"health answered what freqtrade does not: {excerpt}")
    last_s = health["last_process_ts"]
    if last_s is None:
        return Report("degraded", latency_ms, "freqtrade has not processed yet")
    if isinstance(last_s, bool) or not isinstance(last_s, int | float):
        return Report("down", latency_ms, "health's last_process_ts is not a time")
    age_s = now_s - last_s
    if age_s > stale_s:
        reason = f"last process {age_text(age_s)} ago (stale after {age_text(stale_s)})"
        return Report("degraded", latency_ms, reason)
    return Report("up", latency_ms)
