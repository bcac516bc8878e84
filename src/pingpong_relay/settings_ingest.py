"""The ingestion settings: push tokens and their limits, the MQTT broker and topics, and
the targets to poll (the other settings are in settings.py and settings_serving.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pingpong_relay.ingest import parse_push_token
from pingpong_relay.mqtt_topics import DEFAULT_MQTT_TOPICS, check_topic_filter, mqtt_url
from pingpong_relay.parsing import duration, positive_float
from pingpong_relay.poll_targets import PollTarget, parse_poll_target
from pingpong_relay.setting_topics import topic_option
from pingpong_relay.settings_serving import ServingSettings

__all__ = ["IngestSettings"]

_ingestion = topic_option("ingestion")


def _argument(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """`parse` with its ValueError as argparse's error (the flag's one-line message)."""

    def parse_argument(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse_argument.__name__ = parse.__name__
    return parse_argument


@dataclass(frozen=True)
class IngestSettings(ServingSettings):
    """Where heartbeats come from besides Redis Pub/Sub; field names are the flag names."""

    push_token: list[tuple[str, str]] = _ingestion(  # noqa: RUF009 - a dataclasses.field
        [],
        "TOKEN=BOT: a push token (16-128 of A-Z a-z 0-9 _ -; a uuid serves) for "
        "/api/push/TOKEN and /ping/TOKEN, pushing as bot BOT; repeatable. Tokens made by "
        "`pingpong-relay push add` live in Redis instead and need no flag",
        _argument(parse_push_token),
        repeat=True,
    )
    push_rate: float = _ingestion(
        1.0,
        "pushes per second accepted for one token (bursts of 10 s worth); more get 429",
        positive_float,
    )
    push_address_rate: float = _ingestion(
        20.0,
        "push and ping requests per second accepted from one address, whatever the "
        "token (bursts of 10 s worth); more get 429",
        positive_float,
    )
    mqtt_url: str = _ingestion(
        "",
        "MQTT broker to hear heartbeats from: mqtt://[user:password@]host[:port] or mqtts:// (TLS)",
        _argument(mqtt_url),
    )
    mqtt_topic: list[str] = _ingestion(  # noqa: RUF009 - a dataclasses.field
        list(DEFAULT_MQTT_TOPICS),
        "MQTT topic filter to subscribe to; the segment its + matches is the bot's name "
        "(hbot/+/hb: Hummingbot's heartbeat; pingpong/+: the design's message); repeatable",
        _argument(check_topic_filter),
        repeat=True,
    )
    mqtt_share_group: str = _ingestion(
        "pingpong-relay",
        "relays on one Redis share the MQTT subscription in this group ($share/GROUP/…), so "
        "the broker hands each message to one of them; empty: each subscribes on its own "
        "(only for a single relay)",
    )
    poll: list[PollTarget] = _ingestion(  # noqa: RUF009 - a dataclasses.field
        [],
        "'NAME=URL [mode=generic|freqtrade] [interval=30s] [timeout=5s] [stale=5m] "
        "[user=U password=P | token=T]': poll a bot's health URL (generic: 2xx is up, the "
        "round trip its latency; freqtrade: its REST API's ping and health); repeatable "
        "(the env var separates targets by ;). With several relays on one Redis, one polls",
        _argument(parse_poll_target),
        repeat=True,
        separator=";",
    )
    poll_lease: float = _ingestion(
        10.0,
        "with --poll: relays on one Redis elect the one that polls with a lease of this many "
        "seconds; a survivor takes over within it when that relay dies",
        duration,
    )
