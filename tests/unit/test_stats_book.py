"""StatsBook (stats.py): per-bot statistics, the overall count, probation and eviction."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S, StatsBook
from tests.unit.stats_support import T0

# --- StatsBook ----------------------------------------------------------------------------


def test_book_keeps_bots_apart_and_counts_them_overall() -> None:
    book = StatsBook()
    assert book.record("bravo", T0, "ping", 10.0, None) is True
    assert book.record("alpha", T0 + 1, "pong", 20.0, None) is True
    assert book.record("bravo", T0 + 2, "pong", 30.0, None) is True
    assert book.bots() == ["alpha", "bravo"]
    assert book.get("charlie") is None
    bravo = book.get("bravo")
    assert bravo is not None
    assert bravo.total == 2
    assert book.overall.total == 3
    summary = book.summary("1m", T0 + 2)
    assert summary["window"] == "1m"
    assert summary["generated_at_ms"] == int(T0 * 1000) + 2000
    assert summary["overall"]["count"] == 3
    assert list(summary["bots"]) == ["alpha", "bravo"]
    assert summary["bots"]["bravo"]["latency_ms"]["max"] == 30.0
    assert summary["bots"]["alpha"]["pong"] == 1


def test_book_summary_of_one_bot() -> None:
    book = StatsBook()
    book.record("alpha", T0, "ping", 1.0, None)
    book.record("bravo", T0, "ping", 2.0, None)
    summary = book.summary("5m", T0, bot="bravo")
    assert list(summary["bots"]) == ["bravo"]
    assert summary["overall"]["count"] == 2
    with pytest.raises(KeyError):
        book.summary("5m", T0, bot="charlie")


def test_book_cap_still_counts_overall() -> None:
    book = StatsBook(max_bots=2)
    for bot in ("bot0", "bot1"):
        for i in range(ESTABLISHED_MESSAGES):
            assert book.record(bot, T0 + i, "ping", 1.0, None) is True
    # Every slot is established: newcomers are refused rather than evicting anyone.
    assert [book.record(f"bot{i}", T0 + 3, "ping", 1.0, None) for i in (2, 3)] == [False, False]
    assert book.record("bot3", T0 + 5, "ping", 1.0, None) is False
    assert book.record("bot0", T0 + 6, "ping", 1.0, None) is True
    assert book.bots() == ["bot0", "bot1"]
    assert book.overall.total == 10
    assert book.summary("1m", T0 + 6)["overall"]["count"] == 10
    assert book.max_bots == 2


def test_negative_cap_is_refused() -> None:
    with pytest.raises(ValueError, match="max_bots"):
        StatsBook(max_bots=-1)


def test_book_summary_is_json_serialisable() -> None:
    book = StatsBook()
    for i in range(20):
        now = T0 + i * 0.7
        bot_ms = now * 1000 - i + 1  # i = 0 is a bot clock 1 ms ahead
        book.record(f"bot{i % 3}", now, "ping" if i % 2 else "pong", 3.3 * i, bot_ms)
    book.record("idle", T0, "ping", None, None)
    summary: dict[str, Any] = book.summary("1h", T0 + 14)
    assert orjson.loads(orjson.dumps(summary)) == summary
    assert summary["bots"]["idle"]["latency_ms"]["p50"] is None
    assert summary["bots"]["bot0"]["transit_ms"]["negative"] == 1


def test_each_message_past_the_skew_bound_is_reported_once_with_its_bot() -> None:
    skewed: list[tuple[str, float]] = []
    book = StatsBook(max_bots=1, max_clock_skew_s=300.0, on_clock_skew=lambda *s: skewed.append(s))
    book.seed("alpha", T0)  # established: a newcomer cannot take its slot
    book.record("alpha", T0, "ping", 10.0, T0 * 1000 - 20)
    book.record("alpha", T0 + 1, "ping", 10.0, 1234567890)  # the design's example: 1970
    assert book.record("beyond-cap", T0 + 2, "ping", 10.0, (T0 + 2 + 301) * 1000) is False
    # The second is untracked, but in the overall figures.
    assert [bot for bot, _ in skewed] == ["alpha", "beyond-cap"]
    assert [transit_ms for _, transit_ms in skewed] == pytest.approx(
        [(T0 + 1) * 1000 - 1234567890, -301_000]
    )
    summary = book.summary("1m", T0 + 2)
    assert summary["overall"]["clock_skew"] == {"messages": 2}
    assert summary["overall"]["transit_ms"]["max"] == pytest.approx(20, rel=0.03)
    assert summary["bots"]["alpha"]["clock_skew"] == {"messages": 1}
    assert summary["bots"]["alpha"]["clock_skew_suspected"] is True
    assert book.max_clock_skew_s == 300.0


# --- probation and eviction ------------------------------------------------------------------


def _establish(book: StatsBook, bot: str, start_s: float) -> None:
    for i in range(ESTABLISHED_MESSAGES):
        assert book.record(bot, start_s + i * ESTABLISHED_SPAN_S, "ping", 1.0, None)
    assert book.is_established(bot)


def test_a_bot_is_established_by_enough_messages_over_enough_time() -> None:
    book = StatsBook()
    # A burst is not enough, however long: the span is what a flood of one-offs lacks.
    for i in range(10):
        book.record("burst", T0 + i * 0.05, "ping", 1.0, None)
    assert not book.is_established("burst")
    book.record("burst", T0 + ESTABLISHED_SPAN_S, "ping", 1.0, None)
    assert book.is_established("burst")
    # Nor is time alone: two messages ten minutes apart.
    book.record("slow", T0, "ping", 1.0, None)
    book.record("slow", T0 + 600, "ping", 1.0, None)
    assert not book.is_established("slow")
    book.record("slow", T0 + 1200, "ping", 1.0, None)
    assert book.is_established("slow")
    assert not book.is_established("unknown")


def test_a_full_book_evicts_the_bot_on_probation_heard_least_recently() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=3, on_evict=evicted.append)
    for i, bot in enumerate(("a", "b", "c")):
        book.record(bot, T0 + i, "ping", 1.0, None)
    book.record("a", T0 + 3, "ping", 1.0, None)  # heard again: b is now the least recent
    assert book.record("d", T0 + 4, "ping", 1.0, None) is True
    assert evicted == ["b"]
    assert book.bots() == ["a", "c", "d"]
    assert book.get("b") is None
    assert book.record("e", T0 + 5, "ping", 1.0, None) is True
    assert evicted == ["b", "c"]
    assert book.overall.total == 6


def test_established_bots_are_never_evicted_and_a_full_established_book_refuses() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=2, on_evict=evicted.append)
    _establish(book, "real", T0)
    # A flood of one-message ids turns over the one probation slot and nothing else.
    for i in range(1000):
        assert book.record(f"junk{i}", T0 + 10 + i * 0.001, "ping", 1.0, None) is True
    assert book.bots() == ["junk999", "real"]
    assert evicted == [f"junk{i}" for i in range(999)]
    assert book.on_probation == 1
    # A second real bot takes the probation slot and, once established, keeps it.
    _establish(book, "real2", T0 + 20)
    assert evicted[-1] == "junk999"
    assert book.record("late", T0 + 30, "ping", 1.0, None) is False
    assert book.bots() == ["real", "real2"]
    assert len(book) == 2


def test_seeded_bots_are_established_and_take_a_probation_slot_if_needed() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=2, on_evict=evicted.append)
    book.record("junk", T0, "ping", 1.0, None)
    _establish(book, "real", T0)
    assert book.seed("known", T0 - 60) is True
    assert evicted == ["junk"]
    assert book.is_established("known")
    assert book.seed("other", T0 - 60) is False  # every slot established
    assert book.bots() == ["known", "real"]


def test_forget_and_silent_since() -> None:
    evicted: list[str] = []
    book = StatsBook(max_bots=3, on_evict=evicted.append)
    book.record("old", T0, "ping", 1.0, None)
    book.seed("seeded", T0 + 5)
    book.record("new", T0 + 100, "ping", 1.0, None)
    assert sorted(book.silent_since(T0 + 50)) == ["old", "seeded"]
    assert book.forget("old") is True
    assert book.forget("old") is False
    assert evicted == []  # forgetting is not an eviction
    assert book.bots() == ["new", "seeded"]
    assert book.on_probation == 1
