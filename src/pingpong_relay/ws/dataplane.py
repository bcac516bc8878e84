"""The WebSocket data plane on picows: the upgrade at `/`, a plain /healthz, and redirects.

The upgrade is admission, authentication and the client's peer; any other path is
redirected to the HTTP plane.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from ssl import SSLContext
from typing import Any, Final

import orjson
from picows import (
    WSAutoPingStrategy,
    WSUpgradeRequest,
    WSUpgradeResponse,
    WSUpgradeResponseWithListener,
)
from picows.picows import WSProtocol  # type: ignore[attr-defined]  # not in the stubs

from pingpong_relay.auth import Authenticator, AuthError, redact_query
from pingpong_relay.hub import Hub
from pingpong_relay.origins import HostPolicy, normalise_ip, split_host
from pingpong_relay.subscriptions import CommandError, parse_connect_query
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.ws.admission import Admission, json_error
from pingpong_relay.ws.peer import ClientPeer, CommandHandler, JoinHandler
from pingpong_relay.ws.sessions import Session

__all__ = ["MAX_CLIENT_FRAME_BYTES", "DataPlane"]

MAX_CLIENT_FRAME_BYTES: Final = 16 * 1024
READ_BUFFER_INIT_BYTES: Final = 1024

HealthProbe = Callable[[], tuple[bool, dict[str, Any]]]


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
        refused: Callable[[str, str], None] = lambda _reason, _detail: None,
    ) -> None:
        self.hub = hub
        self.metrics = metrics
        self._hosts = hosts if hosts is not None else HostPolicy(http_port=http_port)
        self._admission = Admission(
            hub,
            metrics,
            self._hosts,
            max_connections=max_connections,
            max_per_ip=max_per_ip,
            connection_rate_per_ip=connection_rate_per_ip,
        )
        self._frame_rate_per_s = frame_rate_per_s
        self._authenticate = authenticate
        self._refused = refused  # told (token reason, detail) of every upgrade refused for it
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
        """The port the server socket is bound to (once started)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(
        self, host: str, port: int, ssl: SSLContext | None = None, *, reuse_port: bool = False
    ) -> None:
        """Listens on `host:port` (TLS with `ssl`)."""
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
        """Closes the listening socket; connected clients stay."""
        if self._server is not None:
            self._server.close()

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
        if "websocket" in request.headers.get("Upgrade", "").lower():
            if path != "/":
                return WSUpgradeResponseWithListener(
                    WSUpgradeResponse.create_error_response(404, b"WebSocket endpoint is /\n"),
                    None,
                )
            refused = self._admission.refuse(request.headers, ip, local_ip)
            return refused if refused is not None else self._upgrade(request, path, query, ip)
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

    def _upgrade(self, request: WSUpgradeRequest, path: str, query: str, ip: str) -> Any:
        """The client's peer, with its subscription and grant; 401 or 400 if they fail."""
        try:
            subscription, replay = parse_connect_query(query)
            grant, echo = self._authenticate(request.headers, query)
        except AuthError as exc:
            # Logged with where it came from and what it asked for, the token replaced.
            shown = redact_query(f"{path}?{query}") if query else path
            self._refused(exc.reason, f"{exc.reason}: GET {shown} from {ip}")
            return WSUpgradeResponseWithListener(
                WSUpgradeResponse.create_error_response(
                    401,
                    orjson.dumps(exc.body()),  # the HTTP plane's 401 body, too
                    {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                ),
                None,
            )
        except CommandError as exc:
            return json_error(400, exc.code, exc.message)
        if grant is not None:
            subscription = replace(subscription, scope_bots=grant.bots, scope_events=grant.events)
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
        peer.addresses = self._admission
        if echo is None:
            return peer
        return WSUpgradeResponseWithListener(
            WSUpgradeResponse.create_101_response({"Sec-WebSocket-Protocol": echo}), peer
        )
