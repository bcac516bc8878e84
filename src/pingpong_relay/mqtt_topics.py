"""MQTT for bots that speak it: which broker, which topic filters, and which bot a topic
names (pure; `ingestion.mqtt` is the client). The bot id is the segment a filter's first
`+` matches: `hbot/+/hb` hears Hummingbot instance `abc` on `hbot/abc/hb`."""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = ["DEFAULT_MQTT_TOPICS", "bot_segment", "check_topic_filter", "mqtt_url"]

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
    unquote(parts.password or "")
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
