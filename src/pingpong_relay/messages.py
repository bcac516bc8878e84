"""Bot message schema, validation and envelope encoding: pure functions, no I/O."""

from __future__ import annotations

import functools
import math
import re
import reprlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import fastjsonschema
import orjson

__all__ = [
    "BOT_MESSAGE_SCHEMA",
    "ENVELOPE_SOURCE",
    "EXCERPT_CHARS",
    "MAX_CHANNEL_CHARS",
    "MAX_DEPTH",
    "MAX_LATENCY_MS",
    "MAX_PAYLOAD_BYTES",
    "MAX_SOURCE_CHARS",
    "MAX_TIMESTAMP_MS",
    "REJECT_REASONS",
    "BotMessage",
    "RejectedMessage",
    "build_bot_message",
    "check_channel",
    "check_source",
    "encode_envelope",
    "encode_tagged_envelope",
    "escape_controls",
    "excerpt",
    "format_bot_time",
    "format_latency",
    "nesting_depth_exceeds",
    "parse_bot_message",
    "redact_secrets",
]

MAX_PAYLOAD_BYTES: Final = 16 * 1024
ENVELOPE_SOURCE: Final = "bot"
MESSAGE_TYPES: Final = frozenset({"ping", "pong"})
EXCERPT_CHARS: Final = 120
# Bounds on what a bot may send, far inside what the parser, the encoder and the statistics
# can take: every figure a client or an aggregate sees stays plausible.
MAX_DEPTH: Final = 32  # nesting levels, the object itself being the first
MAX_SOURCE_CHARS: Final = 128
MAX_CHANNEL_CHARS: Final = 200
MAX_LATENCY_MS: Final = 3_600_000  # an hour
MAX_TIMESTAMP_MS: Final = 10**13  # the year 2286
SOURCE_CHARACTERS: Final = "A-Z a-z 0-9 _ . : @ / + -"

# Every reason a bot message can be refused; metrics label values come from here.
REJECT_REASONS: Final = (
    "oversize",
    "invalid_json",
    "not_object",
    "bad_type",
    "bad_latency",
    "bad_timestamp",
    "bad_source",
    "bad_channel",
    "too_deep",
    "bot_not_accepted",  # not validation: a bot --accept-bots does not name (pipeline.py)
)

# The bot → Redis contract as a JSON Schema: the relay validates every message with exactly
# this object (compiled once, below), and the AsyncAPI document publishes this same object.
# The byte limit, "finite" and the nesting depth are checked around it: the first before
# parsing, the second by the parser (orjson refuses NaN and Infinity), the third after it,
# since JSON Schema can express none of them (depth only by a walk over the whole tree).
# Patterns are ECMA-262 as JSON Schema requires: ASCII classes only, and the end of the
# string as (?![\s\S]), not $, which Python's re (so jsonschema) also finds before a
# final newline.
BOT_MESSAGE_SCHEMA: Final[dict[str, Any]] = {
    "title": "BotMessage",
    "description": (
        "A heartbeat a bot publishes to Redis: a JSON object of at most "
        f"{MAX_PAYLOAD_BYTES:,} bytes (--max-message-bytes), nested at most {MAX_DEPTH} "
        "levels deep (the object itself is one). Fields other than these four are kept and "
        "forwarded as sent; null in an optional field means absent."
    ),
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {
            "description": "which half of the heartbeat this is",
            "type": "string",
            "enum": sorted(MESSAGE_TYPES),
        },
        "latency": {
            "description": (
                f"measured round trip to the exchange, in ms (0 to {MAX_LATENCY_MS:,}: an hour)"
            ),
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": MAX_LATENCY_MS,
        },
        "timestamp": {
            "description": (
                "the bot's clock when it sent the message, ms since the epoch "
                f"(0 to {MAX_TIMESTAMP_MS:,})"
            ),
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": MAX_TIMESTAMP_MS,
        },
        "source": {
            "description": (
                f"which bot: 1-{MAX_SOURCE_CHARS} characters of {SOURCE_CHARACTERS}; "
                "the bot id is <channel>/<source>"
            ),
            "type": ["string", "null"],
            "pattern": f"^[A-Za-z0-9_.:@/+-]{{1,{MAX_SOURCE_CHARS}}}(?![\\s\\S])",
        },
        # Described, not constrained: they were free-form extra fields before they meant
        # anything, and a message that uses them otherwise is still relayed as it was.
        "status": {
            "description": (
                '"down" or "degraded": the bot reports itself so, and is so at once (the '
                "built-in report rules) until a message without it; any other value means "
                "nothing"
            ),
        },
        "reason": {"description": "why the bot reports itself down or degraded, in words"},
        "via": {
            "description": (
                "how a heartbeat reached Redis when the bot did not publish it itself: "
                "push (a push URL), healthchecks (a ping URL), mqtt, or poll"
            ),
        },
    },
    "additionalProperties": True,
}
_validate_bot_message = fastjsonschema.compile(BOT_MESSAGE_SCHEMA)
_SOURCE: Final = re.compile(BOT_MESSAGE_SCHEMA["properties"]["source"]["pattern"])
# Which rejection reason a schema failure at each field is counted under.
_FIELD_REASONS: Final = {
    "type": "bad_type",
    "latency": "bad_latency",
    "timestamp": "bad_timestamp",
    "source": "bad_source",
}

