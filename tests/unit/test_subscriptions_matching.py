"""Subscriptions (subscriptions.py): bot ids, which messages a subscription wants, its JSON."""

from __future__ import annotations

import fnmatch

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pingpong_relay.subscriptions import (
    DEFAULT_SUBSCRIPTION,
    EVENTS,
    MESSAGE_KINDS,
    Subscription,
    bot_id,
)

BOT_CACHE_LIMIT = 10_000
NON_DEFAULT_EVENTS = ("status", "alerts", "stats")


# --- bot_id --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "source", "expected"),
    [
        ("bot:alpha", None, "bot:alpha"),
        ("bot:alpha", "", "bot:alpha"),
        ("bot:alpha", "gate-1", "bot:alpha/gate-1"),
        ("pingpong", "bot", "pingpong/bot"),
    ],
)
def test_bot_id(channel: str, source: str | None, expected: str) -> None:
    assert bot_id(channel, source) == expected


# --- Subscription.wants ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*MESSAGE_KINDS, None])
@pytest.mark.parametrize("bot", [None, "bot:alpha", "bot:alpha/gate-1", "anything at all"])
def test_default_wants_every_pingpong_and_nothing_else(kind: str | None, bot: str | None) -> None:
    assert DEFAULT_SUBSCRIPTION.wants("pingpong", bot, kind) is True
    for event in NON_DEFAULT_EVENTS:
        assert DEFAULT_SUBSCRIPTION.wants(event, bot, kind) is False


def test_default_subscription_fields() -> None:
    assert Subscription(None, None, frozenset({"pingpong"})) == DEFAULT_SUBSCRIPTION
    assert DEFAULT_SUBSCRIPTION.wants("no-such-event") is False


def test_types_filter() -> None:
    pings = Subscription(types=frozenset({"ping"}))
    assert pings.wants("pingpong", "bot:a", "ping") is True
    assert pings.wants("pingpong", "bot:a", "pong") is False
    # kind=None means "not applicable": the type filter does not apply.
    assert pings.wants("pingpong", "bot:a") is True
    nothing = Subscription(types=frozenset())
    assert nothing.wants("pingpong", "bot:a", "ping") is False
    assert nothing.wants("pingpong", "bot:a", "pong") is False


@pytest.mark.parametrize(
    ("patterns", "bot", "wanted"),
    [
        (("bot:alpha",), "bot:alpha", True),
        (("bot:alpha",), "bot:alphabet", False),
        (("bot:alpha",), "bot:alpha/gate-1", False),
        (("bot:alpha",), "BOT:alpha", False),
        (("bot:*",), "bot:alpha", True),
        (("bot:*",), "bot:alpha/gate-1", True),  # `*` crosses the "/"
        (("bot:*",), "bot:", True),
        (("bot:*",), "other:alpha", False),
        (("bot:*",), "Bot:alpha", False),  # case-sensitive
        (("bot:*/gate-?",), "bot:alpha/gate-1", True),
        (("bot:*/gate-?",), "bot:beta/gate-x", True),
        (("bot:*/gate-?",), "bot:alpha/gate-12", False),
        (("bot:*/gate-?",), "bot:alpha/gate-", False),
        (("bot:*/gate-?",), "bot:alpha", False),
        (("bot:a", "bot:b*"), "bot:a", True),
        (("bot:a", "bot:b*"), "bot:bee", True),
        (("bot:a", "bot:b*"), "bot:c", False),
        ((), "bot:a", False),
    ],
)
def test_bots_patterns(patterns: tuple[str, ...], bot: str, wanted: bool) -> None:
    subscription = Subscription(bots=patterns)
    assert subscription.wants("pingpong", bot, "ping") is wanted
    assert subscription.wants_bot(bot) is wanted
    # A second ask (now from the cache) answers the same.
    assert subscription.wants("pingpong", bot, "ping") is wanted


def test_bot_none_means_not_applicable() -> None:
    only_alpha = Subscription(bots=("bot:alpha",), events=frozenset({"pingpong", "alerts"}))
    assert only_alpha.wants("alerts") is True
    assert only_alpha.wants("pingpong", None, "pong") is True
    assert only_alpha.wants("alerts", "bot:beta") is False
    # The event filter still applies without a bot.
    assert only_alpha.wants("status") is False


def test_events_filter() -> None:
    ops = Subscription(events=frozenset({"status", "alerts"}))
    assert ops.wants("status", "bot:a") is True
    assert ops.wants("alerts") is True
    assert ops.wants("pingpong", "bot:a", "ping") is False
    assert ops.wants("stats") is False
    everything = Subscription(events=frozenset(EVENTS))
    assert all(everything.wants(event, "bot:a", "pong") for event in EVENTS)


