"""One write per peer per loop turn, and conflation for backed-up peers (hub.py)."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from pingpong_relay.codes import REASON_SLOW, CloseCode
from pingpong_relay.hub import BroadcastResult, Hub
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.unit.hub.support import (
    LIMIT_BYTES,
    PAYLOAD,
    STATUS_ONLY,
    FakePeer,
    healthy_peers,
    populate,
    sample,
    send,
)

# --- one write per peer per loop turn; conflation for backed-up peers --------------------


def test_messages_queued_in_one_turn_reach_each_peer_in_one_write(hub: Hub) -> None:
    peers = healthy_peers(3)
    populate(hub, *peers)
    for n in range(4):
        hub.broadcast(b'{"n":%d}' % n)
    assert all(peer.writes == [] for peer in peers)  # nothing until the flush
    assert hub.flush() == BroadcastResult(delivered=12, failed=0, slow_closed=0)
    for peer in peers:
        assert len(peer.writes) == 1
        assert peer.sent == [b'{"n":%d}' % n for n in range(4)]
    assert hub.flush() == BroadcastResult(0, 0, 0)  # nothing left


async def test_the_running_loop_flushes_on_its_next_turn(hub: Hub) -> None:
    peer = FakePeer("CLIENT-1")
    populate(hub, peer)
    hub.broadcast(PAYLOAD)
    hub.broadcast(PAYLOAD)
    assert peer.writes == []
    await asyncio.sleep(0)  # one loop turn, not a timed wait
    assert len(peer.writes) == 1
    assert peer.sent == [PAYLOAD, PAYLOAD]


def test_a_peer_that_joins_gets_nothing_queued_before_it_joined(hub: Hub) -> None:
    first = FakePeer("CLIENT-1")
    populate(hub, first)
    hub.broadcast(b"before")
    late = FakePeer("CLIENT-2")
    hub.add(late)  # same subscription, so the same group as the queued message
    held = hub.hold(late)  # a replaying client is held at once (its replay covers "before")
    hub.broadcast(b"after")
    hub.flush()
    assert first.sent == [b"before", b"after"]
    assert late.sent == []
    assert held == []  # and nothing recorded arrived meanwhile


def test_a_reply_comes_after_what_was_queued_before_it(hub: Hub) -> None:
    peer = FakePeer("CLIENT-1")
    populate(hub, peer)
    hub.broadcast(b"first")
    hub.send_to(peer, b"reply")
    hub.broadcast(b"second")
    hub.flush()
    assert peer.sent == [b"first", b"reply", b"second"]


def test_resubscribing_mid_turn_keeps_what_the_old_group_queued(hub: Hub) -> None:
    peer = FakePeer("CLIENT-1")
    populate(hub, peer)
    hub.broadcast(b"queued for the old group", "pingpong", "bot:a", "ping")
    hub.resubscribe(peer, STATUS_ONLY)
    hub.broadcast(b"status", "status", "bot:a")
    hub.flush()
    assert peer.sent == [b"queued for the old group", b"status"]


@pytest.fixture
def conflating(metrics: RelayMetrics) -> Hub:
    return Hub(metrics, max_client_buffer_bytes=LIMIT_BYTES, slow_client="conflate")


def beat(bot: str, n: int) -> bytes:
    return b'{"bot":"%s","n":%d}' % (bot.encode(), n)


def test_a_backed_up_peer_gets_the_newest_per_key_and_the_skip_count(
    conflating: Hub, metrics: RelayMetrics
) -> None:
    slow, fast = FakePeer("CLIENT-slow"), FakePeer("CLIENT-fast")
    populate(conflating, slow, fast)
    conflating.pause(slow)
    sequence = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2), ("c", 1)]
    for bot, n in sequence:
        conflating.broadcast(beat(bot, n), key=("pingpong", bot, "ping"))
    conflating.send_to(slow, b"an ack")  # replies are never skipped (and flush first)
    conflating.flush()
    assert fast.sent == [beat(bot, n) for bot, n in sequence]
    assert slow.writes == []
    conflating.resume(slow)
    assert len(slow.writes) == 1  # the backlog goes out in one write
    notice, *rest = slow.sent
    assert orjson.loads(notice) == {"type": "relay:conflated", "skipped": 3}
    # Newest per bot, in the order each last changed; the ack where it was queued.
    assert rest == [beat("a", 3), beat("b", 2), beat("c", 1), b"an ack"]
    assert sample(metrics, "pingpong_conflated_total") == 3
    conflating.broadcast(beat("a", 4), key=("pingpong", "a", "ping"))
    conflating.flush()
    assert slow.sent[-1] == beat("a", 4)  # live again once drained


def test_unkeyed_messages_are_never_skipped(conflating: Hub) -> None:
    slow = FakePeer("CLIENT-slow")
    populate(conflating, slow)
    conflating.pause(slow)
    for n in range(3):
        conflating.broadcast(b"%d" % n)  # no key: each one counts
    conflating.flush()
    conflating.resume(slow)
    assert slow.sent == [b"0", b"1", b"2"]  # nothing skipped, so no notice


def test_a_drained_peer_with_nothing_waiting_gets_nothing(conflating: Hub) -> None:
    peer = FakePeer("CLIENT-1")
    populate(conflating, peer)
    conflating.pause(peer)
    conflating.resume(peer)
    assert peer.writes == []


def test_close_policy_ignores_back_pressure_and_closes_past_the_limit(closing: Hub) -> None:
    hub = closing
    slow = FakePeer("CLIENT-slow")
    populate(hub, slow)
    hub.pause(slow)  # the "close" hub keeps writing to the transport's buffer
    hub.broadcast(PAYLOAD)
    hub.flush()
    assert slow.sent == [PAYLOAD]
    slow.buffered = LIMIT_BYTES + 1
    assert send(hub, PAYLOAD).slow_closed == 1
    assert slow.closes == [(CloseCode.SLOW_CLIENT, REASON_SLOW)]


def test_a_removed_backed_up_peer_leaves_no_backlog(conflating: Hub) -> None:
    slow = FakePeer("CLIENT-slow")
    populate(conflating, slow)
    conflating.pause(slow)
    conflating.broadcast(PAYLOAD, key="k")
    conflating.flush()
    conflating.remove(slow, "gone")
    conflating.resume(slow)  # a late drain callback after the disconnect
    assert slow.writes == []


def test_the_written_callback_runs_after_the_write_not_when_queued(hub: Hub) -> None:
    peer = FakePeer("CLIENT-1")
    populate(hub, peer)
    seen: list[int] = []
    hub.deliver(PAYLOAD, hub.targets(), written=lambda: seen.append(len(peer.sent)))
    assert seen == []  # queued, not written yet
    hub.flush()
    assert seen == [1]
    hub.deliver(PAYLOAD, [], written=lambda: seen.append(-1))  # nobody to write to: at once
    assert seen == [1, -1]
