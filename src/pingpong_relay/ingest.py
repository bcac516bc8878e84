"""Heartbeats from bots that don't speak Redis, turned into the design's bot message (pure).

Push URLs (Uptime Kuma's `/api/push/<token>?status=&msg=&ping=`), ping URLs (Healthchecks'
`/ping/<uuid>[/start|/fail|/<exit status>]`), MQTT messages and pollers each describe what
they heard as a `Report`; `heartbeat()` makes it the bot message every relay receives from
Redis, with `via` saying where it came from. A report of `down` or `degraded` carries its
reason in `status` and `reason`, which the alert engine's built-in report rules read.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

import orjson

from pingpong_relay.messages import MAX_LATENCY_MS, check_source, escape_controls

__all__ = [
    "INGEST_REJECT_REASONS",
    "MAX_REASON_CHARS",
    "PING_PREFIX",
    "PUSH_PREFIX",
    "PUSH_TOKEN_PATTERN",
    "REPORTED_STATUSES",
    "VIA_VALUES",
    "IngestError",
    "Report",
    "ReportedStatus",
    "Via",
    "healthchecks_report",
    "heartbeat",
    "is_push_path",
    "kuma_report",
    "new_token",
    "parse_push_token",
    "redact_push_path",
    "reported_status",
    "token_hash",
    "token_id",
    "valid_token",
]

Via: TypeAlias = Literal["push", "healthchecks", "mqtt", "poll"]
VIA_VALUES: Final = ("push", "healthchecks", "mqtt", "poll")
ReportedStatus: TypeAlias = Literal["up", "down", "degraded"]
REPORTED_STATUSES: Final = ("up", "down", "degraded")
MAX_REASON_CHARS: Final = 200
# Why a push, ping, MQTT message or poll result is not published, beyond the validation
# reasons of messages.REJECT_REASONS: metric label values come from both.
INGEST_REJECT_REASONS: Final = (
    "unknown_token",  # 404: no such push token
    "malformed",  # 400: a push or ping the relay cannot read (status, ping, signal, body)
    "token_rate",  # 429: over --push-rate for the token
    "address_rate",  # 429: over --push-address-rate for the caller's address
    "bot_rate",  # 429: over --max-bot-rate for the bot
    "redis_unavailable",  # 503: Redis did not take the PUBLISH
    "unknown_payload",  # an MQTT message that is neither Hummingbot's heartbeat nor the design's
)
# A token is a secret in a URL: long enough not to be guessed, and nothing that needs
# escaping in a path. A Healthchecks uuid (36 characters) is one.
# A push token: what `push add` issues (a uuid fits too).
PUSH_TOKEN_PATTERN: Final = r"[A-Za-z0-9_-]{16,128}"
_TOKEN: Final = re.compile(PUSH_TOKEN_PATTERN)


class IngestError(ValueError):
    """A malformed push, ping or MQTT message: `code` names what is wrong (for metrics and
    the 400 answer), the message says it in words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Report:
    """What one push, ping, MQTT message or poll says of a bot."""

    status: ReportedStatus = "up"
    latency_ms: float | None = None
    reason: str = ""
    timestamp_ms: float | None = None  # the sender's clock, when it gave one
    extra: Mapping[str, Any] = field(default_factory=dict)  # further fields for `data`


def clean_reason(text: str) -> str:
    """A reason as clients and notifications show it: one line, inert, bounded."""
    text = escape_controls(text.strip())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def heartbeat(report: Report, source: str, via: Via, now_ms: int) -> bytes:
    """The design's bot message for a report: a `pong` (with the latency when one was
    measured) from `source`, stamped with the sender's time or else `now_ms`, and `via`;
    a bot reported down or degraded also carries `status` and `reason`."""
    message: dict[str, Any] = {
        **report.extra,
        "type": "pong",
        "latency": report.latency_ms,
        "timestamp": report.timestamp_ms if report.timestamp_ms is not None else now_ms,
        "source": source,
        "via": via,
    }
    if report.latency_ms is None:
        del message["latency"]
    if report.status != "up":
        message["status"] = report.status
        message["reason"] = clean_reason(report.reason) or f"reported {report.status}"
    elif report.reason:
        message["msg"] = clean_reason(report.reason)
    return orjson.dumps(message)


def reported_status(fields: Mapping[str, Any]) -> tuple[ReportedStatus, str] | None:
    """The status a bot message reports of its bot, with the reason, when it says `down`
    or `degraded`; None for any other message (which reports the bot up, if anything)."""
    status = fields.get("status")
    if status not in ("down", "degraded"):
        return None
    reason = fields.get("reason")
    text = clean_reason(reason) if isinstance(reason, str) and reason.strip() else ""
    return status, text or f"reported {status}"


