"""A loopback stand-in for freqtrade's REST API (its api_server), for the relay's poller.

It answers what freqtrade documents: `GET /api/v1/ping` is public and answers
{"status": "pong"}; `GET /api/v1/health` needs the api_server's credentials (HTTP basic
here, or a bearer token) and answers {"last_process", "last_process_loc",
"last_process_ts" (unix seconds), "bot_start", "bot_start_ts", …}, 401
{"detail": "Unauthorized"} without them. Its behaviour is set between polls:
`behaviour` "healthy", "slow" (answers after `slow_s`), "stale" (the last process
`stale_age_s` ago) or "broken" (500 on every path); `stop()` closes the port (connection
refused) and `start()` opens it again on the same port.
"""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

from aiohttp import web

from .processes import free_port

__all__ = ["Behaviour", "FakeFreqtrade"]

Behaviour: TypeAlias = Literal["healthy", "slow", "stale", "broken"]


class FakeFreqtrade:
    """freqtrade's ping and health endpoints on 127.0.0.1:`port`, behaving as told."""

    def __init__(
        self,
        user: str = "freqtrader",
        password: str = "SuperSecret1!",
        token: str = "",
        port: int | None = None,
    ) -> None:
        self.user = user
        self.password = password
        self.token = token
        self.port = port or free_port()
        self.behaviour: Behaviour = "healthy"
        self.slow_s = 2.0
        self.stale_age_s = 420.0
        self.requests: list[tuple[str, str]] = []  # (path, Authorization header)
        self._runner: web.AppRunner | None = None
        self._started_at = time.time()

    @property
    def url(self) -> str:
        """The base URL, as --poll takes it (mode=freqtrade adds the /api/v1 paths)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listens (again) on its port."""
        app = web.Application()
        app.router.add_get("/api/v1/ping", self._ping)
        app.router.add_get("/api/v1/health", self._health)
        app.router.add_get("/{tail:.*}", self._other)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        """Closes its port: connections are refused until start()."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeFreqtrade:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _behave(self, request: web.Request) -> web.Response | None:
        self.requests.append((request.path, request.headers.get("Authorization", "")))
        if self.behaviour == "slow":
            await asyncio.sleep(self.slow_s)
        if self.behaviour == "broken":
            return web.Response(status=500, text="Internal Server Error\nsecond line")
        return None

    async def _ping(self, request: web.Request) -> web.Response:
        return await self._behave(request) or web.json_response({"status": "pong"})

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return bool(self.token) and value == self.token
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == (self.user, self.password)

    async def _health(self, request: web.Request) -> web.Response:
        answered = await self._behave(request)
        if answered is not None:
            return answered
        if not self._authorized(request):
            return web.json_response({"detail": "Unauthorized"}, status=401)
        now = time.time()
        last = now - (self.stale_age_s if self.behaviour == "stale" else 1.0)
        return web.json_response(
            {**_moment("last_process", last), **_moment("bot_start", self._started_at)}
        )

    async def _other(self, request: web.Request) -> web.Response:
        return await self._behave(request) or web.json_response({"detail": "Not Found"}, status=404)


def _moment(name: str, at_s: float) -> dict[str, Any]:
    """freqtrade's three forms of one moment: UTC text, local text, unix seconds."""
    moment = datetime.fromtimestamp(at_s, UTC)
    return {
        name: str(moment),
        f"{name}_loc": moment.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
        f"{name}_ts": int(at_s),
    }
