"""The JSON Schemas of the HTTP plane's answers (pure data), for the OpenAPI document.

Where an answer carries what the WebSocket side also sends (a bot's status, an alert, a
window's statistics), it is the same schema object (`wire_schemas`), so both documents
describe one shape.
"""

from __future__ import annotations

from typing import Any, Final

from pingpong_relay.rollups import ANALYTICS_WINDOWS
from pingpong_relay.wire_schemas import (
    HISTORY_ID,
    MS,
    NULLABLE_NUMBER,
    WINDOW_STATS,
    outgoing_schemas,
    quantiles,
)

__all__ = ["response_schemas"]

_NULLABLE_MS: Final = {**MS, "type": ["integer", "null"]}


def _object(description: str, required: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """An object with these required properties (and optional ones); others may be added
    by later versions, so clients must ignore what they do not know."""
    return {
        "type": "object",
        "description": description,
        "properties": {**required, **optional},
        "required": list(required),
    }


def _map_of(value: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "additionalProperties": value}


def _list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": item}


def _health() -> dict[str, Any]:
    return _object(
        "The relay's health: anyone sees status and redis; ?detail=1 (the operator's "
        "credential) adds clients, channels, uptime, version, pid and any reason.",
        {
            "status": {"enum": ["ok", "unavailable"]},
            "redis": {"type": "string", "description": "subscribed, or what is wrong"},
        },
        clients={"type": "integer"},
        channels=_list_of({"type": "string"}),
        uptime_s={"type": "number"},
        version={"type": "string"},
        pid={"type": "integer"},
        reason={"type": "string"},
    )


def _stats() -> dict[str, Any]:
    return _object(
        "Statistics over one window, overall and by bot.",
        {
            "window": {"type": "string"},
            "generated_at_ms": MS,
            "overall": {
                "oneOf": [WINDOW_STATS, {"type": "null"}],
                "description": "null for a token limited to some bots",
            },
            "bots": _map_of(WINDOW_STATS, "by bot id"),
        },
    )


def _history_page() -> dict[str, Any]:
    item = _object(
        "One recorded message: the bot's object as it was published.",
        {
            "id": HISTORY_ID,
            "bot": {"type": "string"},
            "channel": {"type": "string"},
            "relay_ms": MS,
            "data": {"type": "object"},
        },
    )
    return _object(
        "A page of history, oldest first; next_after is the cursor of the next page "
        "(null on the last).",
        {
            "bot": {"type": ["string", "null"]},
            "items": _list_of(item),
            "next_after": {"oneOf": [HISTORY_ID, {"type": "null"}]},
        },
    )


def _outage() -> dict[str, Any]:
    return _object(
        "A silence longer than the silence timeout.",
        {
            "start_ms": MS,
            "end_ms": _NULLABLE_MS,
            "duration_s": {"type": "number"},
            "ongoing": {"type": "boolean"},
        },
    )


_OUTAGE: Final = {"$ref": "#/components/schemas/Outage"}


def _analytics() -> dict[str, Any]:
    return _object(
        "One bot's availability, outages, counts and latency over a window, from the "
        "history's rollups.",
        {
            "bot": {"type": "string"},
            "window": {"enum": list(ANALYTICS_WINDOWS)},
            "from_ms": MS,
            "to_ms": MS,
            "observed_from_ms": _NULLABLE_MS,
            "availability_pct": NULLABLE_NUMBER,
            "silence_timeout_s": {"type": "number"},
            "outage_count": {"type": "integer"},
            "outages": _list_of(_OUTAGE),
            "messages": _object(
                "messages in the window",
                {name: {"type": "integer"} for name in ("count", "ping", "pong")},
            ),
            "latency_ms": quantiles("min", "mean", "p50", "p95", "p99", "max"),
        },
    )


def _status() -> dict[str, Any]:
    bot = _object(
        "A public bot.",
        {
            "bot": {"type": "string"},
            "status": {"type": ["string", "null"]},
            "since_ms": _NULLABLE_MS,
            "last_seen_ms": _NULLABLE_MS,
            "latency_ms": NULLABLE_NUMBER,
            "availability_pct": _map_of(NULLABLE_NUMBER, "by window"),
            "incidents": _list_of(_OUTAGE),
        },
    )
    return _object(
        "The --public-bots bots: status, latency, availability and recent incidents.",
        {"generated_at_ms": MS, "windows": _list_of({"type": "string"}), "bots": _list_of(bot)},
    )


def _mute() -> dict[str, Any]:
    patterns = _list_of({"type": "string"})
    return _object(
        "A mute: alerts of matching bots (and rules) reach no channel while it is in force.",
        {
            "id": {"type": "string"},
            "bots": patterns,
            "rules": patterns,
            "starts_at_ms": MS,
            "ends_at_ms": MS,
            "comment": {"type": "string"},
            "created_by": {"type": "string"},
            "created_at_ms": MS,
        },
    )


def response_schemas() -> dict[str, dict[str, Any]]:
    """Every answer body's schema, by component name."""
    wire = outgoing_schemas()
    mute = {"$ref": "#/components/schemas/Mute"}
    return {
        "Health": _health(),
        "Stats": _stats(),
        "Bots": _object(
            "Every bot's current status (the bot:status message) by bot id.",
            {"bots": _map_of({"$ref": "#/components/schemas/BotStatus"}, "by bot id")},
        ),
        "BotStatus": wire["BotStatus"],
        "Alerts": _object(
            "Active alerts and recently resolved ones.",
            {
                "active": _list_of({"$ref": "#/components/schemas/BotAlert"}),
                "recently_resolved": _list_of({"$ref": "#/components/schemas/BotAlert"}),
            },
        ),
        "BotAlert": wire["BotAlert"],
        "HistoryPage": _history_page(),
        "Analytics": _analytics(),
        "Outage": _outage(),
        "Status": _status(),
        "ShieldsBadge": _object(
            "The Shields.io endpoint-badge schema.",
            {
                "schemaVersion": {"const": 1},
                "label": {"type": "string"},
                "message": {"type": "string"},
                "color": {"type": "string"},
            },
        ),
        "Mute": _mute(),
        "Mutes": _object(
            "Mutes in force and scheduled, by start time.",
            {"active": _list_of(mute), "scheduled": _list_of(mute)},
        ),
        "MuteCreated": _object("The new mute.", {"id": {"type": "string"}, "mute": mute}),
        "MuteExpired": _object(
            "The mute ended now.", {"id": {"type": "string"}, "expired": {"const": True}}
        ),
        "PushAccepted": _object("Uptime Kuma's answer.", {"ok": {"const": True}}),
        "PushRefused": _object(
            "The plane's error shape; a push refusal adds Uptime Kuma's (ok, msg).",
            {"error": {"type": "string"}, "message": {"type": "string"}},
            ok={"const": False},
            msg={"type": "string"},
            parameter={"type": "string"},
        ),
        "DashboardConfig": _object(
            "Where the data plane is and what the dashboard may ask.",
            {"ws_port": {"type": "integer"}, "auth": {"type": "string"}},
        ),
    }
