"""MQTT for bots that speak it: the broker, the topics, and what a message says (pure).

Which broker, which topic filters, which bot a topic names and what a message says of it;
`ingestion.mqtt` is the client. The bot id is the segment a filter's first `+` matches:
`hbot/+/hb` hears Hummingbot instance `abc` on `hbot/abc/hb`.

Two payloads are understood: Hummingbot's heartbeat, `{"ts": …}` (its MQTT bridge, commlib,
stamps it in microseconds), and the design's own bot message (`{"type": "ping"|"pong", …}`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import orjson

from pingpong_relay.ingest import IngestError, Report
from pingpong_relay.messages import (
    MAX_DEPTH,
    MAX_TIMESTAMP_MS,
    check_source,
    nesting_depth_exceeds,
)

__all__ = [
    "DEFAULT_MQTT_TOPICS",
    "Broker",
    "bot_segment",
    "broker",
    "check_topic_filter",
    "client_id",
    "hummingbot_timestamp_ms",
    "mqtt_url",
    "read_payload",
    "shared_filter",
    "topic_source",
]

# Hummingbot's heartbeat, and the design's own message on a topic per bot.
DEFAULT_MQTT_TOPICS: Final = ("hbot/+/hb", "pingpong/+")
MAX_FILTER_CHARS: Final = 200


def mqtt_url(text: str) -> str:
    """An mqtt:// or mqtts:// broker URL, `[user[:password]@]host[:port]`, as given;
    ValueError saying why not (never echoing a password)."""
    if not text:
        return text  # no broker: MQTT is off
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError("the broker URL is mqtt://[user:password@]host[:port] (or mqtts://)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise ValueError("the broker URL's port is not a number from 1 to 65535") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("the broker URL takes no path or query: mqtt://host:1883")
    return text


def check_topic_filter(text: str) -> str:
    """A topic filter with a `+` segment where the bot id is: valid MQTT (`+` a whole
    segment, `#` only a whole last one), no `$` topics; ValueError saying why not."""
    if not text or len(text) > MAX_FILTER_CHARS or "\0" in text:
        raise ValueError(f"a topic filter is 1-{MAX_FILTER_CHARS} characters")
    segments = text.split("/")
    for position, segment in enumerate(segments):
        if "+" in segment and segment != "+":
            raise ValueError(f"{text!r}: + must be a whole segment (a/+/b)")
        if "#" in segment and (segment != "#" or position != len(segments) - 1):
            raise ValueError(f"{text!r}: # must be the whole last segment (a/#)")
    if "+" not in segments:
        raise ValueError(f"{text!r} has no + segment to take the bot id from (e.g. hbot/+/hb)")
    if text.startswith("$"):
        raise ValueError(f"{text!r}: $ topics are the broker's own")
    return text


def bot_segment(topic_filter: str, topic: str) -> str | None:
    """The segment of `topic` that the filter's first `+` matches; None when the topic does
    not match the filter."""
    wanted = topic_filter.split("/")
    given = topic.split("/")
    bot: str | None = None
    for position, segment in enumerate(wanted):
        if segment == "#":
            return bot
        if position >= len(given):
            return None
        if segment == "+":
            if bot is None:
                bot = given[position]
        elif segment != given[position]:
            return None
    return bot if len(given) == len(wanted) else None


@dataclass(frozen=True, slots=True)
class Broker:
    """Where an mqtt:// or mqtts:// URL points, and as whom (user and password decoded)."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def broker(url: str) -> Broker:
    """The broker an `mqtt_url` names; the port defaults to 1883 (8883 for mqtts://)."""
    parts = urlsplit(mqtt_url(url))
    tls = parts.scheme == "mqtts"
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    host = parts.hostname or ""
    return Broker(host, parts.port or (8883 if tls else 1883), tls, username, password)


_CLIENT_ID_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]+")
MAX_CLIENT_ID_TAIL: Final = 48


def client_id(relay_id: str) -> str:
    """The MQTT client id of relay `relay_id` (host:pid): unique per relay process, since a
    broker drops a client when another connects with its id. Only A-Z a-z 0-9 _ -, and the
    tail kept when long (the pid is at the end)."""
    safe = _CLIENT_ID_UNSAFE.sub("-", relay_id).strip("-") or "relay"
    return "pingpong-relay-" + safe[-MAX_CLIENT_ID_TAIL:]


def shared_filter(topic_filter: str, group: str) -> str:
    """What to subscribe to: `$share/<group>/<filter>` (the broker hands each message to one
    subscriber of the group, so relays on one Redis publish it once), or the filter itself
    without a group."""
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def topic_source(topic_filters: list[str] | tuple[str, ...], topic: str) -> str:
    """The bot a message's `topic` names: the `+` segment of the first filter it matches;
    IngestError("bad_source") when that is no bot name (or no filter matches)."""
    for topic_filter in topic_filters:
        segment = bot_segment(topic_filter, topic)
        if segment is not None:
            try:
                return check_source(segment)
            except ValueError as exc:
                raise IngestError("bad_source", f"topic {topic[:100]!r}: {exc}") from None
    raise IngestError("bad_source", f"topic {topic[:100]!r} matches no --mqtt-topic")


# A Hummingbot heartbeat's `ts` by magnitude: seconds, ms, µs (what commlib sends) or ns.
_TS_UNITS: Final = ((1e11, 1000.0), (1e14, 1.0), (1e17, 1e-3), (1e20, 1e-6))


def hummingbot_timestamp_ms(ts: object) -> int:
    """A heartbeat's `ts` in ms since the epoch, whichever unit it came in (told apart by
    magnitude: today is about 1.8e9 s, 1.8e12 ms, 1.8e15 µs, 1.8e18 ns);
    IngestError("bad_timestamp") when it is no such time."""
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise IngestError("bad_timestamp", f'"ts" must be a number, not {str(ts)[:40]!r}')
    for bound, to_ms in _TS_UNITS:
        if 0 < ts < bound:
            ms = round(ts * to_ms)
            if ms <= MAX_TIMESTAMP_MS:
                return ms
            break
    raise IngestError("bad_timestamp", f'"ts" {str(ts)[:40]} is not a time since the epoch')


def read_payload(payload: bytes, source: str, max_bytes: int) -> Report | bytes:
    """What one MQTT message says of bot `source`: a Report for Hummingbot's heartbeat
    (an object with `ts` and no `type`), or the design's bot message as bytes to publish,
    its fields kept, `source` the topic's bot and `via` "mqtt". IngestError (code a
    rejection reason) for anything else; the size is checked before parsing."""
    if len(payload) > max_bytes:
        raise IngestError("oversize", f"{len(payload)} bytes > limit {max_bytes}")
    try:
        fields: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise IngestError("invalid_json", str(exc)) from None
    if not isinstance(fields, dict):
        raise IngestError("not_object", f"expected a JSON object, got {type(fields).__name__}")
    if nesting_depth_exceeds(payload):
        raise IngestError("too_deep", f"nested deeper than {MAX_DEPTH} levels")
    if "type" in fields:
        fields["source"] = source
        fields["via"] = "mqtt"
        return orjson.dumps(fields)
    if "ts" in fields:
        return Report("up", timestamp_ms=hummingbot_timestamp_ms(fields["ts"]))
    raise IngestError(
        "unknown_payload",
        'neither Hummingbot\'s heartbeat ({"ts": …}) nor the design\'s message ({"type": …})',
    )
