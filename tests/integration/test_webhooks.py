"""WebhookSender against a real aiohttp HTTP server on loopback: delivery, retries, overflow."""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web

from pingpong_relay.backoff import Backoff
from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.urls import url_origin
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


@pytest.fixture
async def server() -> AsyncIterator[HookServer]:
    hooks = HookServer()
    async with http_server("/{tail:.*}", hooks.handle) as port:
        hooks.port = port
        try:
            yield hooks
        finally:
            hooks.release.set()


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


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


@pytest.fixture
def failures() -> Iterator[FailureLog]:
    logger = logging.getLogger("pingpong_relay.webhooks")
    handler = FailureLog()
    previous_level = logger.level
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


SenderFactory = Callable[..., WebhookSender]


@pytest.fixture
async def make_sender(server: HookServer, metrics: RelayMetrics) -> AsyncIterator[SenderFactory]:
    """make_sender(urls, **options) -> a WebhookSender with a fast backoff, stopped afterwards."""
    made: list[WebhookSender] = []

    def make(urls: list[str], **options: Any) -> WebhookSender:
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("timeout_s", 5.0)
        sender = WebhookSender(urls, metrics, **options)
        made.append(sender)
        return sender

    try:
        yield make
    finally:
        for sender in made:
            await asyncio.wait_for(sender.stop(drain_timeout_s=0), WAIT_S)


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


# --- delivery --------------------------------------------------------------------------------


async def test_posts_the_alert_as_json_to_every_url(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("ok/a"), server.url("ok/b")])
    sender.start()
    body = alert(number=7, value=None, nested={"tags": ["x", "ü"], "n": 1})
    sender.submit(body)
    await server.until(lambda: len(server.seen) == 2)
    assert server.bodies("ok/a") == [body]
    assert server.bodies("ok/b") == [body]
    assert {seen.content_type for seen in server.seen} == {"application/json"}
    await sender.stop()
    assert sent(metrics) == 2
    assert failed(metrics) == 0


async def test_alerts_arrive_in_the_order_submitted(
    server: HookServer, make_sender: SenderFactory
) -> None:
    sender = make_sender([server.url("ok/a")])
    sender.start()
    for number in range(5):
        sender.submit(alert(number))
    await server.until(lambda: len(server.seen) == 5)
    assert server.bodies("ok/a") == [alert(number) for number in range(5)]


# --- retries and failures --------------------------------------------------------------------


async def test_a_503_is_retried_until_it_succeeds(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("flaky/2")], attempts=4)
    sender.start()
    sender.submit(alert())
    await server.until(lambda: len(server.seen) == 3)
    await sender.stop()
    assert server.bodies("flaky/2") == [alert()] * 3
    assert sent(metrics) == 1
    assert failed(metrics) == 0


async def test_503_and_refused_connections_are_retried_then_counted_as_failures(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
    refused_url: str,
) -> None:
    attempts = 3
    sender = make_sender(
        [server.url("status/503"), refused_url, server.url("ok/a")], attempts=attempts
    )
    sender.start()
    sender.submit(alert())
    await failures.until_failed(2)
    assert server.bodies("status/503") == [alert()] * attempts
    # A healthy endpoint gets its alert whatever the others do, and exactly once.
    assert server.bodies("ok/a") == [alert()]
    assert failed(metrics) == 2
    assert sent(metrics) == 1
    messages = sorted(record.getMessage() for record in failures.failed)
    assert all(f"after {attempts} attempt(s)" in message for message in messages)
    assert any("HTTP 503" in message for message in messages)
    # Scheme and host only: chat webhooks keep their secret in the path and query.
    assert {getattr(record, "url", None) for record in failures.failed} == {
        url_origin(server.url("status/503")),
        url_origin(refused_url),
    }
    assert not [m for m in messages if "status/503" in m]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
async def test_a_client_error_is_not_retried(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
    status: int,
) -> None:
    sender = make_sender([server.url(f"status/{status}")], attempts=4)
    sender.start()
    sender.submit(alert())
    await failures.until_failed(1)
    assert len(server.at(f"status/{status}")) == 1
    assert failed(metrics) == 1
    assert sent(metrics) == 0
    assert "after 1 attempt(s)" in failures.failed[0].getMessage()
    assert f"HTTP {status}" in failures.failed[0].getMessage()


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_timeouts_throttling_and_server_errors_are_retried(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
    status: int,
) -> None:
    sender = make_sender([server.url(f"status/{status}")], attempts=3)
    sender.start()
    sender.submit(alert())
    await failures.until_failed(1)
    assert len(server.at(f"status/{status}")) == 3
    assert failed(metrics) == 1


# --- a slow endpoint -------------------------------------------------------------------------


def test_submit_is_a_plain_function() -> None:
    # The monitor calls it on the hot path: it must hand off without awaiting anything.
    assert not inspect.iscoroutinefunction(WebhookSender.submit)


