"""A lean Redis connection for what the relay does once per message: the history's append
and the Pub/Sub subscription. Commands are written as they are asked for and replies
matched to them in order, or, once `listen`ing, every reply (a subscribed connection's
messages) handed to one callback as it is parsed, with hiredis and no client library in
between.

Measured on the hot path (docs/benchmarks.md), redis-py's asyncio client spends about half
a millisecond of the relay's CPU per command, as much as writing the message to 500
clients; this costs one write and one parse. It speaks RESP2 to one server, over TCP, TLS
(rediss://, with redis-py's TLS settings from the URL) or a Unix socket, with the URL's
username, password and database; `lean_url` says whether a URL is one of those (a Redis
Cluster or Sentinel URL keeps redis-py, which knows how to find the server).
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from typing import Any, Final, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from pingpong_relay.urls import is_cluster_url, parse_sentinel_url

__all__ = ["RespConnection", "lean_url"]

_LEAN_SCHEMES: Final = ("redis://", "rediss://", "unix://")


def lean_url(url: str) -> bool:
    """Whether `url` names one server this connection can reach by itself."""
    return (
        url.startswith(_LEAN_SCHEMES)
        and not is_cluster_url(url)
        and parse_sentinel_url(url) is None
    )


class RespConnection(asyncio.Protocol):
    """One connection: `call` writes a command at once and returns the future of its reply.

    A reply that is a Redis error sets redis-py's ResponseError on its future; a lost
    connection fails every unanswered future with redis-py's ConnectionError, and the
    connection is then `closed` for good (open a new one); `gone` then holds why.
    """

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._transport: asyncio.Transport | None = None
        self._lost: BaseException | None = None
        self._on_push: Callable[[Any], None] | None = None
        # When the calls waiting last made progress (a reply, or a call into an empty queue).
        self._progress_at = time.monotonic()
        self.gone: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, url: str, timeout_s: float) -> RespConnection:
        """Connects to the server `url` names and authenticates and selects its database."""
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        connection = cls()
        kind = options.get("connection_class")
        async with asyncio.timeout(timeout_s):
            if kind is UnixDomainSocketConnection:
                await loop.create_unix_connection(lambda: connection, options["path"])
            else:
                ssl = None
                if kind is SSLConnection:
                    tls: dict[str, Any] = {k: v for k, v in options.items() if k.startswith("ssl_")}
                    ssl = SSLConnection(
                        host=options.get("host", "localhost"), **tls
                    ).ssl_context.get()
                await loop.create_connection(
                    lambda: connection,
                    options.get("host", "localhost"),
                    int(options.get("port", 6379)),
                    ssl=ssl,
                )
            try:
                password = options.get("password")
                if password is not None:
                    username = options.get("username")
                    auth = ("AUTH", username, password) if username else ("AUTH", password)
                    await connection.call(*auth)
                if options.get("db"):
                    await connection.call("SELECT", int(options["db"]))
            except BaseException:
                connection.close()
                raise
        return connection

    @property
    def closed(self) -> bool:
        """Whether the connection is gone (or was never made)."""
        return self._transport is None or self._lost is not None

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Writes one command now; its reply (or error) comes in the future returned."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if not self._write(args):
            future.set_exception(RedisConnectionError(f"not connected: {self._lost}"))
            return future
        if not self._waiting:
            self._progress_at = time.monotonic()
        self._waiting.append(future)
        return future

    def unanswered_s(self) -> float:
        """Seconds the oldest unanswered call has gone without a reply (0: none waits)."""
        return time.monotonic() - self._progress_at if self._waiting else 0.0

    def listen(self, on_push: Callable[[Any], None]) -> None:
        """From now on every reply goes to `on_push` as it is parsed (a subscribed
        connection's confirmations, messages and pongs); write with `send`. An exception
        from `on_push` ends the connection (`gone` says why)."""
        self._on_push = on_push

    def send(self, *args: Any) -> None:
        """Writes one command whose replies come to the `listen` callback."""
        self._write(args)

    def _write(self, args: tuple[Any, ...]) -> bool:
        """Writes one command; False when the connection is closed (nothing written)."""
        if self._transport is None or self._lost is not None:
            return False
        self._transport.write(hiredis.pack_command(args))
        return True

    def close(self, why: str = "connection closed") -> None:
        """Closes the connection; unanswered calls fail with `why`."""
        if self._transport is not None:
            self._transport.close()
        self._fail(RedisConnectionError(why))

    # --- asyncio.Protocol -------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """asyncio: connected."""
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """asyncio: replies, each to the oldest call still unanswered."""
        reader = self._reader
        try:
            reader.feed(data)
            on_push = self._on_push
            if on_push is not None:
                while (reply := reader.gets()) is not False:
                    on_push(reply)
                return
            while (reply := reader.gets()) is not False:
                self._progress_at = time.monotonic()
                future = self._waiting.popleft()
                if future.done():
                    continue  # its caller stopped waiting (cancelled)
                if isinstance(reply, hiredis.ReplyError):
                    future.set_exception(ResponseError(str(reply)))
                else:
                    future.set_result(reply)
        except (hiredis.ProtocolError, IndexError) as exc:
            # Not RESP, or a reply nobody asked for: nothing after it can be trusted.
            self._fail(RedisConnectionError(f"Redis protocol error: {exc!r}"))
            if self._transport is not None:
                self._transport.abort()
        except Exception as exc:  # the listener's: the connection ends, the owner says why
            self._fail(exc)
            if self._transport is not None:
                self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """asyncio: the connection is gone; unanswered calls fail."""
        self._fail(RedisConnectionError(f"connection lost: {exc or 'closed by the server'}"))

    def _fail(self, error: BaseException) -> None:
        if self._lost is None:
            self._lost = error
            if not self.gone.done():
                self.gone.set_result(error)
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)
