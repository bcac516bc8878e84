"""notifications.py: which transitions notify, --notify values and their filters, the words."""

from __future__ import annotations

from typing import Any

import pytest

from pingpong_relay.alert_events import AlertEvent
from pingpong_relay.notifications import (
    MAX_LISTED,
    ChannelSpec,
    Transition,
    alert_from_json,
    began_s,
    dashboard_link,
    format_duration,
    iso_utc,
    notifies,
    parse_channel,
    render,
)
from tests.unit.notifications_support import GATE, T0, alert, event

# --- reading a bot:alert -------------------------------------------------------------------


@pytest.mark.parametrize(
    "made",
    [
        event(),
        event(state="pending", value=31.5),
        event(kind="latency", value=612.5, rule="p95-slow", repeat=True, since_s=T0 - 3600),
        event(kind="latency", state="resolved", value=None, fired=True),
        event(state="resolved", fired=False, value=0.2),
    ],
)
def test_a_bot_alert_reads_back_as_the_event_it_came_from(made: AlertEvent) -> None:
    assert alert_from_json(made.to_json()) == made


def test_integer_numbers_read_as_floats() -> None:
    raw = {**alert(), "value": 125, "threshold": 30}
    read = alert_from_json(raw)
    assert (read.value, read.threshold) == (125.0, 30.0)
    assert isinstance(read.value, float)


@pytest.mark.parametrize(
    ("field", "bad", "says"),
    [
        ("state", "exploded", "'state' is 'exploded', not pending, firing, resolved"),
        ("state", None, "'state' is None, not a string"),
        ("kind", "cpu", "'kind' is 'cpu', not latency, silence"),
        ("rule", 7, "'rule' is 7, not a string"),
        ("bot", None, "'bot' is None, not a string"),
        ("since_ms", "soon", "'since_ms' is 'soon', not a number"),
        ("at_ms", True, "'at_ms' is True, not a number"),
        ("value", "high", "'value' is 'high', not a number"),
        ("threshold", None, "'threshold' is None, not a number"),
        ("repeat", 0, "'repeat' is 0, not true or false"),
        ("fired", "yes", "'fired' is 'yes', not true or false"),
        ("summary", ["x"], "'summary' is ['x'], not a string"),
    ],
)
def test_a_bad_field_is_named_in_the_error(field: str, bad: Any, says: str) -> None:
    with pytest.raises(ValueError, match="bot:alert field ") as caught:
        alert_from_json({**alert(), field: bad})
    assert says in str(caught.value)


def test_a_missing_field_is_named_in_the_error() -> None:
    raw = alert()
    del raw["bot"]
    with pytest.raises(ValueError, match="'bot' is None"):
        alert_from_json(raw)


@pytest.mark.parametrize(
    ("made", "told"),
    [
        (event(state="pending"), False),
        (event(state="firing"), True),
        (event(state="firing", repeat=True), True),
        (event(state="resolved", fired=True), True),
        (event(state="resolved", fired=False), False),  # was only pending
    ],
)
def test_people_hear_of_firing_repeats_and_the_end_of_what_fired(
    made: AlertEvent, told: bool
) -> None:
    assert notifies(made) is told


def test_silence_began_when_the_bot_was_last_heard_latency_when_it_fired() -> None:
    assert began_s(event(value=125.0, at_s=T0)) == T0 - 125.0
    assert began_s(event(value=None, at_s=T0, since_s=T0 - 5)) == T0 - 5
    assert began_s(event(kind="latency", value=900.0, at_s=T0, since_s=T0 - 60)) == T0 - 60


# --- --notify values -----------------------------------------------------------------------


def test_a_plain_url_goes_to_apprise_unchanged_and_takes_every_alert() -> None:
    url = "tgram://123456:ABC-def/-100200300?format=markdown&silent=yes"
    spec = parse_channel(url, 1)
    assert spec == ChannelSpec(1, url, "tgram")
    assert spec.accepts(event(bot="anything", rule="whatever"))


def test_the_relays_parameters_are_taken_off_the_url() -> None:
    spec = parse_channel(
        "mailto://user:pw@example.com?to=a@example.com,b@example.com&bots=bot:pingpong/gate-*,"
        "bot:pingpong/desk-1&rules=silence&from=relay@example.com&rules=latency",
        3,
    )
    assert (
        spec.url
        == "mailto://user:pw@example.com?to=a@example.com,b@example.com&from=relay@example.com"
    )
    assert spec.bots == ("bot:pingpong/gate-*", "bot:pingpong/desk-1")
    assert spec.rules == ("silence", "latency")
    assert spec.scheme == "mailto"
    assert spec.position == 3


def test_only_filter_parameters_leaves_no_query() -> None:
    spec = parse_channel("json://127.0.0.1:8080/hook?bots=gate-%2A%2C&bots=desk", 1)
    assert spec.url == "json://127.0.0.1:8080/hook"
    # Percent-encoding is undone after the split on commas: an encoded comma is data.
    assert spec.bots == ("gate-*,", "desk")


