"""Writing what the hub queued to each group's peers: the fan-out, and the slow-client policy.

A group's fan-out list (`Audience.fanout`: the socket writes of its open members that are
not backed up) is called with no question asked per peer: what would be asked is known
before, and the list is rebuilt when it changes. Once it changes during a flush (a write
failed, a peer left, closed or backed up), the rest of the group is written peer by peer
with every check, as is every peer with --slow-client close (its unsent bytes are checked
before each write) or at DEBUG (a line per client).

A peer whose socket is backed up is, by policy, either closed once its unsent data passes
`max_client_buffer_bytes` ("close") or sent only the newest message per bot and type once
it drains ("conflate"; what waits is its `Backlog`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import orjson

from pingpong_relay.audience import Audience, Group, Peer
from pingpong_relay.codes import REASON_SEND_FAILED, REASON_SLOW, CloseCode
from pingpong_relay.frames import text_frame
from pingpong_relay.instruments import Counter
from pingpong_relay.wire_types import CONFLATED_TYPE

__all__ = ["Backlog", "BroadcastResult", "FanOut", "FanOutMetrics", "SlowClientPolicy"]

log = logging.getLogger("pingpong_relay.hub")

# What the hub does with a client whose socket is backed up (--slow-client).
SlowClientPolicy = Literal["close", "conflate"]


@dataclass(slots=True)
class BroadcastResult:
    """What one flush did: messages written, peers that failed or were closed as slow."""

    delivered: int
    failed: int
    slow_closed: int


@dataclass(slots=True)
class _Tally:
    """What one flush did so far, by kind."""

    delivered: int = 0
    failed: int = 0
    slow: int = 0
    skipped: int = 0


@dataclass(slots=True)
class Backlog:
    """What waits for a conflating peer whose socket is backed up: the newest frame per key
    (bot and message type), in the order they last changed, and how many were replaced."""

    frames: dict[Hashable, bytes] = field(default_factory=dict)
    skipped: int = 0

    def add(self, frame: bytes, key: Hashable) -> bool:
        """Keeps `frame` as the newest for its key; True if it replaced an older one."""
        replaced = self.frames.pop(key, None) is not None
        self.frames[key] = frame
        self.skipped += replaced
        return replaced


class FanOutMetrics(Protocol):
    """What the fan-out counts (`hub.HubMetrics` has these and more)."""

    @property
    def deliveries(self) -> Counter:
        """Counts messages written to client sockets (each message once per client)."""

    @property
    def send_failures(self) -> Counter:
        """Counts writes to a client socket that failed (the client is dropped)."""

    @property
    def slow_client_closes(self) -> Counter:
        """Counts clients closed because their unsent data passed the buffer limit."""

    @property
    def conflated(self) -> Counter:
        """Counts messages a backed-up client skipped for a newer one of the same key."""


class FanOut:
    """Writes queued frames to peers; `remove` takes a dropped peer out of the hub."""

    def __init__(
        self,
        audience: Audience,
        metrics: FanOutMetrics,
        max_client_buffer_bytes: int,
        slow_client: SlowClientPolicy,
        remove: Callable[[Peer, str], None],
    ) -> None:
        self.audience = audience
        self.metrics = metrics
        self.max_client_buffer_bytes = max_client_buffer_bytes
        self.slow_client = slow_client
        self._remove = remove
        # Conflating peers whose sockets are backed up, and what waits for them.
        self._backlogs: dict[str, Backlog] = {}

    def write(self, dirty: list[Group]) -> BroadcastResult:
        """Writes what each of the `dirty` groups queued: one write per peer; counts it."""
        tally = _Tally()
        checked = self.slow_client == "close" or log.isEnabledFor(logging.DEBUG)
        fanout = self.audience.fanout
        backed_up = self._backed_up
        for group in dirty:
            pending, group.pending = group.pending, []
            count = len(pending)
            data = pending[0][0] if count == 1 else b"".join([item[0] for item in pending])
            writers = fanout(group, backed_up)
            for peer in group.stalled:
                self._write_checked(peer, data, pending, tally)
            ready = group.ready
            if checked:
                for peer in ready:
                    self._write_checked(peer, data, pending, tally)
                continue
            # One message: the WebSocket library's send of its payload (straight to the kernel
            # when nothing is queued); several: their frames joined, in one write.
            calls, argument = (group.senders, pending[0][2]) if count == 1 else (writers, data)
            done = failed = 0
            for call in calls:
                if group.writers is not writers:
                    break  # changed under this loop: the rest one by one, below
                try:
                    call(argument)
                except Exception as exc:  # any one client's failure must not stop the others
                    failed += 1
                    self._drop_failed(ready[done], exc)
                done += 1
            tally.delivered += count * (done - failed)
            tally.failed += failed
            for peer in ready[done:]:
                self._write_checked(peer, data, pending, tally)
        metrics = self.metrics
        metrics.deliveries.inc(tally.delivered)
        if tally.failed:
            metrics.send_failures.inc(tally.failed)
        if tally.slow:
            metrics.slow_client_closes.inc(tally.slow)
        if tally.skipped:
            metrics.conflated.inc(tally.skipped)
        return BroadcastResult(tally.delivered, tally.failed, tally.slow)

    def _write_checked(
        self, peer: Peer, data: bytes, pending: list[tuple[bytes, Hashable, bytes]], tally: _Tally
    ) -> None:
        """One peer's share of a flush, with every check: still here and open, backed up
        (its frames join its backlog), over the buffer limit (closed as slow)."""
        backlog = self._backlogs.get(peer.client_id)
        if backlog is not None:
            for frame, key, _ in pending:
                tally.skipped += backlog.add(frame, key)
            return
        try:
            if peer not in self.audience or not peer.is_open():
                return
            if self.slow_client == "close" and peer.buffered_bytes() > self.max_client_buffer_bytes:
                self._close_slow(peer)
                tally.slow += 1
                return
            peer.write(data)
        except Exception as exc:  # any one client's failure must not stop the others
            tally.failed += 1
            self._drop_failed(peer, exc)
            return
        tally.delivered += len(pending)
        if log.isEnabledFor(logging.DEBUG):
            # The design's line, once per message (in one write or not).
            for _ in pending:
                log.debug(
                    "sent to client %s",
                    peer.client_id,
                    extra={"event": "sent", "client": peer.client_id},
                )

    def _backed_up(self, peer: Peer) -> bool:
        """Whether a conflating peer's socket is backed up (what it misses waits in its backlog)."""
        return peer.client_id in self._backlogs

    def send_to(self, peer: Peer, frame: bytes, key: Hashable) -> None:
        """A frame for one client (a reply), or its backlog's if backed up (under `key`, which
        nothing else has); a failure drops only that client."""
        backlog = self._backlogs.get(peer.client_id)
        if backlog is not None:
            backlog.add(frame, key)
            return
        try:
            peer.write(frame)
        except Exception as exc:
            self.metrics.send_failures.inc()
            self._drop_failed(peer, exc)

    def forget(self, peer: Peer) -> None:
        """The peer is gone: what waited for it goes too."""
        self._backlogs.pop(peer.client_id, None)

    # --- flow control: a peer's socket backed up, then drained ---------------------------
    def pause(self, peer: Peer) -> None:
        """The peer's socket buffer passed its high-water mark (the transport says so)."""
        if self.slow_client != "conflate" or peer not in self.audience:
            return
        if peer.client_id not in self._backlogs:
            self._backlogs[peer.client_id] = Backlog()
            self.audience.changed(peer)
            log.info(
                "client %s is backed up (%d bytes unsent): newest message per bot and type "
                "until it drains",
                peer.client_id,
                peer.buffered_bytes(),
                extra={"event": "client_backed_up", "client": peer.client_id},
            )

    def resume(self, peer: Peer) -> None:
        """The peer's socket drained: what waited for it, and how much was skipped."""
        backlog = self._backlogs.pop(peer.client_id, None)
        if backlog is None:
            return
        self.audience.changed(peer)
        if not backlog.frames:
            return
        frames = list(backlog.frames.values())
        if backlog.skipped:
            notice = {"type": CONFLATED_TYPE, "skipped": backlog.skipped}
            frames.insert(0, text_frame(orjson.dumps(notice)))
            log.info(
                "client %s caught up: %d message(s) skipped while its socket was backed up",
                peer.client_id,
                backlog.skipped,
                extra={"event": "conflated", "client": peer.client_id, "skipped": backlog.skipped},
            )
        try:
            if peer.is_open():
                peer.write(b"".join(frames))
                self.metrics.deliveries.inc(len(backlog.frames))
        except Exception as exc:
            self.metrics.send_failures.inc()
            self._drop_failed(peer, exc)

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
        peer.close(CloseCode.SLOW_CLIENT, REASON_SLOW)
        self._remove(peer, "slow client")

    def _drop_failed(self, peer: Peer, exc: BaseException) -> None:
        log.warning(
            "send to client %s failed, dropping it: %r",
            peer.client_id,
            exc,
            extra={"event": "send_failed", "client": peer.client_id, "error": repr(exc)},
        )
        try:
            peer.close(CloseCode.GOING_AWAY, REASON_SEND_FAILED)
        except Exception as close_exc:
            log.debug("closing %s after a failed send also failed: %r", peer.client_id, close_exc)
        self._remove(peer, f"send failed: {exc!r}")
