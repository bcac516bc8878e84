"""Client subscriptions from query parameters and socket commands: who receives what (pure)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import fastjsonschema
import orjson

__all__ = [
    "ACTIONS",
    "COMMAND_SCHEMA",
    "CONNECT_QUERY_SCHEMA",
    "DEFAULT_SUBSCRIPTION",
    "EVENTS",
    "MAX_BOT_PATTERNS",
    "MAX_COMMAND_BYTES",
    "MAX_PATTERN_CHARS",
    "MAX_REPLAY",
    "MESSAGE_KINDS",
    "RECORDED",
    "Command",
    "CommandError",
    "ReplayRequest",
    "Subscription",
    "apply",
    "bot_id",
    "from_query",
    "parse_command",
    "parse_connect_query",
    "parse_position",
    "position_key",
]

MESSAGE_KINDS: Final = ("ping", "pong")
EVENTS: Final = ("pingpong", "status", "alerts", "stats", "relay")
ACTIONS: Final = ("subscribe", "unsubscribe", "list", "refresh")
# The event of a bot:pingpong envelope that carries its history id (sent once recorded).
RECORDED: Final = "pingpong+id"
MAX_REPLAY: Final = 10_000
MAX_COMMAND_BYTES: Final = 4096
MAX_BOT_PATTERNS: Final = 100
MAX_PATTERN_CHARS: Final = 200


class CommandError(ValueError):
    """A client request the relay refuses; `code` goes into the error reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bot_id(channel: str, source: str | None) -> str:
    """A bot is its channel plus the `source` it names; without a source, the channel alone."""
    return channel if not source else f"{channel}/{source}"


@dataclass(frozen=True, slots=True)
class Subscription:
    """What one client wants. None means "all" for types and bots.

    Clients with equal subscriptions share one group in the hub, so matching runs once
    per group and message, never once per client.
    """

    types: frozenset[str] | None = None
    bots: tuple[str, ...] | None = None
    events: frozenset[str] = frozenset({"pingpong"})
    # Clients that replay history get each live envelope with its history id, which is
    # known only once the message is recorded; everyone else gets it at once, without.
    with_ids: bool = False
    # What the client's token allows (None: no limit). Filters the client asks for are
    # intersected with these, whatever it subscribes to later.
    scope_bots: tuple[str, ...] | None = None
    scope_events: frozenset[str] | None = None
    _bot_cache: dict[str, bool] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def wants(self, event: str, bot: str | None = None, kind: str | None = None) -> bool:
        """Whether the client gets a message of `event` (about `bot`, of `kind` ping or pong,
        when given): its events, types, bots and token scope must all allow it. A client
        with ids gets the RECORDED envelope instead of the plain "pingpong" one."""
        if event == "pingpong":
            if self.with_ids:
                return False
        elif event == RECORDED:
            if not self.with_ids:
                return False
            event = "pingpong"
        if event not in self.events:
            return False
        if self.scope_events is not None and event not in self.scope_events:
            return False
        if kind is not None and self.types is not None and kind not in self.types:
            return False
        return bot is None or self.wants_bot(bot)

    def wants_bot(self, bot: str) -> bool:
        """Whether `bot` matches both the client's bot patterns and its token's (each
        answer remembered, for a bounded number of bot ids)."""
        if self.bots is None and self.scope_bots is None:
            return True
        cached = self._bot_cache.get(bot)
        if cached is None:
            cached = (
                self.bots is None or any(fnmatch.fnmatchcase(bot, p) for p in self.bots)
            ) and (
                self.scope_bots is None or any(fnmatch.fnmatchcase(bot, p) for p in self.scope_bots)
            )
            if len(self._bot_cache) < 10_000:  # bounded: bot ids come from the outside
                self._bot_cache[bot] = cached
        return cached

    def in_scope(self, bot: str) -> bool:
        """Whether the client's token lets it see this bot at all (whatever its filters)."""
        return self.scope_bots is None or any(fnmatch.fnmatchcase(bot, p) for p in self.scope_bots)

    def to_json(self) -> dict[str, Any]:
        """The subscription as the `ack` and `subscriptions` replies show it ("all": no limit)."""
        body: dict[str, Any] = {
            "types": sorted(self.types) if self.types is not None else "all",
            "bots": list(self.bots) if self.bots is not None else "all",
            "events": [e for e in EVENTS if e in self.events],
        }
        if self.with_ids:
            body["ids"] = True
        return body


