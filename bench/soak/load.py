"""`python -m bench.soak.load`: the soak's client pool, churning, in a process of its own.

Protocol with the harness: one JSON object per line. It prints {"event": "ready"} once
every client has had its relay:state (or the connect budget ran out), {"event": "status"}
every STATUS_EVERY_S, and on "finish" (or EOF, or its lifetime running out) closes every
session, writes them to --out and prints {"event": "done"}. {"cmd": "churn", "on": true}
turns churn on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import orjson
import uvloop
from picows import WSCloseCode, ws_connect

from harness.processes import raise_nofile

from .session import SoakClient

# Latency histogram of the load process: 1 ms buckets, the last one for everything above.
HIST_MAX_MS: Final = 10_000
STATUS_EVERY_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 10.0


def emit(event: str, **fields: Any) -> None:
    """One event line to the harness (a harness that is gone cannot read it)."""
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.buffer.write(orjson.dumps({"event": event, **fields}) + b"\n")
        sys.stdout.buffer.flush()


class LoadPool:
    """About `target` sessions open; with churn on, a share of them replaced every second."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.target: int = args.clients
        self.churn: float = args.churn
        self.rng = random.Random(args.seed)
        self.gate = asyncio.Semaphore(args.connect_concurrency)
        self.live: dict[int, SoakClient] = {}  # connected and not closed by us
        self.active: dict[int, SoakClient] = {}  # connected and not yet disconnected
        self.open: dict[int, SoakClient] = {}  # live and past relay:state
        self.records: list[dict[str, Any]] = []
        self.recorded: set[int] = set()
        self.connecting = 0
        self.next_sid = 0
        self.churning = False
        self.finishing = False
        self.connect_failures = 0
        self.connect_errors: dict[str, int] = {}
        self.churned = 0
        self.dropped = 0
        self.hist = [0] * (HIST_MAX_MS + 1)
        self.deliveries = 0
        self.tasks: set[asyncio.Task[None]] = set()

    # --- callbacks from the clients ------------------------------------------------
    def opened(self, client: SoakClient) -> None:
        """A session got its relay:state."""
        if client.sid in self.live:
            self.open[client.sid] = client

    def ended(self, client: SoakClient) -> None:
        """A session is gone: recorded once."""
        self.live.pop(client.sid, None)
        self.active.pop(client.sid, None)
        self.open.pop(client.sid, None)
        if client.end_reason == "dropped" and not self.finishing:
            self.dropped += 1
        if client.sid not in self.recorded:
            self.recorded.add(client.sid)
            self.records.append(client.record())

    def latency(self, ms: float) -> None:
        """One delivery's publish → arrival, in the 1 ms histogram."""
        self.deliveries += 1
        self.hist[min(HIST_MAX_MS, max(0, int(ms)))] += 1

    # --- connecting and closing ----------------------------------------------------
    async def _connect_one(self) -> None:
        sid = self.next_sid
        self.next_sid += 1
        self.connecting += 1
        try:
            async with self.gate:
                if self.finishing:
                    return
                _transport, listener = await asyncio.wait_for(
                    ws_connect(
                        lambda: SoakClient(self, sid),
                        self.url,
                        websocket_handshake_timeout=CONNECT_TIMEOUT_S,
                    ),
                    CONNECT_TIMEOUT_S + 1.0,
                )
        except Exception as exc:  # a failed connect is counted; the next tick retries
            self.connect_failures += 1
            key = type(exc).__name__ + (f": {exc}"[:80] if str(exc) else "")
            self.connect_errors[key] = self.connect_errors.get(key, 0) + 1
            return
        finally:
            self.connecting -= 1
        if not isinstance(listener, SoakClient):
            # picows returns without a listener when the server closes the connection
            # before answering the upgrade.
            self.connect_failures += 1
            return
        client = listener
        if client.end_at is None:
            self.live[sid] = client
            self.active[sid] = client
            if client.open_at is not None:
                self.open[sid] = client
            if self.finishing:
                self._close(client, "final")

    def _spawn_connects(self, count: int) -> None:
        for _ in range(max(0, count)):
            task = asyncio.create_task(self._connect_one())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def _close(self, client: SoakClient, reason: str) -> None:
        if client.end_at is None:
            client.end_at = time.time()
            client.end_reason = reason
        self.live.pop(client.sid, None)
        self.open.pop(client.sid, None)
        if client.transport is not None:
            with contextlib.suppress(Exception):
                client.transport.send_close(WSCloseCode.OK)
                client.transport.disconnect()

    def tick(self) -> None:
        """Once a second: churn, then bring the pool back up to its target."""
        if self.churning and self.open:
            wanted = self.target * self.churn
            count = int(wanted) + (1 if self.rng.random() < wanted - int(wanted) else 0)
            victims = self.rng.sample(sorted(self.open), min(count, len(self.open)))
            for sid in victims:
                self._close(self.open[sid], "churn")
            self.churned += len(victims)
        if not self.finishing:
            self._spawn_connects(self.target - len(self.live) - self.connecting)

    def status(self) -> dict[str, Any]:
        """The pool's figures so far, as the harness's progress lines show them."""
        by_worker: dict[str, int] = {}
        for client in self.open.values():
            key = str(client.worker)
            by_worker[key] = by_worker.get(key, 0) + 1
        return {
            "live": len(self.live),
            "open": len(self.open),
            "connecting": self.connecting,
            "sessions": self.next_sid,
            "ended": len(self.records),
            "churned": self.churned,
            "dropped": self.dropped,
            "deliveries": self.deliveries,
            "connect_failures": self.connect_failures,
            "by_worker": by_worker,
        }

    async def finish(self, out: Path) -> None:
        """Closes every session, records them all, writes the records to `out`."""
        self.finishing = True
        self.churning = False
        for client in list(self.live.values()):
            self._close(client, "final")
        # Those closed by churn a moment ago too: every session is recorded once it is gone.
        waits = [
            client.transport.wait_disconnected()
            for client in self.active.values()
            if client.transport is not None
        ]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), 10.0)
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5.0)
        # Whatever never saw its on_ws_disconnected is recorded as it stands.
        for client in list(self.active.values()):
            self.ended(client)
        await asyncio.to_thread(out.write_bytes, orjson.dumps(self.records))


