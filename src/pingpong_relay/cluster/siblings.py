"""Workers as siblings: which worker a process is, and the relay's view merged from every worker.

Each worker answers for its own /metrics and /healthz on a private Unix socket where its
siblings ask; the worker a request reached merges every worker's answer with its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
from aiohttp import web

from pingpong_relay.cluster.aggregate import merge_health, merge_metrics

__all__ = ["Siblings", "Worker", "gather_health", "gather_metrics", "workers_health"]

GATHER_TIMEOUT_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class Worker:
    """Which worker this process is, and where its siblings answer."""

    index: int
    count: int
    run_dir: Path

    def socket_path(self, index: int | None = None) -> Path:
        """The private Unix socket of worker `index` (this worker's by default)."""
        return self.run_dir / f"worker-{self.index if index is None else index}.sock"

    def siblings(self) -> list[int]:
        """The indexes of every other worker."""
        return [i for i in range(self.count) if i != self.index]

    def ready_path(self, index: int | None = None) -> Path:
        """The file worker `index` creates once it has started (listens on its ports)."""
        return self.run_dir / f"worker-{self.index if index is None else index}.ready"

    def mark_ready(self) -> None:
        """Tells the supervisor this worker started: a later exit is a crash, not a failure
        to start (which no restart would cure)."""
        self.ready_path().touch()


async def _ask(socket_path: Path, path: str) -> bytes | None:
    """A worker's answer on its private socket, or None (restarting, or too slow)."""
    connector = aiohttp.UnixConnector(path=str(socket_path))
    timeout = aiohttp.ClientTimeout(total=GATHER_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.get(f"http://worker{path}") as response,
        ):
            return await response.read()
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


async def gather_metrics(worker: Worker, own: bytes) -> bytes:
    """Every worker's metrics merged (a worker that does not answer is left out)."""
    answers = await asyncio.gather(
        *(_ask(worker.socket_path(i), "/metrics") for i in worker.siblings())
    )
    texts = [own.decode(), *(a.decode() for a in answers if a is not None)]
    # Parsing and merging every worker's text is the heaviest part: off the event loop.
    merged = await asyncio.to_thread(merge_metrics, texts)
    return merged.encode()


async def gather_health(worker: Worker, own: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """Every worker's /healthz merged with `own`: ok only when every worker answered ok (one
    that does not answer is listed as unavailable)."""
    answers = await asyncio.gather(
        *(_ask(worker.socket_path(i), "/healthz") for i in worker.siblings())
    )
    bodies: list[tuple[int, dict[str, Any] | None]] = [(worker.index, own)]
    for index, answer in zip(worker.siblings(), answers, strict=True):
        bodies.append((index, orjson.loads(answer) if answer is not None else None))
    return merge_health(worker.count, bodies)


async def workers_health(run_dir: Path, count: int) -> tuple[bool, dict[str, Any]]:
    """Every worker's /healthz merged, as the supervisor sees them (it has none of its own):
    ok only when all `count` workers answered ok."""
    sockets = [Worker(i, count, run_dir).socket_path() for i in range(count)]
    answers = await asyncio.gather(*(_ask(socket, "/healthz") for socket in sockets))
    bodies = [
        (index, orjson.loads(answer) if answer is not None else None)
        for index, answer in enumerate(answers)
    ]
    return merge_health(count, bodies)


class Siblings:
    """This relay's /metrics and /healthz as the HTTP plane serves them: its own, or with
    --workers every worker's merged; and the private socket its siblings ask."""

    def __init__(
        self,
        worker: Worker | None,
        render_metrics: Callable[[], bytes],
        health: Callable[[], tuple[bool, dict[str, Any]]],
    ) -> None:
        self.worker = worker
        self._render_metrics = render_metrics
        self._health = health
        self._private: web.AppRunner | None = None

    async def whole_health(self) -> tuple[bool, dict[str, Any]]:
        """/healthz: this relay's, or with --workers every worker's, merged."""
        ok, body = self._health()
        if self.worker is None:
            return ok, body
        return await gather_health(self.worker, body)

    async def whole_metrics(self) -> bytes:
        """/metrics: this relay's, or with --workers every worker's, merged. Rendered off
        the event loop: with many bots it is a large text, and clients must not wait."""
        own = await asyncio.to_thread(self._render_metrics)
        if self.worker is None:
            return own
        return await gather_metrics(self.worker, own)

    async def start(self) -> None:
        """Opens the private socket (only a worker has one)."""
        if self.worker is None:
            return

        async def metrics(_request: web.Request) -> web.Response:
            return web.Response(body=await asyncio.to_thread(self._render_metrics))

        async def healthz(_request: web.Request) -> web.Response:
            return web.Response(body=orjson.dumps(self._health()[1]))

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/healthz", healthz)
        self._private = web.AppRunner(app, access_log=None)
        await self._private.setup()
        path = self.worker.socket_path()
        path.unlink(missing_ok=True)  # left by a crashed predecessor
        await web.UnixSite(self._private, str(path)).start()

    async def stop(self) -> None:
        """Closes the private socket."""
        if self._private is not None:
            await self._private.cleanup()
            self._private = None