DEFAULT_SUBSCRIPTION: Final = Subscription()


@dataclass(frozen=True, slots=True)
class Command:
    """A client's command, parsed: the action, the fields it names (None: not named), the
    id to echo in the reply, and for `refresh` the new token."""

    action: str
    types: frozenset[str] | None = None
    bots: tuple[str, ...] | None = None
    events: frozenset[str] | None = None
    request_id: str | float | None = None  # echoed in the reply, so clients can correlate
    token: str | None = None  # refresh only; never logged


# What clients may send, as JSON Schemas: the relay validates every command and every
# connect query with exactly these objects (compiled below), and the AsyncAPI document
# publishes these same objects. Lists may also come as one comma-separated string, and
# entries are taken with surrounding whitespace stripped.
_ANY_OF = r"\s*({})\s*"
# A bot pattern: 1-200 characters once stripped (no commas in the comma-separated form).
_PATTERN_ENTRY = rf"\s*(\S|\S[\s\S]{{0,{MAX_PATTERN_CHARS - 2}}}\S)\s*"
_PATTERN_IN_LIST = rf"\s*([^,\s]|[^,\s][^,]{{0,{MAX_PATTERN_CHARS - 2}}}[^,\s])\s*"
# At most 19 digits a part: any such number is a valid stream id part (under 2**64).
POSITION_PATTERN: Final = r"^\s*[0-9]{1,19}(-[0-9]{1,19})?\s*$"


def _names_schema(what: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    one = _ANY_OF.format("|".join(allowed))
    return {
        "description": f"{what}: some of {', '.join(allowed)} (a list or a comma-separated string)",
        "anyOf": [
            {"type": "array", "items": {"type": "string", "pattern": f"^{one}$"}},
            {"type": "string", "pattern": f"^{one}(,{one})*$"},
        ],
    }


TYPES_SCHEMA: Final = _names_schema("message types", MESSAGE_KINDS)
EVENTS_SCHEMA: Final = _names_schema("events", EVENTS)
BOTS_SCHEMA: Final[dict[str, Any]] = {
    "description": (
        f"bots: ids or shell-style patterns (bot:pingpong/gate-*), at most {MAX_BOT_PATTERNS}, "
        f"each 1-{MAX_PATTERN_CHARS} characters (a list or a comma-separated string)"
    ),
    "anyOf": [
        {
            "type": "array",
            "maxItems": MAX_BOT_PATTERNS,
            "items": {"type": "string", "pattern": f"^{_PATTERN_ENTRY}$"},
        },
        {
            "type": "string",
            "pattern": f"^{_PATTERN_IN_LIST}(,{_PATTERN_IN_LIST}){{0,{MAX_BOT_PATTERNS - 1}}}$",
        },
    ],
}
COMMAND_SCHEMA: Final[dict[str, Any]] = {
    "title": "Command",
    "description": (
        f"A command a client sends on the socket (a text frame of at most {MAX_COMMAND_BYTES:,} "
        "bytes). subscribe adds to each named field, unsubscribe removes from it; list asks "
        "for the subscription and the bots seen; refresh replaces the connection's token."
    ),
    "type": "object",
    "required": ["action"],
    "properties": {
        "action": {"description": "what to do", "type": "string", "enum": list(ACTIONS)},
        "types": TYPES_SCHEMA,
        "bots": BOTS_SCHEMA,
        "events": EVENTS_SCHEMA,
        "id": {
            "description": "any id of yours, echoed in the reply",
            "anyOf": [
                {"type": "string", "maxLength": 64},
                {"type": "integer", "minimum": -(2**63), "maximum": 2**64 - 1},
                {"type": "null"},
            ],
        },
        "token": {
            "description": "refresh only: the new token (same subject)",
            "type": "string",
            "minLength": 1,
        },
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"action": {"enum": ["subscribe", "unsubscribe"]}}},
            "then": {
                "anyOf": [{"required": ["types"]}, {"required": ["bots"]}, {"required": ["events"]}]
            },
        },
        {
            "if": {"properties": {"action": {"const": "refresh"}}},
            "then": {"required": ["token"]},
            "else": {"not": {"required": ["token"]}},
        },
    ],
}
CONNECT_QUERY_SCHEMA: Final[dict[str, Any]] = {
    "title": "ConnectQuery",
    "description": (
        "Query parameters of the WebSocket URL (repeated list parameters are joined with "
        "commas; for the others the last one counts). Other parameters are ignored."
    ),
    "type": "object",
    "properties": {
        "types": {**TYPES_SCHEMA, "anyOf": TYPES_SCHEMA["anyOf"][1:]},
        "bots": {**BOTS_SCHEMA, "anyOf": BOTS_SCHEMA["anyOf"][1:]},
        "events": {**EVENTS_SCHEMA, "anyOf": EVENTS_SCHEMA["anyOf"][1:]},
        "since": {
            "description": "replay history from this position: a history id or a time in ms",
            "type": "string",
            "pattern": POSITION_PATTERN,
        },
        "last": {
            "description": f"replay the last N messages of each bot, 1-{MAX_REPLAY:,}",
            "type": "string",
            "pattern": r"^0*([1-9][0-9]{0,3}|10000)$",
        },
        "ids": {
            "description": "1 or true: envelopes carry their history id and bot",
            "type": "string",
        },
        "token": {"description": "a JWT, when the relay uses --auth jwt", "type": "string"},
    },
    "not": {"required": ["since", "last"]},
}
_validate_command = fastjsonschema.compile(COMMAND_SCHEMA)
_validate_query = fastjsonschema.compile(CONNECT_QUERY_SCHEMA)
_POSITION = re.compile(POSITION_PATTERN)