_ENVELOPE_HEAD: Final = b'{"type":"bot:pingpong","data":'
_ENVELOPE_TIMESTAMP: Final = b',"timestamp":'
_ENVELOPE_TAIL: Final = b',"source":"bot"}'
_JSON_WHITESPACE: Final = b" \t\r\n"
# The nesting check, on bytes orjson has already accepted (so every string is well formed):
# strings go, brackets become ( and ), everything else goes.
_BRACKETS_ONLY: Final = bytes.maketrans(b"[]{}", b"()()")
_NOT_BRACKETS: Final = bytes(set(range(256)) - set(b"[]{}"))


class RejectedMessage(ValueError):
    """A bot message that fails validation; `reason` is one of REJECT_REASONS."""

    def __init__(self, reason: str, detail: str, raw: bytes) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.raw = raw

    @property
    def excerpt(self) -> str:
        """The refused bytes as a short, printable, redacted view for the log line."""
        return excerpt(self.raw)


@dataclass(frozen=True, slots=True)
class BotMessage:
    """A validated heartbeat. `raw` is the bot's JSON object exactly as it was published."""

    type: str
    latency_ms: float | None
    timestamp_ms: float | None
    source: str | None
    raw: bytes
    fields: dict[str, Any]


# What looks like a credential never reaches a log line: a JWT (its header is base64 of
# '{"', so it starts "eyJ"), a Bearer value, and the value of a token-like JSON field.
_SECRETS: Final = re.compile(
    rb"eyJ[A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]*){0,2}"
    rb"|(?P<keep>(?:bearer[ .]|\"(?:token|access_token|password|secret|authorization)\"\s*:\s*\"))"
    rb"[^\"\s,}]*",
    re.IGNORECASE,
)


def redact_secrets(raw: bytes) -> bytes:
    """`raw` with anything that looks like a token or password replaced by ***."""
    return _SECRETS.sub(lambda m: (m.group("keep") or b"") + b"***", raw)


def excerpt(raw: bytes, limit: int = EXCERPT_CHARS) -> str:
    """A printable, ASCII-only view of untrusted bytes for log lines, at most `limit` chars.

    Invalid UTF-8 shows as \\xNN escapes; the total length is appended when cut. Tokens
    are redacted (a refused `refresh` command carries one).
    """
    text = redact_secrets(raw[:limit]).decode("utf-8", errors="backslashreplace")
    text = text.encode("unicode_escape").decode("ascii")
    if len(text) > limit or len(raw) > limit:
        return f"{text[:limit]}... ({len(raw)} bytes)"
    return text


