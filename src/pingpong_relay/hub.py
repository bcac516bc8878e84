"""Connected clients and the broadcast: one encoded envelope written to every open socket.

Messages are queued per subscription group and written once per event-loop turn: the
frames a group collected in that turn are joined once, and each member gets them in one
write. Under load (a burst read from Redis) that turns many kernel sends per client into
one; a lone message is written on the very next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Hashable
from typing import Protocol

from pingpong_relay.audience import Audience, Group, Peer
from pingpong_relay.fanout import BroadcastResult, FanOut, FanOutMetrics, SlowClientPolicy
from pingpong_relay.frames import text_frame
from pingpong_relay.histogram import LogHistogram
from pingpong_relay.instruments import Counter, Gauge, Histogram
from pingpong_relay.subscriptions import Subscription

__all__ = ["BroadcastResult", "Hub", "HubMetrics", "SlowClientPolicy"]

log = logging.getLogger("pingpong_relay.hub")


def _client_id_factory(worker: int | None = None) -> Callable[[], str]:
    # The design names clients CLIENT-<Date.now()>; a sequence number keeps two
    # clients that connect in the same millisecond apart (and with --workers, the
    # worker's index keeps two workers' sequences apart).
    sequence = itertools.count(1)
    prefix = "" if worker is None else f"{worker}."
    return lambda: f"CLIENT-{time.time_ns() // 1_000_000}-{prefix}{next(sequence)}"


class HubMetrics(FanOutMetrics, Protocol):
    """What the hub counts (`telemetry.metrics.RelayMetrics` has these and more): the
    fan-out's counts, and these."""

    @property
    def connections_total(self) -> Counter:
        """Counts each client that connects."""

    @property
    def clients_connected(self) -> Gauge:
        """Set to the number of clients connected whenever one joins or leaves."""

    @property
    def relay_latency(self) -> Histogram:
        """Observes each message's seconds from its receipt from Redis to its client writes."""


