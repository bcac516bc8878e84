"""Changing a subscription (subscriptions.py): apply's commands and from_query's query strings."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.subscriptions import (
    DEFAULT_SUBSCRIPTION,
    EVENTS,
    MAX_BOT_PATTERNS,
    MAX_PATTERN_CHARS,
    MESSAGE_KINDS,
    Command,
    CommandError,
    Subscription,
    apply,
    from_query,
    parse_command,
)
from tests.unit.subscriptions_support import command

# --- apply -----------------------------------------------------------------------------------


def sub(**fields: Any) -> Command:
    return parse_command(command(action="subscribe", **fields))


def unsub(**fields: Any) -> Command:
    return parse_command(command(action="unsubscribe", **fields))


def test_subscribe_narrows_all_to_exactly_the_named_set() -> None:
    result = apply(DEFAULT_SUBSCRIPTION, sub(types=["ping"], bots=["bot:a", "bot:b*"]))
    assert result == Subscription(types=frozenset({"ping"}), bots=("bot:a", "bot:b*"))


def test_subscribe_adds_to_an_explicit_set() -> None:
    current = Subscription(types=frozenset({"ping"}), bots=("bot:a", "bot:b"))
    result = apply(current, sub(types=["pong"], bots=["bot:b", "bot:c"]))
    assert result.types == frozenset({"ping", "pong"})
    assert result.bots == ("bot:a", "bot:b", "bot:c")
    assert result.events == frozenset({"pingpong"})


def test_unsubscribe_types_from_all_leaves_the_complement() -> None:
    assert apply(DEFAULT_SUBSCRIPTION, unsub(types=["ping"])).types == frozenset({"pong"})
    assert apply(DEFAULT_SUBSCRIPTION, unsub(types=["ping", "pong"])).types == frozenset()


def test_unsubscribe_removes_from_explicit_sets() -> None:
    current = Subscription(types=frozenset({"ping", "pong"}), bots=("bot:a", "bot:b*", "bot:c"))
    result = apply(current, unsub(types=["pong"], bots=["bot:b*", "bot:unknown"]))
    assert result.types == frozenset({"ping"})
    assert result.bots == ("bot:a", "bot:c")  # removal is by pattern, not by match


def test_unsubscribing_bots_while_subscribed_to_all_is_refused() -> None:
    with pytest.raises(CommandError) as caught:
        apply(DEFAULT_SUBSCRIPTION, unsub(bots=["bot:a"]))
    assert caught.value.code == "bad_command"
    assert "bot" in caught.value.message


def test_events_add_and_remove() -> None:
    added = apply(DEFAULT_SUBSCRIPTION, sub(events=["status", "alerts"]))
    assert added.events == frozenset({"pingpong", "status", "alerts"})
    assert added.types is None
    assert added.bots is None
    removed = apply(added, unsub(events=["pingpong", "stats"]))
    assert removed.events == frozenset({"status", "alerts"})
    assert removed.wants("pingpong", "bot:a", "ping") is False
    assert removed.wants("status", "bot:a") is True


def test_total_bot_patterns_over_the_limit_are_refused() -> None:
    half = MAX_BOT_PATTERNS // 2
    first = apply(DEFAULT_SUBSCRIPTION, sub(bots=[f"bot:a{index}" for index in range(half)]))
    full = apply(first, sub(bots=[f"bot:b{index}" for index in range(MAX_BOT_PATTERNS - half)]))
    assert full.bots is not None
    assert len(full.bots) == MAX_BOT_PATTERNS
    # Re-subscribing to patterns already held adds nothing and is fine.
    assert apply(full, sub(bots=["bot:a0"])) == full
    with pytest.raises(CommandError) as caught:
        apply(full, sub(bots=["bot:one-too-many"]))
    assert caught.value.code == "bad_field"
    assert str(MAX_BOT_PATTERNS) in caught.value.message
    assert '"bots"' in caught.value.message


def test_apply_returns_a_new_value_and_leaves_the_original_alone() -> None:
    original = Subscription(types=frozenset({"ping"}), bots=("bot:a",))
    snapshot = Subscription(types=frozenset({"ping"}), bots=("bot:a",))
    result = apply(original, sub(types=["pong"], bots=["bot:b"], events=["stats"]))
    assert result is not original
    assert original == snapshot
    assert result != original
    assert apply(DEFAULT_SUBSCRIPTION, unsub(types=["ping"])) != DEFAULT_SUBSCRIPTION
    assert Subscription() == DEFAULT_SUBSCRIPTION


def test_apply_list_changes_nothing() -> None:
    current = Subscription(types=frozenset({"pong"}), bots=("bot:a",))
    assert apply(current, Command("list")) == current


_valid_fields = st.fixed_dictionaries(
    {"action": st.sampled_from(["subscribe", "unsubscribe"])},
    optional={
        "types": st.lists(st.sampled_from(MESSAGE_KINDS), min_size=1, max_size=3),
        "bots": st.lists(
            st.text(alphabet="ab*?:/-", min_size=1, max_size=5), min_size=1, max_size=30
        ),
        "events": st.lists(st.sampled_from(EVENTS), min_size=1, max_size=4),
        "id": st.integers(0, 1000),
    },
).filter(lambda body: len(set(body) - {"action", "id"}) > 0)


def _applied(current: Subscription, parsed: Command) -> Subscription | CommandError:
    try:
        return apply(current, parsed)
    except CommandError as exc:
        return exc


@given(st.lists(_valid_fields, max_size=12))
def test_any_sequence_of_valid_commands_keeps_the_invariants(bodies: list[dict[str, Any]]) -> None:
    current: Subscription = DEFAULT_SUBSCRIPTION
    for body in bodies:
        outcome = _applied(current, parse_command(orjson.dumps(body)))
        if isinstance(outcome, CommandError):
            assert outcome.code in {"bad_command", "bad_field"}
            continue
        current = outcome
        assert current.types is None or current.types <= {"ping", "pong"}
        assert current.events <= set(EVENTS)
        if current.bots is not None:
            assert len(set(current.bots)) == len(current.bots)
            assert len(current.bots) <= MAX_BOT_PATTERNS
            assert all(current.bots)


# --- from_query ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", DEFAULT_SUBSCRIPTION),
        ("token=abc.def", DEFAULT_SUBSCRIPTION),
        ("types=ping", Subscription(types=frozenset({"ping"}))),
        ("types=ping,pong", Subscription(types=frozenset({"ping", "pong"}))),
        ("types=ping&types=pong", Subscription(types=frozenset({"ping", "pong"}))),
        ("bots=a,b*", Subscription(bots=("a", "b*"))),
        ("bots=a&bots=b*&bots=a", Subscription(bots=("a", "b*"))),
        ("bots=bot%3A%2A%2Fgate-%3F", Subscription(bots=("bot:*/gate-?",))),
        ("events=pingpong,status", Subscription(events=frozenset({"pingpong", "status"}))),
        ("events=alerts", Subscription(events=frozenset({"alerts"}))),
        (
            "token=abc&types=pong&bots=bot:a&events=stats&_=1700000000",
            Subscription(types=frozenset({"pong"}), bots=("bot:a",), events=frozenset({"stats"})),
        ),
    ],
)
def test_from_query(query: str, expected: Subscription) -> None:
    assert from_query(query) == expected


def test_from_query_events_default_to_pingpong_only() -> None:
    subscription = from_query("types=ping")
    assert subscription.events == frozenset({"pingpong"})
    assert subscription.wants("status") is False


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("types=pang", "pang"),
        ("types=ping&types=bogus", "bogus"),
        ("events=nope", "nope"),
        ("events=pingpong,status,alert", "alert"),
        ("bots=" + "b" * (MAX_PATTERN_CHARS + 1), '"bots"'),
        ("bots=" + ",".join(f"b{index}" for index in range(MAX_BOT_PATTERNS + 1)), '"bots"'),
        ("bots=", '"bots"'),
    ],
)
def test_from_query_bad_values(query: str, fragment: str) -> None:
    with pytest.raises(CommandError) as caught:
        from_query(query)
    assert caught.value.code == "bad_field"
    assert fragment in caught.value.message
