"""The HTTP plane's server: a connection cap and a deadline for request headers.

Connections past the cap are given a 503 outside aiohttp.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from ssl import SSLContext
from typing import Any, Final, cast

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from pingpong_relay.http.guard import raw_response, security_headers
from pingpong_relay.http.state import STATE
from pingpong_relay.messages import excerpt

__all__ = ["KEEPALIVE_TIMEOUT_S", "REFUSAL_LINGER_S", "REFUSAL_SLOTS", "HttpPlane"]

# Idle keep-alive connections are closed after this long (aiohttp's default is an hour).
KEEPALIVE_TIMEOUT_S: Final = 15.0
# A connection past --max-http-connections gets its 503 and is closed once its request
# has arrived (so the close does not reset it) or after this long; at most
# REFUSAL_SLOTS such connections linger at once, the rest are closed at once.
REFUSAL_LINGER_S: Final = 1.0
REFUSAL_SLOTS: Final = 16


class _Connections:
    """The HTTP plane's connections: how many are open, the cap, the header deadline."""

    def __init__(
        self,
        limit: int,
        request_timeout_s: float,
        refused: Callable[[str, str], None],
        headers: Mapping[str, str],
    ) -> None:
        self.limit = limit
        self.request_timeout_s = request_timeout_s
        self.refused = refused
        self.headers = dict(headers)
        self.open = 0  # counted from the protocol's creation (at accept) until it is lost
        self.lingering = 0
        self.refusal = raw_response(
            503,
            "Service Unavailable",
            orjson.dumps(
                {"error": "capacity", "message": "the HTTP plane is at its connection limit"}
            ),
            headers,
            {"Retry-After": "5"},
        )

    def take(self) -> list[bool]:
        """A place for one connection: a one-element list, True while it is held."""
        self.open += 1
        return [True]

    def give_back(self, place: list[bool]) -> None:
        if place[0]:
            place[0] = False
            self.open -= 1


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else "?"