class Hub:
    """Owns the set of connected peers and writes envelopes to them.

    Writes never await a peer: each is a non-blocking hand-off to the kernel (or the
    transport's buffer), so one slow or vanished client cannot delay the rest. A peer
    whose socket is backed up is, by `slow_client` policy, either closed once its unsent
    data passes `max_client_buffer_bytes` ("close") or sent only the newest message per
    bot and type once it drains ("conflate").
    """

    def __init__(
        self,
        metrics: HubMetrics,
        max_client_buffer_bytes: int,
        slow_client: SlowClientPolicy = "conflate",
        worker: int | None = None,
    ) -> None:
        self.audience = Audience(metrics, self._flush_queued)
        self._dirty: list[Group] = []
        self._received: list[float] = []
        self._written: list[Callable[[], None]] = []
        self._unique = itertools.count()
        self.metrics = metrics
        self.fanout = FanOut(
            self.audience, metrics, max_client_buffer_bytes, slow_client, self.remove
        )
        self.new_client_id = _client_id_factory(worker)
        # Relay latency (ms) of the messages written since the pipeline's last summary.
        self.relay_latency_ms = LogHistogram()

    def take_relay_latency(self) -> LogHistogram:
        """The relay latencies (ms) observed since the last call, and a fresh start."""
        taken, self.relay_latency_ms = self.relay_latency_ms, LogHistogram()
        return taken

    # --- who is connected (audience.py keeps the books) ---------------------------------
    def __len__(self) -> int:
        return len(self.audience)

    def peers(self) -> list[Peer]:
        """Every connected peer."""
        return self.audience.peers()

    def add(self, peer: Peer) -> None:
        """A peer connected: it receives what its subscription wants from now on."""
        # What its group queued before it connected is not for it: a client replaying
        # history would otherwise get a live message ahead of the replay (and again in it).
        self._flush_queued()
        self.audience.add(peer)

    def remove(self, peer: Peer, why: str) -> None:
        """A peer is gone (`why` is logged), with anything that waited for it."""
        self.fanout.forget(peer)
        self.audience.remove(peer, why)

    async def wait_empty(self, timeout_s: float) -> bool:
        """Waits until every peer is gone; False if some are still there at the timeout."""
        return await self.audience.wait_empty(timeout_s)

    def resubscribe(self, peer: Peer, subscription: Subscription) -> None:
        """Moves a connected peer to the group of its new subscription."""
        self.audience.resubscribe(peer, subscription)

    def hold(self, peer: Peer) -> list[tuple[str, str, bytes]]:
        """Takes a peer out of the fan-out while it replays history (`Audience.hold`)."""
        return self.audience.hold(peer)

    def release(self, peer: Peer) -> None:
        """Puts a held peer back into the fan-out (if it is still connected)."""
        self.audience.release(peer)

    def hold_recorded(self, payload: bytes, bot: str, kind: str, entry_id: str) -> None:
        """Keeps a recorded message for each held peer that wants it."""
        self.audience.hold_recorded(payload, bot, kind, entry_id)

    def recipients(self, event: str, bot: str | None = None, kind: str | None = None) -> int:
        """How many connected peers a message of this event, bot and kind would reach."""
        return self.audience.recipients(event, bot, kind)

    def targets(
        self, event: str = "pingpong", bot: str | None = None, kind: str | None = None
    ) -> list[Group]:
        """The groups a message of this event, bot and kind goes to."""
        return self.audience.targets(event, bot, kind)

    @property
    def holding(self) -> bool:
        """Whether some peer is replaying history (and collecting recorded messages)."""
        return self.audience.holding

    # --- writing --------------------------------------------------------------------------
    def broadcast(
        self,
        payload: bytes,
        event: str = "pingpong",
        bot: str | None = None,
        kind: str | None = None,
        key: Hashable = None,
    ) -> int:
        """Queues one encoded message for every peer that wants it; returns how many."""
        return self.deliver(payload, self.targets(event, bot, kind), key)

    def deliver(
        self,
        payload: bytes,
        targets: list[Group],
        key: Hashable = None,
        received: float | None = None,
        written: Callable[[], None] | None = None,
    ) -> int:
        """Queues one encoded message for the `targets` groups; returns how many peers.

        `key` says which messages a conflating peer may skip in favour of a newer one
        with the same key (bot and message type); None: never skipped. `received` (a
        perf_counter stamp) is observed as relay latency when the message is written, and
        `written` is called then (the relay logs "broadcast done" from it).
        """
        if not targets:
            if written is not None:
                written()
            return 0
        frame = text_frame(payload)
        if key is None:
            key = next(self._unique)
        peers = 0
        dirty = self._dirty
        # A flush is already scheduled exactly when something is queued.
        idle = not dirty
        for group in targets:
            if not group.pending:
                dirty.append(group)
            group.pending.append((frame, key, payload))
            peers += len(group.members)
        if received is not None:
            self._received.append(received)
        if written is not None:
            self._written.append(written)
        if idle:
            # With no loop running (unit tests) the caller flushes.
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().call_soon(self.flush)
        return peers

    def flush(self) -> BroadcastResult:
        """Writes what the groups queued since the last flush (`FanOut.write`): one write
        per peer; observes the relay latency of what was written."""
        dirty, self._dirty = self._dirty, []
        result = self.fanout.write(dirty)
        if self._received:
            now = time.perf_counter()
            latency_ms = self.relay_latency_ms
            observe = self.metrics.relay_latency.observe
            for received in self._received:
                observe(now - received)
                latency_ms.add((now - received) * 1000.0)
            self._received.clear()
        if self._written:
            written, self._written = self._written, []
            for callback in written:
                callback()
        return result

    def send_to(self, peer: Peer, payload: bytes) -> None:
        """A reply to one client (errors, acks); a failure drops only that client."""
        self._flush_queued()  # what was queued before the reply goes before it
        self.fanout.send_to(peer, text_frame(payload), next(self._unique))

    # --- flow control: a peer's socket backed up, then drained (`FanOut`) -----------------
    def pause(self, peer: Peer) -> None:
        """The peer's socket buffer passed its high-water mark (the transport says so)."""
        self.fanout.pause(peer)

    def resume(self, peer: Peer) -> None:
        """The peer's socket drained: what waited for it, and how much was skipped."""
        self.fanout.resume(peer)

    def closing(self, peer: Peer) -> None:
        """The peer sent its close frame: the fan-out writes nothing more to it."""
        self.audience.changed(peer)

    def close_all(self, code: int, reason: bytes) -> None:
        """Closes every peer with `code` (after writing what was queued)."""
        self._flush_queued()
        for peer in self.audience.peers():
            try:
                peer.close(code, reason)
            except Exception as exc:
                log.debug("closing %s failed: %r", peer.client_id, exc)

    def _flush_queued(self) -> None:
        if self._dirty:
            self.flush()
