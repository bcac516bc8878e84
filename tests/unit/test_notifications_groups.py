"""notification_groups.py: when grouped notifications leave (fake clock), and to whom."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pingpong_relay.alerts import AlertEngine
from pingpong_relay.notification_groups import (
    DEFAULT_GROUP_INTERVAL_S,
    DEFAULT_GROUP_WAIT_S,
    Grouper,
    NotificationPlan,
    StartTimes,
)
from pingpong_relay.notifications import Transition, parse_channel
from pingpong_relay.rules import SilenceRule
from tests.unit.alerts_support import FakeMetrics
from tests.unit.notifications_support import GATE, T0, alert, event


def transition(bot: str = GATE, **kwargs: Any) -> Transition:
    return Transition(event(bot=bot, **kwargs), T0)


def bots(group: list[Transition]) -> list[str]:
    return [t.event.bot for t in group]


# --- the grouper's clock -------------------------------------------------------------------


def test_defaults_keep_the_first_message_prompt() -> None:
    grouper = Grouper()
    assert (grouper.group_wait_s, grouper.group_interval_s) == (5.0, 60.0)
    assert DEFAULT_GROUP_WAIT_S <= 10.0 < DEFAULT_GROUP_INTERVAL_S


def test_nothing_waiting_is_never_due() -> None:
    grouper = Grouper()
    assert grouper.due_at() is None
    assert grouper.flush(1e9) == []
    assert grouper.flush(1e9, force=True) == []


def test_the_first_transition_leaves_after_group_wait_with_what_joined_it() -> None:
    grouper = Grouper(group_wait_s=5, group_interval_s=60)
    grouper.add(transition("a"), now_s=100.0)
    assert grouper.due_at() == 105.0
    grouper.add(transition("b"), now_s=103.0)
    grouper.add(transition("c"), now_s=104.9)
    assert grouper.due_at() == 105.0  # joining never delays the group
    assert grouper.flush(104.99) == []
    assert bots(grouper.flush(105.0)) == ["a", "b", "c"]
    assert grouper.due_at() is None
    assert len(grouper) == 0


def test_a_burst_that_goes_on_leaves_at_most_once_per_group_interval() -> None:
    grouper = Grouper(group_wait_s=5, group_interval_s=60)
    grouper.add(transition("a"), 0.0)
    assert bots(grouper.flush(5.0)) == ["a"]
    grouper.add(transition("b"), 6.0)
    assert grouper.due_at() == 65.0  # one interval after the last message, not 11
    grouper.add(transition("c"), 64.0)
    assert grouper.flush(64.9) == []
    assert bots(grouper.flush(65.0)) == ["b", "c"]
    grouper.add(transition("d"), 124.9)
    assert grouper.due_at() == 125.0
    assert bots(grouper.flush(125.0)) == ["d"]


def test_after_a_quiet_interval_the_next_transition_is_prompt_again() -> None:
    grouper = Grouper(group_wait_s=5, group_interval_s=60)
    grouper.add(transition("a"), 0.0)
    grouper.flush(5.0)
    grouper.add(transition("b"), 65.0)  # a whole interval since the last message
    assert grouper.due_at() == 70.0


def test_a_late_flush_counts_the_interval_from_when_it_happened() -> None:
    grouper = Grouper(group_wait_s=5, group_interval_s=60)
    grouper.add(transition("a"), 0.0)
    assert bots(grouper.flush(30.0)) == ["a"]  # the caller came late
    grouper.add(transition("b"), 31.0)
    assert grouper.due_at() == 90.0


def test_zero_wait_sends_at_once() -> None:
    grouper = Grouper(group_wait_s=0, group_interval_s=60)
    grouper.add(transition("a"), 10.0)
    assert bots(grouper.flush(10.0)) == ["a"]


def test_force_sends_what_waits_before_its_time() -> None:
    grouper = Grouper()
    grouper.add(transition("a"), 0.0)
    assert bots(grouper.flush(0.1, force=True)) == ["a"]
    assert grouper.due_at() is None


def test_the_newest_transition_of_an_alert_replaces_the_unsent_one() -> None:
    grouper = Grouper()
    grouper.add(transition("a"), 0.0)
    grouper.add(transition("b"), 1.0)
    resolved = transition("a", state="resolved", value=0.1)
    grouper.add(resolved, 2.0)
    group = grouper.flush(5.0)
    assert bots(group) == ["b", "a"]  # in the order of their latest transition
    assert group[1] is resolved
    # Another rule's alert of the same bot is another alert.
    grouper.add(transition("a"), 100.0)
    grouper.add(transition("a", kind="latency", value=900.0), 100.0)
    assert len(grouper.flush(200.0)) == 2


@pytest.mark.parametrize(
    ("wait", "interval", "says"),
    [
        (-1.0, 60.0, "group_wait_s must be a finite number of seconds >= 0, not -1.0"),
        (math.nan, 60.0, "group_wait_s must be"),
        (5.0, 0.0, "group_interval_s must be a finite number of seconds > 0, not 0.0"),
        (5.0, math.inf, "group_interval_s must be"),
    ],
)
def test_bad_timings_are_refused(wait: float, interval: float, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Grouper(wait, interval)


# --- when the trouble began ----------------------------------------------------------------


def test_a_resolution_learns_when_its_firing_began_and_the_memory_is_freed() -> None:
    starts = StartTimes()
    fired = starts.note(event(value=125.0, at_s=T0))
    assert fired.started_s == T0 - 125.0
    repeat = starts.note(event(value=3725.0, at_s=T0 + 3600, since_s=T0, repeat=True))
    assert repeat.started_s == T0 - 125.0
    resolved = starts.note(event(state="resolved", value=0.2, at_s=T0 + 4000))
    assert resolved.started_s == T0 - 125.0
    again = starts.note(event(state="resolved", value=0.2, at_s=T0 + 4001))
    assert again.started_s is None


def test_a_repeat_first_seen_here_starts_the_memory() -> None:
    # A relay that took over the lease sees a repeat before any firing.
    starts = StartTimes()
    assert starts.note(event(value=500.0, at_s=T0, repeat=True)).started_s == T0 - 500.0


def test_pending_and_unfired_resolutions_carry_no_start() -> None:
    starts = StartTimes()
    assert starts.note(event(state="pending", value=31.0)).started_s is None
    assert starts.note(event(state="resolved", fired=False)).started_s is None


def test_the_memory_is_bounded_oldest_first() -> None:
    starts = StartTimes(limit=2)
    for name in ("a", "b", "c"):
        starts.note(event(bot=name))
    assert starts.note(event(bot="a", state="resolved")).started_s is None
    assert starts.note(event(bot="c", state="resolved")).started_s is not None


# --- the plan: which channels get what -----------------------------------------------------


def plan(*urls: str, wait: float = 5.0, interval: float = 60.0) -> NotificationPlan:
    specs = [parse_channel(url, n) for n, url in enumerate(urls, 1)]
    return NotificationPlan(
        specs, public_url="https://relay.example.com", group_wait_s=wait, group_interval_s=interval
    )


def test_pending_and_unfired_resolutions_are_not_sent() -> None:
    notifier = plan("json://a")
    assert not notifier.add(alert(state="pending"), 0.0)
    assert not notifier.add(alert(state="resolved", fired=False), 0.0)
    assert notifier.due_at() is None


def test_a_single_transition_is_a_single_specific_notification() -> None:
    notifier = plan("json://a", "mailto://b")
    assert notifier.add(alert(), 10.0)
    assert notifier.due_at() == 15.0
    assert notifier.flush(14.0) == []
    sent = notifier.flush(15.0)
    assert [spec.position for spec, _ in sent] == [1, 2]
    assert {n.title for _, n in sent} == {f"[FIRING] {GATE} silent for 2m 5s (rule silence)"}
    assert "Dashboard: https://relay.example.com/?bot=bot%3Apingpong%2Fgate-1" in sent[0][1].body


def test_each_channel_gets_one_message_listing_only_its_bots() -> None:
    notifier = plan("json://all", "json://gates?bots=gate-*", "json://slow?rules=latency")
    for n in range(20):
        notifier.add(alert(bot=f"gate-{n}"), 0.0)
    for n in range(3):
        notifier.add(alert(bot=f"desk-{n}"), 1.0)
    sent = dict((spec.position, n) for spec, n in notifier.flush(5.0))
    assert sorted(sent) == [1, 2]  # nothing for the latency channel
    assert sent[1].title == "[FIRING] 23 bots: silent (rule silence)"
    assert sent[2].title == "[FIRING] 20 bots: silent (rule silence)"
    assert {t.event.bot for t in sent[2].transitions} == {f"gate-{n}" for n in range(20)}


def test_a_transition_no_channel_wants_opens_no_group() -> None:
    notifier = plan("json://gates?bots=gate-*")
    assert not notifier.add(alert(bot="desk-1"), 0.0)
    assert notifier.due_at() is None
    # It is still remembered: its resolution knows when it began.
    notifier.add(alert(bot="desk-1", state="resolved", value=0.1, at_s=T0 + 60), 1.0)
    assert notifier.due_at() is None


def test_a_resolution_sent_later_says_how_long_it_lasted() -> None:
    notifier = plan("json://a")
    notifier.add(alert(value=125.0, at_s=T0), 0.0)
    notifier.flush(5.0)
    notifier.add(alert(state="resolved", value=0.3, at_s=T0 + 175), 175.0)
    ((_, sent),) = notifier.flush(175.0 + 5.0)
    assert sent.title == f"[RESOLVED] {GATE} sending again (rule silence)"
    assert "(5m)" in sent.body  # 125 s silent before it fired + 175 s


def test_an_invalid_alert_is_refused_with_the_field() -> None:
    with pytest.raises(ValueError, match="'bot'"):
        plan("json://a").add({**alert(), "bot": 1}, 0.0)


def test_the_engines_own_transitions_make_one_group_for_a_mass_silence() -> None:
    # 20 bots go silent together: the engine's events, through their JSON, as one message.
    rule = SilenceRule("silence", timeout_s=30.0, for_s=30.0)
    engine = AlertEngine([rule])
    metrics = FakeMetrics(seen={f"bot:pingpong/gate-{n}": T0 for n in range(20)})
    notifier = plan("json://a", wait=5.0)
    for step in (0, 31, 61, 62):
        for made in engine.evaluate(metrics, T0 + step)[0]:
            notifier.add(made.to_json(), float(step))
    assert notifier.due_at() == 61.0 + 5.0  # pending at 31 opened nothing
    ((_, sent),) = notifier.flush(66.0)
    assert sent.title == "[FIRING] 20 bots: silent (rule silence)"
    assert sum(line.startswith("- bot:pingpong/gate-") for line in sent.body.splitlines()) == 20
    # They come back together: one resolution message, a group interval after the first.
    for bot in metrics.seen:
        metrics.seen[bot] = T0 + 100
    for made in engine.evaluate(metrics, T0 + 100)[0]:
        notifier.add(made.to_json(), 100.0)
    assert notifier.due_at() == 66.0 + 60.0
    ((_, back),) = notifier.flush(126.0)
    assert back.title == "[RESOLVED] 20 bots: sending again (rule silence)"
    assert "lasted 1m 40s" in back.body  # last heard at T0, back at T0 + 100
