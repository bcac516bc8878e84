"""readiness: systemd's notify messages, the watchdog interval, the status line, and when
READY and STATUS are due."""

from __future__ import annotations

from typing import Any

import pytest

from pingpong_relay.readiness import (
    Readiness,
    clients_text,
    notify_message,
    status_line,
    watchdog_interval_s,
)

OK: dict[str, Any] = {"status": "ok", "redis": "subscribed", "clients": 0}
WAITING: dict[str, Any] = {
    "status": "unavailable",
    "redis": "disconnected",
    "clients": 0,
    "reason": "Redis subscription not verified: ConnectionError: refused",
}


def test_a_message_is_newline_separated_assignments() -> None:
    assert notify_message(READY="1", STATUS="Redis subscribed") == (
        b"READY=1\nSTATUS=Redis subscribed"
    )


def test_a_line_break_in_a_value_cannot_start_another_assignment() -> None:
    assert notify_message(STATUS="error:\nREADY=1") == b"STATUS=error: READY=1"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "42"}, 0.2),
        ({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "43"}, None),  # another process's
        ({}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_the_watchdog_interval_is_half_of_watchdog_usec_when_it_is_ours(
    environ: dict[str, str], expected: float | None
) -> None:
    assert watchdog_interval_s(environ, 42) == expected


def test_status_lines() -> None:
    assert status_line(OK, ready=True) == "Redis subscribed; 0 clients"
    assert status_line({**OK, "clients": 1}, ready=True) == "Redis subscribed; 1 client"
    assert status_line({**OK, "clients": 7, "mqtt": "disconnected"}, ready=True) == (
        "Redis subscribed; MQTT disconnected; 7 clients"
    )
    assert status_line(WAITING, ready=False) == (
        "waiting for Redis (Redis subscription not verified: ConnectionError: refused); 0 clients"
    )
    assert status_line({**WAITING, "clients": 3}, ready=True).startswith(
        "Redis disconnected (Redis subscription"
    )
    assert status_line({"redis": "not started", "clients": 0}, ready=False) == (
        "waiting for Redis; 0 clients"
    )


def test_the_status_line_of_workers_merged() -> None:
    health = {
        **WAITING,
        "redis": "subscribed",
        "reason": "1 of 2 workers not ok",
        "workers": [{"status": "ok"}, {"status": "unavailable"}],
    }
    assert status_line(health, ready=False) == (
        "1 of 2 workers ready; waiting for Redis (1 of 2 workers not ok); 0 clients"
    )
    merged = {**OK, "clients": 5, "workers": [{"status": "ok"}, {"status": "ok"}]}
    assert status_line(merged, ready=True) == "2 of 2 workers ready; Redis subscribed; 5 clients"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ready_once_ok_and_only_once() -> None:
    clock = Clock()
    readiness = Readiness(5.0, clock)
    first = readiness.update(False, WAITING)
    assert first is not None
    assert first.startswith(b"STATUS=waiting for Redis")
    assert readiness.update(False, WAITING) is None  # nothing new
    assert readiness.update(True, OK) == b"READY=1\nSTATUS=Redis subscribed; 0 clients"
    assert readiness.ready
    clock.now += 60
    assert readiness.update(True, OK) is None
    assert readiness.update(True, {**OK, "clients": 2}) == b"STATUS=Redis subscribed; 2 clients"


def test_a_state_change_is_told_at_once_a_client_count_at_most_every_interval() -> None:
    clock = Clock()
    readiness = Readiness(5.0, clock)
    readiness.update(True, OK)
    clock.now += 1
    assert readiness.update(True, {**OK, "clients": 1}) is None  # within the interval
    clock.now += 4
    assert readiness.update(True, {**OK, "clients": 1}) == b"STATUS=Redis subscribed; 1 client"
    clock.now += 1
    down = readiness.update(False, {**WAITING, "clients": 1})  # Redis lost: no waiting
    assert down is not None
    assert down.startswith(b"STATUS=Redis disconnected (")
    clock.now += 0.5
    assert readiness.update(True, {**OK, "clients": 1}) == b"STATUS=Redis subscribed; 1 client"
    assert readiness.update(True, {**OK, "clients": 1}) is None


def test_client_counts_in_words() -> None:
    assert [clients_text(n) for n in (0, 1, 2)] == ["0 clients", "1 client", "2 clients"]
