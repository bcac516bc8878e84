"""The relay's wire protocol as data: the AsyncAPI 3 document and its markdown summary.

The schemas of what the relay accepts are the very objects it validates with
(messages.BOT_MESSAGE_SCHEMA, subscriptions.COMMAND_SCHEMA and CONNECT_QUERY_SCHEMA); the
schemas of what it sends are checked against real relay output by the tests. Close codes and
HTTP statuses come from status_codes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final, get_args

import orjson

from pingpong_relay import __version__
from pingpong_relay.alert_events import ALERT_EVENT_TYPE, STATUS_EVENT_TYPE, AlertState, Status
from pingpong_relay.auth import SUBPROTOCOL
from pingpong_relay.hub import CONFLATED_TYPE
from pingpong_relay.messages import BOT_MESSAGE_SCHEMA, ENVELOPE_SOURCE, ENVELOPE_TYPE
from pingpong_relay.rules import RULE_KINDS
from pingpong_relay.status_codes import CLOSE_CODES, HTTP_STATUSES, UPGRADE_STATUSES, Code
from pingpong_relay.subscriptions import (
    ACTIONS,
    COMMAND_SCHEMA,
    CONNECT_QUERY_SCHEMA,
    EVENTS,
    MESSAGE_KINDS,
)

STATUSES: Final = get_args(Status)

# --- schemas of what the relay sends ---------------------------------------------------
_MS = {"type": "integer", "description": "ms since the epoch"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_ID = {"type": "string", "pattern": r"^[0-9]+-[0-9]+$", "description": "a history id"}
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


def _quantiles(*names: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {name: _NULLABLE_NUMBER for name in names},
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
_WINDOW_STATS = {
    "type": "object",
    "properties": {
        "window": {"type": "string"},
        "count": {"type": "integer"},
        "ping": {"type": "integer"},
        "pong": {"type": "integer"},
        "rate_per_s": {"type": "number"},
        "latency_ms": _quantiles("min", "mean", "p50", "p95", "p99", "max"),
        "interval_ms": _quantiles("min", "mean", "p50", "p95", "max"),
        "transit_ms": {
            **_quantiles("min", "mean", "p50", "p95", "p99", "max"),
            "description": "bot timestamp to relay receipt; `negative` counts clock skew",
        },
        "clock_skew_suspected": {"type": "boolean"},
    },
    "required": ["window", "count", "ping", "pong", "rate_per_s", "latency_ms"],
}


def outgoing_schemas() -> dict[str, dict[str, Any]]:
    """Every message the relay sends to WebSocket clients, by component name."""
    return {
        "Envelope": _object(
            "Envelope",
            "A heartbeat, as the design specifies it: exactly these four keys.",
            type=_const(ENVELOPE_TYPE),
            data=BOT_MESSAGE_SCHEMA,
            timestamp={**_MS, "description": "the relay's clock when it received the message"},
            source=_const(ENVELOPE_SOURCE),
        ),
        "TaggedEnvelope": _object(
            "TaggedEnvelope",
            "A heartbeat for clients that asked for ids (?ids=1, ?since=, ?last=): the "
            "envelope plus its history id (absent when history is off) and its bot.",
            type=_const(ENVELOPE_TYPE),
            data=BOT_MESSAGE_SCHEMA,
            timestamp=_MS,
            source=_const(ENVELOPE_SOURCE),
            id=_Optional(_ID),
            bot={"type": "string", "description": "<channel>/<source>, or the channel"},
        ),
        "Ack": _object(
            "Ack",
            "The answer to subscribe, unsubscribe and refresh.",
            type=_const("ack"),
            action={"enum": [a for a in ACTIONS if a != "list"]},
            subscription=_Optional(_SUBSCRIPTION),
            expires_at_ms=_Optional({"type": ["integer", "null"]}),
            id=_Optional(_REQUEST_ID),
        ),
        "Subscriptions": _object(
            "Subscriptions",
            "The answer to list: the subscription and every bot the relay has seen.",
            type=_const("subscriptions"),
            subscription=_SUBSCRIPTION,
            bots={"type": "array", "items": {"type": "string"}},
            id=_Optional(_REQUEST_ID),
        ),
        "Error": _object(
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
        ),
        "BotStatus": _object(
            "BotStatus",
            "A bot's status (events=status): on every change, and every watched bot's "
            "current one when the client starts watching.",
            type=_const(STATUS_EVENT_TYPE),
            bot={"type": "string"},
            status={"enum": list(STATUSES)},
            previous={"enum": [*STATUSES, None]},
            since_ms=_MS,
            at_ms=_MS,
            last_seen_ms=_MS,
            reason={"type": "string"},
        ),
        "BotAlert": _object(
            "BotAlert",
            "An alert transition (events=alerts): pending, firing, resolved.",
            type=_const(ALERT_EVENT_TYPE),
            rule={"type": "string"},
            kind={"enum": list(RULE_KINDS)},
            bot={"type": "string"},
            state={"enum": list(get_args(AlertState))},
            since_ms=_MS,
            at_ms=_MS,
            value=_NULLABLE_NUMBER,
            threshold={"type": "number"},
            repeat={"type": "boolean"},
            fired={"type": "boolean"},
            summary={"type": "string"},
        ),
        "BotStats": _object(
            "BotStats",
            "Statistics (events=stats) every --stats-interval for each watched bot, and "
            'for all bots as bot "*".',
            type=_const("bot:stats"),
            bot={"type": "string"},
            generated_at_ms=_MS,
            windows={"type": "object", "additionalProperties": _WINDOW_STATS},
        ),
        "RelayState": _object(
            "RelayState",
            "The relay's own state (events=relay): when the client starts watching, when "
            "the Redis subscription is lost or back, and every --stats-interval.",
            type=_const("relay:state"),
            relay={"type": "string", "description": "host:pid"},
            at_ms=_MS,
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
            redis_down_since_ms=_Optional(_MS),
        ),
        "RelayDeaf": _object(
            "RelayDeaf",
            "The relay lost its Redis subscription (to_ms null) or got it back (events=status).",
            type=_const("relay:deaf"),
            relay={"type": "string"},
            from_ms=_MS,
            to_ms={"type": ["integer", "null"]},
            duration_s=_Optional({"type": "number"}),
        ),
        "Conflated": _object(
            "Conflated",
            "With --slow-client conflate: the client's socket was backed up, so it was "
            "kept only the newest message per bot and type; this many were skipped. What "
            "was kept follows at once.",
            type=_const(CONFLATED_TYPE),
            skipped={"type": "integer", "minimum": 1},
        ),
        "BotGap": _object(
            "BotGap",
            "Before a replay: history that cannot be sent, because it was trimmed or "
            "because the relay was deaf then.",
            type=_const("bot:gap"),
            bot={"type": "string"},
            reason={"enum": ["trimmed", "relay_deaf"]},
            relay=_Optional({"type": "string"}),
            **{"from": _ID, "to": _ID},
        ),
    }


_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "BotMessage": {"type": "ping", "latency": 10, "timestamp": 1234567890, "source": "bot"},
    "Envelope": {
        "type": "bot:pingpong",
        "data": {"type": "ping", "latency": 10, "timestamp": 1234567890, "source": "bot"},
        "timestamp": 1795651928846,
        "source": "bot",
    },
    "Command": {"action": "subscribe", "events": ["status", "alerts"], "id": 1},
    "BotStatus": {
        "type": "bot:status",
        "bot": "bot:pingpong/gate-1",
        "status": "down",
        "previous": "pending",
        "since_ms": 1795662130244,
        "at_ms": 1795662130244,
        "last_seen_ms": 1795662100244,
        "reason": "silent for 30 s (timeout 30 s)",
    },
}

# Which way each message goes: the relay sends these on the WebSocket.
SENT: Final = (
    "Envelope",
    "TaggedEnvelope",
    "Ack",
    "Subscriptions",
    "Error",
    "BotStatus",
    "BotAlert",
    "BotStats",
    "RelayState",
    "RelayDeaf",
    "BotGap",
    "Conflated",
)


def _message(name: str, summary: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
    }
    if name in _EXAMPLES:
        message["examples"] = [{"payload": _EXAMPLES[name]}]
    return message


def _codes(codes: tuple[Code, ...]) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "name": c.name, "when": c.when, "client_should": c.client_should}
        for c in codes
    ]


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket API and the Redis channel contract."""
    schemas: dict[str, Any] = {
        "BotMessage": BOT_MESSAGE_SCHEMA,
        "Command": COMMAND_SCHEMA,
        "ConnectQuery": CONNECT_QUERY_SCHEMA,
        **outgoing_schemas(),
    }
    messages = {
        name: _message(name, schemas[name]["description"].split(".")[0])
        for name in ("BotMessage", "Command", *SENT)
    }
    relay_messages = {
        name[0].lower() + name[1:]: {"$ref": f"#/components/messages/{name}"}
        for name in ("Command", *SENT)
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "pingpong-relay",
            "version": __version__,
            "description": (
                "Trading bots publish ping/pong heartbeats to Redis Pub/Sub; the relay "
                "validates each and broadcasts it, wrapped in an envelope, to every "
                "WebSocket client. Clients may narrow what they receive (types, bots) and "
                "widen it with events: pingpong (heartbeats, the default), status, alerts, "
                "stats, relay. Close codes and HTTP statuses are under x-close-codes and "
                "x-http-statuses."
            ),
            "license": {"name": "MIT"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "relay": {
                "host": "localhost:2808",
                "protocol": "ws",
                "description": "the data plane (wss with --tls-cert/--tls-key)",
            },
            "redis": {
                "host": "localhost:6379",
                "protocol": "redis",
                "description": "where bots publish (Pub/Sub)",
            },
        },
        "channels": {
            "clients": {
                "address": "/",
                "title": "WebSocket clients",
                "description": (
                    f"Connect to ws://HOST:2808/ (subprotocol {SUBPROTOCOL} is echoed when "
                    "offered). With --auth jwt, the token goes in `Authorization: Bearer`, "
                    "a `bearer.<jwt>` subprotocol or `?token=`."
                ),
                "servers": [{"$ref": "#/servers/relay"}],
                "messages": relay_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": CONNECT_QUERY_SCHEMA,
                        "bindingVersion": "0.1.0",
                    }
                },
                "x-close-codes": _codes(CLOSE_CODES),
                "x-http-statuses": _codes(UPGRADE_STATUSES),
            },
            "heartbeats": {
                "address": "bot:pingpong",
                "title": "Redis channel bot:pingpong",
                "description": (
                    "PUBLISH bot:pingpong '<BotMessage>'; more channels with --channel, or "
                    "patterns with --channel-pattern."
                ),
                "servers": [{"$ref": "#/servers/redis"}],
                "messages": {"botMessage": {"$ref": "#/components/messages/BotMessage"}},
            },
        },
        "operations": {
            "receiveHeartbeats": {
                "action": "receive",
                "summary": "The relay receives each heartbeat a bot publishes.",
                "channel": {"$ref": "#/channels/heartbeats"},
                "messages": [{"$ref": "#/channels/heartbeats/messages/botMessage"}],
            },
            "sendToClients": {
                "action": "send",
                "summary": "The relay sends heartbeats and the events a client watches.",
                "channel": {"$ref": "#/channels/clients"},
                "messages": [
                    {"$ref": f"#/channels/clients/messages/{name[0].lower() + name[1:]}"}
                    for name in SENT
                    if name not in ("Ack", "Subscriptions")
                ],
            },
            "receiveCommands": {
                "action": "receive",
                "summary": "A client changes its subscription, lists it, or refreshes its token.",
                "channel": {"$ref": "#/channels/clients"},
                "messages": [{"$ref": "#/channels/clients/messages/command"}],
                "reply": {
                    "channel": {"$ref": "#/channels/clients"},
                    "messages": [
                        {"$ref": "#/channels/clients/messages/ack"},
                        {"$ref": "#/channels/clients/messages/subscriptions"},
                        {"$ref": "#/channels/clients/messages/error"},
                    ],
                },
            },
        },
        "components": {"schemas": schemas, "messages": messages},
    }


