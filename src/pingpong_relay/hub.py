"""Connected clients and the broadcast: one encoded envelope written to every open socket."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from .filters import RECORDED, Subscription
from .metrics import RelayMetrics

log = logging.getLogger("pingpong_relay.hub")

# Close codes the relay sends; the README documents each and what a client should do.
CLOSE_GOING_AWAY: Final = 1001
CLOSE_SLOW_CLIENT: Final = 4001
CLOSE_TOKEN_EXPIRED: Final = 4003
CLOSE_REASON_EXPIRED: Final = b"token expired"
CLOSE_REASON_SHUTDOWN: Final = b"relay shutting down"
CLOSE_REASON_SLOW: Final = b"slow client: unsent data over the limit"


class Peer(Protocol):
    """What the hub needs of a client connection; the WebSocket binding provides it."""

    client_id: str
    remote: str
    subscription: Subscription

    def send_text(self, payload: bytes) -> None: ...

    def buffered_bytes(self) -> int: ...

    def is_open(self) -> bool: ...

    def close(self, code: int, reason: bytes) -> None: ...


def _client_id_factory() -> Callable[[], str]:
    # The design names clients CLIENT-<Date.now()>; a sequence number keeps two
    # clients that connect in the same millisecond apart.
    sequence = itertools.count(1)
    return lambda: f"CLIENT-{time.time_ns() // 1_000_000}-{next(sequence)}"


@dataclass(slots=True)
class BroadcastResult:
    delivered: int
    failed: int
    slow_closed: int


class Hub:
    """Owns the set of connected peers and writes envelopes to them.

    Writes never await a peer: each is a non-blocking hand-off to the kernel (or the
    transport's buffer), so one slow or vanished client cannot delay the rest.
    """

    def __init__(self, metrics: RelayMetrics, max_client_buffer_bytes: int) -> None:
        self._peers: dict[str, Peer] = {}
        # Peers grouped by equal subscription: a message is matched once per group.
        self._groups: dict[Subscription, dict[str, Peer]] = {}
        # Peers replaying history, with what arrived for them meanwhile.
        self._holding: dict[str, tuple[Peer, list[tuple[str, str, bytes]]]] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self.metrics = metrics
        self.max_client_buffer_bytes = max_client_buffer_bytes
        self.new_client_id = _client_id_factory()

    def __len__(self) -> int:
        return len(self._peers)

    def peers(self) -> list[Peer]:
        return list(self._peers.values())

    def add(self, peer: Peer) -> None:
        self._peers[peer.client_id] = peer
        self._groups.setdefault(peer.subscription, {})[peer.client_id] = peer
        self._empty.clear()
        self.metrics.connections_total.inc()
        self.metrics.clients_connected.set(len(self._peers))
        log.info(
            "client %s connected from %s (%d connected)",
            peer.client_id,
            peer.remote,
            len(self._peers),
            extra={
                "event": "client_connected",
                "client": peer.client_id,
                "remote": peer.remote,
                "clients": len(self._peers),
            },
        )

    def remove(self, peer: Peer, why: str) -> None:
        if self._peers.pop(peer.client_id, None) is None:
            return
        self._leave_group(peer)
        if not self._peers:
            self._empty.set()
        self.metrics.clients_connected.set(len(self._peers))
        log.info(
            "client %s disconnected: %s (%d connected)",
            peer.client_id,
            why,
            len(self._peers),
            extra={
                "event": "client_disconnected",
                "client": peer.client_id,
                "why": why,
                "clients": len(self._peers),
            },
        )

    async def wait_empty(self, timeout_s: float) -> bool:
        """Waits until every peer is gone; False if some are still there at the timeout."""
        try:
            await asyncio.wait_for(self._empty.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def resubscribe(self, peer: Peer, subscription: Subscription) -> None:
        """Moves a connected peer to the group of its new subscription."""
        if peer.client_id not in self._peers or peer.client_id in self._holding:
            peer.subscription = subscription  # a held peer rejoins with it on release
            return
        self._leave_group(peer)
        peer.subscription = subscription
        self._groups.setdefault(subscription, {})[peer.client_id] = peer

    def hold(self, peer: Peer) -> list[tuple[str, str, bytes]]:
        """Takes a peer out of the fan-out while it replays history.

        Recorded messages meant for it are kept, in order, in the returned list (bot,
        history id, payload) until `release`; nothing else is sent to it meanwhile.
        """
        held: list[tuple[str, str, bytes]] = []
        if peer.client_id in self._peers:
            self._leave_group(peer)
            self._holding[peer.client_id] = (peer, held)
        return held

    def release(self, peer: Peer) -> None:
        """Puts a held peer back into the fan-out (if it is still connected)."""
        if self._holding.pop(peer.client_id, None) is not None:
            self._groups.setdefault(peer.subscription, {})[peer.client_id] = peer

    def hold_recorded(self, payload: bytes, bot: str, kind: str, entry_id: str) -> None:
        for peer, held in self._holding.values():
            if peer.subscription.wants(RECORDED, bot, kind):
                held.append((bot, entry_id, payload))

    def _leave_group(self, peer: Peer) -> None:
        if self._holding.pop(peer.client_id, None) is not None:
            return
        members = self._groups.get(peer.subscription)
        if members is not None:
            members.pop(peer.client_id, None)
            if not members:
                del self._groups[peer.subscription]

    def recipients(self, event: str, bot: str | None = None, kind: str | None = None) -> int:
        """How many connected peers a message of this event, bot and kind would reach."""
        return sum(
            len(members)
            for subscription, members in self._groups.items()
            if subscription.wants(event, bot, kind)
        ) + sum(
            1 for peer, _ in self._holding.values() if peer.subscription.wants(event, bot, kind)
        )

    def targets(
        self, event: str = "pingpong", bot: str | None = None, kind: str | None = None
    ) -> list[tuple[Peer, ...]]:
        """The peers (by group) a message of this event, bot and kind goes to.

        A snapshot: a failed write may run the disconnect callback synchronously, which
        changes the groups while `deliver` walks them.
        """
        return [
            tuple(members.values())
            for subscription, members in self._groups.items()
            if subscription.wants(event, bot, kind)
        ]

    @property
    def holding(self) -> bool:
        """Whether some peer is replaying history (and collecting recorded messages)."""
        return bool(self._holding)

    def broadcast(
        self,
        payload: bytes,
        event: str = "pingpong",
        bot: str | None = None,
        kind: str | None = None,
    ) -> BroadcastResult:
        """Write one already-encoded frame payload to every open peer that wants it."""
        return self.deliver(payload, self.targets(event, bot, kind))

    def deliver(self, payload: bytes, targets: list[tuple[Peer, ...]]) -> BroadcastResult:
        """Write one already-encoded frame payload to the peers `targets` named."""
        limit = self.max_client_buffer_bytes
        per_client_debug = log.isEnabledFor(logging.DEBUG)
        delivered = failed = slow = 0
        for peer in itertools.chain.from_iterable(targets):
            try:
                if not peer.is_open():
                    continue
                if peer.buffered_bytes() > limit:
                    self._close_slow(peer)
                    slow += 1
                    continue
                peer.send_text(payload)
            except Exception as exc:  # any one client's failure must not stop the others
                failed += 1
                self._drop_failed(peer, exc)
                continue
            delivered += 1
            if per_client_debug:
                log.debug(
                    "sent to client %s",
                    peer.client_id,
                    extra={"event": "sent", "client": peer.client_id},
                )
        metrics = self.metrics
        metrics.deliveries.inc(delivered)
        if failed:
            metrics.send_failures.inc(failed)
        if slow:
            metrics.slow_client_closes.inc(slow)
        return BroadcastResult(delivered, failed, slow)

    def send_to(self, peer: Peer, payload: bytes) -> None:
        """A reply to one client (errors, acks); a failure drops only that client."""
        try:
            peer.send_text(payload)
        except Exception as exc:
            self.metrics.send_failures.inc()
            self._drop_failed(peer, exc)

    def close_all(self, code: int, reason: bytes) -> None:
        for peer in tuple(self._peers.values()):
            try:
                peer.close(code, reason)
            except Exception as exc:
                log.debug("closing %s failed: %r", peer.client_id, exc)

    def _close_slow(self, peer: Peer) -> None:
        log.warning(
            "client %s closed: %d bytes unsent exceeds the %d-byte limit (slow client)",
            peer.client_id,
            peer.buffered_bytes(),
            self.max_client_buffer_bytes,
            extra={
                "event": "slow_client_closed",
                "client": peer.client_id,
                "buffered_bytes": peer.buffered_bytes(),
            },
        )
        peer.close(CLOSE_SLOW_CLIENT, CLOSE_REASON_SLOW)
        self.remove(peer, "slow client")

    def _drop_failed(self, peer: Peer, exc: BaseException) -> None:
        log.warning(
            "send to client %s failed, dropping it: %r",
            peer.client_id,
            exc,
            extra={"event": "send_failed", "client": peer.client_id, "error": repr(exc)},
        )
        try:
            peer.close(CLOSE_GOING_AWAY, b"send failed")
        except Exception as close_exc:
            log.debug("closing %s after a failed send also failed: %r", peer.client_id, close_exc)
        self.remove(peer, f"send failed: {exc!r}")
