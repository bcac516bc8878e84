"""Alert webhooks: POST each alert as JSON to every configured URL, off the hot path."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson

from pingpong_relay.backoff import Backoff
from pingpong_relay.tasks import drain_then_cancel
from pingpong_relay.telemetry.metrics import RelayMetrics
from pingpong_relay.urls import url_origin

__all__ = ["WebhookSender"]

log = logging.getLogger("pingpong_relay.webhooks")


class WebhookSender:
    """A bounded queue and one worker task; a slow or failing endpoint blocks nothing else.

    Each alert is tried up to `attempts` times per URL with capped exponential backoff.
    When the queue is full the oldest alert is dropped (and counted): the newest state
    of an alert matters more than an old transition.
    """

    def __init__(
        self,
        urls: Sequence[str],
        metrics: RelayMetrics,
        *,
        attempts: int = 4,
        timeout_s: float = 5.0,
        backoff: Backoff | None = None,
        queue_size: int = 1000,
    ) -> None:
        self.urls = list(urls)
        self._metrics = metrics
        self._attempts = attempts
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff = backoff or Backoff(base_s=0.5, cap_s=10.0)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Starts the sending task on the running loop (none without URLs; once only)."""
        if self.urls and self._task is None:
            self._task = asyncio.create_task(self._run(), name="webhook-sender")

    def submit(self, alert: dict[str, Any]) -> None:
        """Queues an alert (its `bot:alert` JSON) for every URL, without waiting; with the
        queue full, the oldest queued alert is dropped to make room."""
        if not self.urls:
            return
        body = orjson.dumps(alert)
        if self._queue.full():
            self._queue.get_nowait()
            self._queue.task_done()  # or join() in stop() would wait for it forever
            self._metrics.webhook_dropped.inc()
            log.warning("webhook queue full; dropped the oldest alert")
        self._queue.put_nowait(body)

    async def stop(self, drain_timeout_s: float = 2.0) -> None:
        """Gives queued alerts a short while to go out, then stops."""
        if self._task is None:
            return
        await drain_then_cancel(self._queue, self._task, drain_timeout_s)
        self._task = None
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        while True:
            body = await self._queue.get()
            try:
                await asyncio.gather(*(self._post(url, body) for url in self.urls))
            except Exception:
                # The worker must outlive any one alert, or every later alert is lost.
                log.exception("webhook delivery failed unexpectedly")
            finally:
                self._queue.task_done()

    async def _post(self, url: str, body: bytes) -> None:
        assert self._session is not None
        error = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff.delay(attempt - 1))
            try:
                async with self._session.post(
                    url, data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    if response.status < 300:
                        self._metrics.webhook_sent.inc()
                        return
                    error = f"HTTP {response.status}"
                    if 400 <= response.status < 500 and response.status not in (408, 429):
                        break  # the endpoint refuses this request; retrying will not help
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # Some client errors quote the whole URL, secret path included.
                error = f"{type(exc).__name__}: {exc}".replace(url, url_origin(url))
        self._metrics.webhook_failed.inc()
        shown = url_origin(url)
        log.warning(
            "webhook %s failed after %d attempt(s): %s",
            shown,
            attempt + 1,
            error,
            extra={"event": "webhook_failed", "url": shown, "error": error},
        )