def test_events_and_types_and_bots_combine() -> None:
    subscription = Subscription(
        types=frozenset({"pong"}), bots=("bot:a*",), events=frozenset({"pingpong", "status"})
    )
    assert subscription.wants("pingpong", "bot:ab", "pong") is True
    assert subscription.wants("pingpong", "bot:ab", "ping") is False
    assert subscription.wants("pingpong", "bot:b", "pong") is False
    assert subscription.wants("status", "bot:ab") is True
    assert subscription.wants("status", "bot:b") is False
    assert subscription.wants("stats", "bot:ab") is False


def test_bot_cache_stays_bounded_and_correct_once_full() -> None:
    subscription = Subscription(bots=("bot:*",))
    for index in range(BOT_CACHE_LIMIT + 500):
        expected = index % 2 == 0
        bot = f"bot:{index}" if expected else f"other:{index}"
        assert subscription.wants_bot(bot) is expected
    assert len(subscription._bot_cache) == BOT_CACHE_LIMIT
    # Ids asked after the cache filled up are still matched, just not remembered.
    assert subscription.wants("pingpong", "bot:late", "ping") is True
    assert subscription.wants("pingpong", "other:late", "ping") is False
    assert "bot:late" not in subscription._bot_cache
    assert len(subscription._bot_cache) == BOT_CACHE_LIMIT


def test_cache_is_not_used_when_every_bot_is_wanted() -> None:
    subscription = Subscription()
    assert subscription.wants_bot("bot:a") is True
    assert subscription._bot_cache == {}


_pattern_text = st.text(alphabet="ab*?/:[]!", min_size=1, max_size=6)
_bot_text = st.text(alphabet="ab/:[]!", max_size=6)


@given(
    patterns=st.lists(_pattern_text, max_size=5).map(tuple),
    bots=st.lists(_bot_text, max_size=20),
)
def test_cache_never_changes_an_answer(patterns: tuple[str, ...], bots: list[str]) -> None:
    subscription = Subscription(bots=patterns)
    for _ in range(2):
        for bot in bots:
            expected = any(fnmatch.fnmatchcase(bot, pattern) for pattern in patterns)
            assert subscription.wants_bot(bot) is expected


def test_equal_subscriptions_are_equal_and_hash_equal_whatever_their_caches() -> None:
    warm = Subscription(types=frozenset({"ping"}), bots=("bot:a*", "bot:b"))
    cold = Subscription(types=frozenset({"ping"}), bots=("bot:a*", "bot:b"))
    for bot in ("bot:a1", "bot:b", "bot:c"):
        warm.wants_bot(bot)
    assert warm._bot_cache != cold._bot_cache
    assert warm == cold
    assert hash(warm) == hash(cold)
    groups = {warm: "group"}
    assert groups[cold] == "group"
    assert Subscription() == DEFAULT_SUBSCRIPTION
    assert hash(Subscription()) == hash(DEFAULT_SUBSCRIPTION)


@pytest.mark.parametrize(
    "other",
    [
        Subscription(types=frozenset({"pong"}), bots=("bot:a",)),
        Subscription(types=None, bots=("bot:a",)),
        Subscription(types=frozenset({"ping"}), bots=None),
        Subscription(types=frozenset({"ping"}), bots=("bot:a",), events=frozenset({"status"})),
    ],
)
def test_different_subscriptions_are_unequal(other: Subscription) -> None:
    assert Subscription(types=frozenset({"ping"}), bots=("bot:a",)) != other


# --- to_json -------------------------------------------------------------------------------


def test_to_json_default() -> None:
    assert DEFAULT_SUBSCRIPTION.to_json() == {"types": "all", "bots": "all", "events": ["pingpong"]}


def test_to_json_explicit_fields() -> None:
    subscription = Subscription(
        types=frozenset({"pong", "ping"}),
        bots=("bot:z", "bot:a*"),
        events=frozenset({"stats", "pingpong", "alerts", "status"}),
    )
    shape = subscription.to_json()
    assert shape == {
        "types": ["ping", "pong"],
        "bots": ["bot:z", "bot:a*"],  # in the order subscribed
        "events": ["pingpong", "status", "alerts", "stats"],  # canonical order
    }
    assert orjson.loads(orjson.dumps(shape)) == shape


def test_to_json_empty_sets_are_lists_not_all() -> None:
    subscription = Subscription(types=frozenset(), bots=(), events=frozenset())
    assert subscription.to_json() == {"types": [], "bots": [], "events": []}
