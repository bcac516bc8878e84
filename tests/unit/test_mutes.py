"""Mutes (pure): what a mute covers and when, the API body's errors, and the gate."""

from __future__ import annotations

from typing import Any

import pytest

from pingpong_relay.http.middleware import is_loopback_peer
from pingpong_relay.mutes import Mute, MuteError, covering, mute_from_body, split_mutes
from pingpong_relay.notify.mutes import MuteGate

NOW = 1_800_000_000.0
GATE = "bot:pingpong/gate-1"


def _mute(starts: float = NOW - 10, ends: float = NOW + 10, **kw: Any) -> Mute:
    return Mute(
        kw.get("id", "m1"),
        kw.get("bots", ("bot:pingpong/gate-*",)),
        kw.get("rules", ()),
        starts,
        ends,
    )


def test_a_mute_covers_its_patterns_and_rules_only_while_in_force() -> None:
    mute = _mute(rules=("silence",))
    assert mute.covers(GATE, "silence")
    assert not mute.covers(GATE, "latency")
    assert not mute.covers("bot:pingpong/other", "silence")
    assert covering([mute], GATE, "silence", NOW) is mute
    assert covering([mute], GATE, "silence", NOW + 10) is None  # ended
    assert covering([_mute(starts=NOW + 5)], GATE, "silence", NOW) is None  # scheduled


def test_split_lists_active_and_scheduled_and_drops_ended() -> None:
    active, scheduled, ended = (
        _mute(id="a"),
        _mute(NOW + 60, NOW + 120, id="s"),
        _mute(NOW - 20, NOW - 1, id="e"),
    )
    assert split_mutes([scheduled, ended, active], NOW) == ([active], [scheduled])


def test_a_body_with_a_duration_or_a_window_makes_a_mute() -> None:
    mute = mute_from_body(
        {"bots": ["bot:pingpong/gate-*"], "duration": "2h", "comment": "maintenance"},
        mute_id="x",
        now_s=NOW,
    )
    assert (mute.starts_at_s, mute.ends_at_s, mute.rules) == (NOW, NOW + 7200, ())
    window = mute_from_body(
        {
            "bots": "bot:*",
            "rules": ["silence"],
            "starts_at": "2027-01-15T08:00:00Z",
            "ends_at": "2027-01-15T10:00:00+00:00",
        },
        mute_id="y",
        now_s=NOW,
    )
    assert window.ends_at_s - window.starts_at_s == 7200
    assert window.rules == ("silence",)
    assert Mute.from_json(window.to_json()) == window


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"duration": "1h"}, "bots"),
        ({"bots": [], "duration": "1h"}, "bots"),
        ({"bots": [""], "duration": "1h"}, "bots"),
        ({"bots": ["b"], "rules": [3], "duration": "1h"}, "rules"),
        ({"bots": ["b"]}, "duration"),
        ({"bots": ["b"], "duration": "soon"}, "duration"),
        ({"bots": ["b"], "duration": "0s"}, "duration"),
        ({"bots": ["b"], "duration": True}, "duration"),
        ({"bots": ["b"], "duration": "1h", "ends_at": "2027-01-01T00:00Z"}, "duration"),
        ({"bots": ["b"], "ends_at": "tomorrow"}, "ends_at"),
        ({"bots": ["b"], "ends_at": "2027-01-01T00:00"}, "ends_at"),  # no offset
        ({"bots": ["b"], "ends_at": "2020-01-01T00:00Z"}, "ends_at"),  # past
        (
            {"bots": ["b"], "starts_at": "2027-01-02T00:00Z", "ends_at": "2027-01-01T00:00Z"},
            "ends_at",
        ),
        # Past what a stored mute can hold (found by schemathesis: a 500 on storing it).
        ({"bots": ["b"], "duration": "1h", "starts_at": 1.3e308}, "starts_at"),
        ({"bots": ["b"], "duration": "1h", "starts_at": 10**13 + 1}, "starts_at"),
        ({"bots": ["b"], "duration": "1h", "starts_at": "9999-12-30T00:00Z"}, "starts_at"),
        ({"bots": ["b"], "duration": "1h", "comment": 5}, "comment"),
        ({"bots": ["b"], "duration": "1h", "until": "x"}, "until"),
    ],
)
def test_a_bad_body_names_its_field(body: Any, field: str) -> None:
    with pytest.raises(MuteError) as caught:
        mute_from_body(body, mute_id="x", now_s=NOW)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def _alert(state: str, bot: str = GATE) -> dict[str, Any]:
    return {"type": "bot:alert", "rule": "silence", "bot": bot, "state": state, "at_ms": 0}


def test_the_gate_holds_muted_alerts_and_sends_a_firing_one_when_its_mute_ends() -> None:
    now = [NOW]
    mutes = [_mute()]
    gate = MuteGate(lambda: mutes, clock=lambda: now[0])
    sent: list[dict[str, Any]] = []
    told: list[dict[str, Any]] = []
    gate.on_unmuted = told.append
    sink = gate.wrap(sent.append)
    sink(_alert("firing"))
    sink(_alert("firing", "bot:pingpong/other"))
    assert [a["bot"] for a in sent] == ["bot:pingpong/other"]
    assert gate.check() == 0
    assert gate.held == 1
    now[0] = NOW + 11  # the mute has ended, the alert still fires
    assert gate.check() == 1
    assert sent[-1]["bot"] == GATE
    assert sent[-1]["state"] == "firing"
    assert sent[-1]["at_ms"] == round(now[0] * 1000)
    assert told == [sent[-1]]
    assert gate.check() == 0  # once


def test_an_alert_resolved_under_its_mute_is_never_sent() -> None:
    mutes = [_mute()]
    now = [NOW]
    gate = MuteGate(lambda: mutes, clock=lambda: now[0])
    sent: list[dict[str, Any]] = []
    sink = gate.wrap(sent.append)
    sink(_alert("firing"))
    sink(_alert("resolved"))
    mutes.clear()  # expired
    assert gate.check() == 0
    assert sent == []
    assert gate.muted(GATE, "silence") is False


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # an IPv4 loopback peer on a dual-stack socket
        ("10.0.0.5", False),
        ("192.168.1.2", False),
        (None, False),
        ("", False),
        ("not-an-ip", False),
    ],
)
def test_only_loopback_peers_count_as_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback_peer(address) is loopback
