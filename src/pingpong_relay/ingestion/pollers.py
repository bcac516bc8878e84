"""Polls the --poll targets over HTTP and publishes each verdict through the inlet.

Relays on one Redis elect one poller with a lease (`{pingpong}:lease:pollers`): only its
holder polls, one task per target, so a slow target never delays another. Each verdict
(poll_targets decides what an answer means) goes out as the target's heartbeat, with
`via: "poll"`; a target that fails is logged when its state changes, not at every poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Final, Protocol

import aiohttp
from redis.exceptions import RedisError

from pingpong_relay.ingest import Report
from pingpong_relay.ingestion.inlet import Inlet, Refused
from pingpong_relay.instruments import Counter, Labelled
from pingpong_relay.logs import os_words
from pingpong_relay.poll_targets import (
    FREQTRADE_HEALTH_PATH,
    FREQTRADE_PING_PATH,
    PollTarget,
    freqtrade_health_report,
    freqtrade_ping_problem,
    http_problem,
    timeout_reason,
)
from pingpong_relay.redis_io.clients import redis_client
from pingpong_relay.redis_io.history import KEY_PREFIX
from pingpong_relay.redis_io.lease import Lease
from pingpong_relay.tasks import cancel_and_wait

__all__ = ["LEASE_KEY", "PollMetrics", "Pollers"]

log = logging.getLogger("pingpong_relay.ingestion.pollers")

LEASE_KEY: Final = KEY_PREFIX + "lease:pollers"
MAX_BODY_BYTES: Final = 64 * 1024  # a health answer is a few hundred bytes


class PollMetrics(Protocol):
    """What the pollers count."""

    @property
    def polls(self) -> Labelled[Counter]:
        """Polls, by result: up, degraded or down."""


class _Unanswered(Exception):
    """A request that got no HTTP answer: the reason, in words without credentials."""


def _unreachable(exc: BaseException, timeout_s: float) -> str:
    """Why a request got no answer, in the OS's words where it gave some."""
    if isinstance(exc, TimeoutError):
        return timeout_reason(timeout_s)
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        if isinstance(error, socket.gaierror):
            return f"cannot resolve the host: {error.strerror}"
        if isinstance(error, ssl.SSLError):  # its errno is OpenSSL's, not the OS's
            words = getattr(error, "verify_message", None) or error.reason or "handshake failed"
            return f"TLS failed: {words}"
        return f"cannot connect: {os_words(error) or str(error)}"
    words = os_words(exc)
    if words is not None:
        return f"the connection failed: {words}"
    return f"the connection failed: {type(exc).__name__}" + (f" ({exc})" if str(exc) else "")


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class Pollers:
    """Polls `targets` while this relay holds the pollers' lease on Redis at `redis_url`."""

    def __init__(
        self,
        targets: Sequence[PollTarget],
        inlet: Inlet,
        metrics: PollMetrics,
        redis_url: str,
        holder_id: str,
        *,
        lease_ttl_s: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.targets = list(targets)
        self._inlet = inlet
        self._metrics = metrics
        self._wall_clock = wall_clock
        self._redis = redis_client(redis_url, socket_timeout=lease_ttl_s / 3)
        self._lease = Lease(self._redis, LEASE_KEY, holder_id, lease_ttl_s)
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._polls: list[asyncio.Task[None]] = []
        self._last_status: dict[str, str] = {}

    @property
    def polling(self) -> bool:
        """Whether this relay polls now (it holds the lease)."""
        return bool(self._polls)

    @property
    def target_count(self) -> int:
        """How many targets there are to poll."""
        return len(self.targets)

    def start(self) -> None:
        """Starts competing for the lease, and polling while it is held."""
        # One session for every target; a fresh connection for each request, so that a
        # keep-alive connection the target closed meanwhile is never taken for it being down.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._task = asyncio.create_task(self._run(), name="pollers")

    async def stop(self) -> None:
        """Stops polling and releases the lease, so another relay polls at once."""
        await cancel_and_wait(self._task)
        self._task = None
        await self._stop_polling("this relay is stopping")
        with contextlib.suppress(RedisError, OSError):
            await self._lease.release()
        await self._redis.aclose()
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        redis_failing = False
        while True:
            try:
                await self._lease.keep()
                if redis_failing:
                    log.info("pollers' lease: Redis answers again", extra={"event": "lease_ok"})
                redis_failing = False
            except (RedisError, OSError) as exc:
                if not redis_failing:
                    log.warning(
                        "pollers' lease: Redis failed (%s); trying again",
                        exc,
                        extra={"event": "poll_lease_failed"},
                    )
                redis_failing = True
            # Held by the clock: a lease not renewed within its TTL may be another's now.
            if self._lease.held and not self._polls:
                self._start_polling()
            elif not self._lease.held and self._polls:
                await self._stop_polling("another relay may hold the pollers' lease")
            await asyncio.sleep(self._lease.renew_interval_s)

    def _start_polling(self) -> None:
        log.info(
            "polling %d target(s): this relay holds the pollers' lease",
            len(self.targets),
            extra={"event": "polling_started", "targets": [t.name for t in self.targets]},
        )
        self._polls = [
            asyncio.create_task(self._poll_forever(target), name=f"poll-{target.name}")
            for target in self.targets
        ]

    async def _stop_polling(self, why: str) -> None:
        if not self._polls:
            return
        polls, self._polls = self._polls, []
        await cancel_and_wait(*polls)
        self._last_status.clear()  # whoever polls next logs the targets' states afresh
        log.info("stopped polling: %s", why, extra={"event": "polling_stopped"})

    async def _poll_forever(self, target: PollTarget) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                report = await self.poll(target)
            except Exception as exc:  # a bug here must not end this target's polling
                log.exception("polling %s failed", target.name, extra={"event": "poll_error"})
                report = Report("down", reason=f"the poll failed: {type(exc).__name__}")
            if self._lease.held:  # lost meanwhile: not this relay's to say any more
                self._metrics.polls.labels(report.status).inc()
                self._note(target, report)
                with contextlib.suppress(Refused):  # the inlet counted and logged it
                    await self._inlet.report(target.name, report, "poll")
            await asyncio.sleep(max(0.0, target.interval_s - (loop.time() - started)))

    def _note(self, target: PollTarget, report: Report) -> None:
        """Logs a target's state when it changes (a failing target is not logged each poll)."""
        previous = self._last_status.get(target.name)
        self._last_status[target.name] = report.status
        if report.status == previous:
            return
        extra = {"event": "poll_state", "target": target.name, "status": report.status}
        if report.status == "up":
            log.info("poll target %s (%s) is up", target.name, target.url, extra=extra)
        else:
            log.warning(
                "poll target %s (%s) is %s: %s",
                target.name,
                target.url,
                report.status,
                report.reason,
                extra={**extra, "reason": report.reason},
            )

    async def poll(self, target: PollTarget) -> Report:
        """Polls `target` once: what its answer (or its silence) says of the bot."""
        try:
            if target.mode == "freqtrade":
                return await self._poll_freqtrade(target)
            status, body, latency_ms = await self._get(target, target.url)
        except _Unanswered as exc:
            return Report("down", reason=str(exc))
        problem = http_problem(status, body)
        if problem is not None:
            return Report("down", latency_ms, problem)
        return Report("up", latency_ms)

    async def _poll_freqtrade(self, target: PollTarget) -> Report:
        base = target.url.rstrip("/")
        status, body, latency_ms = await self._get(target, base + FREQTRADE_PING_PATH)
        problem = freqtrade_ping_problem(status, body)
        if problem is not None:
            return Report("down", latency_ms, problem)
        try:
            status, body, _ = await self._get(target, base + FREQTRADE_HEALTH_PATH)
        except _Unanswered as exc:
            return Report("down", latency_ms, f"health: {exc}")
        return freqtrade_health_report(status, body, self._wall_clock(), target.stale_s, latency_ms)

    async def _get(self, target: PollTarget, url: str) -> tuple[int, bytes, float]:
        """GET `url` with the target's credentials: (status, body's start, latency_ms: the
        round trip to the answer's headers); _Unanswered when none came in time."""
        assert self._session is not None, "start() first"
        auth = None
        headers = {}
        if target.token:
            headers["Authorization"] = f"Bearer {target.token}"
        elif target.user or target.password:
            auth = aiohttp.BasicAuth(target.user, target.password)
        started = time.perf_counter()
        try:
            async with self._session.get(
                url,
                auth=auth,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=target.timeout_s),
                allow_redirects=False,
            ) as response:
                latency_ms = (time.perf_counter() - started) * 1000
                body = await _read_at_most(response.content, MAX_BODY_BYTES)
                return response.status, body, latency_ms
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _Unanswered(_unreachable(exc, target.timeout_s)) from None
