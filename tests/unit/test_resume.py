"""Resuming across reconnects: the URL a client reconnects with and the repeats it drops."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pingpong_relay.resume import MAX_REMEMBERED_GAPS, Resume


def beat(bot: str, entry_id: str, n: int = 0) -> dict[str, Any]:
    return {"type": "bot:pingpong", "data": {"latency": n}, "id": entry_id, "bot": bot}


def query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_before_any_id_it_asks_for_ids_and_keeps_the_clients_own_query() -> None:
    resume = Resume()
    assert resume.newest_id is None
    assert resume.url("ws://h:1/") == "ws://h:1/?ids=1"
    assert query(resume.url("ws://h:1/?types=ping&bots=a&bots=b&last=5&ids=0")) == [
        ("types", "ping"),
        ("bots", "a"),
        ("bots", "b"),
        ("last", "5"),
        ("ids", "1"),
    ]


def test_after_an_id_it_asks_since_the_start_of_that_millisecond_instead() -> None:
    resume = Resume()
    assert resume.admit(beat("bot:pingpong/a", "1700000000000-3"))
    assert resume.newest_id == "1700000000000-3"
    url = resume.url("wss://h/?since=1&types=pong&last=9")
    assert url.startswith("wss://h/?")
    assert query(url) == [("types", "pong"), ("since", "1700000000000-0"), ("ids", "1")]


def test_a_bots_repeats_are_dropped_by_its_own_last_id() -> None:
    resume = Resume()
    assert resume.admit(beat("a", "100-0"))
    assert resume.admit(beat("a", "100-1"))
    assert not resume.admit(beat("a", "100-1"))
    assert not resume.admit(beat("a", "100-0"))
    assert not resume.admit(beat("a", "99-7"))
    assert resume.admit(beat("a", "101-0"))


def test_ids_compare_as_numbers_not_strings() -> None:
    resume = Resume()
    assert resume.admit(beat("a", "9-0"))
    assert resume.admit(beat("a", "10-0"))  # "10-0" < "9-0" as strings
    assert resume.admit(beat("a", "10-10"))
    assert not resume.admit(beat("a", "10-9"))
    assert resume.newest_id == "10-10"


def test_other_bots_ids_do_not_hide_a_bot_s_messages() -> None:
    # Each bot has its own stream: the same id, or an older one, is new for another bot.
    resume = Resume()
    assert resume.admit(beat("a", "100-5"))
    assert resume.admit(beat("b", "100-0"))
    assert resume.admit(beat("c", "99-0"))
    assert resume.newest_id == "100-5"
    assert not resume.admit(beat("b", "100-0"))


def test_envelopes_without_a_usable_id_always_pass() -> None:
    resume = Resume()
    envelopes: list[dict[str, Any]] = [
        {"type": "bot:pingpong", "data": {}, "bot": "a"},  # history off: bot, no id
        {"type": "status", "bot": "a", "status": "up"},
        {"type": "bot:pingpong", "data": {}, "bot": "a", "id": "not-an-id"},
        {"type": "bot:pingpong", "data": {}, "bot": 5, "id": "1-0"},
    ]
    for envelope in envelopes:
        assert resume.admit(envelope)
        assert resume.admit(envelope)
    assert resume.newest_id is None
    assert resume.url("ws://h/") == "ws://h/?ids=1"


def test_each_gap_passes_once() -> None:
    resume = Resume()
    gap = {"type": "bot:gap", "bot": "a", "reason": "trimmed", "from": "1-0", "to": "5-0"}
    assert resume.admit(gap)
    assert not resume.admit(dict(gap))
    assert resume.admit({**gap, "to": "6-0"})
    assert resume.admit({**gap, "reason": "relay_deaf", "relay": "h:1"})
    assert resume.newest_id is None  # a gap is no position to resume from


def test_remembered_gaps_are_bounded() -> None:
    resume = Resume()
    for n in range(MAX_REMEMBERED_GAPS + 5):
        assert resume.admit({"type": "bot:gap", "bot": "a", "from": str(n), "to": str(n + 1)})
    assert len(resume._gaps) <= MAX_REMEMBERED_GAPS
