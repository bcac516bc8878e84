"""Every operation of the HTTP plane, as data (`http/contract.py` says what the fields
mean): the OpenAPI document is generated from these, and the request checker reads them.

Each parameter's bounds come from the constants the code itself uses (the windows, the
page size, a push token's form), so the document cannot drift from what is enforced. The
answers listed here are each handler's own; the access guard's (401, 403, 421) and the
checker's 400 are added by `answers()`.
"""

from __future__ import annotations

from typing import Any, Final

from pingpong_relay.badges import MAX_LABEL_CHARS
from pingpong_relay.defaults import WINDOWS
from pingpong_relay.http.contract import JSON, Answer, Body, Operation, Param, ref
from pingpong_relay.http.push_operations import PUSH_OPERATIONS
from pingpong_relay.messages import MAX_CHANNEL_CHARS, MAX_SOURCE_CHARS, MAX_TIMESTAMP_MS
from pingpong_relay.mutes import MAX_COMMENT_CHARS, MAX_MUTE_S, MAX_PATTERNS
from pingpong_relay.redis_io.history import MAX_PAGE
from pingpong_relay.rollups import ANALYTICS_WINDOWS
from pingpong_relay.subscriptions import POSITION_PATTERN

__all__ = ["OPERATIONS", "answers", "operation_for"]

# A bot id is a channel and a source; a request line with every parameter's characters
# percent-encoded still fits in aiohttp's 8,190 bytes.
MAX_BOT_CHARS: Final = MAX_CHANNEL_CHARS + 1 + MAX_SOURCE_CHARS


def _ok(description: str, schema: str, **headers: str) -> Answer:
    return Answer(description, {JSON: ref(schema)}, headers)


_BOT = Param(
    "bot",
    {"type": "string", "minLength": 1, "maxLength": MAX_BOT_CHARS},
    "a bot id, e.g. bot:pingpong/freqtrade-1 (the channel, then the message's source)",
)
_NEEDED_BOT = Param(_BOT.name, _BOT.schema, _BOT.description, True, error="bot_required")
_LABEL = Param(
    "label",
    {"type": "string", "maxLength": 2 * MAX_LABEL_CHARS},
    f"the badge's left-hand text (default: the bot id; cut at {MAX_LABEL_CHARS} characters)",
)
_UNKNOWN_BOT = Answer("unknown_bot: no bot by that id (or the token does not cover it)")
_HISTORY_OFF = Answer("history_off (--history-retention 0), or unknown_bot")
_NOT_MODIFIED = Answer("the badge is unchanged (If-None-Match matched its ETag)", {})
_BADGE_HEADERS: Final = {"ETag": "the badge's version", "Cache-Control": "max-age=30"}
_POSITION = {"type": "string", "pattern": POSITION_PATTERN}
_POSITION_TEXT = "a history id (1700000000000-0) or a time in ms since the epoch"


def _position(name: str, description: str) -> Param:
    return Param(
        name,
        _POSITION,
        description,
        error="bad_position",
        problem=f"{name} must be a history id (ms-seq) or a time in ms",
    )


