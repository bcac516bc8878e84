"""Loopback HTTP servers the relay talks to: a webhook receiver that keeps every alert."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from .processes import free_port


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
    """Records every alert POSTed to it (serve it with `http_server("/hook", r.handle, r.port)`).

    `alerts` in arrival order, `arrived_at` the monotonic time of each; `fail_first`
    answers that many POSTs 503 first, as a receiver that is down would.
    """

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []
        self.arrived = asyncio.Condition()
        self.fail_first = 0
        self.port = free_port()

    @property
    def url(self) -> str:
        """The URL to give the relay's --webhook-url."""
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        """The POST handler."""
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        body = await request.json()
        async with self.arrived:
            self.alerts.append(body)
            self.arrived_at.append(time.monotonic())
            self.arrived.notify_all()
        return web.Response(status=204)

    def since(self, at: float) -> list[dict[str, Any]]:
        """The alerts that arrived at or after monotonic time `at`."""
        return [a for a, when in zip(self.alerts, self.arrived_at, strict=True) if when >= at]

    def first_since(self, at: float, match: Callable[[dict[str, Any]], bool]) -> float | None:
        """Seconds from `at` to the first alert since then that `match`es; None if none has."""
        for alert, when in zip(self.alerts, self.arrived_at, strict=True):
            if when >= at and match(alert):
                return when - at
        return None

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
