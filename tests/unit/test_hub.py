"""The hub's broadcast and slow-consumer policy, with fake peers and real metrics."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

from pingpong_relay.codes import REASON_SLOW, CloseCode
from pingpong_relay.frames import text_payloads
from pingpong_relay.hub import BroadcastResult, Hub
from pingpong_relay.subscriptions import DEFAULT_SUBSCRIPTION, Subscription
from pingpong_relay.telemetry.metrics import RelayMetrics

PAYLOAD = b'{"type":"bot:pingpong","data":{"type":"ping"},"timestamp":1,"source":"bot"}'
LIMIT_BYTES = 1024


@dataclass
class FakePeer:
    client_id: str
    remote: str = "127.0.0.1:50000"
    buffered: int = 0
    open: bool = True
    sent: list[bytes] = field(default_factory=list)
    closes: list[tuple[int, bytes]] = field(default_factory=list)
    subscription: Subscription = DEFAULT_SUBSCRIPTION

    writes: list[bytes] = field(default_factory=list)

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.sent.extend(text_payloads(data))

    def buffered_bytes(self) -> int:
        return self.buffered

    def is_open(self) -> bool:
        return self.open

    def close(self, code: int, reason: bytes) -> None:
        self.closes.append((code, reason))
        self.open = False


@dataclass
class BrokenPeer(FakePeer):
    """A peer whose socket write fails (reset by the other end)."""

    def write(self, data: bytes) -> None:
        raise ConnectionResetError("connection reset by peer")


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


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


@pytest.fixture
def hub(metrics: RelayMetrics) -> Hub:
    return Hub(metrics, max_client_buffer_bytes=LIMIT_BYTES, slow_client="close")


def sample(metrics: RelayMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def send(hub: Hub, *args: Any, **kwargs: Any) -> BroadcastResult:
    """A broadcast, written at once (the relay's loop flushes on its next turn)."""
    hub.broadcast(*args, **kwargs)
    return hub.flush()


def populate(hub: Hub, *peers: FakePeer) -> None:
    for peer in peers:
        hub.add(peer)


def healthy_peers(count: int) -> list[FakePeer]:
    return [FakePeer(f"CLIENT-ok-{index}") for index in range(count)]


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
        assert peer.writes[0] is frame  # encoded once, not once per client
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


def test_slow_peer_is_closed_removed_and_counted(hub: Hub, metrics: RelayMetrics) -> None:
    before, after = healthy_peers(2)
    slow = FakePeer("CLIENT-slow", buffered=LIMIT_BYTES + 1)
    populate(hub, before, slow, after)
    result = send(hub, PAYLOAD)
    assert result == BroadcastResult(delivered=2, failed=0, slow_closed=1)
    assert slow.sent == []
    assert slow.closes == [(CloseCode.SLOW_CLIENT, REASON_SLOW)]
    assert CloseCode.SLOW_CLIENT == 4001
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


def test_slow_warning_names_the_client(hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
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
    hub: Hub,
) -> None:
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


# --- subscription groups ---------------------------------------------------------------------

EVERYTHING = DEFAULT_SUBSCRIPTION
PINGS_ONLY = Subscription(types=frozenset({"ping"}))
ALPHA_BOTS = Subscription(bots=("bot:alpha*",))
STATUS_ONLY = Subscription(events=frozenset({"status"}))
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
    everything = {"CLIENT-everything", "CLIENT-everything-too"}
    assert set(hub.audience.groups[EVERYTHING].members) == everything


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


def test_a_peer_dropped_by_broadcast_leaves_its_group(hub: Hub) -> None:
    keeper = FakePeer("CLIENT-keeper", subscription=STATUS_ONLY)
    broken = BrokenPeer("CLIENT-broken", subscription=PINGS_ONLY)
    slow = FakePeer("CLIENT-slow", subscription=ALPHA_BOTS, buffered=LIMIT_BYTES + 1)
    populate(hub, keeper, broken, slow)
    result = send(hub, PAYLOAD, "pingpong", "bot:alpha", "ping")
    assert result == BroadcastResult(delivered=0, failed=1, slow_closed=1)
    assert list(hub.audience.groups) == [STATUS_ONLY]
    assert hub.recipients("pingpong", "bot:alpha", "ping") == 0


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


def test_close_policy_ignores_back_pressure_and_closes_past_the_limit(hub: Hub) -> None:
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