@pytest.mark.parametrize(
    ("bots", "rules", "made", "accepted"),
    [
        (("bot:pingpong/gate-*",), (), event(bot="bot:pingpong/gate-7"), True),
        (("bot:pingpong/gate-*",), (), event(bot="bot:pingpong/desk-1"), False),
        (("gate-?", "desk-*"), (), event(bot="desk-99"), True),
        (("GATE-*",), (), event(bot="gate-1"), False),  # case-sensitive, like alert rules
        ((), ("silence",), event(kind="latency"), False),
        ((), ("silence", "latency"), event(kind="latency"), True),
        (("gate-*",), ("silence",), event(bot="gate-1", kind="latency"), False),
        (("gate-*",), ("silence",), event(bot="gate-1"), True),
    ],
)
def test_a_channel_is_told_only_of_its_bots_and_rules(
    bots: tuple[str, ...], rules: tuple[str, ...], made: AlertEvent, accepted: bool
) -> None:
    assert ChannelSpec(1, "json://x", "json", bots, rules).accepts(made) is accepted


@pytest.mark.parametrize(
    "text", ["", "no scheme", "://host", "tgram:/token", "bad scheme://x", "x_y://z"]
)
def test_what_is_not_an_apprise_url_is_refused_by_position(text: str) -> None:
    with pytest.raises(ValueError, match=r"^notification channel 4: not an Apprise URL"):
        parse_channel(text, 4)


@pytest.mark.parametrize("query", ["bots=", "rules=a,,b", "bots=%20"])
def test_an_empty_filter_is_refused_without_quoting_the_url(query: str) -> None:
    with pytest.raises(ValueError, match="needs a comma-separated list") as caught:
        parse_channel(f"TGRAM://secret-token/chat?{query}", 2)
    message = str(caught.value)
    assert message.startswith("notification channel 2 (tgram://…): ")
    assert "secret-token" not in message


def test_a_channel_is_named_by_position_and_scheme_only() -> None:
    assert parse_channel("discord://webhook-id/webhook-token", 5).name == "channel 5 (discord://…)"


# --- words ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-3, "0s"),
        (0, "0s"),
        (1.5, "1.5s"),
        (9.94, "9.9s"),
        (10, "10s"),
        (59.6, "1m"),
        (120, "2m"),
        (130, "2m 10s"),
        (3600, "1h"),
        (3900, "1h 5m"),
        (3905, "1h 5m"),
        (86_400 + 7200 + 59, "1d 2h"),
        (86_400 + 59, "1d"),
    ],
)
def test_durations_read_as_people_write_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_times_are_utc_iso_to_the_second() -> None:
    assert iso_utc(T0 + 3661.7) == "2026-01-01T01:01:01Z"


@pytest.mark.parametrize("public_url", ["https://relay.example.com", "https://relay.example.com/"])
def test_the_dashboard_link_opens_the_bot(public_url: str) -> None:
    assert dashboard_link(public_url) == "https://relay.example.com/"
    assert (
        dashboard_link(public_url, "bot:x/y z") == "https://relay.example.com/?bot=bot%3Ax%2Fy%20z"
    )


def one(made: AlertEvent, started_s: float | None = None, public_url: str | None = None) -> Any:
    return render([Transition(made, started_s)], public_url)


def test_a_silent_bot_firing() -> None:
    made = event(value=125.0, summary="gate-1 silent for 125 s (timeout 30 s)")
    sent = one(made, began_s(made), "https://relay.example.com")
    assert sent.title == f"[FIRING] {GATE} silent for 2m 5s (rule silence)"
    assert sent.severity == "failure"
    assert sent.body.splitlines() == [
        "gate-1 silent for 125 s (timeout 30 s)",
        "",
        f"Bot: {GATE}",
        "Rule: silence",
        "Value: silent for 125 s, threshold 30 s",
        "Since: 2025-12-31T23:57:55Z (2m 5s)",
        "Dashboard: https://relay.example.com/?bot=bot%3Apingpong%2Fgate-1",
    ]
    assert sent.transitions == (Transition(made, T0 - 125.0),)


def test_a_slow_bot_firing_names_its_rule_and_kind() -> None:
    made = event(kind="latency", rule="p95-slow", value=612.54, threshold=500.0)
    sent = one(made, T0)
    assert sent.title == f"[FIRING] {GATE} latency 612.5 ms above 500.0 ms (rule p95-slow)"
    assert "Rule: p95-slow (latency)" in sent.body
    assert "Value: 612.5 ms, threshold 500.0 ms" in sent.body
    assert "Since: 2026-01-01T00:00:00Z" in sent.body.splitlines()  # no "(0s)"
    assert "Dashboard" not in sent.body  # no public URL, no link


def test_a_repeat_says_it_still_fires_and_for_how_long() -> None:
    made = event(kind="latency", value=700.0, repeat=True, since_s=T0 - 3600, at_s=T0)
    sent = one(made, T0 - 3600)
    assert sent.title.endswith("(rule latency, still firing)")
    assert "Since: 2025-12-31T23:00:00Z (1h)" in sent.body