_PATTERNS = {
    "oneOf": [
        {"type": "string", "pattern": r"\S"},
        {"type": "array", "items": {"type": "string", "pattern": r"\S"}},
    ]
}
_NUMBER = r"([0-9]+(\.[0-9]*)?|\.[0-9]+)"
_INSTANT = {
    "type": ["string", "number"],
    "minimum": 0,
    "maximum": MAX_TIMESTAMP_MS,
    "pattern": r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
    r"\s*(Z|[+-][0-9]{2}:?[0-9]{2})\s*$",
    "description": "ISO 8601 with its offset (2026-12-06T02:00Z) or ms since the epoch",
}
MUTE_BODY: Final[dict[str, Any]] = {
    "type": "object",
    "description": "Which bots (and rules) to mute, and when: a duration, or an end.",
    "properties": {
        "bots": {
            **_PATTERNS,
            "description": f"bot ids or shell-style patterns, at most {MAX_PATTERNS}",
        },
        "rules": {**_PATTERNS, "description": "rule names or patterns (default: every rule)"},
        "duration": {
            "type": ["string", "number"],
            "exclusiveMinimum": 0,
            "maximum": MAX_MUTE_S,
            "maxLength": 100,
            # every part ends in its unit, so a match cannot backtrack far
            "pattern": rf"^\s*({_NUMBER}(ms|s|m|h|d))+\s*$|^\s*{_NUMBER}\s*$",
            "description": 'how long, e.g. "2h" or "30m" (at most a year); or give ends_at',
        },
        "starts_at": {
            **_INSTANT,
            "description": "when it starts (default: now); " + str(_INSTANT["description"]),
        },
        "ends_at": _INSTANT,
        "comment": {"type": "string", "maxLength": MAX_COMMENT_CHARS},
    },
    "required": ["bots"],
    "additionalProperties": False,
}
_MUTE_ERRORS: Final = {
    404: Answer("no_mutes: this plane has no mute store"),
    503: Answer("redis_unavailable: the mute store could not be read or written"),
}
OPERATIONS: Final[tuple[Operation, ...]] = (
    Operation(
        "GET",
        "/openapi.json",
        "openapi",
        "This document",
        "documents",
        "open",
        {200: Answer("OpenAPI 3.1", {JSON: {"type": "object"}})},
    ),
    Operation(
        "GET",
        "/asyncapi.json",
        "asyncapi",
        "The data plane's protocol",
        "documents",
        "open",
        {200: Answer("AsyncAPI 3.0", {JSON: {"type": "object"}})},
    ),
    Operation(
        "GET",
        "/",
        "dashboard",
        "The dashboard page",
        "dashboard",
        "open",
        {200: Answer("the page", {"text/html": {"type": "string"}})},
    ),
    Operation(
        "GET",
        "/dashboard/config.json",
        "dashboardConfig",
        "Where the data plane is and what the dashboard may ask",
        "dashboard",
        "open",
        {200: _ok("the settings", "DashboardConfig")},
    ),
    Operation(
        "GET",
        "/dashboard/{file}",
        "dashboardFile",
        "The dashboard's scripts and styles",
        "dashboard",
        "open",
        {
            200: Answer("the file", {"*/*": None}),
            403: Answer("forbidden: not a file"),
            404: Answer("not_found: no such file"),
        },
        (Param("file", {"type": "string", "maxLength": 200}, "a dashboard file", True, "path"),),
    ),
    Operation(
        "GET",
        "/healthz",
        "health",
        "Whether the relay is working",
        "operations",
        "open",
        {
            200: _ok("healthy", "Health"),
            503: Answer(
                "not healthy (or the plane is at --max-http-connections: error capacity)",
                {JSON: {"anyOf": [ref("Health"), ref("Error")]}},
            ),
        },
        (
            Param(
                "detail",
                {"enum": ["1", "true", "yes", "0", "false", "no"]},
                "1, true or yes: the whole body (needs the operator's credential when the "
                "relay has --metrics-token or --auth jwt)",
            ),
        ),
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics",
        "operations",
        "operator",
        {200: Answer("the text exposition format", {"text/plain": {"type": "string"}})},
    ),
    Operation(
        "GET",
        "/stats",
        "stats",
        "Latency statistics over a window",
        "bots",
        "data",
        {200: _ok("the statistics", "Stats"), 404: _UNKNOWN_BOT},
        (
            Param(
                "window",
                {"enum": list(WINDOWS), "default": "5m"},
                "the window",
                error="bad_window",
            ),
            Param(_BOT.name, _BOT.schema, "only this bot's (default: every bot's)"),
        ),
        scope="stats",
    ),
    Operation(
        "GET",
        "/bots",
        "bots",
        "Every bot's status",
        "bots",
        "data",
        {200: _ok("by bot id", "Bots")},
        scope="status",
    ),
    Operation(
        "GET",
        "/alerts",
        "alerts",
        "Active and recently resolved alerts",
        "bots",
        "data",
        {200: _ok("the alerts", "Alerts")},
        scope="alerts",
    ),
    Operation(
        "GET",
        "/history",
        "history",
        "Recorded messages, a page at a time",
        "history",
        "data",
        {
            200: Answer(
                "a page (CSV: the cursor is in X-Next-After)",
                {JSON: ref("HistoryPage"), "text/csv": {"type": "string"}},
                {"X-Next-After": "with format=csv: the cursor of the next page"},
            ),
            404: _HISTORY_OFF,
        },
        (
            Param(_BOT.name, _BOT.schema, "only this bot's (default: every bot's)"),
            _position("since", "from (inclusive): " + _POSITION_TEXT),
            _position("until", "to (inclusive): " + _POSITION_TEXT),
            _position("after", "the previous page's next_after (exclusive)"),
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1000},
                "entries per page",
                error="bad_limit",
            ),
            Param("format", {"enum": ["json", "csv"], "default": "json"}, "json or csv"),
        ),
        scope="pingpong",
    ),
    Operation(
        "GET",
        "/analytics",
        "analytics",
        "A bot's availability, outages and latency",
        "history",
        "data",
        {200: _ok("the analytics", "Analytics"), 404: _HISTORY_OFF},
        (
            _NEEDED_BOT,
            Param(
                "window",
                {"enum": list(ANALYTICS_WINDOWS), "default": "24h"},
                "the window",
                error="bad_window",
            ),
        ),
        scope="pingpong",
    ),
    Operation(
        "GET",
        "/badge.svg",
        "badgeSvg",
        "A bot's status badge",
        "public",
        "badge",
        {
            200: Answer("the badge", {"image/svg+xml": {"type": "string"}}, _BADGE_HEADERS),
            304: _NOT_MODIFIED,
            404: Answer(
                "a grey 'unknown' badge: no such bot, or the token does not cover it",
                {"image/svg+xml": {"type": "string"}},
            ),
        },
        (_NEEDED_BOT, _LABEL),
        scope="status",
        description="Open for a --public-bots bot; for any other, a token like /bots'.",
    ),
    Operation(
        "GET",
        "/badge.json",
        "badgeJson",
        "A bot's badge for Shields.io",
        "public",
        "badge",
        {
            200: _ok("Shields' endpoint schema", "ShieldsBadge", **_BADGE_HEADERS),
            304: _NOT_MODIFIED,
            404: _UNKNOWN_BOT,
        },
        (_NEEDED_BOT, _LABEL),
        scope="status",
        description="Open for a --public-bots bot; for any other, a token like /bots'.",
    ),
    Operation(
        "GET",
        "/status",
        "statusPage",
        "The public status page",
        "public",
        "open",
        {
            200: Answer("the page", {"text/html": {"type": "string"}}),
            404: Answer("status_off: no --public-bots"),
        },
    ),
    Operation(
        "GET",
        "/status.json",
        "status",
        "The public bots' state",
        "public",
        "open",
        {200: _ok("the public bots", "Status"), 404: Answer("status_off: no --public-bots")},
    ),
    Operation(
        "GET",
        "/api/mutes",
        "listMutes",
        "Mutes in force and scheduled",
        "mutes",
        "mute_read",
        {200: _ok("the mutes", "Mutes"), **_MUTE_ERRORS},
    ),
    Operation(
        "POST",
        "/api/mutes",
        "addMute",
        "Mute a bot's alerts for a while",
        "mutes",
        "mute_write",
        {
            201: Answer(
                "the mute",
                {JSON: ref("MuteCreated")},
                links={
                    "expire": {
                        "operationId": "expireMute",
                        "parameters": {"id": "$response.body#/id"},
                        "description": "end the mute just made",
                    }
                },
            ),
            **_MUTE_ERRORS,
        },
        body=Body(MUTE_BODY, "the mute", "bad_mute"),
    ),
    Operation(
        "DELETE",
        "/api/mutes/{id}",
        "expireMute",
        "End a mute now",
        "mutes",
        "mute_write",
        {200: _ok("ended", "MuteExpired"), **_MUTE_ERRORS},
        (Param("id", {"type": "string", "maxLength": 100}, "the mute's id", True, "path"),),
    ),
    *PUSH_OPERATIONS,
)