def main() -> None:
    """`python -m pingpong_relay.asyncapi` prints the AsyncAPI document."""
    sys.stdout.write(orjson.dumps(asyncapi(), option=orjson.OPT_INDENT_2).decode() + "\n")


if __name__ == "__main__":
    main()


# --- the rendered summary (docs/protocol.md and the README's tables) --------------------
def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def codes_table(codes: tuple[Code, ...], heading: str) -> str:
    rows = [f"| {heading} | when | what a client should do |", "|---|---|---|"]
    rows += [f"| {c.code} {c.name} | {_cell(c.when)} | {_cell(c.client_should)} |" for c in codes]
    return "\n".join(rows)


def _fields_table(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    rows = ["| field | required | what |", "|---|---|---|"]
    for name, field in schema["properties"].items():
        what = (
            f"the {field['title']} object (see above)"
            if "title" in field
            else field.get("description") or _shape(field)
        )
        rows.append(f"| `{name}` | {'yes' if name in required else ''} | {_cell(what)} |")
    return "\n".join(rows)


def _shape(schema: dict[str, Any]) -> str:
    if "const" in schema:
        return f"`{orjson.dumps(schema['const']).decode()}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{orjson.dumps(v).decode()}`" for v in schema["enum"])
    kind = schema.get("type", "")
    return kind if isinstance(kind, str) else " or ".join(kind)


