"""The push and ping operations of the HTTP plane, as data (`operations.py` has the rest):
Uptime Kuma's push URL and Healthchecks' ping URLs, whose token in the path is the
credential."""

from __future__ import annotations

from typing import Final

from pingpong_relay.http.contract import JSON, Answer, Operation, Param, ref
from pingpong_relay.ingest import MAX_REASON_CHARS, PING_PREFIX, PUSH_PREFIX, PUSH_TOKEN_PATTERN
from pingpong_relay.messages import MAX_LATENCY_MS

__all__ = ["PUSH_OPERATIONS"]

# A request line fits in aiohttp's 8,190 bytes even with every character percent-encoded.
MAX_MSG_CHARS: Final = 500
# 0 to MAX_LATENCY_MS (an hour) as a plain decimal, or nothing (Kuma's URL ends `ping=`).
_LATENCY_PATTERN: Final = (
    r"^\s*(([0-9]{1,6}|[12][0-9]{6}|3[0-5][0-9]{5})(\.[0-9]+)?|3600000(\.0+)?)?\s*$"
)

_PUSH_TOKEN = Param(
    "token",
    {"type": "string", "pattern": f"^{PUSH_TOKEN_PATTERN}$"},
    "a push token (`pingpong-relay push add BOT` issues one; a uuid fits)",
    True,
    "path",
    "malformed",
    "the push token must be 16-128 characters of A-Z a-z 0-9 _ -",
)
# Why each refusal, by status; Uptime Kuma's URL answers its ok and msg too.
_REFUSALS: Final = {
    400: "malformed: a parameter (named) or the report is not valid",
    403: "bot_not_accepted: the token's bot is not in --accept-bots",
    404: "unknown_token (never issued, or revoked), or push_off (no push on this relay)",
    429: "address_rate or token_rate: over --push-address-rate or --push-rate",
    503: "redis_unavailable: the tokens or the inlet's Redis could not be reached",
}
_RETRY: Final = {"Retry-After": "seconds to wait (1)"}


def _refusals(schema: str) -> dict[int, Answer]:
    return {
        status: Answer(why, {JSON: ref(schema)}, _RETRY if status == 429 else {})
        for status, why in _REFUSALS.items()
    }


_PUSH_ANSWERS: Final = _refusals("PushRefused")
_PING_ANSWERS: Final = _refusals("Error")
_KUMA_PARAMS: Final = (
    Param(
        "status",
        {"enum": ["up", "down", ""], "default": "up"},
        "up (the default) or down",
        problem="status must be up or down",
    ),
    Param(
        "msg",
        {"type": "string", "maxLength": MAX_MSG_CHARS},
        f"a message; when down, the reason (shown cut to {MAX_REASON_CHARS} characters)",
    ),
    Param(
        "ping",
        {"type": "string", "pattern": _LATENCY_PATTERN},
        f"the latency in ms, 0 to {MAX_LATENCY_MS:,} (empty: none)",
        problem=f"ping must be a number of ms, 0 to {MAX_LATENCY_MS:,} (empty: none)",
    ),
)
_TAKEN: Final = Answer("taken", {JSON: ref("PushAccepted")})
_PING_OK: Final = Answer("OK", {"text/plain": {"type": "string", "const": "OK"}})
_SIGNAL = Param(
    "signal",
    {"type": "string", "pattern": "^(start|fail|[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5])$"},
    "start (a run begins), fail, or the job's exit status 0-255 (non-zero: failed)",
    True,
    "path",
    "malformed",
    "signal must be start, fail or an exit status (0-255)",
)


def _push(method: str) -> Operation:
    return Operation(
        method,
        PUSH_PREFIX + "{token}",
        f"push{method.capitalize()}",
        "Report a bot up or down, as Uptime Kuma's push monitors do",
        "ingestion",
        "push",
        {200: _TAKEN, **_PUSH_ANSWERS},
        (_PUSH_TOKEN, *_KUMA_PARAMS),
    )


def _ping(method: str, with_signal: bool) -> Operation:
    suffix = "/{signal}" if with_signal else ""
    return Operation(
        method,
        PING_PREFIX + "{token}" + suffix,
        f"ping{'Signal' if with_signal else ''}{method.capitalize()}",
        "Report a job's success, start or failure, as Healthchecks' ping URLs do",
        "ingestion",
        "push",
        {200: _PING_OK, **_PING_ANSWERS},
        (_PUSH_TOKEN, _SIGNAL) if with_signal else (_PUSH_TOKEN,),
        description="A POST body's first line is a failure's reason. HEAD works as GET.",
    )


PUSH_OPERATIONS: Final = (
    _push("GET"),
    _push("POST"),
    _ping("GET", False),
    _ping("POST", False),
    _ping("GET", True),
    _ping("POST", True),
)