_BY_ROUTE: Final = {(op.method, op.path): op for op in OPERATIONS}


def operation_for(method: str, path: str) -> Operation | None:
    """The operation of a route (as the router spells it); HEAD is GET's."""
    return _BY_ROUTE.get(("GET" if method == "HEAD" else method, path))


def answers(op: Operation, *, auth: bool, operator_credential: bool) -> dict[int, Answer]:
    """Every status the operation can answer with on a relay so configured: its handler's,
    the checker's 400, and the access guard's."""
    found = dict(op.answers)
    if op.params or op.body is not None:
        found.setdefault(400, Answer("bad_parameter (or the parameter's own code)"))
    guarded = {
        "operator": operator_credential or auth,
        "data": auth,
        "badge": auth,
        "mute_read": True,
        "mute_write": True,
    }.get(op.guard, False)
    if guarded or (op.operation_id == "health" and (auth or operator_credential)):
        found.setdefault(
            401,
            Answer(
                "unauthorized: no token, or not a valid one; reason says which",
                headers={"WWW-Authenticate": "Bearer"},
            ),
        )
    if op.guard in ("data", "badge", "mute_read", "mute_write") and (
        auth or op.guard.startswith("mute")
    ):
        found.setdefault(403, Answer("forbidden: the token lacks the scope (or not loopback)"))
    found.setdefault(421, Answer("unknown_host: the Host header does not name this relay"))
    found.setdefault(
        503,
        Answer(
            "capacity: the plane is at --max-http-connections",
            headers={"Retry-After": "seconds to wait (5)"},
        ),
    )
    return dict(sorted(found.items()))
