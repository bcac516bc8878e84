"""`python -m bench.soak`: a long run with client churn, Redis kills and a worker kill.

It starts its own redis-server and one `serve --workers N` relay, holds a pool of
WebSocket clients in a separate load process (uvloop + picows) that keeps about
`--clients` connected while a share of them disconnect and reconnect every second,
publishes `--rate` msg/s with a global sequence number, SIGKILLs redis-server every
`--redis-kill-every` seconds (restarting it on the same port) and SIGKILLs one worker
once. Then it works out, per client session, which messages it should have received
and reports what was lost outside the windows in which the session's worker could not
hear Redis, the relay's RSS at the start and the end, and how long resubscribing and
restarting took. It reports; it asserts nothing (exit 0 unless the harness fails).

The load process is this module too: `python -m bench.soak _load ...` (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import math
import os
import random
import resource
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

CHANNEL = "bot:pingpong"
SOURCE = "soak"
WS_QUERY = "?events=pingpong,relay"
# Latency histogram of the load process: 1 ms buckets, the last one for everything above.
HIST_MAX_MS = 10_000
# Received seqs are kept per session in a bitmap starting this far below the first one,
# so a late, lower seq still lands in it.
BITMAP_SLACK = 64
STATUS_EVERY_S = 10.0
CONNECT_TIMEOUT_S = 10.0
SETUP_BUDGET_S = 240.0  # start-up and shutdown time allowed on top of --duration
PROGRESS_EVERY_S = 10.0
FAULT_TAIL_S = 15.0  # no Redis kill this close to the end: the last outage must heal


# =====================================================================================
# The load process: the client pool
# =====================================================================================
def _emit(event: str, **fields: Any) -> None:
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.buffer.write(orjson.dumps({"event": event, **fields}) + b"\n")
        sys.stdout.buffer.flush()


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return soft


def _make_client_class() -> type:
    """The picows listener, built on demand so that the harness never imports picows."""
    from picows import WSListener, WSMsgType

    text_kind, close_kind = WSMsgType.TEXT, WSMsgType.CLOSE
    loads, now_s = orjson.loads, time.time

    class SoakClient(WSListener):
        """One session: connect → relay:state (open) → close. Records the seqs it got."""

        def __init__(self, pool: LoadPool, sid: int) -> None:
            super().__init__()
            self.pool = pool
            self.sid = sid
            self.transport: Any = None
            self.connect_at = now_s()
            self.connected = False
            self.open_at: float | None = None
            self.worker: int | None = None
            self.pid: int | None = None
            self.redis_at_open: str | None = None
            self.end_at: float | None = None
            self.end_reason: str | None = None
            self.close_code: int | None = None
            self.base = -1
            self.bits = bytearray()
            self.below: set[int] = set()
            self.max_seq = -1
            self.count = 0
            self.dups = 0
            self.ooo = 0
            self.conflated = 0
            self.states = 0
            self.other = 0
            self.worker_changed = 0

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            self.connected = True

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind == text_kind:
                now = now_s()
                try:
                    message = loads(frame.get_payload_as_bytes())
                    what = message["type"]
                    if what == "bot:pingpong":
                        data = message["data"]
                        if data.get("source") == SOURCE:
                            self._got(int(data["seq"]), now, float(data["timestamp"]))
                    elif what == "relay:state":
                        self._state(message, now)
                    elif what == "relay:conflated":
                        self.conflated += int(message.get("skipped", 0))
                    else:
                        self.other += 1
                except (ValueError, KeyError, TypeError):
                    self.other += 1
            elif kind == close_kind:
                if self.end_at is None:  # the relay's close, not the echo of ours
                    self.close_code = int(frame.get_close_code())
                with contextlib.suppress(Exception):
                    transport.send_close(frame.get_close_code())
                    transport.disconnect()

        def _state(self, message: dict[str, Any], now: float) -> None:
            self.states += 1
            if self.open_at is None:
                self.open_at = now
                self.worker = message.get("worker")
                self.pid = message.get("pid")
                self.redis_at_open = message.get("redis")
                self.pool.opened(self)
            elif message.get("pid") != self.pid:
                self.worker_changed += 1

        def _got(self, seq: int, now: float, sent_ms: float) -> None:
            if self.base < 0:
                self.base = max(0, seq - BITMAP_SLACK)
            index = seq - self.base
            if index < 0:
                if seq in self.below:
                    self.dups += 1
                    return
                self.below.add(seq)
            else:
                bits = self.bits
                if index >= len(bits):
                    bits.extend(bytes(index - len(bits) + 1024))
                if bits[index]:
                    self.dups += 1
                    return
                bits[index] = 1
            self.count += 1
            if seq < self.max_seq:
                self.ooo += 1
            else:
                self.max_seq = seq
            self.pool.latency(now * 1000.0 - sent_ms)

        def on_ws_disconnected(self, transport: Any) -> None:
            if self.end_at is None:
                self.end_at = now_s()
                self.end_reason = "dropped"
            self.pool.ended(self)

        def ranges(self) -> list[list[int]]:
            """The distinct seqs received, as sorted half-open [first, last + 1) ranges."""
            out: list[list[int]] = []
            bits, base = self.bits, self.base
            start = bits.find(1)
            while start >= 0:
                stop = bits.find(0, start)
                if stop < 0:
                    stop = len(bits)
                out.append([base + start, base + stop])
                start = bits.find(1, stop)
            return merge_ranges([*out, *([s, s + 1] for s in self.below)])

        def record(self) -> dict[str, Any]:
            return {
                "sid": self.sid,
                "worker": self.worker,
                "pid": self.pid,
                "redis_at_open": self.redis_at_open,
                "connect_at": self.connect_at,
                "open_at": self.open_at,
                "end_at": self.end_at,
                "end_reason": self.end_reason,
                "close_code": self.close_code,
                "count": self.count,
                "dups": self.dups,
                "ooo": self.ooo,
                "conflated": self.conflated,
                "states": self.states,
                "other": self.other,
                "worker_changed": self.worker_changed,
                "ranges": self.ranges(),
            }

    return SoakClient


class LoadPool:
    """About `target` sessions open; with churn on, a share of them replaced every second."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.url: str = args.url
        self.target: int = args.clients
        self.churn: float = args.churn
        self.rng = random.Random(args.seed)
        self.gate = asyncio.Semaphore(args.connect_concurrency)
        self.client_class = _make_client_class()
        self.live: dict[int, Any] = {}  # connected and not closed by us
        self.active: dict[int, Any] = {}  # connected and not yet disconnected
        self.open: dict[int, Any] = {}  # live and past relay:state
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
    def opened(self, client: Any) -> None:
        if client.sid in self.live:
            self.open[client.sid] = client

    def ended(self, client: Any) -> None:
        self.live.pop(client.sid, None)
        self.active.pop(client.sid, None)
        self.open.pop(client.sid, None)
        if client.end_reason == "dropped" and not self.finishing:
            self.dropped += 1
        if client.sid not in self.recorded:
            self.recorded.add(client.sid)
            self.records.append(client.record())

    def latency(self, ms: float) -> None:
        self.deliveries += 1
        self.hist[min(HIST_MAX_MS, max(0, int(ms)))] += 1

    # --- connecting and closing ----------------------------------------------------
    async def _connect_one(self) -> None:
        from picows import ws_connect

        sid = self.next_sid
        self.next_sid += 1
        self.connecting += 1
        client: Any
        try:
            async with self.gate:
                if self.finishing:
                    return
                _transport, client = await asyncio.wait_for(
                    ws_connect(
                        lambda: self.client_class(self, sid),
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

    def _close(self, client: Any, reason: str) -> None:
        from picows import WSCloseCode

        if client.end_at is None:
            client.end_at = time.time()
            client.end_reason = reason
        self.live.pop(client.sid, None)
        self.open.pop(client.sid, None)
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
        self.finishing = True
        self.churning = False
        for client in list(self.live.values()):
            self._close(client, "final")
        # Those closed by churn a moment ago too: every session is recorded once it is gone.
        waits = [client.transport.wait_disconnected() for client in self.active.values()]
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
    _emit("ready", connect_s=round(time.monotonic() - started, 3), **pool.status())

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
                _emit("status", **pool.status())
            pool.tick()
    finally:
        reader.cancel()


async def _load_main(args: argparse.Namespace) -> int:
    pool = LoadPool(args)
    try:
        async with asyncio.timeout(args.lifetime_s):
            await _load_commands(pool, args)
    except TimeoutError:
        _emit("error", error=f"load process lifetime of {args.lifetime_s} s ran out")
    await pool.finish(Path(args.out))
    hist = {str(ms): n for ms, n in enumerate(pool.hist) if n}
    _emit("done", latency_hist_ms=hist, connect_errors=pool.connect_errors, **pool.status())
    return 0


def load_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak _load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--churn", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--lifetime-s", type=float, required=True)
    parser.add_argument("--ready-timeout-s", type=float, default=120.0)
    parser.add_argument("--connect-concurrency", type=int, default=50)
    args = parser.parse_args(argv)
    nofile = _raise_nofile()
    if nofile < args.clients * 2 + 64:
        _emit("error", error=f"RLIMIT_NOFILE {nofile} is too low for {args.clients} clients")
        return 2
    import uvloop

    return int(uvloop.run(_load_main(args)))


# =====================================================================================
# Ranges of seqs: sorted, disjoint, half-open [a, b)
# =====================================================================================
def merge_ranges(ranges: Iterable[Sequence[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted((int(r[0]), int(r[1])) for r in ranges if r[1] > r[0]):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


def subtract_ranges(ranges: list[list[int]], cuts: list[list[int]]) -> list[list[int]]:
    """`ranges` minus `cuts`, both merged."""
    out: list[list[int]] = []
    j = 0
    for a, b in ranges:
        while j < len(cuts) and cuts[j][1] <= a:
            j += 1
        k = j
        start = a
        while k < len(cuts) and cuts[k][0] < b:
            if cuts[k][0] > start:
                out.append([start, cuts[k][0]])
            start = max(start, cuts[k][1])
            k += 1
        if start < b:
            out.append([start, b])
    return out


def range_count(ranges: Iterable[Sequence[int]]) -> int:
    return sum(b - a for a, b in ranges)


# =====================================================================================
# The harness
# =====================================================================================
def _progress(text: str) -> None:
    print(f"soak: {text}", file=sys.stderr, flush=True)


def port_below_ephemeral(rng: random.Random) -> int:
    """A free loopback port below the ephemeral range, for the restartable Redis.

    While redis-server is down, an outgoing connection (a worker's reconnect attempt, a
    client's connect) must not be handed its port as a local port: that would keep the
    restarted server from binding it, or let a reconnect attempt connect to itself.
    """
    from .procs import free_port

    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return free_port()
    for _ in range(200):
        port = rng.randrange(max(1025, low - 10_000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def _parse_time(text: Any) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


INTERESTING = frozenset(
    {
        "listening",
        "redis_subscribed",
        "redis_outage_start",
        "redis_outage_end",
        "worker_started",
        "worker_exited",
        "worker_restarting",
        "worker_start_failed",
        "workers_stopped",
        "supervising",
        "shutdown",
        "stopped",
    }
)


class RelayLog:
    """Follows the relay's JSON log: keeps the events of interest, counts the rest."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._partial = b""
        self.events: list[dict[str, Any]] = []
        self.connected: dict[str, int] = {}  # client_connected per worker
        self.retries = 0
        self.levels: dict[str, int] = {}  # "WARNING:event" → count
        # Per worker index: bot timestamps (ms) of our messages it logged as received.
        self.received: dict[int, set[int]] = {}
        self.lines = 0

    def poll(self) -> None:
        if self._file is None:
            if not self.path.exists():
                return
            self._file = self.path.open("rb")
        data = self._partial + self._file.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self.lines += 1
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                key = "RAW:" + line[:60].decode(errors="replace")
                self.levels[key] = self.levels.get(key, 0) + 1
                continue
            if not isinstance(record, dict):
                continue
            event = record.get("event")
            level = record.get("level")
            if level in ("WARNING", "ERROR", "CRITICAL"):
                key = f"{level}:{event or str(record.get('message', '?'))[:60]}"
                self.levels[key] = self.levels.get(key, 0) + 1
            if event == "received":
                if record.get("source") == SOURCE and record.get("bot_timestamp_ms") is not None:
                    worker = int(record.get("worker", -1))
                    stamp = int(record["bot_timestamp_ms"])
                    self.received.setdefault(worker, set()).add(stamp)
            elif event == "client_connected":
                key = str(record.get("worker"))
                self.connected[key] = self.connected.get(key, 0) + 1
            elif event == "redis_retry":
                self.retries += 1
            elif event in INTERESTING:
                record["t"] = _parse_time(record.get("time"))
                self.events.append(record)

    def of(self, event: str, worker: int | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e.get("event") == event and (worker is None or e.get("worker") == worker)
        ]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Relay:
    """`python -m pingpong_relay serve --workers N`, its log, and its processes' memory."""

    def __init__(
        self, children: Any, run_dir: Path, redis_url: str, workers: int, port: int, http: int
    ) -> None:
        self.children = children
        self.redis_url = redis_url
        self.workers = workers
        self.port = port
        self.http_port = http
        self.log_path = run_dir / "relay.log"
        self.log = RelayLog(self.log_path)
        self.process: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None
        self.exit_code: int | None = None
        self.stop_s: float | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/{WS_QUERY}"

    async def start(self, timeout_s: float = 60.0) -> None:
        from .procs import BenchError

        self._log_file = self.log_path.open("wb")
        self.process = await self.children.spawn(
            sys.executable, "-m", "pingpong_relay", "serve",
            "--workers", str(self.workers),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--redis-url", self.redis_url,
            "--log-format", "json",
            "--log-level", "INFO",
            "--max-bot-rate", "1000000",
            "--history-retention", "0",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log_file,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.log.poll()
            listening = {e.get("worker") for e in self.log.of("listening")}
            subscribed = {e.get("worker") for e in self.log.of("redis_subscribed")}
            if len(listening) >= self.workers and len(subscribed) >= self.workers:
                return
            if self.process.returncode is not None:
                raise BenchError(f"relay exited with {self.process.returncode}; {self.tail()}")
            await asyncio.sleep(0.1)
        raise BenchError(f"relay's workers not all subscribed in {timeout_s} s; {self.tail()}")

    def tail(self) -> str:
        lines = self.log_path.read_bytes().decode(errors="replace").splitlines()
        return "last log lines:\n" + "\n".join(lines[-10:])

    def worker_pids(self) -> dict[int, int]:
        """Each worker's current pid, from the supervisor's worker_started lines."""
        self.log.poll()
        pids: dict[int, int] = {}
        for event in self.log.of("worker_started"):
            pids[int(event["worker"])] = int(event["pid"])
        return pids

    def rss(self) -> dict[str, Any]:
        """RSS in bytes: the supervisor, each worker (by index), anything else under it."""
        import psutil

        assert self.process is not None
        pids = self.worker_pids()
        by_pid = {pid: index for index, pid in pids.items()}
        out: dict[str, Any] = {"supervisor": 0, "workers": {}, "other": 0, "total": 0}
        try:
            root = psutil.Process(self.process.pid)
            out["supervisor"] = root.memory_info().rss
            kids = root.children(recursive=True)
        except psutil.Error:
            return out
        for kid in kids:
            try:
                rss = kid.memory_info().rss
            except psutil.Error:
                continue
            if kid.pid in by_pid:
                out["workers"][str(by_pid[kid.pid])] = rss
            else:
                out["other"] += rss
        out["child_pids"] = sorted(k.pid for k in kids)
        out["total"] = out["supervisor"] + out["other"] + sum(out["workers"].values())
        return out

    async def clients_per_worker(self) -> dict[str, int]:
        """Clients per worker index, from the merged /healthz (its "workers" list)."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=10)
        url = f"http://127.0.0.1:{self.http_port}/healthz?detail=1"  # the "workers" list
        out: dict[str, int] = {}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError, ValueError):
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                body = orjson.loads(await response.read())
            for worker in body.get("workers", []):
                if isinstance(worker, dict) and "worker" in worker:
                    out[str(worker["worker"])] = int(worker.get("clients", -1))
        return out

    async def metrics(self) -> dict[str, float]:
        """The whole relay's unlabelled /metrics series (merged over the workers)."""
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=10)
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        values: dict[str, float] = {}
        text = ""
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url) as response,
            ):
                text = (await response.read()).decode()
            for line in text.splitlines():
                if line.startswith("#") or " " not in line or "{" in line:
                    continue
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    values[name] = float(value)
        return values

    async def stop(self) -> None:
        if self.process is not None:
            started = time.monotonic()
            await self.children.stop(self.process, 15.0)
            self.stop_s = time.monotonic() - started
            self.exit_code = self.process.returncode
        self.log.poll()
        self.log.close()
        if self._log_file is not None:
            self._log_file.close()


class LoadProcess:
    """The load process (`bench.soak _load`), driven by JSON lines over pipes."""

    def __init__(self, children: Any, run_dir: Path) -> None:
        self.children = children
        self.out = run_dir / "sessions.json"
        self.log_path = run_dir / "load.log"
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None
        self.status: dict[str, Any] = {}
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, args: argparse.Namespace, url: str, lifetime_s: float) -> None:
        self._log = self.log_path.open("wb")
        self.process = await self.children.spawn(
            sys.executable, "-m", "bench.soak", "_load",
            "--url", url,
            "--clients", str(args.clients),
            "--churn", str(args.churn),
            "--seed", str(args.seed),
            "--out", str(self.out),
            "--lifetime-s", str(lifetime_s),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        while True:
            line = await self.process.stdout.readline()
            if not line:
                await self.messages.put({"event": "eof"})
                return
            with contextlib.suppress(orjson.JSONDecodeError):
                message = orjson.loads(line)
                if message.get("event") == "status":
                    self.status = message
                else:
                    await self.messages.put(message)

    async def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        from .procs import BenchError

        try:
            message = await asyncio.wait_for(self.messages.get(), timeout_s)
        except TimeoutError:
            raise BenchError(f"load process sent no {event!r} within {timeout_s} s") from None
        if message.get("event") != event:
            detail = self.log_path.read_bytes().decode(errors="replace")[-2000:]
            raise BenchError(f"load process said {message!r}, expected {event!r}\n{detail}")
        return message

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()

    async def finish(self, timeout_s: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        await self.send({"cmd": "finish"})
        done = await self.expect("done", timeout_s)
        sessions: list[dict[str, Any]] = orjson.loads(self.out.read_bytes())
        return done, sessions

    async def stop(self) -> None:
        if self.process is not None:
            if self.process.returncode is None and self.process.stdin is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    self.process.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.process.wait(), 15.0)
            await self.children.stop(self.process, 3.0)
        if self._reader is not None:
            self._reader.cancel()
        if self._log is not None:
            self._log.close()


class Publisher:
    """`--rate` msg/s with a global seq; records when each PUBLISH went out and how it fared."""

    def __init__(self, redis_url: str, rate: float) -> None:
        self.redis_url = redis_url
        self.rate = rate
        self.t_send: list[float] = []
        self.t_ack: list[float] = []
        self.ok: list[bool] = []
        self.receivers: list[int] = []
        self.stamp: list[int] = []
        self.late_slots = 0

    async def run(self, start_at: float, stop_at: float) -> None:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        # No retries: a PUBLISH that fails while Redis is down is recorded as failed,
        # not silently repeated later under the same seq.
        client = aioredis.Redis.from_url(
            self.redis_url,
            socket_connect_timeout=0.5,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        interval = 1.0 / self.rate
        slot = start_at
        rng = random.Random(7)
        try:
            while True:
                now = time.time()
                if slot >= stop_at or now >= stop_at + 5.0:
                    return
                if slot > now:
                    await asyncio.sleep(slot - now)
                seq = len(self.t_send)
                t_send = time.time()
                stamp = int(t_send * 1000)
                payload = orjson.dumps(
                    {
                        "type": "ping",
                        "latency": round(rng.uniform(1.0, 50.0), 3),
                        "timestamp": stamp,
                        "source": SOURCE,
                        "seq": seq,
                    }
                )
                receivers = -1
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    receivers = int(await asyncio.wait_for(client.publish(CHANNEL, payload), 2.0))
                self.t_send.append(t_send)
                self.t_ack.append(time.time())
                self.ok.append(receivers >= 0)
                self.receivers.append(receivers)
                self.stamp.append(stamp)
                slot += interval
                if slot < time.time() - 1.0:  # more than a second behind: skip, count
                    skipped = int((time.time() - slot) / interval)
                    self.late_slots += skipped
                    slot += skipped * interval
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.aclose(), 2.0)


def fault_plan(args: argparse.Namespace) -> tuple[list[float], float | None]:
    """Offsets (s from the first publish) of the Redis kills, and of the worker kill."""
    kills: list[float] = []
    if args.redis_kill_every > 0:
        k = 1
        while k * args.redis_kill_every < args.duration - FAULT_TAIL_S and k < 10_000:
            kills.append(k * args.redis_kill_every)
            k += 1
    worker_at: float | None = args.worker_kill_at
    if worker_at is None:
        worker_at = args.duration / 2
        # The default stays clear of a Redis kill (15 s), so the two faults do not overlap.
        near = [t for t in kills if abs(t - worker_at) < 15.0]
        if near and args.redis_kill_every > 30:
            worker_at = near[0] + args.redis_kill_every / 2
    if worker_at is not None and (worker_at <= 0 or worker_at >= args.duration - 5):
        worker_at = None
    return kills, worker_at


async def soak(args: argparse.Namespace, children: Any, run_dir: Path) -> dict[str, Any]:
    from .procs import BenchError, RedisServer, free_port

    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM unwinds like Ctrl-C does, through every finally that stops a child.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    rng = random.Random(args.seed)
    redis = RedisServer(children, run_dir)
    redis.port = port_below_ephemeral(rng)
    relay: Relay | None = None
    load: LoadProcess | None = None
    result: dict[str, Any] = {"args": {k: v for k, v in vars(args).items() if k != "json"}}
    result["args"]["json"] = str(args.json) if args.json else None
    kills, worker_at = fault_plan(args)
    redis_kills: list[dict[str, Any]] = []
    worker_kill: dict[str, Any] = {}
    rss_series: list[dict[str, Any]] = []
    publisher = Publisher(redis.url, args.rate)
    try:
        async with asyncio.timeout(args.duration + SETUP_BUDGET_S):
            await redis.start()
            _progress(f"redis-server on port {redis.port}")
            relay = Relay(children, run_dir, redis.url, args.workers, free_port(), free_port())
            await relay.start()
            _progress(f"relay with {args.workers} workers: {relay.worker_pids()}")
            load = LoadProcess(children, run_dir)
            await load.start(args, relay.ws_url, args.duration + SETUP_BUDGET_S)
            ready = await load.expect("ready", 180.0)
            _progress(
                f"{ready['open']} clients connected in {ready['connect_s']} s "
                f"({ready['connect_failures']} connect failures), on workers "
                f"{ready['by_worker']}"
            )
            result["ready"] = ready
            load.status = ready
            if ready["open"] < args.clients:
                raise BenchError(f"only {ready['open']} of {args.clients} clients connected")
            rss_before_publish = relay.rss()

            t0 = time.time() + 0.5
            result["t0"] = t0
            await load.send({"cmd": "churn", "on": True})
            publish_task = asyncio.create_task(publisher.run(t0, t0 + args.duration))
            warmup = min(args.warmup, (kills[0] if kills else args.duration) - 5.0)
            warmup = min(warmup, (worker_at or args.duration) - 5.0, args.duration / 2)
            rss_start: dict[str, Any] = {}
            rss_before_kill: dict[str, Any] = {}

            async def take_rss_start() -> None:
                rss_start.update(relay.rss())
                rss_start["clients"] = await relay.clients_per_worker()
                rss_start["at_s"] = round(time.time() - t0, 1)
                _progress(f"RSS at start: {rss_start['total'] / 2**20:.1f} MiB")

            async def kill_redis() -> None:
                redis_kills.append(await _kill_redis(redis, args.redis_down, t0))
                _progress(f"redis killed and restarted: {redis_kills[-1]}")

            async def kill_worker() -> None:
                # The last RSS untouched by the kill: afterwards the survivor takes the
                # killed worker's clients, and its RSS keeps that high-water mark.
                rss_before_kill.update(relay.rss())
                rss_before_kill["clients"] = await relay.clients_per_worker()
                rss_before_kill["at_s"] = round(time.time() - t0, 1)
                worker_kill.update(_kill_worker(relay, args.worker_kill_index, t0))
                _progress(f"worker killed: {worker_kill}")

            # Each fault on its own timer, so that faults may overlap (a worker killed
            # while Redis is down, say) when the offsets say so.
            faults = [asyncio.create_task(_at(t0 + max(1.0, warmup), take_rss_start))]
            faults += [asyncio.create_task(_at(t0 + t, kill_redis)) for t in kills]
            if worker_at is not None:
                faults.append(asyncio.create_task(_at(t0 + worker_at, kill_worker)))
            next_progress = 0.0
            try:
                while not publish_task.done():
                    await asyncio.sleep(0.2)
                    next_progress = _tick_progress(
                        t0, next_progress, relay, load, publisher, rss_series
                    )
                    for task in faults:
                        if task.done():
                            task.result()  # a fault that failed ends the run here
                await publish_task
                await asyncio.wait_for(asyncio.gather(*faults), 30.0)
            finally:
                for task in [publish_task, *faults]:
                    task.cancel()
            # Let the last messages arrive; then the end RSS, clients still connected.
            await asyncio.sleep(args.margin + 1.0)
            rss_end = relay.rss()
            rss_end["clients"] = await relay.clients_per_worker()
            rss_end["at_s"] = round(time.time() - t0, 1)
            result["metrics"] = {
                k: v for k, v in (await relay.metrics()).items() if not k.endswith("_created")
            }
            result["load_status_end"] = load.status
            done, sessions = await load.finish(60.0)
            result["finished_at"] = time.time()
            relay.log.poll()
            result["rss"] = {
                "before_publish": rss_before_publish,
                "start": rss_start or None,
                "before_worker_kill": rss_before_kill or None,
                "end": rss_end,
                "series": rss_series,
            }
            result["load"] = {k: v for k, v in done.items() if k != "latency_hist_ms"}
            result["latency"] = _latency_summary(done.get("latency_hist_ms", {}))
    finally:
        if load is not None:
            await load.stop()
        if relay is not None:
            await relay.stop()
        await redis.stop()
    assert relay is not None
    result["relay_exit_code"] = relay.exit_code
    result["relay_stop_s"] = round(relay.stop_s or 0.0, 2)
    result["redis_kills"] = redis_kills
    result["worker_kill"] = worker_kill
    result["run_dir"] = str(run_dir)
    (run_dir / "publish.json").write_bytes(orjson.dumps(vars(publisher)))
    analyse(result, sessions, publisher, relay.log, args)
    return result


def _tick_progress(
    t0: float,
    next_at: float,
    relay: Relay,
    load: LoadProcess,
    publisher: Publisher,
    series: list[dict[str, Any]],
) -> float:
    elapsed = time.time() - t0
    if elapsed < next_at:
        return next_at
    relay.log.poll()
    rss = relay.rss()
    status = load.status
    series.append(
        {
            "at_s": round(elapsed, 1),
            "rss_total": rss["total"],
            "rss_workers": rss["workers"],
            "open": status.get("open"),
            "open_by_worker": status.get("by_worker"),
        }
    )
    failed = publisher.ok.count(False)
    _progress(
        f"t={elapsed:5.0f} s  published {len(publisher.ok)} ({failed} failed)  "
        f"clients open {status.get('open', '?')} {status.get('by_worker', {})}  "
        f"sessions {status.get('sessions', '?')}  RSS {rss['total'] / 2**20:.1f} MiB"
    )
    return next_at + PROGRESS_EVERY_S


async def _at(when: float, action: Callable[[], Awaitable[None]]) -> None:
    """Runs `action` at wall-clock time `when`."""
    await asyncio.sleep(max(0.0, when - time.time()))
    await action()


async def _kill_redis(redis: Any, down_s: float, t0: float) -> dict[str, Any]:
    process = redis.process
    killed_at = time.time()
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    await asyncio.wait_for(process.wait(), 10.0)
    await redis.stop()  # reaps it and closes its log; the port stays the object's
    await asyncio.sleep(down_s)
    spawned_at = time.time()
    await redis.start()
    ready_at = time.time()
    return {
        "killed_at": killed_at,
        "ready_at": ready_at,
        "at_s": round(killed_at - t0, 2),
        "down_s": round(ready_at - killed_at, 3),
        "start_s": round(ready_at - spawned_at, 3),
    }


def _kill_worker(relay: Relay, index: int, t0: float) -> dict[str, Any]:
    import psutil

    from .procs import BenchError

    pids = relay.worker_pids()
    assert relay.process is not None
    kids = {p.pid for p in psutil.Process(relay.process.pid).children(recursive=False)}
    if index not in pids:
        raise BenchError(f"no worker {index} among {pids}")
    pid = pids[index]
    if pid not in kids:
        raise BenchError(f"worker {index} pid {pid} is not a child of the relay ({kids})")
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    return {"worker": index, "pid": pid, "killed_at": killed_at, "at_s": round(killed_at - t0, 2)}


def _latency_summary(hist: dict[str, int]) -> dict[str, Any]:
    counts = sorted((int(ms), n) for ms, n in hist.items())
    total = sum(n for _, n in counts)
    if not total:
        return {"deliveries": 0}
    out: dict[str, Any] = {"deliveries": total}
    for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        target, seen = q * total, 0
        for ms, n in counts:
            seen += n
            if seen >= target:
                out[label] = ms
                break
    out["max_ms"] = counts[-1][0]
    out["over_1s"] = sum(n for ms, n in counts if ms >= 1000)
    return out


# =====================================================================================
# Analysis
# =====================================================================================
def worker_windows(
    log: RelayLog, workers: int, end_t: float
) -> dict[int, list[tuple[float, float, str]]]:
    """Per worker index, the time windows in which it could not hear Redis (unwidened).

    "outage": redis_outage_start → redis_outage_end; "start-up": worker_started → its
    first redis_subscribed (a fresh worker accepts clients before it has subscribed);
    "dead": worker_exited → the start-up of its successor. An open window ends at end_t.
    """
    windows: dict[int, list[tuple[float, float, str]]] = {i: [] for i in range(workers)}
    order = sorted((e for e in log.events if e.get("t") is not None), key=lambda e: e["t"])
    for index in range(workers):
        outage_from: float | None = None
        starting_from: float | None = None
        for event in order:
            if event.get("worker") != index:
                continue
            name, t = event["event"], float(event["t"])
            if name == "redis_outage_start":
                outage_from = t
            elif name == "redis_outage_end":
                begin = t - float(event.get("outage_s", 0.0))
                windows[index].append((min(begin, outage_from or begin), t, "outage"))
                outage_from = None
            elif name == "worker_exited":
                if outage_from is not None:
                    windows[index].append((outage_from, t, "outage"))
                    outage_from = None
                starting_from = t
            elif name == "worker_started":
                if starting_from is not None:
                    windows[index].append((starting_from, t, "dead"))
                starting_from = t
            elif name == "redis_subscribed" and starting_from is not None:
                windows[index].append((starting_from, t, "start-up"))
                starting_from = None
        if outage_from is not None:
            windows[index].append((outage_from, end_t, "outage"))
        if starting_from is not None:
            windows[index].append((starting_from, end_t, "start-up"))
    return windows


def analyse(
    result: dict[str, Any],
    sessions: list[dict[str, Any]],
    publisher: Publisher,
    log: RelayLog,
    args: argparse.Namespace,
) -> None:
    t0: float = result["t0"]
    margin = args.margin
    t_send, t_ack, ok = publisher.t_send, publisher.t_ack, publisher.ok
    published = len(t_send)
    end_t = float(result["finished_at"])
    windows = worker_windows(log, args.workers, end_t)

    def seq_span(begin: float, end: float) -> list[int]:
        """Seqs whose PUBLISH overlapped [begin, end]: t_ack >= begin and t_send <= end."""
        return [bisect.bisect_left(t_ack, begin), bisect.bisect_right(t_send, end)]

    failed = merge_ranges([s, s + 1] for s in range(published) if not ok[s])
    cuts: dict[int, list[list[int]]] = {}
    cuts_by_kind: dict[int, dict[str, list[list[int]]]] = {}
    for index, spans in windows.items():
        cuts[index] = merge_ranges(seq_span(a - margin, b + margin) for a, b, _ in spans)
        cuts_by_kind[index] = {}
        for a, b, kind in spans:
            cuts_by_kind[index].setdefault(kind, []).append(seq_span(a - margin, b + margin))
    killed_pid = result["worker_kill"].get("pid")
    killed_at = result["worker_kill"].get("killed_at")
    stamp_to_seq = {stamp: s for s, stamp in enumerate(publisher.stamp)}

    expected_total = received_total = lost_total = 0
    missed_in = {"outage": 0, "start-up": 0, "dead": 0}
    lost_examples: list[dict[str, Any]] = []
    lost_seqs: dict[int, int] = {}
    never_opened = 0
    per_worker: dict[str, dict[str, int]] = {}
    ends: dict[str, int] = {}
    close_codes: dict[str, int] = {}
    dups = ooo = conflated = worker_changed = 0
    unknown_worker = 0
    for session in sessions:
        dups += session["dups"]
        ooo += session["ooo"]
        conflated += session["conflated"]
        worker_changed += session["worker_changed"]
        reason = session["end_reason"] or "?"
        ends[reason] = ends.get(reason, 0) + 1
        if session["close_code"] is not None:
            close_codes[str(session["close_code"])] = (
                close_codes.get(str(session["close_code"]), 0) + 1
            )
        received = merge_ranges(session["ranges"])
        received_total += range_count(received)
        if session["open_at"] is None:
            never_opened += 1
            continue
        worker = session["worker"]
        if worker not in cuts:
            unknown_worker += 1
            continue
        stats = per_worker.setdefault(str(worker), {"sessions": 0, "expected": 0, "lost": 0})
        stats["sessions"] += 1
        end = float(session["end_at"] or end_t)
        if killed_pid is not None and session["pid"] == killed_pid:
            end = min(end, float(killed_at))
        lo = bisect.bisect_right(t_send, float(session["open_at"]))
        hi = bisect.bisect_left(t_ack, end - margin)
        if hi <= lo:
            continue
        span = subtract_ranges([[lo, hi]], failed)
        expected = subtract_ranges(span, cuts[worker])
        missing = subtract_ranges(expected, received)
        n_expected, n_lost = range_count(expected), range_count(missing)
        expected_total += n_expected
        lost_total += n_lost
        stats["expected"] += n_expected
        stats["lost"] += n_lost
        # What the windows took from this session (not losses: the relay was deaf).
        in_windows = subtract_ranges(span, merge_ranges([*expected, *received]))
        for kind, kind_cuts in cuts_by_kind[worker].items():
            missed_in[kind] += range_count(
                subtract_ranges(in_windows, subtract_ranges([[lo, hi]], merge_ranges(kind_cuts)))
            )
        for a, b in missing:
            for seq in range(a, b):
                lost_seqs[seq] = lost_seqs.get(seq, 0) + 1
                if len(lost_examples) < 20:
                    heard = log.received.get(worker, set())
                    lost_examples.append(
                        {
                            "sid": session["sid"],
                            "worker": worker,
                            "pid": session["pid"],
                            "seq": seq,
                            "published_at_s": round(t_send[seq] - t0, 3),
                            "receivers": publisher.receivers[seq],
                            "worker_logged_received": publisher.stamp[seq] in heard,
                            "session_open_s": round(session["open_at"] - t0, 3),
                            "session_end_s": round(end - t0, 3),
                            "end_reason": session["end_reason"],
                        }
                    )
    # Successful PUBLISHes that reached fewer subscribers than workers, outside every
    # window of every worker: a worker that was not subscribed and did not say so.
    all_cuts = merge_ranges(r for spans in cuts.values() for r in spans)
    short = [
        s
        for s in range(published)
        if ok[s]
        and 0 <= publisher.receivers[s] < args.workers
        and not any(a <= s < b for a, b in all_cuts)
    ]
    # Which seqs each worker logged as received from Redis, outside its windows.
    unheard: dict[str, int] = {}
    for index in range(args.workers):
        heard = log.received.get(index, set())
        span = subtract_ranges([[0, published]], merge_ranges([*failed, *cuts[index]]))
        unheard[str(index)] = sum(
            1 for a, b in span for s in range(a, b) if publisher.stamp[s] not in heard
        )
    result["accounting"] = {
        "published": published,
        "publish_failed": range_count(failed),
        "publish_late_slots": publisher.late_slots,
        "sessions": len(sessions),
        "sessions_never_opened": never_opened,
        "sessions_unknown_worker": unknown_worker,
        "session_ends": ends,
        "close_codes": close_codes,
        "expected": expected_total,
        "received": received_total,
        "lost": lost_total,
        "lost_distinct_seqs": len(lost_seqs),
        "lost_examples": lost_examples,
        "missed_in_windows": missed_in,
        "duplicates": dups,
        "out_of_order": ooo,
        "conflated": conflated,
        "worker_changed_mid_session": worker_changed,
        "per_worker": per_worker,
        "publishes_short_of_subscribers_outside_windows": len(short),
        "short_examples": [
            {"seq": s, "at_s": round(t_send[s] - t0, 3), "receivers": publisher.receivers[s]}
            for s in short[:10]
        ],
        "not_logged_received_outside_windows": unheard,
        "stamp_collisions": published - len(stamp_to_seq),
    }
    result["windows"] = {
        str(i): [
            {"from_s": round(a - t0, 3), "to_s": round(b - t0, 3), "kind": kind}
            for a, b, kind in spans
            if b >= t0
        ]
        for i, spans in windows.items()
    }
    result["resubscribe"] = _resubscribe(result, log, args.workers)
    result["worker_restart"] = _worker_restart(result, log)
    result["relay_log"] = {
        "lines": log.lines,
        "redis_retries": log.retries,
        "client_connected_by_worker": log.connected,
        "warnings_errors": log.levels,
    }
    rss = result["rss"]
    start = rss["start"]
    for key, later in (("", rss["end"]), ("_before_worker_kill", rss["before_worker_kill"])):
        if start and later and start["total"]:
            growth = 100.0 * (later["total"] - start["total"]) / start["total"]
            rss[f"growth_pct{key}"] = round(growth, 2)
            rss[f"growth_pct_by_worker{key}"] = {
                index: round(100.0 * (later["workers"][index] - before) / before, 2)
                for index, before in start["workers"].items()
                if index in later["workers"] and before
            }
    peak: dict[str, int] = {}
    for sample in rss["series"]:
        for index, count in (sample.get("open_by_worker") or {}).items():
            peak[index] = max(peak.get(index, 0), int(count))
    rss["peak_clients_by_worker"] = peak


def _resubscribe(result: dict[str, Any], log: RelayLog, workers: int) -> dict[str, Any]:
    """Per Redis kill and worker: notice delay, outage_s, and Redis ready → resubscribed."""
    rows: list[dict[str, Any]] = []
    t0 = result["t0"]
    for number, kill in enumerate(result["redis_kills"], 1):
        row: dict[str, Any] = {"kill": number, "at_s": kill["at_s"], "down_s": kill["down_s"]}
        for index in range(workers):
            start = next(
                (e for e in log.of("redis_outage_start", index) if e["t"] >= kill["killed_at"]),
                None,
            )
            # A worker that died during the outage comes back through a successor, whose
            # first subscription is a redis_subscribed rather than a redis_outage_end.
            end = next(
                (
                    e
                    for e in log.events
                    if e.get("worker") == index
                    and e.get("event") in ("redis_outage_end", "redis_subscribed")
                    and e["t"] >= kill["killed_at"]
                ),
                None,
            )
            outage_s = None
            if end is not None and end["event"] == "redis_outage_end":
                outage_s = end.get("outage_s")
            elif end is not None and start is not None:
                outage_s = round(end["t"] - start["t"], 3)
            row[f"w{index}"] = {
                "noticed_s": round(start["t"] - kill["killed_at"], 3) if start else None,
                "outage_s": outage_s,
                "ready_to_subscribed_s": round(end["t"] - kill["ready_at"], 3) if end else None,
                "via_successor": end is not None and end["event"] == "redis_subscribed",
            }
        rows.append(row)
    unexplained = [
        {"worker": e.get("worker"), "at_s": round(e["t"] - t0, 3), "error": e.get("error")}
        for e in log.of("redis_outage_start")
        if e["t"] >= t0
        and not any(
            k["killed_at"] - 1.0 <= e["t"] <= k["ready_at"] + 5.0 for k in result["redis_kills"]
        )
    ]
    outages = [float(e["outage_s"]) for e in log.of("redis_outage_end") if e["t"] >= t0]
    outages += [
        float(cell["outage_s"])
        for row in rows
        for key, cell in row.items()
        if key.startswith("w") and cell["via_successor"] and cell["outage_s"] is not None
    ]
    ready_to = [
        cell["ready_to_subscribed_s"]
        for row in rows
        for key, cell in row.items()
        if key.startswith("w") and cell["ready_to_subscribed_s"] is not None
    ]
    missing = sum(
        1
        for row in rows
        for key, cell in row.items()
        if key.startswith("w") and cell["ready_to_subscribed_s"] is None
    )
    return {
        "per_kill": rows,
        "max_outage_s": max(outages, default=None),
        "max_ready_to_subscribed_s": max(ready_to, default=None),
        "outages_logged": len(outages),
        "not_resubscribed": missing,
        "unexplained_outages": unexplained,
    }


def _worker_restart(result: dict[str, Any], log: RelayLog) -> dict[str, Any]:
    kill = result["worker_kill"]
    if not kill:
        return {}
    index, killed_at = kill["worker"], kill["killed_at"]
    exited = next((e for e in log.of("worker_exited", index) if e["t"] >= killed_at - 0.5), None)
    started = next((e for e in log.of("worker_started", index) if e["t"] >= killed_at), None)
    subscribed = None
    if started is not None:
        subscribed = next(
            (e for e in log.of("redis_subscribed", index) if e["t"] >= started["t"]), None
        )
    out: dict[str, Any] = {"worker": index, "old_pid": kill["pid"]}
    if exited is not None:
        out["exit_code"] = exited.get("exit_code")
        out["kill_to_exited_s"] = round(exited["t"] - killed_at, 3)
    if started is not None:
        out["new_pid"] = started.get("pid")
        out["kill_to_started_s"] = round(started["t"] - killed_at, 3)
    if subscribed is not None:
        out["kill_to_subscribed_s"] = round(subscribed["t"] - killed_at, 3)
        if exited is not None:
            out["exited_to_subscribed_s"] = round(subscribed["t"] - exited["t"], 3)
    return out


# =====================================================================================
# Report
# =====================================================================================
def _mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} %"


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def render(result: dict[str, Any]) -> str:
    args = result["args"]
    acc = result["accounting"]
    rss = result["rss"]
    resub = result["resubscribe"]
    restart = result["worker_restart"]
    latency = result["latency"]
    lines = [
        f"## Soak: {args['duration']:g} s, {args['clients']:,} clients, {args['rate']:g} msg/s, "
        f"churn {args['churn'] * 100:g} %/s, {len(result['redis_kills'])} Redis kills, "
        f"{'1 worker kill' if result['worker_kill'] else 'no worker kill'} "
        f"({args['workers']} workers)",
        "",
        "| measure | value | bar |",
        "|---|---:|---|",
        f"| lost outside the not-subscribed windows | {acc['lost']:,} | must be 0 |",
        f"| duplicates / out of order | {acc['duplicates']:,} / {acc['out_of_order']:,} | 0 |",
    ]
    growth = rss.get("growth_pct")
    start, end = rss.get("start") or {}, rss.get("end") or {}
    lines.append(
        f"| relay RSS start → end (MiB) | {_mib(start.get('total'))} → "
        f"{_mib(end.get('total'))} ({_pct(growth)}) | ≤ +10 % |"
    )
    peak = rss.get("peak_clients_by_worker", {})
    for index, pct in sorted(rss.get("growth_pct_by_worker", {}).items()):
        note = " (restarted mid-run)" if str(result["worker_kill"].get("worker")) == index else ""
        lines.append(
            f"| worker {index} RSS start → end (MiB){note} | "
            f"{_mib(start['workers'].get(index))} → {_mib(end['workers'].get(index))} "
            f"({_pct(pct)}); clients {start.get('clients', {}).get(index, '?')} → "
            f"{end.get('clients', {}).get(index, '?')}, peak {peak.get(index, '?')} | |"
        )
    before_kill = rss.get("before_worker_kill")
    if before_kill:
        by_worker = ", ".join(
            f"w{i} {_pct(p)}"
            for i, p in sorted(rss["growth_pct_by_worker_before_worker_kill"].items())
        )
        lines.append(
            f"| relay RSS start → just before the worker kill at {before_kill['at_s']:g} s "
            f"(MiB) | {_mib(start.get('total'))} → {_mib(before_kill['total'])} "
            f"({_pct(rss.get('growth_pct_before_worker_kill'))}; {by_worker}) | |"
        )
    lines += [
        f"| longest outage logged (`outage_s`) | {_num(resub['max_outage_s'], ' s')} | |",
        f"| longest Redis ready → worker resubscribed | "
        f"{_num(resub['max_ready_to_subscribed_s'], ' s')} | |",
        f"| worker restart: exited → new worker subscribed | "
        f"{_num(restart.get('exited_to_subscribed_s'), ' s')} | |",
        f"| messages published (PUBLISH failed) | {acc['published']:,} "
        f"({acc['publish_failed']:,}) | |",
        f"| deliveries expected / received | {acc['expected']:,} / {acc['received']:,} | |",
        f"| latency p50 / p99 / max (publish → client) | {_num(latency.get('p50_ms'))} / "
        f"{_num(latency.get('p99_ms'))} / {_num(latency.get('max_ms'), ' ms')} | |",
        f"| client sessions (never opened) | {acc['sessions']:,} "
        f"({acc['sessions_never_opened']:,}) | |",
        "",
        "Per Redis kill (s; `noticed`: kill → redis_outage_start, `outage`: the relay's "
        "`outage_s`, `ready→sub`: Redis answering again → redis_outage_end):",
        "",
    ]
    workers = int(args["workers"])
    header = "| # | at | down |" + "".join(
        f" w{i} noticed | w{i} outage | w{i} ready→sub |" for i in range(workers)
    )
    lines += [header, "|" + "---:|" * (3 + 3 * workers)]
    for row in resub["per_kill"]:
        cells = [str(row["kill"]), _num(row["at_s"]), _num(row["down_s"])]
        for i in range(workers):
            cell = row[f"w{i}"]
            star = " *" if cell["via_successor"] else ""
            cells += [
                _num(cell["noticed_s"]),
                _num(cell["outage_s"]) + star,
                _num(cell["ready_to_subscribed_s"]) + star,
            ]
        lines.append("| " + " | ".join(cells) + " |")
    if any(row[f"w{i}"]["via_successor"] for row in resub["per_kill"] for i in range(workers)):
        lines += ["", "\\* the worker was killed during the outage; its successor subscribed."]
    notes = [
        "",
        "Notes:",
        "",
        f"- A message counts as expected by a session when its PUBLISH succeeded after the "
        f"session's relay:state arrived, ended more than {args['margin']:g} s before the "
        f"session closed, and lay more than {args['margin']:g} s outside every window in "
        f"which the session's worker could not hear Redis (outage, start-up, dead). "
        f"Deliveries missed inside those windows: {acc['missed_in_windows']}.",
        f"- Session ends: {acc['session_ends']}; close codes from the relay: "
        f"{acc['close_codes'] or 'none'}; sessions per worker: "
        f"{ {k: v['sessions'] for k, v in acc['per_worker'].items()} }.",
        f"- Relay conflation skips: {acc['conflated']:,}; connect failures: "
        f"{result['load'].get('connect_failures', 0):,} "
        f"{result['load'].get('connect_errors') or ''}.",
        f"- Successful PUBLISHes that reached fewer than {workers} subscribers outside every "
        f"window: {acc['publishes_short_of_subscribers_outside_windows']}; our messages a "
        f"worker did not log as received outside its windows: "
        f"{acc['not_logged_received_outside_windows']}.",
    ]
    if before_kill:
        notes.append(
            "- RSS: after the worker kill its clients reconnect to the survivor(s) (peak "
            f"clients per worker {peak}), whose RSS keeps that high-water mark (freed memory "
            "is not returned to the OS), while the killed worker's successor starts afresh; "
            "start → end mixes both in, start → just before the kill is free of them."
        )
    if restart:
        notes.append(
            f"- Worker {restart['worker']} (pid {restart['old_pid']}) SIGKILLed at "
            f"{result['worker_kill']['at_s']} s: exited (code {restart.get('exit_code')}) "
            f"after {_num(restart.get('kill_to_exited_s'), ' s')}, successor pid "
            f"{restart.get('new_pid')} started after "
            f"{_num(restart.get('kill_to_started_s'), ' s')}, subscribed after "
            f"{_num(restart.get('kill_to_subscribed_s'), ' s')}."
        )
    if resub["unexplained_outages"]:
        notes.append(f"- Outages not caused by a Redis kill: {resub['unexplained_outages']}")
    if resub["not_resubscribed"]:
        notes.append(f"- Worker outages with no redis_outage_end: {resub['not_resubscribed']}")
    if acc["lost_examples"]:
        notes.append(f"- Lost, first examples: {acc['lost_examples'][:5]}")
    warn = result["relay_log"]["warnings_errors"]
    notes.append(
        f"- Relay log: {result['relay_log']['lines']:,} lines, warnings/errors {warn or 'none'}; "
        f"relay exit code {result['relay_exit_code']} after {result['relay_stop_s']} s."
    )
    return "\n".join(lines + notes)


# =====================================================================================
# Entry point
# =====================================================================================
def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} must be > 0")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=(__doc__ or "").splitlines()[0],
    )
    parser.add_argument(
        "--duration",
        type=_positive(float),
        default=600.0,
        help="seconds of publishing and faults (default 600)",
    )
    parser.add_argument(
        "--clients",
        type=_positive(int),
        default=1000,
        help="WebSocket clients kept connected (default 1000)",
    )
    parser.add_argument(
        "--rate", type=_positive(float), default=10.0, help="messages per second (default 10)"
    )
    parser.add_argument(
        "--churn",
        type=float,
        default=0.01,
        help="share of the clients replaced every second (default 0.01)",
    )
    parser.add_argument(
        "--redis-kill-every",
        type=float,
        default=120.0,
        help="SIGKILL redis-server this often, s; 0: never (default 120)",
    )
    parser.add_argument(
        "--redis-down",
        type=float,
        default=1.0,
        help="seconds between the kill and the restart (default 1)",
    )
    parser.add_argument(
        "--worker-kill-at",
        type=float,
        default=None,
        help="SIGKILL one worker this many s in; <= 0: never "
        "(default: half the duration, kept 15 s clear of a Redis kill)",
    )
    parser.add_argument(
        "--worker-kill-index", type=int, default=1, help="which worker to kill (default 1)"
    )
    parser.add_argument(
        "--workers",
        type=_positive(int),
        default=2,
        help="relay workers, serve --workers (default 2)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=1.0,
        help="s of slack around windows and session ends (default 1)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=30.0,
        help="s of publishing before the start RSS is read (default 30)",
    )
    parser.add_argument("--seed", type=int, default=1, help="churn and port seed (default 1)")
    parser.add_argument("--json", type=Path, default=None, help="write the full result here")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the run directory (relay.log, sessions.json, ...)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_load"]:
        return load_main(argv[1:])
    args = build_parser().parse_args(argv)
    if not 0 <= args.churn < 1:
        print("soak: --churn must be in [0, 1)", file=sys.stderr)
        return 2
    if 0 < args.redis_kill_every < args.redis_down + 10:
        print("soak: --redis-kill-every must leave Redis up 10 s between kills", file=sys.stderr)
        return 2
    if args.worker_kill_index >= args.workers or args.worker_kill_index < 0:
        print("soak: --worker-kill-index must name one of the workers", file=sys.stderr)
        return 2
    needed = args.clients * 2 + 256
    nofile = _raise_nofile()  # the relay inherits it (and raises its own to the hard limit)
    if nofile < needed:
        print(f"soak: RLIMIT_NOFILE can only reach {nofile}; {needed} needed", file=sys.stderr)
        return 2
    from .procs import run_harness

    code, result = run_harness(
        "soak",
        lambda children, run_dir: soak(args, children, run_dir),
        keep_logs=args.keep_logs,
    )
    if code != 0:
        return int(code)
    print(render(result))
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
