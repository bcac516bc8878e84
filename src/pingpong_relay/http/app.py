"""The HTTP plane (aiohttp): health, metrics, statistics, statuses and alerts."""

from __future__ import annotations

import asyncio
import csv
import fnmatch
import io
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from ssl import SSLContext
from typing import Any, Final, cast

import orjson
from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from prometheus_client import CONTENT_TYPE_LATEST, Counter

from pingpong_relay.asyncapi import asyncapi
from pingpong_relay.auth import Authenticator, AuthError, Grant
from pingpong_relay.defaults import WINDOWS
from pingpong_relay.health import public_health
from pingpong_relay.http.guard import (
    bearer_matches,
    csv_cell,
    raw_response,
    security_headers,
    wants_detail,
)
from pingpong_relay.limits import LogThrottle
from pingpong_relay.messages import excerpt
from pingpong_relay.monitor import Monitor
from pingpong_relay.origins import HostPolicy
from pingpong_relay.redis_io.history import MAX_PAGE, History
from pingpong_relay.redis_io.rollup_store import RollupStore
from pingpong_relay.replay import Entry
from pingpong_relay.rollups import ANALYTICS_WINDOWS
from pingpong_relay.subscriptions import CommandError, parse_position
from pingpong_relay.telemetry.metrics import HTTP_REFUSAL_REASONS

log = logging.getLogger("pingpong_relay.http")

# Idle keep-alive connections are closed after this long (aiohttp's default is an hour).
KEEPALIVE_TIMEOUT_S: Final = 15.0
# Refusals of one kind are logged at most this often, with how many there were.
REFUSAL_LOG_INTERVAL_S: Final = 10.0
# A connection past --max-http-connections gets its 503 and is closed once its request
# has arrived (so the close does not reset it) or after this long; at most
# REFUSAL_SLOTS such connections linger at once, the rest are closed at once.
REFUSAL_LINGER_S: Final = 1.0
REFUSAL_SLOTS: Final = 16
HEADERS_KEY: Final = web.AppKey("security_headers", dict[str, str])


def _encode(body: Any) -> bytes:
    return orjson.dumps(body)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body), status=status, content_type="application/json")