async def _load_commands(pool: LoadPool, args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    started = time.monotonic()
    pool.tick()
    # Ready once every client has had its relay:state (or the connect budget ran out).
    deadline = started + args.ready_timeout_s
    while len(pool.open) < pool.target and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        if pool.connecting == 0 and len(pool.live) < pool.target:
            pool.tick()
    emit("ready", connect_s=round(time.monotonic() - started, 3), **pool.status())

    next_tick = time.monotonic() + 1.0
    next_status = time.monotonic() + STATUS_EVERY_S
    reader: asyncio.Task[bytes] = asyncio.create_task(stdin.readline())
    try:
        while True:
            timeout = max(0.0, next_tick - time.monotonic())
            done, _ = await asyncio.wait({reader}, timeout=timeout)
            if reader in done:
                line = reader.result()
                if not line:
                    return
                command = orjson.loads(line)
                if command.get("cmd") == "churn":
                    pool.churning = bool(command.get("on"))
                elif command.get("cmd") == "finish":
                    return
                reader = asyncio.create_task(stdin.readline())
                continue
            now = time.monotonic()
            next_tick += 1.0
            if next_tick < now:  # the loop fell behind: no catch-up burst
                next_tick = now + 1.0
            # Before the tick, so the figures do not catch its replacements mid-handshake.
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                emit("status", **pool.status())
            pool.tick()
    finally:
        reader.cancel()


async def _load_main(args: argparse.Namespace) -> int:
    pool = LoadPool(args)
    try:
        async with asyncio.timeout(args.lifetime_s):
            await _load_commands(pool, args)
    except TimeoutError:
        emit("error", error=f"load process lifetime of {args.lifetime_s} s ran out")
    await pool.finish(Path(args.out))
    hist = {str(ms): n for ms, n in enumerate(pool.hist) if n}
    emit("done", latency_hist_ms=hist, connect_errors=pool.connect_errors, **pool.status())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The load process's entry point (`python -m bench.soak.load`, started by the harness)."""
    parser = argparse.ArgumentParser(prog="bench.soak.load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--churn", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--lifetime-s", type=float, required=True)
    parser.add_argument("--ready-timeout-s", type=float, default=120.0)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    nofile = raise_nofile(args.clients * 2 + 64)
    if nofile < args.clients * 2 + 64:
        emit("error", error=f"RLIMIT_NOFILE {nofile} is too low for {args.clients} clients")
        return 2
    return int(uvloop.run(_load_main(args)))


if __name__ == "__main__":
    sys.exit(main())
