"""One connected WebSocket client: the hub's peer on a picows transport.

The peer also holds the client's frame-rate limit and does the closing handshake.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Final, Protocol

import orjson
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport

from pingpong_relay.codes import REASON_TOO_MANY_FRAMES, CloseCode
from pingpong_relay.hub import Hub
from pingpong_relay.limits import TokenBucket
from pingpong_relay.subscriptions import Subscription
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.ws.sessions import Session

__all__ = ["AddressCount", "ClientPeer", "CommandHandler", "JoinHandler"]

log = logging.getLogger("pingpong_relay.dataplane")

INTERNAL_ERROR: Final = orjson.dumps(
    {"type": "error", "error": "internal_error", "message": "the relay failed on this command"}
)
RATE_LIMITED: Final = orjson.dumps(
    {"type": "error", "error": "rate_limited", "message": "too many frames; slow down"}
)
MAX_VIOLATIONS: Final = 5
BINARY_REFUSED: Final = orjson.dumps(
    {"type": "error", "error": "bad_command", "message": "commands are JSON text frames"}
)
# After sending a close frame the relay waits this long for the client's reply (a slow
# client's close frame may sit behind its unread backlog), then cuts the connection.
HARD_CLOSE_AFTER_S: Final = 2.0

CommandHandler = Callable[["ClientPeer", bytes], None]
# Called when a client has connected, and when it is gone.
JoinHandler = Callable[["ClientPeer"], None]


class AddressCount(Protocol):
    """Counts connections per address, for the per-address limit (`ws.admission`)."""

    def joined(self, ip: str) -> None:
        """Counts one more connection from `ip` (once its upgrade is done)."""

    def left(self, ip: str) -> None:
        """Counts one connection from `ip` fewer (once, when it is gone)."""


class ClientPeer(WSListener):
    """One connected WebSocket client, as the hub sees it."""

    def __init__(
        self,
        hub: Hub,
        metrics: RelayMetrics,
        client_id: str,
        subscription: Subscription,
        session: Session,
        on_command: CommandHandler,
        on_joined: JoinHandler,
        on_left: JoinHandler,
        frame_rate_per_s: float = 5.0,
    ) -> None:
        super().__init__()
        self.hub = hub
        self.metrics = metrics
        self.client_id = client_id
        self.subscription = subscription
        self.session = session
        self._on_command = on_command
        self._on_joined = on_joined
        self._on_left = on_left
        self._joined = False
        self.remote = "?"
        self.ip = "?"
        self.addresses: AddressCount | None = None
        self._counted = False
        self._frames = TokenBucket(frame_rate_per_s, 4 * frame_rate_per_s)
        self._violations = 0
        self.transport: WSTransport | None = None
        self._write: Callable[[bytes], None] | None = None
        self._send_text: Callable[[bytes], None] | None = None
        self._buffer_size: Callable[[], int] | None = None

    # --- Peer protocol, used by the hub -------------------------------------------
    def write(self, data: bytes) -> None:
        """Writes whole frames the hub built."""
        # Whole frames the hub built (frames.text_frame), possibly several at once:
        # straight to the socket's transport, past picows's own one-frame send.
        assert self._write is not None
        self._write(data)

    @property
    def writer(self) -> Callable[[bytes], None]:
        """The socket transport's own write, which the hub's fan-out calls directly."""
        assert self._write is not None
        return self._write

    @property
    def text_sender(self) -> Callable[[bytes], None]:
        """picows's send of one text frame (a direct send() when nothing is queued)."""
        assert self._send_text is not None
        return self._send_text

    def buffered_bytes(self) -> int:
        """Bytes written but not yet taken by the kernel."""
        assert self._buffer_size is not None
        return self._buffer_size()

    def is_open(self) -> bool:
        """True until a close frame is sent or the connection is gone."""
        transport = self.transport
        return (
            transport is not None
            and not transport.is_close_frame_sent
            and not transport.is_disconnected
        )

    def close(self, code: int, reason: bytes) -> None:
        """Starts the closing handshake; cuts the connection if the client never answers."""
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason)
            self.hub.closing(self)
        # The closing handshake: wait for the client's own close frame (on_ws_frame then
        # disconnects). Closing the socket at once while the client is still sending
        # would make the kernel reset it, and the client would never read our code.
        underlying = transport.underlying_transport
        asyncio.get_running_loop().call_later(HARD_CLOSE_AFTER_S, underlying.abort)

    # --- picows callbacks ---------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        """picows: the upgrade is done; the client joins the hub."""
        self.transport = transport
        underlying = transport.underlying_transport
        self._write = underlying.write
        self._send_text = partial(transport.send, WSMsgType.TEXT)
        self._buffer_size = underlying.get_write_buffer_size
        peer = underlying.get_extra_info("peername")
        if peer:
            self.remote = f"{peer[0]}:{peer[1]}"
        if self.addresses is not None:
            self.addresses.joined(self.ip)
            self._counted = True
        self.hub.add(self)
        self._joined = True
        self._on_joined(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        """picows: a frame from the client, rate limited; text frames are commands."""
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            code = frame.get_close_code()
            if not transport.is_close_frame_sent:
                transport.send_close(code, frame.get_close_message())
                self.hub.closing(self)
            transport.disconnect(graceful=True)
            self.hub.remove(self, f"client closed ({code.value})")
            return
        if not self.is_open():
            return  # closing: frames still in flight from the client are not answered
        # Every frame a client sends counts, control frames too: a flood of pings costs
        # the relay as much as a flood of commands.
        if not self._frames.allow(time.monotonic()):
            self._violations += 1
            self.metrics.client_rate_limited.inc()
            if self._violations >= MAX_VIOLATIONS:
                log.warning(
                    "client %s closed: %d frames over its rate limit",
                    self.client_id,
                    self._violations,
                    extra={"event": "client_policy_closed", "client": self.client_id},
                )
                self.metrics.client_policy_closes.inc()
                self.close(CloseCode.POLICY_VIOLATION, REASON_TOO_MANY_FRAMES)
                self.hub.remove(self, "policy violation: frame rate")
            else:
                self.hub.send_to(self, RATE_LIMITED)
            return
        if kind == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        elif kind == WSMsgType.TEXT:
            try:
                self._on_command(self, frame.get_payload_as_bytes())
            except Exception:
                # A bug in one command's handling answers that command with an error;
                # it does not cost the client its connection.
                log.exception("internal error handling a command from %s", self.client_id)
                self.hub.send_to(self, INTERNAL_ERROR)
        elif kind == WSMsgType.BINARY:
            self.metrics.client_frames_refused.inc()
            self.hub.send_to(self, BINARY_REFUSED)

    def pause_writing(self) -> None:
        """asyncio: the socket's buffer is full; the hub queues for this client."""
        self.hub.pause(self)

    def resume_writing(self) -> None:
        """asyncio: the socket drained; the hub sends what it queued."""
        self.hub.resume(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        """picows: the connection is gone; the client leaves the hub."""
        if self._counted and self.addresses is not None:
            self._counted = False
            self.addresses.left(self.ip)
        self.hub.remove(self, "connection closed")
        if self._joined:
            self._joined = False
            self._on_left(self)
