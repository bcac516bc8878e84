"""Which alert transitions a relay taking over the webhook lease still has to send."""

from __future__ import annotations

from typing import Any

from pingpong_relay.redis_io.lease import SAME_TRANSITION_MS, unsent


def alert(rule: str, bot: str, state: str, since_ms: int) -> dict[str, Any]:
    return {"rule": rule, "bot": bot, "state": state, "since_ms": since_ms}


def noted(state: str, since_ms: int) -> dict[str, Any]:
    return {"state": state, "since_ms": since_ms}


def test_nothing_noted_means_the_newest_of_each_alert_is_sent() -> None:
    recent = [
        alert("silence", "a", "pending", 1000),
        alert("silence", "a", "firing", 1000),
        alert("latency", "a", "pending", 5000),
    ]
    assert unsent(recent, {}) == [recent[1], recent[2]]


def test_what_the_predecessor_sent_is_not_sent_again_despite_clock_differences() -> None:
    recent = [alert("silence", "a", "firing", 1_000_400)]
    assert unsent(recent, {"silence|a": noted("firing", 1_000_000)}) == []


def test_a_later_state_or_a_new_episode_is_sent() -> None:
    resolved = alert("silence", "a", "resolved", 2_000_000)
    assert unsent([resolved], {"silence|a": noted("firing", 1_000_000)}) == [resolved]
    again = alert("silence", "a", "firing", 1_000_000 + SAME_TRANSITION_MS + 1)
    assert unsent([again], {"silence|a": noted("firing", 1_000_000)}) == [again]