def _field_error(
    schema: dict[str, Any], body: dict[str, Any], exc: fastjsonschema.JsonSchemaValueException
) -> CommandError:
    name = str(exc.path[1])
    described = schema["properties"][name]["description"]
    got = repr(body[name])
    got = got if len(got) <= 60 else got[:57] + "..."
    return CommandError("bad_field", f'bad "{name}", got {got}; expected {described}')


def _split(value: str | list[str]) -> list[str]:
    """A validated list field as its entries, stripped."""
    items = value.split(",") if isinstance(value, str) else value
    return [item.strip() for item in items]


def parse_command(raw: bytes, max_bytes: int = MAX_COMMAND_BYTES) -> Command:
    """One JSON command from a client; raises CommandError with a code for the reply."""
    if len(raw) > max_bytes:
        raise CommandError("oversize", f"command is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CommandError("invalid_json", f"command is not valid JSON: {exc}") from None
    try:
        _validate_command(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _command_error(body, exc) from None
    action = body["action"]
    if action in ("list", "refresh"):
        return Command(action, request_id=body.get("id"), token=body.get("token"))
    return Command(
        action,
        types=frozenset(_split(body["types"])) if "types" in body else None,
        bots=tuple(dict.fromkeys(_split(body["bots"]))) if "bots" in body else None,
        events=frozenset(_split(body["events"])) if "events" in body else None,
        request_id=body.get("id"),
    )


def _command_error(body: Any, exc: fastjsonschema.JsonSchemaValueException) -> CommandError:
    """The reply code and message for a command the schema refused."""
    if not isinstance(body, dict):
        return CommandError("bad_command", 'a command is a JSON object with an "action"')
    action = body.get("action")
    if action not in ACTIONS:
        return CommandError(
            "unknown_action",
            f"unknown action {str(action)[:40]!r}; use one of: {', '.join(ACTIONS)}",
        )
    unknown = sorted(set(body) - set(COMMAND_SCHEMA["properties"]))
    if unknown:
        return CommandError("bad_field", f"unknown field(s): {', '.join(unknown[:5])}")
    if len(exc.path) > 1:
        return _field_error(COMMAND_SCHEMA, body, exc)
    if action == "refresh":
        return CommandError("bad_field", '"refresh" needs "token": the new token')
    if "token" in body:
        return CommandError("bad_field", '"token" goes with the "refresh" action only')
    return CommandError(
        "bad_command", f'"{action}" needs at least one of "types", "bots", "events"'
    )


def apply(current: Subscription, command: Command) -> Subscription:
    """The subscription after a subscribe/unsubscribe command.

    subscribe adds to each named field; a field that means "all" (types, bots by default)
    becomes exactly what was named, since adding to "all" could only mean narrowing.
    unsubscribe removes from each named field.
    """
    types, bots, events = current.types, current.bots, current.events
    if command.action == "subscribe":
        if command.types is not None:
            types = command.types if types is None else types | command.types
        if command.bots is not None:
            bots = command.bots if bots is None else tuple(dict.fromkeys(bots + command.bots))
        if command.events is not None:
            events = events | command.events
    elif command.action == "unsubscribe":
        if command.types is not None:
            types = frozenset(MESSAGE_KINDS if types is None else types) - command.types
        if command.bots is not None:
            if bots is None:
                raise CommandError(
                    "bad_command",
                    "subscribed to every bot; subscribe to a list of bots before removing one",
                )
            bots = tuple(b for b in bots if b not in command.bots)
        if command.events is not None:
            events = events - command.events
    if len(bots or ()) > MAX_BOT_PATTERNS:
        raise CommandError("bad_field", f'at most {MAX_BOT_PATTERNS} "bots" patterns in all')
    return Subscription(
        types, bots, events, current.with_ids, current.scope_bots, current.scope_events
    )


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    """History a client asked for at connect time: from a position, or the last N."""

    since: str | None = None  # an XRANGE start bound
    last: int | None = None


def parse_position(text: str, *, end: bool = False) -> str:
    """A stream id ("1700000000000-3") or a time in ms ("1700000000000") as an XRANGE bound."""
    if not _POSITION.match(text):
        raise CommandError(
            "bad_field", f"{text[:40]!r} is neither a history id (ms-seq) nor a time in ms"
        )
    text = text.strip()
    if "-" in text:
        return text
    return f"{text}-{'18446744073709551615' if end else '0'}"


def position_key(entry_id: str) -> tuple[int, int]:
    """Stream ids compare as (ms, seq) numbers, not as strings."""
    head, _, tail = entry_id.partition("-")
    return int(head), int(tail or 0)


def parse_connect_query(query: str) -> tuple[Subscription, ReplayRequest | None]:
    """The subscription and any history replay a client asks for in its WebSocket URL."""
    if not query:
        return DEFAULT_SUBSCRIPTION, None
    params = parse_qs(query, keep_blank_values=True)
    # Lists may be repeated (?bots=a&bots=b); for anything else the last value counts.
    fields = {
        name: ",".join(values) if name in ("types", "bots", "events") else values[-1]
        for name, values in params.items()
    }
    try:
        _validate_query(fields)
    except fastjsonschema.JsonSchemaValueException as exc:
        if len(exc.path) > 1:
            raise _field_error(CONNECT_QUERY_SCHEMA, fields, exc) from None
        raise CommandError("bad_field", 'ask for "since" or "last", not both') from None
    replay = None
    if "since" in fields:
        replay = ReplayRequest(since=parse_position(fields["since"]))
    elif "last" in fields:
        replay = ReplayRequest(last=int(fields["last"]))
    with_ids = replay is not None or fields.get("ids", "0") in ("1", "true")
    subscription = Subscription(
        types=frozenset(_split(fields["types"])) if "types" in fields else None,
        bots=tuple(dict.fromkeys(_split(fields["bots"]))) if "bots" in fields else None,
        events=frozenset(_split(fields["events"]))
        if "events" in fields
        else frozenset({"pingpong"}),
        with_ids=with_ids,
    )
    return subscription, replay


def from_query(query: str) -> Subscription:
    """The subscription a client asks for at connect time: ?types=…&bots=…&events=…"""
    return parse_connect_query(query)[0]
