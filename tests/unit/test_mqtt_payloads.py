"""What an MQTT message says of a bot (mqtt_topics, pure): the topic's bot, Hummingbot's
heartbeat, the design's message, and every refusal with its reason."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.ingest import INGEST_REJECT_REASONS, IngestError, Report, heartbeat
from pingpong_relay.messages import REJECT_REASONS, parse_bot_message
from pingpong_relay.mqtt_topics import (
    DEFAULT_MQTT_TOPICS,
    broker,
    client_id,
    hummingbot_timestamp_ms,
    read_payload,
    shared_filter,
    topic_source,
)

NOW_MS = 1_765_000_000_123  # December 2025
LIMIT = 16 * 1024


def refusal(payload: bytes, source: str = "bot") -> str:
    with pytest.raises(IngestError) as caught:
        read_payload(payload, source, LIMIT)
    assert caught.value.code in (*REJECT_REASONS, *INGEST_REJECT_REASONS)
    return caught.value.code


# --- Hummingbot's heartbeat ---------------------------------------------------------------


def test_hummingbot_heartbeat_in_microseconds_is_an_up_report_at_its_time() -> None:
    # commlib's HeartbeatThread: int((time.time() + 0.5) * 1_000_000)
    heard = read_payload(orjson.dumps({"ts": NOW_MS * 1000 + 456}), "hb-1", LIMIT)
    assert heard == Report("up", timestamp_ms=NOW_MS)


@pytest.mark.parametrize(
    "ts",
    [NOW_MS / 1000, NOW_MS // 1000, NOW_MS, NOW_MS * 1000, NOW_MS * 1_000_000],
    ids=["seconds-float", "seconds", "ms", "us", "ns"],
)
def test_a_heartbeat_time_is_read_in_whichever_unit_it_came(ts: float) -> None:
    assert abs(hummingbot_timestamp_ms(ts) - NOW_MS) < 1000


@given(st.integers(min_value=1_000_000_000_000, max_value=9_999_999_999_999))
def test_ms_microseconds_and_nanoseconds_of_one_instant_agree(ms: int) -> None:
    assert hummingbot_timestamp_ms(ms) == ms
    assert hummingbot_timestamp_ms(ms * 1000) == ms
    assert hummingbot_timestamp_ms(ms * 1_000_000) == ms


@pytest.mark.parametrize("ts", ["1765000000", None, True, 0, -5, 1e21, float("inf"), [1]])
def test_a_heartbeat_without_a_time_is_refused(ts: object) -> None:
    with pytest.raises(IngestError) as caught:
        hummingbot_timestamp_ms(ts)
    assert caught.value.code == "bad_timestamp"


def test_the_report_becomes_a_valid_design_message() -> None:
    report = read_payload(b'{"ts": 1765000000123456}', "hb-1", LIMIT)
    assert isinstance(report, Report)
    message = parse_bot_message(heartbeat(report, "hb-1", "mqtt", NOW_MS + 5000))
    assert message.fields == {
        "type": "pong",
        "timestamp": NOW_MS,
        "source": "hb-1",
        "via": "mqtt",
    }


# --- the design's own message ---------------------------------------------------------------


def test_the_design_message_keeps_its_fields_with_the_topics_bot_and_via() -> None:
    sent = {"type": "ping", "latency": 12.5, "timestamp": NOW_MS, "source": "liar", "x": [1]}
    raw = read_payload(orjson.dumps(sent), "bot-7", LIMIT)
    assert isinstance(raw, bytes)
    assert orjson.loads(raw) == {**sent, "source": "bot-7", "via": "mqtt"}
    assert parse_bot_message(raw).source == "bot-7"


def test_a_design_message_with_a_bad_field_is_left_to_the_inlets_validation() -> None:
    # The inlet validates exactly as for Redis and counts "bad_latency" there.
    raw = read_payload(b'{"type":"pong","latency":-1}', "bot", LIMIT)
    assert isinstance(raw, bytes)


# --- refusals ---------------------------------------------------------------------------------


def test_oversize_is_refused_before_parsing() -> None:
    assert refusal(b"{" * (LIMIT + 1)) == "oversize"  # not even JSON: never parsed


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b'{"type":"ping"', "invalid_json"),
        (b"[1, 2]", "not_object"),
        (b'"up"', "not_object"),
        (b"{}", "unknown_payload"),
        (b'{"status":"up"}', "unknown_payload"),
        (b'{"ts":"soon"}', "bad_timestamp"),
        (b'{"ts":' + b"[" * 40 + b"]" * 40 + b"}", "too_deep"),
        (b'{"type":"ping","x":' + b"[" * 300 + b"]" * 300 + b"}", "too_deep"),
    ],
)
def test_what_is_neither_payload_is_refused_with_a_reason(payload: bytes, reason: str) -> None:
    assert refusal(payload) == reason


# --- topics, broker, client id -------------------------------------------------------------


def test_the_bot_is_the_segment_of_the_first_matching_filters_plus() -> None:
    filters = list(DEFAULT_MQTT_TOPICS)
    assert topic_source(filters, "hbot/abc-1/hb") == "abc-1"
    assert topic_source(filters, "pingpong/freqtrade") == "freqtrade"
    assert topic_source(["fleet/+/+/beat"], "fleet/eu/bot9/beat") == "eu"


@pytest.mark.parametrize(
    "topic", ["hbot//hb", "hbot/" + "x" * 300 + "/hb", "hbot/a b/hb", "other/x"]
)
def test_a_topic_without_a_bot_name_is_bad_source(topic: str) -> None:
    with pytest.raises(IngestError) as caught:
        topic_source(list(DEFAULT_MQTT_TOPICS), topic)
    assert caught.value.code == "bad_source"


def test_a_share_group_prefixes_every_filter() -> None:
    assert shared_filter("hbot/+/hb", "relays") == "$share/relays/hbot/+/hb"
    assert shared_filter("hbot/+/hb", "") == "hbot/+/hb"


def test_the_broker_url_gives_host_port_tls_and_decoded_credentials() -> None:
    plain = broker("mqtt://10.0.0.5")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("10.0.0.5", 1883, False, None)
    secure = broker("mqtts://bot%40fleet:p%3Ass%2Fw@broker.example:9883")
    assert (secure.host, secure.port, secure.tls) == ("broker.example", 9883, True)
    assert (secure.username, secure.password) == ("bot@fleet", "p:ss/w")
    assert broker("mqtts://b.example").port == 8883


def test_the_client_id_is_safe_and_keeps_the_pid() -> None:
    assert client_id("host-1.example:4242") == "pingpong-relay-host-1-example-4242"
    long = client_id("a" * 200 + ":99")
    assert long.endswith("-99")
    assert len(long) <= len("pingpong-relay-") + 48
    assert client_id(":::") == "pingpong-relay-relay"
