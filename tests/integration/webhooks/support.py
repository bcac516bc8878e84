"""What the webhook tests share: a real HTTP endpoint that records and answers as told, a
log handler for the sender's failures, the metrics they read, and a sample alert."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from pingpong_relay.backoff import Backoff
from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.support import http_server

FAST_BACKOFF = Backoff(base_s=0.01, cap_s=0.02)
WAIT_S = 10.0  # the bound on every wait; a healthy run needs a fraction of it


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    content_type: str
    body: Any


class HookServer:
    """A real HTTP server: /ok/{name}, /status/{code}, /flaky/{failures}, /slow/{name}.

    Every request is recorded (and waiters woken) on arrival, before the response, so a
    test can tell that a request reached the server while its handler is still held.
    """

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(cls) -> AsyncIterator[HookServer]:
        """A running server on a free loopback port; held handlers are released at the end."""
        hooks = cls()
        async with http_server("/{tail:.*}", hooks.handle) as port:
            hooks.port = port
            try:
                yield hooks
            finally:
                hooks.release.set()

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.arrived = asyncio.Condition()
        # /slow/… handlers wait on this; the fixture sets it so none outlives the test.
        self.release = asyncio.Event()
        self.port = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def at(self, path: str) -> list[Seen]:
        return [seen for seen in self.seen if seen.path == f"/{path}"]

    def bodies(self, path: str) -> list[Any]:
        return [seen.body for seen in self.at(path)]

    async def until(self, predicate: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
        async def wait() -> None:
            async with self.arrived:
                await self.arrived.wait_for(predicate)

        await asyncio.wait_for(wait(), timeout_s)

    async def handle(self, request: web.Request) -> web.Response:
        seen = Seen(request.path, request.content_type, orjson.loads(await request.read()))
        async with self.arrived:
            self.seen.append(seen)
            self.arrived.notify_all()
        kind, _, arg = request.path.strip("/").partition("/")
        if kind == "status":
            return web.Response(status=int(arg))
        if kind == "flaky":
            if len(self.at(request.path.strip("/"))) <= int(arg):
                return web.Response(status=503)
            return web.Response(status=204)
        if kind == "slow":
            await self.release.wait()
        return web.Response(status=204)


class FailureLog(logging.Handler):
    """Records the sender's "webhook_failed" log lines and wakes whoever waits for them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failed: list[logging.LogRecord] = []
        self.warnings: list[logging.LogRecord] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.warnings.append(record)
        if getattr(record, "event", None) == "webhook_failed":
            self.failed.append(record)
        self._changed.set()

    async def until_failed(self, count: int, timeout_s: float = WAIT_S) -> None:
        async def wait() -> None:
            while len(self.failed) < count:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), timeout_s)


SenderFactory = Callable[..., WebhookSender]


def sample(metrics: RelayMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


def sent(metrics: RelayMetrics) -> float:
    return sample(metrics, "pingpong_webhook_deliveries_total")


def failed(metrics: RelayMetrics) -> float:
    return sample(metrics, "pingpong_webhook_failures_total")


def dropped(metrics: RelayMetrics) -> float:
    return sample(metrics, "pingpong_webhook_dropped_total")


def alert(number: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "type": "bot:alert",
        "rule": "latency",
        "bot": f"bot:pingpong/bot-{number}",
        "state": "firing",
        "value": 612.5,
        "threshold": 500.0,
        "repeat": False,
        "fired": True,
        "summary": "bot p95 latency 612.5 ms — above 500.0 ms",
        **extra,
    }