def test_a_resolution_says_how_long_it_lasted() -> None:
    made = event(state="resolved", value=0.4, at_s=T0 + 300)
    sent = one(made, T0 - 125.0)
    assert sent.title == f"[RESOLVED] {GATE} sending again (rule silence)"
    assert sent.severity == "success"
    assert "From 2025-12-31T23:57:55Z to 2026-01-01T00:05:00Z (7m 5s)" in sent.body


def test_a_resolution_whose_firing_was_not_seen_says_when() -> None:
    sent = one(event(state="resolved", value=0.4, at_s=T0 + 300))
    assert "Resolved: 2026-01-01T00:05:00Z" in sent.body


@pytest.mark.parametrize(
    ("made", "headline"),
    [
        (event(kind="latency", state="resolved", value=120.0), "latency 120.0 ms back at or below"),
        (event(kind="latency", state="resolved", value=None), "latency has no samples"),
        (event(value=None), "silent for 0s"),
    ],
)
def test_headlines_of_each_kind_and_state(made: AlertEvent, headline: str) -> None:
    assert headline in one(made).title


def test_nothing_to_render_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        render([])


# --- groups --------------------------------------------------------------------------------


def silent(count: int, at_s: float = T0, prefix: str = "bot:pingpong/desk-") -> list[Transition]:
    made = [event(bot=f"{prefix}{n}", at_s=at_s) for n in range(count)]
    return [Transition(e, began_s(e)) for e in made]


def test_many_silent_bots_are_one_notification_listing_them() -> None:
    sent = render(silent(20), "https://relay.example.com")
    assert sent.title == "[FIRING] 20 bots: silent (rule silence)"
    lines = sent.body.splitlines()
    assert lines[0] == "FIRING, rule silence (20):"
    assert lines[1:21] == [
        f"- bot:pingpong/desk-{n}: silent for 2m 5s, since 2025-12-31T23:57:55Z" for n in range(20)
    ]
    assert lines[21:] == ["", "Dashboard: https://relay.example.com/"]
    assert len(sent.transitions) == 20


def test_a_long_list_is_capped_with_a_count_of_the_rest() -> None:
    sent = render(silent(MAX_LISTED + 15))
    lines = sent.body.splitlines()
    assert sent.title == f"[FIRING] {MAX_LISTED + 15} bots: silent (rule silence)"
    assert len([line for line in lines if line.startswith("- ")]) == MAX_LISTED
    assert lines[-1] == "… and 15 more"
    assert len(sent.transitions) == MAX_LISTED + 15  # all of them, for whoever needs them


def test_a_mixed_group_has_a_section_per_state_and_rule() -> None:
    slow = event(bot="bot:b", kind="latency", value=900.0)
    back = event(bot="bot:c", state="resolved", value=0.3, at_s=T0 + 60)
    group = [*silent(2), Transition(slow, T0), Transition(back, T0 - 60)]
    sent = render(group)
    assert sent.title == "[FIRING] 3 bots, [RESOLVED] 1 bot: rules latency, silence"
    assert sent.severity == "warning"
    sections = [line for line in sent.body.splitlines() if line.endswith(":")]
    assert sections == [
        "FIRING, rule latency (1):",
        "FIRING, rule silence (2):",
        "RESOLVED, rule silence (1):",
    ]
    assert "- bot:c: sending again, lasted 2m" in sent.body


def test_a_bot_with_two_alerts_counts_once_in_the_title() -> None:
    quiet = Transition(event(bot=GATE), T0 - 125.0)
    slow = Transition(event(bot=GATE, kind="latency", value=900.0), T0)
    sent = render([quiet, slow])
    assert sent.title == "[FIRING] 1 bot: rules latency, silence"


def test_a_group_of_resolutions() -> None:
    made = [event(bot=f"b{n}", state="resolved", value=0.1, at_s=T0 + 90) for n in range(3)]
    sent = render([Transition(made[0], T0), Transition(made[1], None), Transition(made[2], T0)])
    assert sent.title == "[RESOLVED] 3 bots: sending again (rule silence)"
    assert sent.severity == "success"
    assert "- b0: sending again, lasted 1m 30s" in sent.body
    assert "- b1: sending again, at 2026-01-01T00:01:30Z" in sent.body


def test_a_group_of_slow_bots() -> None:
    made = [event(bot=f"b{n}", kind="latency", value=600.0 + n) for n in range(2)]
    sent = render([Transition(e, T0) for e in made])
    assert sent.title == "[FIRING] 2 bots: latency above threshold (rule latency)"
    resolved = [event(bot=f"b{n}", kind="latency", state="resolved", value=1.0) for n in range(2)]
    sent = render([Transition(e, T0) for e in resolved])
    assert sent.title == "[RESOLVED] 2 bots: latency back at or below threshold (rule latency)"
