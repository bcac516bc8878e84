"""The relay's wire protocol as data: the AsyncAPI 3 document it serves at /asyncapi.json.

Its schemas come from wire_schemas: for what the relay accepts, the very objects it validates
with; for what it sends, schemas the tests check against real relay output. Its close codes
and HTTP statuses come from status_codes; protocol_docs renders the document for people.
"""

from __future__ import annotations

import sys
from typing import Any, Final

import orjson

from pingpong_relay import __version__
from pingpong_relay.auth import SUBPROTOCOL
from pingpong_relay.status_codes import CLOSE_CODES, UPGRADE_STATUSES, Code
from pingpong_relay.wire_schemas import incoming_schemas, outgoing_schemas

__all__ = ["SENT", "asyncapi", "main"]

_EXAMPLES: Final[dict[str, dict[str, Any]]] = {
    "BotMessage": {"type": "ping", "latency": 10, "timestamp": 1795651928840, "source": "bot"},
    "Envelope": {
        "type": "bot:pingpong",
        "data": {"type": "ping", "latency": 10, "timestamp": 1795651928840, "source": "bot"},
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


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the WebSocket API and the Redis channel contract."""
    schemas: dict[str, Any] = {**incoming_schemas(), **outgoing_schemas()}
    return {
        "asyncapi": "3.0.0",
        "info": _info(),
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": {
            "clients": _clients_channel(schemas["ConnectQuery"]),
            "heartbeats": _heartbeats_channel(),
        },
        "operations": _operations(),
        "components": {"schemas": schemas, "messages": _messages(schemas)},
    }


def main() -> None:
    """`python -m pingpong_relay.asyncapi` prints the AsyncAPI document."""
    sys.stdout.write(orjson.dumps(asyncapi(), option=orjson.OPT_INDENT_2).decode() + "\n")


# --- the document's sections -----------------------------------------------------------------
def _info() -> dict[str, Any]:
    return {
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
    }


def _servers() -> dict[str, Any]:
    return {
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
    }


def _clients_channel(connect_query: dict[str, Any]) -> dict[str, Any]:
    """The WebSocket: what a client sends and receives there, how it connects, how it ends."""
    return {
        "address": "/",
        "title": "WebSocket clients",
        "description": (
            f"Connect to ws://HOST:2808/ (subprotocol {SUBPROTOCOL} is echoed when "
            "offered). With --auth jwt, the token goes in `Authorization: Bearer`, "
            "a `bearer.<jwt>` subprotocol or `?token=`."
        ),
        "servers": [{"$ref": "#/servers/relay"}],
        "messages": {
            _channel_key(name): {"$ref": f"#/components/messages/{name}"}
            for name in ("Command", *SENT)
        },
        "bindings": {
            "ws": {"method": "GET", "query": connect_query, "bindingVersion": "0.1.0"},
        },
        "x-close-codes": _codes(CLOSE_CODES),
        "x-http-statuses": _codes(UPGRADE_STATUSES),
    }


def _heartbeats_channel() -> dict[str, Any]:
    """The Redis channel bots publish on."""
    return {
        "address": "bot:pingpong",
        "title": "Redis channel bot:pingpong",
        "description": (
            "PUBLISH bot:pingpong '<BotMessage>'; more channels with --channel, or "
            "patterns with --channel-pattern."
        ),
        "servers": [{"$ref": "#/servers/redis"}],
        "messages": {"botMessage": {"$ref": "#/components/messages/BotMessage"}},
    }


def _operations() -> dict[str, Any]:
    return {
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
                {"$ref": f"#/channels/clients/messages/{_channel_key(name)}"}
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
    }


def _messages(schemas: dict[str, Any]) -> dict[str, Any]:
    """Each message by name, summarised by the first sentence of its schema's description."""
    return {
        name: _message(name, schemas[name]["description"].split(".")[0])
        for name in ("BotMessage", "Command", *SENT)
    }


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


def _channel_key(name: str) -> str:
    """A message's key within a channel: its name, lower camel case."""
    return name[0].lower() + name[1:]


def _codes(codes: tuple[Code, ...]) -> list[dict[str, Any]]:
    return [
        {"code": c.code, "name": c.name, "when": c.when, "client_should": c.client_should}
        for c in codes
    ]


if __name__ == "__main__":
    main()
