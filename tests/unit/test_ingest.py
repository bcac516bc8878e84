"""Push, ping and token logic (pure): what each URL style reports, the message it becomes,
and tokens that are never kept or shown."""

from __future__ import annotations

import orjson
import pytest

from pingpong_relay.ingest import (
    MAX_REASON_CHARS,
    IngestError,
    Report,
    healthchecks_report,
    heartbeat,
    is_push_path,
    kuma_report,
    new_token,
    parse_push_token,
    redact_push_path,
    reported_status,
    token_hash,
    token_id,
    valid_token,
)
from pingpong_relay.messages import parse_bot_message

NOW_MS = 1_767_225_600_000


def test_a_kuma_push_defaults_to_up_and_takes_ping_as_the_latency() -> None:
    assert kuma_report({}) == Report("up")
    assert kuma_report({"status": "up", "msg": "OK", "ping": "12.5"}) == Report("up", 12.5)
    assert kuma_report({"status": "UP", "ping": ""}) == Report("up")
    assert kuma_report({"msg": "all good"}).reason == "all good"


def test_a_kuma_push_down_carries_its_message_as_the_reason() -> None:
    assert kuma_report({"status": "down", "msg": "disk full"}) == Report("down", None, "disk full")
    assert kuma_report({"status": "down"}).reason == "pushed down"


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"status": "true"}, "status must be up or down"),
        ({"ping": "fast"}, "not a number"),
        ({"ping": "-1"}, "0 to"),
        ({"ping": "inf"}, "0 to"),
        ({"ping": "3600001"}, "0 to"),
    ],
)
def test_a_malformed_kuma_push_says_what_is_wrong(query: dict[str, str], words: str) -> None:
    with pytest.raises(IngestError, match=words) as info:
        kuma_report(query)
    assert info.value.code in {"bad_status", "bad_latency"}


def test_a_healthchecks_success_after_start_reports_the_run_duration() -> None:
    report = healthchecks_report("", NOW_MS - 1500, NOW_MS)
    assert (report.status, report.latency_ms) == ("up", 1500)
    assert report.extra == {"duration_ms": 1500}
    assert healthchecks_report("0", None, NOW_MS) == Report("up")
    # A run longer than an hour keeps its duration but is no latency.
    long = healthchecks_report("", NOW_MS - 7_200_000, NOW_MS)
    assert (long.latency_ms, long.extra["duration_ms"]) == (None, 7_200_000)


def test_a_start_opens_a_run_and_says_so() -> None:
    assert healthchecks_report("start", None, NOW_MS) == Report("up", extra={"event": "start"})


def test_a_failure_is_down_with_the_first_line_of_the_body() -> None:
    failed = healthchecks_report("fail", None, NOW_MS, b"backup failed: no space\ntrace...")
    assert (failed.status, failed.reason) == ("down", "backup failed: no space")
    assert healthchecks_report("fail", None, NOW_MS).reason == "the job reported failure"
    exited = healthchecks_report("2", NOW_MS - 10, NOW_MS, b"")
    assert (exited.status, exited.reason, exited.extra["exit_status"]) == (
        "down",
        "exit status 2",
        2,
    )
    assert healthchecks_report("255", None, NOW_MS, b"oops").reason == "exit status 255: oops"


@pytest.mark.parametrize("signal", ["log", "256", "-1", "1000", "st", "²", "١٢"])
def test_an_unknown_signal_is_malformed(signal: str) -> None:
    with pytest.raises(IngestError, match="exit status") as info:
        healthchecks_report(signal, None, NOW_MS)
    assert info.value.code == "bad_signal"


def test_a_heartbeat_is_a_valid_bot_message_with_via() -> None:
    raw = heartbeat(Report("up", 7.5), "cron-1", "push", NOW_MS)
    message = parse_bot_message(raw)
    assert message.fields == {
        "type": "pong",
        "latency": 7.5,
        "timestamp": NOW_MS,
        "source": "cron-1",
        "via": "push",
    }
    assert reported_status(message.fields) is None


def test_a_down_heartbeat_carries_status_and_a_clean_reason() -> None:
    raw = heartbeat(Report("down", reason="line one\nline two\x1b[31m" + "x" * 500), "b", "poll", 1)
    fields = orjson.loads(raw)
    assert fields["status"] == "down"
    assert "\n" not in fields["reason"]
    assert "\x1b" not in fields["reason"]
    assert len(fields["reason"]) == MAX_REASON_CHARS
    assert reported_status(fields) == ("down", fields["reason"])
    assert "latency" not in fields


def test_the_senders_timestamp_wins_and_extra_fields_cannot_override_the_contract() -> None:
    report = Report("up", timestamp_ms=5.0, extra={"type": "ping", "source": "x", "exit_status": 0})
    fields = orjson.loads(heartbeat(report, "real", "mqtt", NOW_MS))
    assert (fields["type"], fields["source"], fields["timestamp"]) == ("pong", "real", 5.0)
    assert fields["exit_status"] == 0


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "down", "reason": "x"}, ("down", "x")),
        ({"status": "degraded"}, ("degraded", "reported degraded")),
        ({"status": "down", "reason": 42}, ("down", "reported down")),
        ({"status": "ok"}, None),
        ({"status": ["down"]}, None),
        ({}, None),
    ],
)
def test_reported_status_reads_only_down_and_degraded(
    fields: dict[str, object], expected: tuple[str, str] | None
) -> None:
    assert reported_status(fields) == expected


def test_tokens_are_uuids_stored_as_hashes() -> None:
    token = new_token()
    assert valid_token(token)
    assert len(token) == 36
    assert new_token() != token
    digest = token_hash(token)
    assert len(digest) == 64
    assert token not in digest
    assert token_id(digest) == digest[:12]


@pytest.mark.parametrize("text", ["short", "a" * 129, "has space in it!!", "ünïcödé-token-123"])
def test_a_token_of_the_wrong_shape_is_not_one(text: str) -> None:
    assert not valid_token(text)


def test_a_push_token_flag_names_the_token_and_the_bot() -> None:
    assert parse_push_token(" " + "t" * 16 + " = cron-1 ") == ("t" * 16, "cron-1")
    with pytest.raises(ValueError, match="TOKEN=BOT"):
        parse_push_token("t" * 16)
    with pytest.raises(ValueError, match="16-128") as info:
        parse_push_token("secret=cron")
    assert "secret" not in str(info.value)
    with pytest.raises(ValueError, match="not a bot name"):
        parse_push_token("t" * 16 + "=has space")


def test_a_push_path_is_redacted_for_the_log() -> None:
    assert is_push_path("/api/push/abc")
    assert is_push_path("/ping/abc/fail")
    assert not is_push_path("/bots")
    assert redact_push_path("/api/push/secret-token") == "/api/push/***"
    assert redact_push_path("/ping/secret/fail") == "/ping/***/fail"
    assert redact_push_path("/bots") == "/bots"
