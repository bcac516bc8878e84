"""The fan-out lists (conflate policy): written with no per-peer check, kept up to date.

Every other hub test runs on this path too (the `hub` fixture is parametrized); these pin
down what is particular to it: the list is reused while nothing changes, rebuilt when a
peer joins, leaves, closes, backs up or drains, and a change during a flush hands the rest
of the group to the checked path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pingpong_relay.hub import BroadcastResult, Hub
from pingpong_relay.subscriptions import DEFAULT_SUBSCRIPTION
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.wire_types import CONFLATED_TYPE
from tests.unit.hub.support import (
    LIMIT_BYTES,
    PAYLOAD,
    BrokenPeer,
    FakePeer,
    healthy_peers,
    populate,
    sample,
    send,
)


@pytest.fixture
def conflating(metrics: RelayMetrics) -> Hub:
    return Hub(metrics, max_client_buffer_bytes=LIMIT_BYTES, slow_client="conflate")


def writers(hub: Hub) -> list[Callable[[bytes], None]] | None:
    return hub.audience.groups[DEFAULT_SUBSCRIPTION].writers


@dataclass
class PausingPeer(FakePeer):
    """A peer whose write fills its socket's buffer: the transport pauses it at once."""

    hub: Hub | None = None

    def write(self, data: bytes) -> None:
        super().write(data)
        if self.hub is not None:
            self.hub.pause(self)


def test_the_list_is_reused_until_the_group_changes(conflating: Hub) -> None:
    hub = conflating
    first, second = healthy_peers(2)
    populate(hub, first, second)
    send(hub, PAYLOAD)
    built = writers(hub)
    assert built is not None
    assert len(built) == 2
    send(hub, PAYLOAD)
    assert writers(hub) is built, "nothing changed: the same list"

    third = FakePeer("CLIENT-third")
    hub.add(third)
    assert writers(hub) is None, "a join makes it stale"
    send(hub, PAYLOAD)
    assert third.sent == [PAYLOAD]
    assert first.sent == second.sent == [PAYLOAD] * 3

    hub.remove(second, "bye")
    assert writers(hub) is None, "a leave makes it stale"
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=2, failed=0, slow_closed=0)
    assert len(second.sent) == 3


def test_a_closing_peer_gets_nothing_more(conflating: Hub) -> None:
    hub = conflating
    keeper, leaver = healthy_peers(2)
    populate(hub, keeper, leaver)
    send(hub, PAYLOAD)
    leaver.close(1001, b"going away")
    hub.closing(leaver)  # what the WebSocket binding says after its close frame
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=1, failed=0, slow_closed=0)
    assert leaver.sent == [PAYLOAD]
    assert keeper.sent == [PAYLOAD, PAYLOAD]
    assert leaver in hub.peers(), "still connected until its close is answered"


def test_a_failure_mid_list_drops_that_peer_only(conflating: Hub, metrics: RelayMetrics) -> None:
    hub = conflating
    before, after = FakePeer("CLIENT-before"), FakePeer("CLIENT-after")
    broken = BrokenPeer("CLIENT-broken")
    populate(hub, before, broken, after)
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=2, failed=1, slow_closed=0)
    assert before.sent == after.sent == [PAYLOAD]
    assert broken not in hub.peers()
    assert sample(metrics, "pingpong_send_failures_total") == 1
    assert sample(metrics, "pingpong_deliveries_total") == 2
    # The next flush uses a list without it.
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=2, failed=0, slow_closed=0)


def test_a_peer_backed_up_by_its_own_write_goes_to_conflation(
    conflating: Hub, metrics: RelayMetrics
) -> None:
    hub = conflating
    first, last = FakePeer("CLIENT-first"), FakePeer("CLIENT-last")
    pausing = PausingPeer("CLIENT-pausing", hub=hub)
    populate(hub, first, pausing, last)
    assert send(hub, PAYLOAD, key="k") == BroadcastResult(delivered=3, failed=0, slow_closed=0)
    assert writers(hub) is None, "backing up makes the list stale"

    # While backed up: the newest per key waits for it; the others are written to.
    newer = PAYLOAD.replace(b'"ping"', b'"pong"')
    for payload in (PAYLOAD, newer):
        assert send(hub, payload, key="k").delivered == 2
    assert pausing.sent == [PAYLOAD]
    assert first.sent == last.sent == [PAYLOAD, PAYLOAD, newer]
    group = hub.audience.groups[DEFAULT_SUBSCRIPTION]
    assert group.stalled == [pausing]

    # Drained: the newest, after a notice of what was skipped; then back in the list.
    pausing.hub = None  # its socket keeps up from now on
    hub.resume(pausing)
    assert pausing.sent[1:] == [b'{"type":"%s","skipped":1}' % CONFLATED_TYPE.encode(), newer]
    assert sample(metrics, "pingpong_conflated_total") == 1
    send(hub, PAYLOAD, key="k")
    assert pausing.sent[-1] == PAYLOAD
    assert group.stalled == []
    assert len(writers(hub) or []) == 3
