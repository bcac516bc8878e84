"""Subscription groups in the hub: each group gets what it wants, peers move between groups."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pingpong_relay.hub import BroadcastResult, Hub
from pingpong_relay.subscriptions import DEFAULT_SUBSCRIPTION, Subscription
from tests.unit.hub.support import (
    LIMIT_BYTES,
    PAYLOAD,
    STATUS_ONLY,
    BrokenPeer,
    FakePeer,
    populate,
    send,
)

# --- subscription groups ---------------------------------------------------------------------


EVERYTHING = DEFAULT_SUBSCRIPTION
PINGS_ONLY = Subscription(types=frozenset({"ping"}))
ALPHA_BOTS = Subscription(bots=("bot:alpha*",))
BETA_WITH_STATUS = Subscription(bots=("bot:beta",), events=frozenset({"pingpong", "status"}))


@dataclass
class Grouped:
    everything: FakePeer
    everything_too: FakePeer
    pings: FakePeer
    alpha: FakePeer
    status: FakePeer
    beta: FakePeer

    def all(self) -> list[FakePeer]:
        return [
            self.everything,
            self.everything_too,
            self.pings,
            self.alpha,
            self.status,
            self.beta,
        ]


@pytest.fixture
def grouped(hub: Hub) -> Grouped:
    peers = Grouped(
        everything=FakePeer("CLIENT-everything", subscription=EVERYTHING),
        # An equal but distinct Subscription object: same group as `everything`.
        everything_too=FakePeer("CLIENT-everything-too", subscription=Subscription()),
        pings=FakePeer("CLIENT-pings", subscription=PINGS_ONLY),
        alpha=FakePeer("CLIENT-alpha", subscription=ALPHA_BOTS),
        status=FakePeer("CLIENT-status", subscription=STATUS_ONLY),
        beta=FakePeer("CLIENT-beta", subscription=BETA_WITH_STATUS),
    )
    populate(hub, *peers.all())
    return peers


def receivers(peers: list[FakePeer], payload: bytes) -> set[str]:
    return {peer.client_id for peer in peers if payload in peer.sent}


@pytest.mark.parametrize(
    ("event", "bot", "kind", "expected"),
    [
        (
            "pingpong",
            "bot:alpha/gate-1",
            "ping",
            {"CLIENT-everything", "CLIENT-everything-too", "CLIENT-pings", "CLIENT-alpha"},
        ),
        (
            "pingpong",
            "bot:alpha",
            "pong",
            {"CLIENT-everything", "CLIENT-everything-too", "CLIENT-alpha"},
        ),
        (
            "pingpong",
            "bot:beta",
            "pong",
            {"CLIENT-everything", "CLIENT-everything-too", "CLIENT-beta"},
        ),
        (
            "pingpong",
            "bot:beta",
            "ping",
            {"CLIENT-everything", "CLIENT-everything-too", "CLIENT-pings", "CLIENT-beta"},
        ),
        ("pingpong", "bot:gamma", "pong", {"CLIENT-everything", "CLIENT-everything-too"}),
        ("status", "bot:beta", None, {"CLIENT-status", "CLIENT-beta"}),
        ("status", "bot:alpha", None, {"CLIENT-status"}),
        ("status", None, None, {"CLIENT-status", "CLIENT-beta"}),
        ("alerts", None, None, set()),
        ("stats", "bot:alpha", None, set()),
    ],
)
def test_each_group_receives_exactly_what_it_wants(
    hub: Hub,
    grouped: Grouped,
    event: str,
    bot: str | None,
    kind: str | None,
    expected: set[str],
) -> None:
    payload = b'{"type":"test"}'
    assert hub.recipients(event, bot, kind) == len(expected)
    result = send(hub, payload, event, bot, kind)
    assert result == BroadcastResult(delivered=len(expected), failed=0, slow_closed=0)
    assert receivers(grouped.all(), payload) == expected
    for peer in grouped.all():
        assert len(peer.sent) == (1 if peer.client_id in expected else 0)


def test_equal_subscriptions_share_one_group(hub: Hub, grouped: Grouped) -> None:
    warm = Subscription(types=frozenset({"ping"}))
    warm.wants_bot("bot:warm-the-cache")
    hub.add(FakePeer("CLIENT-pings-too", subscription=warm))
    assert len(hub.audience.groups) == 5
    assert set(hub.audience.groups[PINGS_ONLY].members) == {"CLIENT-pings", "CLIENT-pings-too"}
    assert set(hub.audience.groups[EVERYTHING].members) == {
        "CLIENT-everything",
        "CLIENT-everything-too",
    }


def test_one_payload_object_reaches_every_group(hub: Hub, grouped: Grouped) -> None:
    payload = bytes(bytearray(b'{"type":"bot:pingpong"}'))  # a fresh object, not interned
    send(hub, payload, "pingpong", "bot:alpha", "ping")
    got_it = [peer for peer in grouped.all() if peer.sent]
    assert len(got_it) == 4
    for peer in got_it:
        assert peer.sent == [payload]
        assert peer.writes[0] is got_it[0].writes[0]


def test_resubscribe_moves_a_peer_between_groups(hub: Hub, grouped: Grouped) -> None:
    pings = grouped.pings
    hub.resubscribe(pings, STATUS_ONLY)
    assert pings.subscription == STATUS_ONLY
    # Its old group was emptied and is gone; its new group has both members.
    assert PINGS_ONLY not in hub.audience.groups
    assert set(hub.audience.groups[STATUS_ONLY].members) == {"CLIENT-status", "CLIENT-pings"}
    assert len(hub) == 6
    assert hub.recipients("pingpong", "bot:gamma", "ping") == 2
    assert hub.recipients("status", "bot:gamma") == 2
    send(hub, b"ping", "pingpong", "bot:gamma", "ping")
    send(hub, b"status", "status", "bot:gamma")
    assert pings.sent == [b"status"]
    assert grouped.status.sent == [b"status"]
    assert grouped.everything.sent == [b"ping"]


def test_resubscribe_out_of_a_shared_group_keeps_the_group(hub: Hub, grouped: Grouped) -> None:
    hub.resubscribe(grouped.everything, PINGS_ONLY)
    assert set(hub.audience.groups[EVERYTHING].members) == {"CLIENT-everything-too"}
    assert set(hub.audience.groups[PINGS_ONLY].members) == {"CLIENT-pings", "CLIENT-everything"}
    assert hub.recipients("pingpong", "bot:gamma", "pong") == 1  # everything-too
    assert hub.recipients("pingpong", "bot:gamma", "ping") == 3  # + pings, everything


def test_resubscribe_to_an_equal_subscription_keeps_one_group(hub: Hub) -> None:
    peer = FakePeer("CLIENT-1", subscription=PINGS_ONLY)
    populate(hub, peer)
    hub.resubscribe(peer, Subscription(types=frozenset({"ping"})))
    assert list(hub.audience.groups) == [PINGS_ONLY]
    assert set(hub.audience.groups[PINGS_ONLY].members) == {"CLIENT-1"}
    assert send(hub, PAYLOAD, "pingpong", "bot:a", "ping").delivered == 1


def test_resubscribe_of_an_unknown_peer_only_sets_its_subscription(hub: Hub) -> None:
    stranger = FakePeer("CLIENT-stranger")
    hub.resubscribe(stranger, STATUS_ONLY)
    assert stranger.subscription == STATUS_ONLY
    assert hub.audience.groups == {}
    assert hub.recipients("status") == 0
    assert send(hub, PAYLOAD, "status") == BroadcastResult(0, 0, 0)
    assert stranger.sent == []


def test_removing_a_peer_removes_it_from_its_group(hub: Hub, grouped: Grouped) -> None:
    hub.remove(grouped.alpha, "bye")
    assert ALPHA_BOTS not in hub.audience.groups
    assert hub.recipients("pingpong", "bot:alpha", "pong") == 2
    hub.remove(grouped.everything, "bye")
    assert set(hub.audience.groups[EVERYTHING].members) == {"CLIENT-everything-too"}
    assert hub.recipients("pingpong", "bot:alpha", "pong") == 1
    send(hub, PAYLOAD, "pingpong", "bot:alpha", "pong")
    assert grouped.alpha.sent == []
    assert grouped.everything.sent == []
    assert grouped.everything_too.sent == [PAYLOAD]


def test_removing_every_peer_leaves_no_groups(hub: Hub, grouped: Grouped) -> None:
    for peer in grouped.all():
        hub.remove(peer, "bye")
    assert hub.audience.groups == {}
    assert hub.recipients("pingpong") == 0
    assert hub.recipients("status") == 0


def test_a_resubscribed_peer_leaves_the_right_group_when_removed(
    hub: Hub, grouped: Grouped
) -> None:
    hub.resubscribe(grouped.pings, ALPHA_BOTS)
    hub.remove(grouped.pings, "bye")
    assert PINGS_ONLY not in hub.audience.groups
    assert set(hub.audience.groups[ALPHA_BOTS].members) == {"CLIENT-alpha"}
    assert hub.recipients("pingpong", "bot:alpha", "ping") == 3


def test_a_peer_dropped_by_broadcast_leaves_its_group(closing: Hub) -> None:
    hub = closing
    keeper = FakePeer("CLIENT-keeper", subscription=STATUS_ONLY)
    broken = BrokenPeer("CLIENT-broken", subscription=PINGS_ONLY)
    slow = FakePeer("CLIENT-slow", subscription=ALPHA_BOTS, buffered=LIMIT_BYTES + 1)
    populate(hub, keeper, broken, slow)
    result = send(hub, PAYLOAD, "pingpong", "bot:alpha", "ping")
    assert result == BroadcastResult(delivered=0, failed=1, slow_closed=1)
    assert list(hub.audience.groups) == [STATUS_ONLY]
    assert hub.recipients("pingpong", "bot:alpha", "ping") == 0
