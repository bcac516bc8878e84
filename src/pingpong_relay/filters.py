"""Client subscriptions from query parameters and socket commands: who receives what (pure)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

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

    def to_json(self) -> dict[str, Any]:
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
    action: str
    types: frozenset[str] | None = None
    bots: tuple[str, ...] | None = None
    events: frozenset[str] | None = None
    request_id: str | int | None = None  # echoed in the reply, so clients can correlate
    token: str | None = None  # refresh only; never logged


def _names(field_name: str, value: object, allowed: tuple[str, ...]) -> frozenset[str]:
    items = _string_list(field_name, value)
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise CommandError(
            "bad_field",
            f'"{field_name}" has unknown value(s) {", ".join(map(repr, unknown[:5]))}; '
            f"allowed: {', '.join(allowed)}",
        )
    return frozenset(items)


def _patterns(value: object) -> tuple[str, ...]:
    items = _string_list("bots", value)
    if len(items) > MAX_BOT_PATTERNS:
        raise CommandError(
            "bad_field", f'"bots" has {len(items)} entries; at most {MAX_BOT_PATTERNS}'
        )
    for item in items:
        if not item or len(item) > MAX_PATTERN_CHARS:
            raise CommandError(
                "bad_field", f'"bots" entries must be 1-{MAX_PATTERN_CHARS} characters'
            )
    return tuple(dict.fromkeys(items))


def _string_list(field_name: str, value: object) -> list[str]:
    # Blank entries are kept so that validation refuses them: dropping them silently
    # could leave a client subscribed to nothing without a word.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",")]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item.strip() for item in value]
    raise CommandError(
        "bad_field", f'"{field_name}" must be a list of strings (or a comma-separated string)'
    )


def parse_command(raw: bytes, max_bytes: int = MAX_COMMAND_BYTES) -> Command:
    """One JSON command from a client; raises CommandError with a code for the reply."""
    if len(raw) > max_bytes:
        raise CommandError("oversize", f"command is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CommandError("invalid_json", f"command is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise CommandError("bad_command", 'a command is a JSON object with an "action"')
    action = body.get("action")
    if action not in ACTIONS:
        raise CommandError(
            "unknown_action",
            f"unknown action {str(action)[:40]!r}; use one of: {', '.join(ACTIONS)}",
        )
    unknown = sorted(set(body) - {"action", "types", "bots", "events", "id", "token"})
    if unknown:
        raise CommandError("bad_field", f"unknown field(s): {', '.join(unknown[:5])}")
    request_id = body.get("id")
    if request_id is not None and (
        isinstance(request_id, bool)
        or not isinstance(request_id, str | int)
        or len(str(request_id)) > 64
    ):
        raise CommandError("bad_field", '"id" must be a string or integer of at most 64 chars')
    if "token" in body and action != "refresh":
        raise CommandError("bad_field", '"token" goes with the "refresh" action only')
    if action == "list":
        return Command("list", request_id=request_id)
    if action == "refresh":
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise CommandError("bad_field", '"refresh" needs "token": the new token')
        return Command("refresh", request_id=request_id, token=token)
    command = Command(
        action,
        types=_names("types", body["types"], MESSAGE_KINDS) if "types" in body else None,
        bots=_patterns(body["bots"]) if "bots" in body else None,
        events=_names("events", body["events"], EVENTS) if "events" in body else None,
        request_id=request_id,
    )
    if command.types is None and command.bots is None and command.events is None:
        raise CommandError(
            "bad_command", f'"{action}" needs at least one of "types", "bots", "events"'
        )
    return command


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
    text = text.strip()
    head, sep, tail = text.partition("-")
    if head.isdigit() and len(head) <= 20 and (not sep or (tail.isdigit() and len(tail) <= 20)):
        if sep:
            return text
        return f"{head}-{'18446744073709551615' if end else '0'}"
    raise CommandError(
        "bad_field", f"{text[:40]!r} is neither a history id (ms-seq) nor a time in ms"
    )


def position_key(entry_id: str) -> tuple[int, int]:
    """Stream ids compare as (ms, seq) numbers, not as strings."""
    head, _, tail = entry_id.partition("-")
    return int(head), int(tail or 0)


def parse_connect_query(query: str) -> tuple[Subscription, ReplayRequest | None]:
    """The subscription and any history replay a client asks for in its WebSocket URL."""
    if not query:
        return DEFAULT_SUBSCRIPTION, None
    params = parse_qs(query, keep_blank_values=True)
    types = bots = events = None
    if "types" in params:
        types = _names("types", ",".join(params["types"]), MESSAGE_KINDS)
    if "bots" in params:
        bots = _patterns(",".join(params["bots"]))
    if "events" in params:
        events = _names("events", ",".join(params["events"]), EVENTS)
    replay = None
    if "since" in params and "last" in params:
        raise CommandError("bad_field", 'ask for "since" or "last", not both')
    if "since" in params:
        replay = ReplayRequest(since=parse_position(params["since"][-1]))
    elif "last" in params:
        text = params["last"][-1]
        if not text.isdigit() or not 1 <= int(text) <= MAX_REPLAY:
            raise CommandError("bad_field", f'"last" must be a whole number from 1 to {MAX_REPLAY}')
        replay = ReplayRequest(last=int(text))
    with_ids = replay is not None or params.get("ids", ["0"])[-1] in ("1", "true")
    # Other parameters (tokens, cache busters) belong to other layers; ignore them here.
    subscription = Subscription(
        types=types,
        bots=bots,
        events=events if events is not None else frozenset({"pingpong"}),
        with_ids=with_ids,
    )
    return subscription, replay


def from_query(query: str) -> Subscription:
    """The subscription a client asks for at connect time: ?types=…&bots=…&events=…"""
    return parse_connect_query(query)[0]
