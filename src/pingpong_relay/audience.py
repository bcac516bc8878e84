"""Who is connected and what each wants: the hub's books of peers and subscriptions (pure).

Peers are grouped by equal subscription so that a message is matched once per group, and
the peers replaying history are held out of the fan-out meanwhile. The hub writes; this
only keeps the books, including each group's fan-out list: the write functions of its
members that take a message with no question asked (open, not backed up), rebuilt only
when a member joins, leaves, closes, backs up or drains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from pingpong_relay.instruments import Counter, Gauge
from pingpong_relay.subscriptions import RECORDED, Subscription

__all__ = ["Audience", "AudienceMetrics", "Group", "Peer"]

log = logging.getLogger("pingpong_relay.hub")


class Peer(Protocol):
    """What the hub needs of a client connection; the WebSocket binding provides it."""

    client_id: str
    remote: str
    subscription: Subscription

    def write(self, data: bytes) -> None:
        """Hands whole frames to the socket (never blocks)."""

    @property
    def writer(self) -> Callable[[bytes], None]:
        """What `write` does, as one callable the fan-out keeps (the socket's own write)."""

    @property
    def text_sender(self) -> Callable[[bytes], None]:
        """Sends one payload as one text frame: the WebSocket library's own send, which
        hands it to the kernel at once when nothing is queued before it."""

    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the kernel."""

    def is_open(self) -> bool:
        """True until the peer is closing or gone."""

    def close(self, code: int, reason: bytes) -> None:
        """Closes the connection with a WebSocket close code."""


@dataclass(slots=True, eq=False)
class Group:
    """Peers with equal subscriptions, and the frames queued for them this loop turn.

    `pending` holds (frame, key, payload) per message. `writers` is the fan-out list (None:
    stale, see `Audience.fanout`): the `writer` of each member in `ready`, in the same order,
    and `senders` their `text_sender`; `stalled` are the members written to only through
    the hub's checks (backed up); closing members are in neither.
    """

    members: dict[str, Peer] = field(default_factory=dict)
    pending: list[tuple[bytes, Hashable, bytes]] = field(default_factory=list)
    writers: list[Callable[[bytes], None]] | None = None
    senders: list[Callable[[bytes], None]] = field(default_factory=list)
    ready: list[Peer] = field(default_factory=list)
    stalled: list[Peer] = field(default_factory=list)


class AudienceMetrics(Protocol):
    """What the audience counts (`telemetry.metrics.RelayMetrics` has these and more)."""

    @property
    def connections_total(self) -> Counter:
        """Counts each client that connects (joins the audience)."""

    @property
    def clients_connected(self) -> Gauge:
        """Set to the number of clients connected after each join and leave."""


class Audience:
    """The connected peers, their subscription groups, and the peers replaying history.

    `before_leave` is called before a peer leaves its group, so that what the group
    queued for it is written first (the hub flushes).
    """

    def __init__(self, metrics: AudienceMetrics, before_leave: Callable[[], None]) -> None:
        self._peers: dict[str, Peer] = {}
        # Peers grouped by equal subscription: a message is matched once per group.
        self._groups: dict[Subscription, Group] = {}
        # Peers replaying history, with what arrived for them meanwhile.
        self._holding: dict[str, tuple[Peer, list[tuple[str, str, bytes]]]] = {}
        self._empty = asyncio.Event()
        self._empty.set()
        self._before_leave = before_leave
        self.metrics = metrics

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, peer: Peer) -> bool:
        return peer.client_id in self._peers

    @property
    def groups(self) -> Mapping[Subscription, Group]:
        """The subscription groups, read-only (for diagnostics and tests)."""
        return MappingProxyType(self._groups)

    def peers(self) -> list[Peer]:
        """Every connected peer."""
        return list(self._peers.values())

    def add(self, peer: Peer) -> None:
        """A peer connected: it joins the group of its subscription."""
        self._peers[peer.client_id] = peer
        self._join_group(peer)
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
        """A peer is gone (`why` is logged); removing it twice is harmless."""
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
        self._join_group(peer)

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
            self._join_group(peer)

    def hold_recorded(self, payload: bytes, bot: str, kind: str, entry_id: str) -> None:
        """Keeps a recorded message for each held peer that wants it (see `hold`)."""
        for peer, held in self._holding.values():
            if peer.subscription.wants(RECORDED, bot, kind):
                held.append((bot, entry_id, payload))

    def changed(self, peer: Peer) -> None:
        """The peer closed, backed up or drained: its group's fan-out list is rebuilt."""
        group = self._groups.get(peer.subscription)
        if group is not None and peer.client_id in group.members:
            group.writers = None

    def fanout(
        self, group: Group, stalled: Callable[[Peer], bool]
    ) -> list[Callable[[bytes], None]]:
        """The group's fan-out list, rebuilt if stale: the writers of its open members that
        are not `stalled` (those go to `group.stalled`)."""
        writers = group.writers
        if writers is None:
            group.ready = []
            group.stalled = []
            for peer in group.members.values():
                if not peer.is_open():
                    continue
                (group.stalled if stalled(peer) else group.ready).append(peer)
            group.senders = [peer.text_sender for peer in group.ready]
            writers = group.writers = [peer.writer for peer in group.ready]
        return writers

    def _join_group(self, peer: Peer) -> None:
        group = self._groups.get(peer.subscription)
        if group is None:
            group = self._groups[peer.subscription] = Group()
        group.members[peer.client_id] = peer
        group.writers = None

    def _leave_group(self, peer: Peer) -> None:
        # What the peer's group queued before it moves must still reach it, in order.
        self._before_leave()
        if self._holding.pop(peer.client_id, None) is not None:
            return
        group = self._groups.get(peer.subscription)
        if group is not None:
            group.members.pop(peer.client_id, None)
            group.writers = None
            if not group.members:
                del self._groups[peer.subscription]

    def recipients(self, event: str, bot: str | None = None, kind: str | None = None) -> int:
        """How many connected peers a message of this event, bot and kind would reach."""
        return sum(
            len(group.members)
            for subscription, group in self._groups.items()
            if subscription.wants(event, bot, kind)
        ) + sum(
            1 for peer, _ in self._holding.values() if peer.subscription.wants(event, bot, kind)
        )

    def targets(
        self, event: str = "pingpong", bot: str | None = None, kind: str | None = None
    ) -> list[Group]:
        """The groups a message of this event, bot and kind goes to."""
        return [
            group
            for subscription, group in self._groups.items()
            if subscription.wants(event, bot, kind)
        ]

    @property
    def holding(self) -> bool:
        """Whether some peer is replaying history (and collecting recorded messages)."""
        return bool(self._holding)
