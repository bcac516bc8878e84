"""The JSON Schemas of what crosses the wire: what the relay accepts and what it sends (pure).

For what it accepts, the validators' own objects; one schema per message it sends. The
AsyncAPI document publishes these objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, get_args

from pingpong_relay.alert_events import AlertState, Status
from pingpong_relay.messages import BOT_MESSAGE_SCHEMA, ENVELOPE_SOURCE
from pingpong_relay.rules import RULE_KINDS
from pingpong_relay.subscriptions import (
    ACTIONS,
    COMMAND_SCHEMA,
    CONNECT_QUERY_SCHEMA,
    EVENTS,
    MESSAGE_KINDS,
)
from pingpong_relay.wire_types import (
    ALERT_EVENT_TYPE,
    CONFLATED_TYPE,
    ENVELOPE_TYPE,
    GAP_TYPE,
    RELAY_DEAF_TYPE,
    RELAY_STATE_TYPE,
    STATS_TYPE,
    STATUS_EVENT_TYPE,
)

__all__ = [
    "HISTORY_ID",
    "MS",
    "NULLABLE_NUMBER",
    "WINDOW_STATS",
    "incoming_schemas",
    "outgoing_schemas",
    "quantiles",
]

_STATUSES: Final = get_args(Status)


def incoming_schemas() -> dict[str, dict[str, Any]]:
    """What the relay accepts, by component name: the very objects its validators compile."""
    return {
        "BotMessage": BOT_MESSAGE_SCHEMA,
        "Command": COMMAND_SCHEMA,
        "ConnectQuery": CONNECT_QUERY_SCHEMA,
    }


def outgoing_schemas() -> dict[str, dict[str, Any]]:
    """Every message the relay sends to WebSocket clients, by component name."""
    return {
        "Envelope": _envelope(),
        "TaggedEnvelope": _tagged_envelope(),
        "Ack": _ack(),
        "Subscriptions": _subscriptions(),
        "Error": _error(),
        "BotStatus": _bot_status(),
        "BotAlert": _bot_alert(),
        "BotStats": _bot_stats(),
        "RelayState": _relay_state(),
        "RelayDeaf": _relay_deaf(),
        "Conflated": _conflated(),
        "BotGap": _bot_gap(),
    }


# --- building blocks of the outgoing schemas -------------------------------------------
MS = {"type": "integer", "description": "ms since the epoch"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
HISTORY_ID = {"type": "string", "pattern": r"^[0-9]+-[0-9]+$", "description": "a history id"}
_REQUEST_ID = {
    "description": "the command's id, echoed when it had one",
    "type": ["string", "integer", "number"],
}


@dataclass(frozen=True, slots=True)
class _Optional:
    schema: dict[str, Any]


def _object(title: str, description: str, **properties: Any) -> dict[str, Any]:
    """A closed object schema whose properties are all required but the _Optional ones."""
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": {
            name: p.schema if isinstance(p, _Optional) else p for name, p in properties.items()
        },
        "required": [name for name, p in properties.items() if not isinstance(p, _Optional)],
        "additionalProperties": False,
    }


def _const(value: str) -> dict[str, Any]:
    return {"type": "string", "const": value}


def quantiles(*names: str) -> dict[str, Any]:
    """An object of these figures, each a number or null (no values in the window)."""
    return {
        "type": "object",
        "properties": {name: NULLABLE_NUMBER for name in names},
        "required": list(names),
    }


_SUBSCRIPTION = {
    "type": "object",
    "properties": {
        "types": {
            "oneOf": [
                {"type": "array", "items": {"enum": list(MESSAGE_KINDS)}},
                {"const": "all"},
            ]
        },
        "bots": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"const": "all"}]},
        "events": {"type": "array", "items": {"enum": list(EVENTS)}},
        "ids": {"const": True},
    },
    "required": ["types", "bots", "events"],
    "additionalProperties": False,
}
WINDOW_STATS = {
    "type": "object",
    "properties": {
        "window": {"type": "string"},
        "count": {"type": "integer"},
        "ping": {"type": "integer"},
        "pong": {"type": "integer"},
        "rate_per_s": {"type": "number"},
        "latency_ms": quantiles("min", "mean", "p50", "p95", "p99", "max"),
        "interval_ms": quantiles("min", "mean", "p50", "p95", "max"),
        "transit_ms": {
            **quantiles("min", "mean", "p50", "p95", "p99", "max"),
            "description": "bot timestamp to relay receipt; `negative` counts clock skew",
        },
        "clock_skew": {
            "type": "object",
            "properties": {"messages": {"type": "integer"}},
            "required": ["messages"],
            "description": "messages whose timestamp was past --max-clock-skew from the "
            "relay's clock: in every figure but `transit_ms`",
        },
        "clock_skew_suspected": {
            "type": "boolean",
            "description": "a message past --max-clock-skew or a negative transit in the window",
        },
    },
    "required": ["window", "count", "ping", "pong", "rate_per_s", "latency_ms"],
}


# --- one schema per message the relay sends -------------------------------------------
def _envelope() -> dict[str, Any]:
    return _object(
        "Envelope",
        "A heartbeat, as the design specifies it: exactly these four keys.",
        type=_const(ENVELOPE_TYPE),
        data=BOT_MESSAGE_SCHEMA,
        timestamp={**MS, "description": "the relay's clock when it received the message"},
        source=_const(ENVELOPE_SOURCE),
    )


def _tagged_envelope() -> dict[str, Any]:
    return _object(
        "TaggedEnvelope",
        "A heartbeat for clients that asked for ids (?ids=1, ?since=, ?last=): the "
        "envelope plus its history id (absent when history is off) and its bot.",
        type=_const(ENVELOPE_TYPE),
        data=BOT_MESSAGE_SCHEMA,
        timestamp=MS,
        source=_const(ENVELOPE_SOURCE),
        id=_Optional(HISTORY_ID),
        bot={"type": "string", "description": "<channel>/<source>, or the channel"},
    )


def _ack() -> dict[str, Any]:
    return _object(
        "Ack",
        "The answer to subscribe, unsubscribe and refresh.",
        type=_const("ack"),
        action={"enum": [a for a in ACTIONS if a != "list"]},
        subscription=_Optional(_SUBSCRIPTION),
        expires_at_ms=_Optional({"type": ["integer", "null"]}),
        id=_Optional(_REQUEST_ID),
    )


def _subscriptions() -> dict[str, Any]:
    return _object(
        "Subscriptions",
        "The answer to list: the subscription and every bot the relay has seen.",
        type=_const("subscriptions"),
        subscription=_SUBSCRIPTION,
        bots={"type": "array", "items": {"type": "string"}},
        id=_Optional(_REQUEST_ID),
    )


def _error() -> dict[str, Any]:
    return _object(
        "Error",
        "A command (or a replay) the relay could not follow; the connection stays open.",
        type=_const("error"),
        error={
            "type": "string",
            "description": "invalid_json, bad_command, unknown_action, bad_field, oversize, "
            "rate_limited, history_off, replay_failed, auth_off, bad_token, a token "
            "refusal reason (expired, …), internal_error",
        },
        message={"type": "string"},
        id=_Optional(_REQUEST_ID),
    )


def _bot_status() -> dict[str, Any]:
    return _object(
        "BotStatus",
        "A bot's status (events=status): on every change, and every watched bot's "
        "current one when the client starts watching.",
        type=_const(STATUS_EVENT_TYPE),
        bot={"type": "string"},
        status={"enum": list(_STATUSES)},
        previous={"enum": [*_STATUSES, None]},
        since_ms=MS,
        at_ms=MS,
        last_seen_ms=MS,
        reason={"type": "string"},
    )


def _bot_alert() -> dict[str, Any]:
    return _object(
        "BotAlert",
        "An alert transition (events=alerts): pending, firing, resolved.",
        type=_const(ALERT_EVENT_TYPE),
        rule={"type": "string"},
        kind={"enum": list(RULE_KINDS)},
        bot={"type": "string"},
        state={"enum": list(get_args(AlertState))},
        since_ms=MS,
        at_ms=MS,
        value=NULLABLE_NUMBER,
        threshold={"type": "number"},
        repeat={"type": "boolean"},
        fired={"type": "boolean"},
        summary={"type": "string"},
        muted=_Optional(
            {
                "type": "boolean",
                "const": True,
                "description": "present when a mute (/api/mutes) covers the alert: shown, "
                "but sent to no notification channel and no webhook",
            }
        ),
    )


def _bot_stats() -> dict[str, Any]:
    return _object(
        "BotStats",
        "Statistics (events=stats) every --stats-interval for each watched bot, and "
        'for all bots as bot "*".',
        type=_const(STATS_TYPE),
        bot={"type": "string"},
        generated_at_ms=MS,
        windows={"type": "object", "additionalProperties": WINDOW_STATS},
    )


def _relay_state() -> dict[str, Any]:
    return _object(
        "RelayState",
        "The relay's own state (events=relay): when the client starts watching, when "
        "the Redis subscription is lost or back, and every --stats-interval.",
        type=_const(RELAY_STATE_TYPE),
        relay={"type": "string", "description": "host:pid"},
        at_ms=MS,
        status={"enum": ["ok", "unavailable"]},
        redis={"type": "string", "description": "subscribed, or what is wrong"},
        clients={"type": "integer"},
        channels={"type": "array", "items": {"type": "string"}},
        uptime_s={"type": "number"},
        version={"type": "string"},
        pid={"type": "integer"},
        worker=_Optional({"type": "integer", "description": "with --workers: which one"}),
        reason=_Optional(
            {
                "type": "string",
                "description": "why not ok, in general terms (the error itself is logged)",
            }
        ),
        redis_down_since_ms=_Optional(MS),
        mqtt=_Optional(
            {
                "enum": ["subscribed", "disconnected"],
                "description": "with --mqtt-url: the broker subscription (never a reason for "
                "status to be unavailable: Redis is the relay's lifeline)",
            }
        ),
        pollers=_Optional(
            {
                "type": "object",
                "description": "with --poll: {targets, polling}: how many targets, and "
                "whether this relay polls them (one relay among those on one Redis does)",
                "properties": {"targets": {"type": "integer"}, "polling": {"type": "boolean"}},
                "required": ["targets", "polling"],
                "additionalProperties": False,
            }
        ),
    )


def _relay_deaf() -> dict[str, Any]:
    return _object(
        "RelayDeaf",
        "The relay lost its Redis subscription (to_ms null) or got it back (events=status).",
        type=_const(RELAY_DEAF_TYPE),
        relay={"type": "string"},
        from_ms=MS,
        to_ms={"type": ["integer", "null"]},
        duration_s=_Optional({"type": "number"}),
    )


def _conflated() -> dict[str, Any]:
    return _object(
        "Conflated",
        "With --slow-client conflate: the client's socket was backed up, so it was "
        "kept only the newest message per bot and type; this many were skipped. What "
        "was kept follows at once.",
        type=_const(CONFLATED_TYPE),
        skipped={"type": "integer", "minimum": 1},
    )


def _bot_gap() -> dict[str, Any]:
    return _object(
        "BotGap",
        "Before a replay: history that cannot be sent, because it was trimmed or "
        "because the relay was deaf then.",
        type=_const(GAP_TYPE),
        bot={"type": "string"},
        reason={"enum": ["trimmed", "relay_deaf"]},
        relay=_Optional({"type": "string"}),
        **{"from": HISTORY_ID, "to": HISTORY_ID},
    )