# C0, DEL, C1 and the two Unicode line separators: what can end a line or drive a terminal.
_CONTROL_CHARACTERS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_control(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED_ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def escape_controls(text: str) -> str:
    """`text` on one line and inert in a terminal: control characters as \\n, \\xNN, \\uNNNN.

    Everything else, other scripts and emoji included, stays as it is.
    """
    return _CONTROL_CHARACTERS.sub(_escape_control, text)


# Rejection details quote the offending value; a bounded repr keeps a 16 KiB string or a
# 1,000-level nesting (both valid JSON) from bloating the log or exhausting the stack.
_short = reprlib.Repr()
_short.maxlevel = 3
_short.maxstring = 60
_short.maxother = 60


def _show(value: object) -> str:
    return _short.repr(value)


def check_channel(channel: str, raw: bytes) -> None:
    """Refuse a message on a channel whose name is no fit for a bot id (RejectedMessage).

    Named channels are the operator's; with --channel-pattern the publisher picks the
    rest of the name, and it becomes part of the bot id, in logs, metrics and history keys.
    """
    if len(channel) > MAX_CHANNEL_CHARS:
        raise RejectedMessage(
            "bad_channel",
            f"channel name is {len(channel)} characters; the limit is {MAX_CHANNEL_CHARS}",
            raw,
        )
    # isprintable() is False for controls, format characters (bidi overrides) and every
    # separator but the ASCII space, which goes too.
    if not channel.isprintable() or " " in channel:
        raise RejectedMessage(
            "bad_channel",
            f"channel name {excerpt(channel.encode('utf-8', 'surrogatepass'), 60)} "
            "has control or whitespace characters",
            raw,
        )


def nesting_depth_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether valid JSON `raw` nests deeper than `limit` (a scalar is 0, {} or [] 1).

    Free for the common message: it takes more than `limit` opening brackets to nest that
    deep, so only then does it look further, in a few passes over the bytes at C speed.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    # A backslash only ever starts an escape inside a string; dropping escaped backslashes
    # first (left to right, as JSON reads them) and then escaped quotes leaves only the
    # quotes that delimit strings, so every other piece of the split is outside them.
    outside = b"".join(raw.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')[::2])
    return (
        _nested_at_most(limit).fullmatch(outside.translate(_BRACKETS_ONLY, _NOT_BRACKETS)) is None
    )


@functools.lru_cache(maxsize=4)
def _nested_at_most(limit: int) -> re.Pattern[bytes]:
    """Balanced ( and ) nested at most `limit` deep: a regular language, so one regex
    matches it, and possessive repeats make that one pass without backtracking."""
    pattern = b""
    for _ in range(limit):
        pattern = rb"(?:\(" + pattern + rb"\))*+"
    return re.compile(pattern)


def parse_bot_message(raw: bytes, max_bytes: int = MAX_PAYLOAD_BYTES) -> BotMessage:
    """Validate one payload from Redis; raise RejectedMessage saying why it is refused.

    The size is checked before any parsing, so a huge payload costs nothing more than
    its length. orjson refuses NaN, Infinity, invalid UTF-8 and lone surrogates, so none
    of those can reach the clients; nesting is held to MAX_DEPTH, far below the 1,024
    levels orjson reads and the 255 it writes.
    """
    if len(raw) > max_bytes:
        raise RejectedMessage("oversize", f"{len(raw)} bytes > limit {max_bytes}", raw)
    try:
        fields = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise RejectedMessage("invalid_json", str(exc), raw) from None
    if nesting_depth_exceeds(raw):
        raise RejectedMessage(
            "too_deep", f"nested deeper than {MAX_DEPTH} levels (the object itself is one)", raw
        )
    try:
        _validate_bot_message(fields)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _rejection(exc, fields, raw) from None
    kind = fields["type"]
    latency = fields.get("latency")
    timestamp = fields.get("timestamp")
    source = fields.get("source")
    return BotMessage(
        type=kind,
        latency_ms=float(latency) if latency is not None else None,
        timestamp_ms=float(timestamp) if timestamp is not None else None,
        source=source,
        raw=raw.strip(_JSON_WHITESPACE),
        fields=fields,
    )


def _rejection(
    exc: fastjsonschema.JsonSchemaValueException, body: Any, raw: bytes
) -> RejectedMessage:
    path = exc.path or ["data"]
    if len(path) == 1:  # the object itself: not an object, or "type" missing
        if not isinstance(body, dict):
            return RejectedMessage(
                "not_object", f"expected a JSON object, got {type(body).__name__}", raw
            )
        return RejectedMessage("bad_type", '"type" is required: "ping" or "pong"', raw)
    field = str(path[1])
    expected = (
        f"a string of 1-{MAX_SOURCE_CHARS} characters of {SOURCE_CHARACTERS}"
        if field == "source"
        else expectation(BOT_MESSAGE_SCHEMA["properties"][field])
    )
    value = body[field]
    got = _show(value)
    if field == "source" and isinstance(value, str):
        got += f" ({len(value)} characters)"
    return RejectedMessage(_FIELD_REASONS[field], f'"{field}" must be {expected}, got {got}', raw)


def expectation(schema: dict[str, Any]) -> str:
    """What a (simple) field schema asks for, in words, for error messages."""
    if "enum" in schema:
        return " or ".join(orjson.dumps(v).decode() for v in schema["enum"])
    kinds = schema.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    words = " or ".join("a " + k if k != "null" else "null" for k in kinds if k != "null")
    if "minimum" in schema:
        words += f" >= {schema['minimum']}"
    if "maximum" in schema:
        words += (
            f" and <= {schema['maximum']:,}"
            if "minimum" in schema
            else f" <= {schema['maximum']:,}"
        )
    return words or "valid"


def encode_envelope(message: BotMessage, relay_ms: int) -> bytes:
    """The design's four-key envelope, built once per message for every client.

    The bot's validated bytes are spliced in rather than re-serialised: they are already
    a well-formed JSON object (orjson just parsed them), so every field the bot sent
    reaches the client unchanged, and the hot path does no second encoding.
    """
    return b"".join(
        (_ENVELOPE_HEAD, message.raw, _ENVELOPE_TIMESTAMP, b"%d" % relay_ms, _ENVELOPE_TAIL)
    )


def encode_tagged_envelope(raw: bytes, relay_ms: int, bot: str, entry_id: str | None) -> bytes:
    """The envelope plus `id` (its history id, when history is on) and `bot`, for clients
    that asked for ids: with several bots (or a replay) they need to tell them apart."""
    return b"".join(
        (
            _ENVELOPE_HEAD,
            raw,
            _ENVELOPE_TIMESTAMP,
            b"%d" % relay_ms,
            b',"source":"bot"',
            b',"id":"%s"' % entry_id.encode("ascii") if entry_id is not None else b"",
            b',"bot":',
            orjson.dumps(bot),
            b"}",
        )
    )


def check_source(source: str) -> str:
    """A bot's name (its message's "source"), as given; ValueError when the relay would
    refuse it."""
    if not isinstance(source, str) or not _SOURCE.match(source):
        raise ValueError(
            f"{source!r} is not a bot name: 1-{MAX_SOURCE_CHARS} characters of {SOURCE_CHARACTERS}"
        )
    return source


def build_bot_message(
    kind: str, latency_ms: float, timestamp_ms: int, source: str = "bot"
) -> bytes:
    """The bytes a bot publishes, as the design specifies them; `source` names the bot (its
    id at the relay is `<channel>/<source>`)."""
    check_source(source)
    if not isinstance(kind, str) or kind not in MESSAGE_TYPES:
        raise ValueError(f'kind must be "ping" or "pong", not {kind!r}')
    if not (math.isfinite(latency_ms) and 0 <= latency_ms <= MAX_LATENCY_MS):
        raise ValueError(
            f"latency_ms must be a number from 0 to {MAX_LATENCY_MS}, not {latency_ms!r}"
        )
    # A whole number goes out as 7, not 7.0, as a JavaScript bot would send it.
    latency: float = latency_ms
    if float(latency_ms).is_integer() and abs(latency_ms) < 2**53:
        latency = int(latency_ms)
    return orjson.dumps(
        {"type": kind, "latency": latency, "timestamp": timestamp_ms, "source": source}
    )


def format_latency(latency_ms: float | None) -> str:
    """A reported latency for a human line, as "7 ms" or "12.5 ms"; N/A when absent."""
    if latency_ms is None:
        return "N/A"
    return f"{latency_ms:g} ms"


def format_bot_time(timestamp_ms: float | None) -> str:
    """The bot's clock as ISO-8601 (UTC), or N/A when absent or out of range."""
    if timestamp_ms is None:
        return "N/A"
    try:
        moment = datetime.fromtimestamp(timestamp_ms / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return "N/A"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
