"""The hub's broadcast (hub.py): one frame for every peer, failed and slow peers, wait_empty."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import pytest

from pingpong_relay.codes import REASON_SLOW, CloseCode
from pingpong_relay.hub import BroadcastResult, Hub
from pingpong_relay.telemetry.metrics import RelayMetrics
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


@dataclass
class BrokenPeerBrokenClose(BrokenPeer):
    """A peer whose write fails and whose close fails too."""

    def close(self, code: int, reason: bytes) -> None:
        self.closes.append((code, reason))
        raise OSError("bad file descriptor")


@dataclass
class RemovingPeer(FakePeer):
    """A peer whose write synchronously disconnects another peer (as a callback may)."""

    hub: Hub | None = None
    victim: FakePeer | None = None

    def write(self, data: bytes) -> None:
        super().write(data)
        assert self.hub is not None
        assert self.victim is not None
        self.victim.close(CloseCode.GOING_AWAY, b"gone")
        self.hub.remove(self.victim, "disconnected during broadcast")


def test_add_and_remove_update_the_gauges(hub: Hub, metrics: RelayMetrics) -> None:
    first, second = healthy_peers(2)
    populate(hub, first, second)
    assert len(hub) == 2
    assert hub.peers() == [first, second]
    assert sample(metrics, "pingpong_clients_connected") == 2
    assert sample(metrics, "pingpong_connections_total") == 2
    hub.remove(first, "bye")
    hub.remove(first, "bye again")  # a second remove is a no-op
    assert len(hub) == 1
    assert sample(metrics, "pingpong_clients_connected") == 1
    assert sample(metrics, "pingpong_connections_total") == 2


def test_broadcast_writes_one_frame_object_built_once_to_every_peer(
    hub: Hub, metrics: RelayMetrics
) -> None:
    peers = healthy_peers(5)
    populate(hub, *peers)
    result = send(hub, PAYLOAD)
    assert result == BroadcastResult(delivered=5, failed=0, slow_closed=0)
    frame = peers[0].writes[0]
    for peer in peers:
        assert peer.sent == [PAYLOAD]
        # Encoded once, not once per client: one frame written, or one payload sent.
        assert peer.writes[0] is frame
        assert peer.closes == []
    assert sample(metrics, "pingpong_deliveries_total") == 5
    assert sample(metrics, "pingpong_send_failures_total") == 0
    assert sample(metrics, "pingpong_slow_client_closes_total") == 0


def test_broadcast_to_no_peers(hub: Hub, metrics: RelayMetrics) -> None:
    assert send(hub, PAYLOAD) == BroadcastResult(0, 0, 0)
    assert sample(metrics, "pingpong_deliveries_total") == 0


def test_broadcasts_arrive_in_order(hub: Hub) -> None:
    peers = healthy_peers(3)
    populate(hub, *peers)
    payloads = [b"1", b"2", b"3"]
    for payload in payloads:
        send(hub, payload)
    for peer in peers:
        assert peer.sent == payloads


def test_failed_send_drops_only_that_peer(hub: Hub, metrics: RelayMetrics) -> None:
    before, after = healthy_peers(2)
    broken = BrokenPeer("CLIENT-broken")
    populate(hub, before, broken, after)
    result = send(hub, PAYLOAD)
    assert result == BroadcastResult(delivered=2, failed=1, slow_closed=0)
    assert before.sent == [PAYLOAD]
    assert after.sent == [PAYLOAD]
    assert broken.closes == [(CloseCode.GOING_AWAY, b"send failed")]
    assert broken not in hub.peers()
    assert len(hub) == 2
    assert sample(metrics, "pingpong_send_failures_total") == 1
    assert sample(metrics, "pingpong_deliveries_total") == 2
    assert sample(metrics, "pingpong_clients_connected") == 2
    # The next broadcast no longer tries the dropped peer.
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=2, failed=0, slow_closed=0)
    assert sample(metrics, "pingpong_send_failures_total") == 1


def test_failed_send_and_failed_close(hub: Hub, metrics: RelayMetrics) -> None:
    before, after = healthy_peers(2)
    broken = BrokenPeerBrokenClose("CLIENT-broken")
    populate(hub, before, broken, after)
    result = send(hub, PAYLOAD)
    assert result == BroadcastResult(delivered=2, failed=1, slow_closed=0)
    assert broken.closes == [(CloseCode.GOING_AWAY, b"send failed")]
    assert broken not in hub.peers()
    assert before.sent == after.sent == [PAYLOAD]
    assert sample(metrics, "pingpong_send_failures_total") == 1


def test_every_peer_failing(hub: Hub, metrics: RelayMetrics) -> None:
    populate(hub, *(BrokenPeer(f"CLIENT-broken-{index}") for index in range(3)))
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=0, failed=3, slow_closed=0)
    assert len(hub) == 0
    assert sample(metrics, "pingpong_send_failures_total") == 3


def test_slow_peer_is_closed_removed_and_counted(closing: Hub, metrics: RelayMetrics) -> None:
    hub = closing
    before, after = healthy_peers(2)
    slow = FakePeer("CLIENT-slow", buffered=LIMIT_BYTES + 1)
    populate(hub, before, slow, after)
    result = send(hub, PAYLOAD)
    assert result == BroadcastResult(delivered=2, failed=0, slow_closed=1)
    assert slow.sent == []
    assert slow.closes == [(CloseCode.SLOW_CLIENT, REASON_SLOW)]
    # An IntEnum member equals its int at run time; mypy's strict equality calls them disjoint.
    assert CloseCode.SLOW_CLIENT == 4001  # type: ignore[comparison-overlap]
    assert slow not in hub.peers()
    assert before.sent == after.sent == [PAYLOAD]
    assert sample(metrics, "pingpong_slow_client_closes_total") == 1
    assert sample(metrics, "pingpong_send_failures_total") == 0
    assert sample(metrics, "pingpong_clients_connected") == 2


def test_peer_exactly_at_the_buffer_limit_still_receives(hub: Hub, metrics: RelayMetrics) -> None:
    at_limit = FakePeer("CLIENT-full", buffered=LIMIT_BYTES)
    populate(hub, at_limit)
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=1, failed=0, slow_closed=0)
    assert at_limit.sent == [PAYLOAD]
    assert at_limit.closes == []


def test_slow_warning_names_the_client(closing: Hub, caplog: pytest.LogCaptureFixture) -> None:
    hub = closing
    caplog.set_level(logging.WARNING, logger="pingpong_relay.hub")
    populate(hub, FakePeer("CLIENT-slow", buffered=LIMIT_BYTES * 10))
    send(hub, PAYLOAD)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "CLIENT-slow" in warnings[0].getMessage()
    assert getattr(warnings[0], "event", None) == "slow_client_closed"


def test_closed_peer_is_skipped(hub: Hub, metrics: RelayMetrics) -> None:
    open_peer = FakePeer("CLIENT-open")
    closed = FakePeer("CLIENT-closed", open=False)
    populate(hub, closed, open_peer)
    result = send(hub, PAYLOAD)
    assert result == BroadcastResult(delivered=1, failed=0, slow_closed=0)
    assert closed.sent == []
    assert closed.closes == []
    assert open_peer.sent == [PAYLOAD]
    assert sample(metrics, "pingpong_deliveries_total") == 1


def test_closed_slow_peer_is_skipped_not_counted_as_slow(hub: Hub, metrics: RelayMetrics) -> None:
    closing = FakePeer("CLIENT-closing", open=False, buffered=LIMIT_BYTES * 10)
    populate(hub, closing)
    assert send(hub, PAYLOAD) == BroadcastResult(delivered=0, failed=0, slow_closed=0)
    assert closing.closes == []
    assert sample(metrics, "pingpong_slow_client_closes_total") == 0


def test_removal_during_broadcast_does_not_break_iteration(hub: Hub) -> None:
    first, victim, last = FakePeer("CLIENT-1"), FakePeer("CLIENT-3"), FakePeer("CLIENT-4")
    remover = RemovingPeer("CLIENT-2", hub=hub, victim=victim)
    populate(hub, first, remover, victim, last)
    result = send(hub, PAYLOAD)
    assert victim not in hub.peers()
    assert victim.sent == []  # closed before its turn: skipped, not written to
    assert first.sent == remover.sent == last.sent == [PAYLOAD]
    assert result == BroadcastResult(delivered=3, failed=0, slow_closed=0)
    assert hub.peers() == [first, remover, last]


def test_send_to_one_peer(hub: Hub, metrics: RelayMetrics) -> None:
    peer, other = healthy_peers(2)
    broken = BrokenPeer("CLIENT-broken")
    populate(hub, peer, other, broken)
    hub.send_to(peer, b"ack")
    assert peer.sent == [b"ack"]
    assert other.sent == []
    hub.send_to(broken, b"ack")
    assert broken not in hub.peers()
    assert sample(metrics, "pingpong_send_failures_total") == 1


def test_close_all_closes_every_peer_even_if_one_fails(hub: Hub) -> None:
    first, last = healthy_peers(2)
    failing = BrokenPeerBrokenClose("CLIENT-failing-close")
    populate(hub, first, failing, last)
    hub.close_all(CloseCode.GOING_AWAY, b"relay shutting down")
    for peer in (first, failing, last):
        assert peer.closes == [(CloseCode.GOING_AWAY, b"relay shutting down")]


# --- logging on the hot path -----------------------------------------------------------


def sent_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "event", None) == "sent"]


def test_per_client_lines_only_at_debug(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pingpong_relay.hub")
    peers = healthy_peers(3)
    populate(hub, *peers)
    send(hub, PAYLOAD)
    lines = sent_lines(caplog)
    assert [r.levelno for r in lines] == [logging.DEBUG] * 3
    assert {getattr(r, "client", None) for r in lines} == {peer.client_id for peer in peers}


def test_no_per_client_lines_at_info(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pingpong_relay.hub")
    populate(hub, *healthy_peers(3))
    send(hub, PAYLOAD)
    # The hub does log at INFO (connections), so the capture is live; just not per send.
    assert any("connected from" in r.getMessage() for r in caplog.records)
    assert sent_lines(caplog) == []


def test_no_per_client_lines_for_failed_or_skipped_peers(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pingpong_relay.hub")
    populate(hub, BrokenPeer("CLIENT-broken"), FakePeer("CLIENT-closed", open=False))
    send(hub, PAYLOAD)
    assert sent_lines(caplog) == []


# --- wait_empty --------------------------------------------------------------------------


async def test_wait_empty_on_an_empty_hub(hub: Hub) -> None:
    assert await hub.wait_empty(timeout_s=60) is True


async def test_wait_empty_resolves_when_the_last_peer_leaves(hub: Hub) -> None:
    first, last = healthy_peers(2)
    populate(hub, first, last)
    waiter = asyncio.create_task(hub.wait_empty(timeout_s=60))
    await asyncio.sleep(0)  # one loop turn (not a timed wait): the waiter starts waiting
    hub.remove(first, "bye")
    await asyncio.sleep(0)
    assert not waiter.done()
    hub.remove(last, "bye")
    assert await waiter is True


async def test_wait_empty_resolves_when_the_last_peer_is_dropped_by_broadcast(
    closing: Hub,
) -> None:
    hub = closing
    populate(hub, BrokenPeer("CLIENT-broken"), FakePeer("CLIENT-slow", buffered=LIMIT_BYTES + 1))
    waiter = asyncio.create_task(hub.wait_empty(timeout_s=60))
    await asyncio.sleep(0)
    assert not waiter.done()
    send(hub, PAYLOAD)
    assert await waiter is True


async def test_wait_empty_times_out_with_false(hub: Hub) -> None:
    populate(hub, *healthy_peers(1))
    assert await hub.wait_empty(timeout_s=0.01) is False
    assert len(hub) == 1


async def test_wait_empty_after_the_hub_refills(hub: Hub) -> None:
    peer = FakePeer("CLIENT-1")
    populate(hub, peer)
    hub.remove(peer, "bye")
    populate(hub, FakePeer("CLIENT-2"))
    assert await hub.wait_empty(timeout_s=0.01) is False


# --- client ids ----------------------------------------------------------------------------


def test_client_ids_are_unique_and_prefixed(hub: Hub) -> None:
    ids = [hub.new_client_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(client_id.startswith("CLIENT-") for client_id in ids)
    prefix, millis, sequence = ids[0].split("-")
    assert prefix == "CLIENT"
    assert millis.isdigit()
    assert sequence.isdigit()