class _GuardedHandler(RequestHandler):
    """aiohttp's HTTP/1 protocol, counted against the cap and with a deadline for the
    request headers (aiohttp has none of its own).

    The deadline starts when the connection is made, and on a kept-alive connection with
    the first byte of the next request (until then the keep-alive timeout bounds it); it
    ends when a request's headers are complete. Past it the connection is closed.
    Relies on aiohttp's `_request_count` (bumped per parsed request head) and `_waiter`
    (pending while the connection waits for a request).
    """

    def __init__(self, connections: _Connections, manager: Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._connections = connections
        self._deadline: asyncio.TimerHandle | None = None
        self._between_requests = False
        self._junk = False
        # Counted from here, not from connection_made: the loop accepts a burst of
        # connections (building each one's protocol) before any is made, and each of them
        # must already count against the cap; so does one in its TLS handshake. One never
        # made (a handshake that failed or timed out) is given back after the handshake
        # timeout.
        self._place = connections.take()
        self._unmade: asyncio.TimerHandle | None = self._loop.call_later(
            connections.request_timeout_s + 1.0, connections.give_back, self._place
        )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._unmade is not None:
            self._unmade.cancel()
            self._unmade = None
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connections.give_back(self._place)
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and self._between_requests and self._deadline is None:
            self._between_requests = False
            self._arm()
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:
            self._disarm()  # a whole request head arrived

    async def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        finished = await super().finish_response(request, resp, start_time)
        self._between_requests = True
        return finished

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # aiohttp's own answers (400 for a request it cannot parse) skip the app's
        # response hooks: the security headers and Server name are added here.
        if isinstance(exc, HttpProcessingError):
            # Junk from the network is a refusal, counted and logged at most once per
            # interval, not an ERROR with a traceback for every request.
            self._junk = True
            shown = excerpt(str(exc.message).encode(), 200)
            self._connections.refused("bad_request", f"from {_peer(self.transport)}: {shown}")
        try:
            plain = super().handle_error(request, status, exc, message)
        finally:
            self._junk = False
        # In the plane's JSON error shape, like every other answer; still closing.
        if isinstance(exc, HttpProcessingError):
            said = excerpt(str(exc.message).encode(), 200)
            body = {"error": "bad_request", "message": f"not a valid HTTP request: {said}"}
        else:
            body = {"error": "internal_error", "message": "the relay failed to answer"}
        response = web.Response(
            status=plain.status, body=orjson.dumps(body), content_type="application/json"
        )
        response.force_close()
        response.headers.update(self._connections.headers)
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        if not self._junk:  # what is not junk from the network is ours: logged in full
            super().log_exception(*args, **kw)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self._loop.call_later(self._connections.request_timeout_s, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport is None:
            return
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Busy with an earlier request (pipelined): the head behind it gets its time.
            self._arm()
            return
        self._connections.refused("timeout", f"from {_peer(self.transport)}")
        self.force_close()


class _Refused(asyncio.Protocol):
    """A connection past the cap: answered 503 and closed, without aiohttp."""

    def __init__(self, connections: _Connections) -> None:
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._tail = b""
        self._timer: asyncio.TimerHandle | None = None
        self._lingers = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they are ones.
        self._transport = transport = cast(asyncio.Transport, transport)
        connections = self._connections
        connections.refused("capacity", f"from {_peer(transport)}")
        transport.write(connections.refusal)
        if connections.lingering >= REFUSAL_SLOTS:
            transport.close()
            return
        # Closing before the request is read would reset the connection, and the client
        # might never read the 503: wait for the request's end, briefly.
        connections.lingering += 1
        self._lingers = True
        self._timer = asyncio.get_running_loop().call_later(REFUSAL_LINGER_S, transport.close)

    def data_received(self, data: bytes) -> None:
        seen = self._tail + data
        if b"\r\n\r\n" in seen:  # the request's head is in: closing now resets nothing
            assert self._transport is not None
            self._transport.close()
        self._tail = seen[-3:]

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._lingers:
            self._lingers = False
            self._connections.lingering -= 1


class _GuardedSite(web.TCPSite):
    """TCPSite, with a protocol factory that caps and times connections."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        factory: Callable[[], asyncio.BaseProtocol],
        *,
        ssl_context: SSLContext | None,
        ssl_handshake_timeout: float,
        reuse_port: bool,
    ) -> None:
        super().__init__(
            runner,
            host,
            port,
            ssl_context=ssl_context,
            reuse_address=True,
            reuse_port=reuse_port or None,
        )
        self._factory = factory
        self._handshake_timeout = ssl_handshake_timeout

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner
        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            # A TLS handshake happens before the protocol exists: bounded here instead.
            extra["ssl_handshake_timeout"] = self._handshake_timeout
        self._server = await asyncio.get_running_loop().create_server(
            self._factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
            **extra,
        )


class HttpPlane:
    """The HTTP plane's listener: serves `app` behind the connection cap and the
    request-header deadline; `refused(reason, detail)` is told of every refusal."""

    def __init__(
        self,
        app: web.Application,
        *,
        refused: Callable[[str, str], None] = lambda _reason, _detail: None,
        max_connections: int = 100,
        request_timeout_s: float = 5.0,
        keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S,
    ) -> None:
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, keepalive_timeout=keepalive_timeout_s
        )
        self._site: web.TCPSite | None = None
        state = app.get(STATE)
        headers = state.headers if state is not None else security_headers()
        self.connections = _Connections(max_connections, request_timeout_s, refused, headers)

    @property
    def port(self) -> int:
        """The port the plane listens on (the one the system chose, for port 0)."""
        assert self._site is not None
        # uvloop's server is not an asyncio.Server, but both expose the bound sockets.
        sockets = getattr(self._site._server, "sockets", None)
        assert sockets
        return int(sockets[0].getsockname()[1])

    def _protocol(self) -> asyncio.BaseProtocol:
        connections = self.connections
        if connections.open >= connections.limit:
            return _Refused(connections)
        server = self._runner.server
        assert server is not None
        # As web.Server builds its RequestHandler, with the runner's handler arguments
        # (plus the ones the application adds: its access-log class and debug flag).
        return _GuardedHandler(
            connections, server, loop=asyncio.get_running_loop(), **server._kwargs
        )

    async def start(
        self, host: str, port: int, ssl: SSLContext | None = None, *, reuse_port: bool = False
    ) -> None:
        """Listens on host:port (TLS with `ssl`)."""
        await self._runner.setup()
        self._site = _GuardedSite(
            self._runner,
            host,
            port,
            self._protocol,
            ssl_context=ssl,
            ssl_handshake_timeout=self.connections.request_timeout_s,
            reuse_port=reuse_port,
        )
        await self._site.start()

    async def stop(self) -> None:
        """Closes the listener and every connection."""
        await self._runner.cleanup()