def markdown() -> str:
    """A human summary of the AsyncAPI document (docs/protocol.md is this, generated)."""
    document = asyncapi()
    schemas = document["components"]["schemas"]
    clients = document["channels"]["clients"]
    parts = [
        "# pingpong-relay protocol",
        "",
        "<!-- generated from pingpong_relay/asyncapi.py by `make docs`; do not edit -->",
        "",
        f"The machine-readable form is the AsyncAPI {document['asyncapi']} document the relay "
        "serves at `GET /asyncapi.json` on its HTTP plane (`python -m pingpong_relay.asyncapi` "
        "prints it). Its JSON Schemas for bot messages, commands and connect queries are the "
        "ones the relay validates with.",
        "",
        "## Redis: what bots publish",
        "",
        document["channels"]["heartbeats"]["description"],
        "",
        schemas["BotMessage"]["description"],
        "",
        _fields_table(schemas["BotMessage"]),
        "",
        "## WebSocket: connecting",
        "",
        clients["description"],
        "",
        schemas["ConnectQuery"]["description"],
        "",
        _fields_table(schemas["ConnectQuery"]),
        "",
        "## WebSocket: commands a client sends",
        "",
        schemas["Command"]["description"],
        "",
        _fields_table(schemas["Command"]),
        "",
        "Example: `" + orjson.dumps(_EXAMPLES["Command"]).decode() + "`",
        "",
        "## WebSocket: messages the relay sends",
        "",
    ]
    for name in SENT:
        schema = schemas[name]
        kind = schema["properties"]["type"]["const"]
        parts += [f"### `{kind}` ({name})", "", schema["description"], ""]
        parts += [_fields_table(schema), ""]
        if name in _EXAMPLES:
            parts += ["```json", orjson.dumps(_EXAMPLES[name]).decode(), "```", ""]
    parts += [
        "## Close codes",
        "",
        codes_table(CLOSE_CODES, "code"),
        "",
        "## HTTP statuses",
        "",
        "At the WebSocket upgrade (data port):",
        "",
        codes_table(UPGRADE_STATUSES, "status"),
        "",
        "On the HTTP plane:",
        "",
        codes_table(HTTP_STATUSES, "status"),
        "",
    ]
    return "\n".join(parts)