async def _large_json(body: Any) -> web.Response:
    """A body that may be large (every bot, a page of history), encoded off the event loop."""
    data = await asyncio.to_thread(_encode, body)
    return web.Response(body=data, content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    return _json({"error": code, "message": message}, status)


def _unauthorized(code: str, message: str) -> web.Response:
    response = _error(401, code, message)
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


# Which event scope of a token each data endpoint belongs to.
ENDPOINT_EVENTS = {
    "/stats": "stats",
    "/alerts": "alerts",
    "/bots": "status",
    "/history": "pingpong",
    "/analytics": "pingpong",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The dashboard: static files, no build step, nothing fetched from outside the relay.
DASHBOARD_DIR = Path(__file__).parent / "dashboard"
# Paths that carry no bot data, open whatever the auth mode: the page asks for a token.
OPEN_PATHS = frozenset({"/", "/healthz", "/dashboard/config.json", "/asyncapi.json"})


def _scoped(request: web.Request) -> bool:
    grant: Grant | None = request.get("grant")
    return grant is not None and grant.bots is not None


def _visible(request: web.Request, bot: str) -> bool:
    """Whether the request's token (if any) covers this bot."""
    grant: Grant | None = request.get("grant")
    if grant is None or grant.bots is None:
        return True
    return any(fnmatch.fnmatchcase(bot, pattern) for pattern in grant.bots)


def _unknown_bot(bot: str | None) -> web.Response:
    # The same answer for a bot that does not exist and one the token does not cover.
    return _error(404, "unknown_bot", f"no messages from bot {bot!r} yet")


def build_app(
    health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
    render_metrics: Callable[[], Awaitable[bytes]],
    monitor: Monitor,
    history: History | None = None,
    rollups: RollupStore | None = None,
    *,
    silence_ms: int = 30_000,
    authenticate: Authenticator | None = None,
    metrics_token: str = "",
    dashboard_config: Callable[[], dict[str, Any]] = dict,
    hosts: HostPolicy | None = None,
    frame_ancestors: str = "'none'",
    refused: Callable[[str, str], None] = lambda _reason, _detail: None,
) -> web.Application:
    """The HTTP plane's routes. `health` gives the detailed body (the operator's view);
    anyone gets only its public part. `hosts` (None: no check) says which Host headers
    name the relay; `refused(reason, detail)` is told of every request refused for one."""

    def host_refusal(request: web.Request) -> web.Response | None:
        """421 for a Host that does not name the relay: a page on a rebound DNS name must
        not read the relay with the visitor's network position (DNS rebinding)."""
        if hosts is None:
            return None
        values = request.headers.getall(hdrs.HOST, [])
        if not values:
            return None  # HTTP/1.0 probes; no browser leaves it out, so no rebinding either
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        local_ip = str(sockname[0]) if sockname else ""
        if len(values) == 1 and hosts.host_allowed(values[0], local_ip):
            return None
        refused("host", f"Host {excerpt(', '.join(values).encode(), 100)}")
        return _error(
            421,
            "unknown_host",
            "the Host header does not name this relay (an operator can add it with --allowed-host)",
        )

    def operator_refusal(request: web.Request) -> web.Response | None:
        """/metrics and /healthz?detail=1: open on an anonymous relay without
        --metrics-token; otherwise that token, or (--auth jwt) a token with the metrics scope."""
        if not metrics_token and authenticate is None:
            return None
        authorization = request.headers.get(hdrs.AUTHORIZATION, "")
        if metrics_token and bearer_matches(authorization, metrics_token):
            return None
        if authenticate is not None and authorization.isascii():
            try:
                grant, _ = authenticate(request.headers, request.query_string)
            except AuthError:
                grant = None
            if grant is not None and grant.metrics:
                return None
        return _unauthorized(
            "unauthorized",
            "needs the --metrics-token bearer token"
            + (" or a token with the metrics scope" if authenticate is not None else ""),
        )

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Host first; then data endpoints need a token when auth is on, /metrics and the
        detailed health the operator's credential, the rest (no bot data) nothing."""
        refusal = host_refusal(request)
        if refusal is not None:
            return refusal
        path = request.path
        if path == "/metrics" or (path == "/healthz" and wants_detail(request.query)):
            return operator_refusal(request) or await handler(request)
        if path in OPEN_PATHS or path.startswith("/dashboard/"):
            return await handler(request)
        if authenticate is not None:
            if not request.headers.get(hdrs.AUTHORIZATION, "").isascii():
                # A token is ASCII; anything else is refused here, not deep in a decoder.
                return _unauthorized("malformed", "Authorization must be 'Bearer <token>'")
            try:
                grant, _ = authenticate(request.headers, request.query_string)
            except AuthError as refused_token:
                return _unauthorized(refused_token.reason, refused_token.message)
            event = ENDPOINT_EVENTS.get(request.path)
            if grant is not None and grant.events is not None and event not in grant.events:
                return _error(403, "forbidden", f"the token does not grant {event!r}")
            request["grant"] = grant
        return await handler(request)

    async def healthz(request: web.Request) -> web.Response:
        ok, body = await health()
        if not wants_detail(request.query):
            body = public_health(ok, body)
        return _json(body, 200 if ok else 503)

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            body=await render_metrics(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def stats(request: web.Request) -> web.Response:
        window = request.query.get("window", "5m")
        if window not in WINDOWS:
            return _error(400, "bad_window", f"window must be one of {', '.join(WINDOWS)}")
        bot = request.query.get("bot") or None
        if bot is not None and not _visible(request, bot):
            return _unknown_bot(bot)
        try:
            body = monitor.stats(window, bot)
        except KeyError:
            return _unknown_bot(bot)
        if _scoped(request):
            body["bots"] = {b: s for b, s in body["bots"].items() if _visible(request, b)}
            body["overall"] = None  # it would include bots the token does not cover
        return await _large_json(body)

    async def alerts(request: web.Request) -> web.Response:
        body = monitor.alerts()
        return await _large_json(
            {k: [a for a in v if _visible(request, a["bot"])] for k, v in body.items()}
        )

    async def bots(request: web.Request) -> web.Response:
        statuses = monitor.statuses()
        return await _large_json(
            {"bots": {b: s for b, s in statuses.items() if _visible(request, b)}}
        )

    async def history_page(request: web.Request) -> web.Response:
        if history is None:
            return _error(404, "history_off", "history is off (--history-retention 0)")
        query = request.query
        try:
            limit = int(query.get("limit", "1000"))
            if not 1 <= limit <= MAX_PAGE:
                raise ValueError
        except ValueError:
            return _error(400, "bad_limit", f"limit must be a whole number from 1 to {MAX_PAGE}")
        try:
            start = parse_position(query["since"], end=False) if "since" in query else "-"
            end = parse_position(query["until"], end=True) if "until" in query else "+"
            if "after" in query:  # the cursor of the previous page: exclusive
                start = "(" + parse_position(query["after"], end=False)
        except CommandError as exc:
            return _error(400, "bad_position", exc.message)
        bot = query.get("bot") or None
        if bot is not None and not _visible(request, bot):
            return _unknown_bot(bot)
        if bot:
            entries = await history.read(bot, start, end, limit + 1)
        else:
            # Filtered before the limit: a scoped page is full of the bots it may see,
            # and the streams of the others are not even read.
            visible = (lambda b: _visible(request, b)) if _scoped(request) else None
            entries = await history.read_all(start, end, limit + 1, visible)
        page, more = entries[:limit], len(entries) > limit
        cursor = page[-1].id if more and page else None
        if query.get("format") == "csv":
            return web.Response(
                text=await asyncio.to_thread(_csv, page),
                content_type="text/csv",
                headers={"X-Next-After": cursor} if cursor else None,
            )
        body = await asyncio.to_thread(_history_json, bot, page, cursor)
        return web.Response(body=body, content_type="application/json")

    async def analytics(request: web.Request) -> web.Response:
        if rollups is None:
            return _error(404, "history_off", "history is off (--history-retention 0)")
        window = request.query.get("window", "24h")
        if window not in ANALYTICS_WINDOWS:
            return _error(
                400, "bad_window", f"window must be one of {', '.join(ANALYTICS_WINDOWS)}"
            )
        bot = request.query.get("bot")
        if not bot:
            return _error(400, "bot_required", "name the bot: /analytics?bot=ID&window=…")
        if not _visible(request, bot):
            return _unknown_bot(bot)
        return _json(await rollups.analytics(bot, window, silence_ms))

    async def dashboard(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(DASHBOARD_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def dashboard_settings(_request: web.Request) -> web.Response:
        return _json(dashboard_config())

    document = orjson.dumps(asyncapi())  # built once: it only changes with the code

    async def asyncapi_document(_request: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    headers = security_headers(frame_ancestors)

    async def add_headers(_request: web.Request, response: web.StreamResponse) -> None:
        # Every response the app prepares: pages, static files, API answers, errors.
        response.headers.update(headers)

    app = web.Application(middlewares=[guard])
    app[HEADERS_KEY] = headers
    app.on_response_prepare.append(add_headers)
    app.router.add_get("/asyncapi.json", asyncapi_document)
    app.router.add_get("/", dashboard)
    app.router.add_get("/dashboard/config.json", dashboard_settings)
    app.router.add_static("/dashboard/", DASHBOARD_DIR, append_version=False)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/stats", stats)
    app.router.add_get("/alerts", alerts)
    app.router.add_get("/bots", bots)
    app.router.add_get("/history", history_page)
    app.router.add_get("/analytics", analytics)
    return app


CSV_COLUMNS = ("id", "bot", "channel", "relay_ms", "type", "latency", "timestamp", "source")


def _history_json(bot: str | None, page: list[Entry], cursor: str | None) -> bytes:
    return _encode({"bot": bot, "items": [e.to_json() for e in page], "next_after": cursor})


def _csv(entries: list[Entry]) -> str:
    """The page as CSV; any text cell a spreadsheet would take for a formula is defused
    (bot ids, channel names and sources come from whoever can publish to Redis)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        data = orjson.loads(entry.raw)
        row = (
            entry.id,
            entry.bot,
            entry.channel,
            entry.relay_ms,
            data.get("type"),
            data.get("latency", ""),
            data.get("timestamp", ""),
            data.get("source", ""),
        )
        writer.writerow([csv_cell(value) for value in row])
    return out.getvalue()


class Refusals:
    """Counts every refusal of the HTTP plane by reason and logs them at WARNING, at most
    one line per reason every REFUSAL_LOG_INTERVAL_S, saying how many there were."""

    def __init__(
        self,
        counter: Counter,
        interval_s: float = REFUSAL_LOG_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._counter = counter
        self._log = LogThrottle(interval_s)
        self._clock = clock
        self._latest: dict[str, str] = {}
        self._flushes: dict[str, asyncio.TimerHandle] = {}

    def __call__(self, reason: str, detail: str) -> None:
        self._counter.labels(reason).inc()
        self._latest[reason] = detail
        now = self._clock()
        count = self._log.note(reason, now)
        if count:
            self._write(reason, count)
            return
        due = self._log.due_at(reason)
        if due is not None and reason not in self._flushes:
            # Those held back are logged when their interval ends, even if none follow.
            self._flushes[reason] = asyncio.get_running_loop().call_later(
                max(0.0, due - now), self._flush, reason
            )

    def _flush(self, reason: str) -> None:
        self._flushes.pop(reason, None)
        count = self._log.flush(reason, self._clock())
        if count:
            self._write(reason, count)

    def _write(self, reason: str, count: int) -> None:
        detail = self._latest.get(reason, "")
        log.warning(
            "HTTP plane refused %d %s (latest: %s)",
            count,
            HTTP_REFUSAL_REASONS.get(reason, reason),
            detail,
            extra={"event": "http_refused", "reason": reason, "count": count, "detail": detail},
        )

    def close(self) -> None:
        for handle in self._flushes.values():
            handle.cancel()
        self._flushes.clear()


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
            response = super().handle_error(request, status, exc, message)
        finally:
            self._junk = False
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
        headers = app.get(HEADERS_KEY) or security_headers()
        self.connections = _Connections(max_connections, request_timeout_s, refused, headers)

    @property
    def port(self) -> int:
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
        await self._runner.cleanup()