def _latency(text: str, name: str) -> float | None:
    """A latency in ms from a query parameter; empty is none (Kuma's URL ends `ping=`)."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise IngestError("bad_latency", f"{name}={text[:40]!r} is not a number of ms") from None
    if not (math.isfinite(value) and 0 <= value <= MAX_LATENCY_MS):
        raise IngestError("bad_latency", f"{name} must be 0 to {MAX_LATENCY_MS:,} ms")
    return value


def kuma_report(query: Mapping[str, str]) -> Report:
    """An Uptime Kuma push: `status` up (the default) or down, `msg` the message (the
    reason, when down) and `ping` the latency in ms (empty: none)."""
    status = query.get("status", "up").strip().lower() or "up"
    if status not in ("up", "down"):
        raise IngestError("bad_status", f"status must be up or down, not {status[:20]!r}")
    latency = _latency(query.get("ping", ""), "ping")
    msg = query.get("msg", "")
    if status == "down":
        return Report("down", latency, msg or "pushed down")
    return Report("up", latency, "" if msg == "OK" else msg)


def healthchecks_report(
    signal: str, started_ms: int | None, now_ms: int, body: bytes = b""
) -> Report:
    """A Healthchecks ping: `signal` is what follows the uuid ("" for success, "start",
    "fail", or an exit status 0-255). `started_ms` is when this check's last `start`
    came, if one is open: a success then reports the run's duration as its latency. A
    failure's reason is the body's first line when it has one."""
    duration = None if started_ms is None else max(0, now_ms - started_ms)
    latency = duration if duration is not None and duration <= MAX_LATENCY_MS else None
    extra = {"duration_ms": duration} if duration is not None else {}
    first_line = body[:1000].decode("utf-8", "replace").strip().split("\n", 1)[0]
    if signal in ("", "0"):
        return Report("up", latency, extra=extra)
    if signal == "start":
        return Report("up", extra={"event": "start"})
    if signal == "fail":
        return Report("down", latency, first_line or "the job reported failure", extra=extra)
    if signal.isascii() and signal.isdigit() and len(signal) <= 3 and int(signal) <= 255:
        reason = f"exit status {int(signal)}" + (f": {first_line}" if first_line else "")
        return Report("down", latency, reason, extra={**extra, "exit_status": int(signal)})
    raise IngestError("bad_signal", f"{signal[:20]!r} is not start, fail or an exit status (0-255)")


# --- tokens -----------------------------------------------------------------------------

PUSH_PREFIX: Final = "/api/push/"  # Uptime Kuma's push URL: /api/push/<token>
PING_PREFIX: Final = "/ping/"  # Healthchecks' ping URL: /ping/<uuid>[/<signal>]


def is_push_path(path: str) -> bool:
    """Whether `path` is a push or ping URL (its token is its credential)."""
    return path.startswith(PUSH_PREFIX) or path.startswith(PING_PREFIX)


def redact_push_path(path: str) -> str:
    """`path` with a push or ping URL's token replaced by ***, for log lines."""
    for prefix in (PUSH_PREFIX, PING_PREFIX):
        if path.startswith(prefix):
            _, slash, rest = path[len(prefix) :].partition("/")
            return f"{prefix}***{slash}{rest}"
    return path


def valid_token(text: str) -> bool:
    """Whether `text` has a token's shape (16-128 of A-Z a-z 0-9 _ -)."""
    return _TOKEN.fullmatch(text) is not None


def new_token() -> str:
    """A fresh token: a random UUID, so it serves as a Healthchecks uuid as well."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, hex (the token itself is never kept)."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def token_id(digest: str) -> str:
    """A token's short public name (the first 12 hex digits of its hash), for listing and
    revoking; it tells nothing of the token."""
    return digest[:12]


def parse_push_token(text: str) -> tuple[str, str]:
    """`TOKEN=BOT` (--push-token): the token and the bot's source; ValueError saying why
    not, without repeating the token."""
    token, equals, bot = text.partition("=")
    token, bot = token.strip(), bot.strip()
    if not equals or not bot:
        raise ValueError("write TOKEN=BOT, e.g. 0f8e…=freqtrade-1")
    if not valid_token(token):
        raise ValueError("a push token is 16-128 characters of A-Z a-z 0-9 _ - (try a uuid)")
    return token, check_source(bot)