async def test_a_slow_endpoint_blocks_neither_submit_nor_the_other_urls_and_times_out(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
) -> None:
    sender = make_sender([server.url("slow/a"), server.url("ok/b")], attempts=2, timeout_s=0.3)
    sender.start()
    sender.submit(alert(1))
    await server.until(lambda: len(server.at("slow/a")) == 1 and len(server.at("ok/b")) == 1)
    # The slow endpoint holds its request; submitting more returns at once all the same
    # (reaching the next line with the request still held proves it).
    sender.submit(alert(2))
    sender.submit(alert(3))
    assert len(server.at("slow/a")) == 1
    assert server.bodies("ok/b") == [alert(1)]
    # The client timeout ends the first attempt, the retry times out too: one failure.
    await failures.until_failed(1)
    assert server.bodies("slow/a")[:2] == [alert(1), alert(1)]
    assert failed(metrics) == 1
    assert "Timeout" in failures.failed[0].getMessage()
    # Once the endpoint answers again, the alerts queued meanwhile go out.
    server.release.set()
    await server.until(lambda: len(server.at("ok/b")) == 3 and len(server.at("slow/a")) == 4)
    assert server.bodies("ok/b") == [alert(1), alert(2), alert(3)]
    assert server.bodies("slow/a")[2:] == [alert(2), alert(3)]
    await sender.stop()
    assert failed(metrics) == 1
    assert sent(metrics) == 5


# --- the bounded queue -----------------------------------------------------------------------


async def _fill_behind_a_held_request(
    server: HookServer, sender: WebhookSender, queued: int
) -> None:
    """Alert 0 is held at /slow/a; alerts 1..queued wait in the sender's queue."""
    sender.start()
    sender.submit(alert(0))
    await server.until(lambda: len(server.at("slow/a")) == 1)
    for number in range(1, queued + 1):
        sender.submit(alert(number))


async def test_a_full_queue_drops_the_oldest_alert_and_counts_it(
    server: HookServer,
    make_sender: SenderFactory,
    metrics: RelayMetrics,
    failures: FailureLog,
) -> None:
    sender = make_sender([server.url("slow/a")], attempts=1, queue_size=2)
    await _fill_behind_a_held_request(server, sender, queued=2)
    assert dropped(metrics) == 0
    sender.submit(alert(3))  # the queue holds 1 and 2: 1 goes
    assert dropped(metrics) == 1
    sender.submit(alert(4))  # now 2 goes
    assert dropped(metrics) == 2
    assert sum("dropped the oldest" in r.getMessage() for r in failures.warnings) == 2
    server.release.set()
    await server.until(lambda: len(server.seen) == 3)
    assert server.bodies("slow/a") == [alert(0), alert(3), alert(4)]
    assert failed(metrics) == 0


async def test_stop_after_an_overflow_returns_once_the_queue_is_delivered(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("slow/a")], attempts=1, queue_size=2)
    await _fill_behind_a_held_request(server, sender, queued=3)  # alert 1 is dropped
    assert dropped(metrics) == 1
    server.release.set()
    await server.until(lambda: len(server.seen) == 3)
    # Everything left was delivered, so the drain has nothing to wait for: stop() must
    # not sit out its drain timeout (60 s here) because of the alert that was dropped.
    await asyncio.wait_for(sender.stop(drain_timeout_s=60), WAIT_S)
    assert server.bodies("slow/a") == [alert(0), alert(2), alert(3)]
    assert sent(metrics) == 3


# --- stop ------------------------------------------------------------------------------------


async def test_stop_delivers_what_is_queued_to_a_fast_endpoint(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("ok/a")])
    sender.start()
    for number in range(10):
        sender.submit(alert(number))
    await asyncio.wait_for(sender.stop(drain_timeout_s=WAIT_S), WAIT_S * 2)
    # No waiting on the server here: stop() itself waited for every delivery.
    assert server.bodies("ok/a") == [alert(number) for number in range(10)]
    assert sent(metrics) == 10


async def test_stop_gives_up_on_a_stuck_endpoint_after_its_drain_timeout(
    server: HookServer, make_sender: SenderFactory, metrics: RelayMetrics
) -> None:
    sender = make_sender([server.url("slow/a")], attempts=1, timeout_s=60.0)
    sender.start()
    sender.submit(alert(0))
    sender.submit(alert(1))
    await server.until(lambda: len(server.at("slow/a")) == 1)
    await asyncio.wait_for(sender.stop(drain_timeout_s=0.2), WAIT_S)
    assert not server.release.is_set()  # the endpoint never answered
    assert server.bodies("slow/a") == [alert(0)]
    assert sent(metrics) == 0
    assert failed(metrics) == 0  # cancelled at shutdown, not failed after retries
    # No worker is left behind.
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "webhook-sender"]
    await sender.stop()  # a second stop is a no-op


async def test_stop_before_start_is_a_no_op(make_sender: SenderFactory, server: HookServer) -> None:
    sender = make_sender([server.url("ok/a")])
    await asyncio.wait_for(sender.stop(), WAIT_S)
    assert server.seen == []


async def test_start_twice_runs_one_worker(server: HookServer, make_sender: SenderFactory) -> None:
    sender = make_sender([server.url("ok/a")])
    sender.start()
    sender.start()
    assert len([t for t in asyncio.all_tasks() if t.get_name() == "webhook-sender"]) == 1
    sender.submit(alert())
    await server.until(lambda: len(server.seen) == 1)
    await sender.stop()
    assert server.bodies("ok/a") == [alert()]


# --- no URLs ---------------------------------------------------------------------------------


async def test_without_urls_nothing_starts_and_submit_does_nothing(
    metrics: RelayMetrics,
) -> None:
    sender = WebhookSender([], metrics, queue_size=1, backoff=FAST_BACKOFF)
    before = asyncio.all_tasks()
    sender.start()
    assert asyncio.all_tasks() == before
    # Not even encoded: an unserialisable alert and an overflowing count are both ignored.
    sender.submit({"not": object()})
    for number in range(5):
        sender.submit(alert(number))
    assert dropped(metrics) == 0
    assert sent(metrics) == 0
    await asyncio.wait_for(sender.stop(), WAIT_S)
    assert asyncio.all_tasks() == before
