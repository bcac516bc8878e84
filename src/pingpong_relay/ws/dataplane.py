"""The WebSocket data plane on picows: the upgrade at `/`, a plain /healthz, and client peers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from ssl import SSLContext
from typing import Any, Final

import orjson
from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not in the stubs

from pingpong_relay.auth import Authenticator, AuthError
from pingpong_relay.codes import REASON_TOO_MANY_FRAMES, CloseCode
from pingpong_relay.hub import Hub
from pingpong_relay.limits import TokenBucket
from pingpong_relay.messages import excerpt
from pingpong_relay.origins import HostPolicy, normalise_ip, split_host
from pingpong_relay.subscriptions import (
    CommandError,
    Subscription,
    parse_connect_query,
)
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.ws.sessions import Session

log = logging.getLogger("pingpong_relay.dataplane")

MAX_CLIENT_FRAME_BYTES: Final = 16 * 1024
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
READ_BUFFER_INIT_BYTES: Final = 1024
# After sending a close frame the relay waits this long for the client's reply (a slow
# client's close frame may sit behind its unread backlog), then cuts the connection.
HARD_CLOSE_AFTER_S: Final = 2.0

HealthProbe = Callable[[], tuple[bool, dict[str, Any]]]
CommandHandler = Callable[["ClientPeer", bytes], None]
# Called when a client has connected, and when it is gone.
JoinHandler = Callable[["ClientPeer"], None]


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
        self.dataplane: DataPlane | None = None
        self._counted = False
        self._frames = TokenBucket(frame_rate_per_s, 4 * frame_rate_per_s)
        self._violations = 0
        self.transport: WSTransport | None = None
        self._write: Callable[[bytes], None] | None = None
        self._buffer_size: Callable[[], int] | None = None

    # --- Peer protocol, used by the hub -------------------------------------------
    def write(self, data: bytes) -> None:
        # Whole frames the hub built (frames.text_frame), possibly several at once:
        # straight to the socket's transport, past picows's own one-frame send.
        assert self._write is not None
        self._write(data)

    def buffered_bytes(self) -> int:
        assert self._buffer_size is not None
        return self._buffer_size()

    def is_open(self) -> bool:
        transport = self.transport
        return (
            transport is not None
            and not transport.is_close_frame_sent
            and not transport.is_disconnected
        )

    def close(self, code: int, reason: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason)
        # The closing handshake: wait for the client's own close frame (on_ws_frame then
        # disconnects). Closing the socket at once while the client is still sending
        # would make the kernel reset it, and the client would never read our code.
        underlying = transport.underlying_transport
        asyncio.get_running_loop().call_later(HARD_CLOSE_AFTER_S, underlying.abort)

    # --- picows callbacks ---------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        underlying = transport.underlying_transport
        self._write = underlying.write
        self._buffer_size = underlying.get_write_buffer_size
        peer = underlying.get_extra_info("peername")
        if peer:
            self.remote = f"{peer[0]}:{peer[1]}"
        if self.dataplane is not None:
            self.dataplane.joined(self.ip)
            self._counted = True
        self.hub.add(self)
        self._joined = True
        self._on_joined(self)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            code = frame.get_close_code()
            if not transport.is_close_frame_sent:
                transport.send_close(code, frame.get_close_message())
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
        self.hub.pause(self)

    def resume_writing(self) -> None:
        self.hub.resume(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._counted and self.dataplane is not None:
            self._counted = False
            self.dataplane.left(self.ip)
        self.hub.remove(self, "connection closed")
        if self._joined:
            self._joined = False
            self._on_left(self)


def _json_error(
    status: int, code: str, message: str, extra: Mapping[str, str] | None = None
) -> WSUpgradeResponseWithListener:
    return WSUpgradeResponseWithListener(
        WSUpgradeResponse.create_error_response(
            status,
            orjson.dumps({"error": code, "message": message}),
            {"Content-Type": "application/json", **(extra or {})},
        ),
        None,
    )


class _AddressedProtocol(WSProtocol):  # type: ignore[misc]
    """picows's server protocol, remembering both ends' addresses for the router."""

    peer_ip = "?"
    local_ip = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_ip = str(peer[0])
        local = transport.get_extra_info("sockname")
        if local:
            self.local_ip = str(local[0])
        super().connection_made(transport)


class DataPlane:
    """Binds the hub to a picows server socket."""

    def __init__(
        self,
        hub: Hub,
        metrics: RelayMetrics,
        *,
        health: HealthProbe,
        http_port: int,
        ping_interval_s: float,
        ping_timeout_s: float,
        on_command: CommandHandler,
        on_joined: JoinHandler,
        on_left: JoinHandler,
        authenticate: Authenticator,
        hosts: HostPolicy | None = None,
        max_connections: int = 20_000,  # the CLI sets it from the open-file limit
        frame_rate_per_s: float = 5.0,
        max_per_ip: int = 0,
        connection_rate_per_ip: float = 0.0,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        self._max_per_ip = max_per_ip
        self._ip_rate = connection_rate_per_ip
        self._per_ip: dict[str, int] = {}
        self._ip_rates: dict[str, TokenBucket] = {}
        self._hosts = hosts if hosts is not None else HostPolicy(http_port=http_port)
        self._max_connections = max_connections
        self._frame_rate_per_s = frame_rate_per_s
        self._authenticate = authenticate
        self._on_command = on_command
        self._on_joined = on_joined
        self._on_left = on_left
        self._health = health
        self._http_port = http_port
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._server: asyncio.Server | None = None
        self._http_scheme = "http"

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(
        self, host: str, port: int, ssl: SSLContext | None = None, *, reuse_port: bool = False
    ) -> None:
        self._http_scheme = "https" if ssl is not None else "http"
        logger = logging.getLogger("picows.dataplane")

        # picows's public server hands the router only the HTTP request; per-IP limits
        # before the upgrade need the peer address, so each connection's protocol is
        # built here (as ws_create_server builds it) with a router bound to that address.
        def protocol_factory() -> Any:
            protocol: _AddressedProtocol = _AddressedProtocol(
                None, None, False,
                lambda request: self._route(request, protocol.peer_ip, protocol.local_ip),
                logger,
                True,  # disconnect on exception
                5,  # handshake timeout, s
                True, self._ping_interval_s, self._ping_timeout_s,
                WSAutoPingStrategy.PING_WHEN_IDLE,
                # Pings are answered by ClientPeer, after the frame-rate check: picows
                # would answer every one, however many a client sends.
                False,  # auto pong
                MAX_CLIENT_FRAME_BYTES,
                None,  # extra headers
                # Clients rarely send anything; picows's 16 KiB default read buffer per
                # connection is half the relay's memory per client. It grows when needed.
                READ_BUFFER_INIT_BYTES,
            )  # fmt: skip
            return protocol

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            protocol_factory, host, port, ssl=ssl, reuse_port=reuse_port or None
        )

    def stop_accepting(self) -> None:
        if self._server is not None:
            self._server.close()

    def _refuse_ip(self, ip: str) -> Any:
        """Per-address limits (0: off). Behind a proxy every client has the proxy's address."""
        if self._max_per_ip and self._per_ip.get(ip, 0) >= self._max_per_ip:
            self.metrics.connections_refused.labels("per_ip").inc()
            log.warning(
                "refused a client from %s: %d connections is its limit",
                ip,
                self._max_per_ip,
                extra={"event": "per_ip_refused", "ip": ip},
            )
            return _json_error(
                503, "per_ip_limit", "too many connections from this address", {"Retry-After": "5"}
            )
        if not self._ip_rate:
            return None
        bucket = self._ip_rates.get(ip)
        if bucket is None:
            if len(self._ip_rates) >= 10_000:
                self._ip_rates.clear()  # bounded: forget idle addresses
            bucket = self._ip_rates[ip] = TokenBucket(self._ip_rate, 2 * self._ip_rate)
        if not bucket.allow(time.monotonic()):
            self.metrics.connections_refused.labels("per_ip_rate").inc()
            log.warning(
                "refused a client from %s: connecting too often",
                ip,
                extra={"event": "per_ip_rate_refused", "ip": ip},
            )
            return _json_error(
                429, "too_many_connections", "connecting too often; slow down", {"Retry-After": "1"}
            )
        return None

    def joined(self, ip: str) -> None:
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1

    def left(self, ip: str) -> None:
        count = self._per_ip.get(ip, 0) - 1
        if count > 0:
            self._per_ip[ip] = count
        else:
            self._per_ip.pop(ip, None)

    def _refuse(self, headers: Mapping[str, str], local_ip: str) -> Any:
        """An answer for an upgrade that must not happen (origin, capacity), else None."""
        origin = headers.get("Origin")
        if not self._hosts.origin_allowed(origin, local_ip):
            # A page on another site must not read bot data with the visitor's network
            # position (cross-site WebSocket hijacking); bots and SDKs send no Origin.
            shown = excerpt(str(origin).encode(), 200)
            self.metrics.connections_refused.labels("origin").inc()
            log.warning(
                "refused a client from origin %s",
                shown,
                extra={"event": "origin_refused", "origin": shown},
            )
            return _json_error(403, "forbidden_origin", "this origin may not connect")
        if len(self.hub) >= self._max_connections:
            self.metrics.connections_refused.labels("capacity").inc()
            log.warning(
                "refused a client: %d connections is the limit",
                self._max_connections,
                extra={"event": "capacity_refused"},
            )
            return _json_error(
                503, "capacity", "the relay is at its connection limit", {"Retry-After": "5"}
            )
        return None

    def _redirect_host(self, headers: Mapping[str, str], local_ip: str) -> str:
        """Where the HTTP plane is, for the redirect: the Host only when it names this relay
        (never an attacker's name, reflected), else the address the request arrived on."""
        host = headers.get("Host", "")
        if host and self._hosts.host_allowed(host, local_ip):
            name = split_host(host)[0]
        else:
            name = normalise_ip(local_ip) or "localhost"
        return f"[{name}]" if ":" in name else name

    def _route(self, request: WSUpgradeRequest, ip: str = "?", local_ip: str = "?") -> Any:
        path, _, query = request.path.decode("latin-1").partition("?")
        is_upgrade = "websocket" in request.headers.get("Upgrade", "").lower()
        if is_upgrade:
            if path != "/":
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(404, b"WebSocket endpoint is /\n"),
                    None,
                )
            refused = self._refuse(request.headers, local_ip) or self._refuse_ip(ip)
            if refused is not None:
                return refused
            try:
                subscription, replay = parse_connect_query(query)
                grant, echo = self._authenticate(request.headers, query)
            except AuthError as exc:
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(
                        401,
                        orjson.dumps(
                            {"error": "unauthorized", "reason": exc.reason, "message": exc.message}
                        ),
                        {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                    ),
                    None,
                )
            except CommandError as exc:
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(
                        400,
                        orjson.dumps({"error": exc.code, "message": exc.message}),
                        {"Content-Type": "application/json"},
                    ),
                    None,
                )
            peer = ClientPeer(
                self.hub,
                self.metrics,
                self.hub.new_client_id(),
                subscription,
                Session(grant, replay),
                self._on_command,
                self._on_joined,
                self._on_left,
                self._frame_rate_per_s,
            )
            peer.ip = ip
            peer.dataplane = self
            if grant is not None:
                peer.subscription = replace(
                    subscription, scope_bots=grant.bots, scope_events=grant.events
                )
            if echo is None:
                return peer
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": echo}), peer
            )
        if path == "/healthz":
            ok, body = self._health()
            response = (
                WSUpgradeResponse.create_ok_response(
                    orjson.dumps(body), {"Content-Type": "application/json"}
                )
                if ok
                else WSUpgradeResponse.create_error_response(
                    503, orjson.dumps(body), {"Content-Type": "application/json"}
                )
            )
            return WSUpgradeResponseWithListener(response, None)
        if self._http_port:
            location = (
                f"{self._http_scheme}://{self._redirect_host(request.headers, local_ip)}"
                f":{self._http_port}{request.path.decode('latin-1')}"
            )
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_redirect_response(302, location), None
            )
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_error_response(
                426, b"This port speaks WebSocket; connect with ws://\n", {"Upgrade": "websocket"}
            ),
            None,
        )
