"""`pingpong-relay serve` as a child process: its log as events, its HTTP plane, its processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson

from .logs import LogFollower, Match, Record
from .processes import Children, HarnessError, free_port, pin, spawn, stop_process
from .tree import ProcessTree

# Its own shutdown allows clients 3 s; a relay that takes longer is killed.
STOP_GRACE_S = 10.0
# Times start() tries again, on fresh ports, after losing one to another process.
BIND_ATTEMPTS = 3


class RelayProcess:
    """`python -m pingpong_relay serve` on loopback, JSON logs, its log lines as events.

    The log comes through a pipe by default, each line as the relay writes it (what tests
    wait on). With `log_path` it goes to that file instead, read only when asked, so that
    nothing in this process has to drain it while the relay is under load (what benchmarks
    measure under). `children` registers the process with a benchmark's Children (its own
    session, stopped with the rest); `cores` pins it (and the workers it starts) to those
    CPUs; `nofile` sets its open-file limit (soft and hard); `log_keep` picks the log
    records kept (see LogFollower).
    """

    def __init__(
        self,
        redis_url: str | None,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
        http_port: int | None = None,
        nofile: int | None = None,
        log_path: Path | None = None,
        children: Children | None = None,
        cores: Iterable[int] | None = None,
        log_keep: Callable[[Record], bool] | None = None,
    ) -> None:
        self.nofile = nofile
        self.log_path = log_path
        self.children = children
        self.cores = None if cores is None else sorted(cores)
        # Ports the harness picked may be taken by another process before the relay binds
        # them (free_port cannot hold them): then start() tries again with fresh ones.
        self._ports_chosen = port is None and http_port is None
        self.port = port or free_port()
        self.http_port = http_port or free_port()
        self._redis_url = redis_url
        self._extra_args = list(args)
        self.args = self._command_args()
        self.env = {**os.environ, **(env or {})}
        self._log_keep = log_keep
        self.process: asyncio.subprocess.Process | None = None
        self.http_headers: dict[str, str] = {}  # e.g. a bearer token for /metrics
        self.log = LogFollower(log_path, keep=log_keep, running=self._running)
        self._log_file: IO[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tree: ProcessTree | None = None
        self._http: aiohttp.ClientSession | None = None

    def _command_args(self) -> list[str]:
        args = [
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--log-format", "json",
        ]  # fmt: skip
        if self._redis_url is not None:
            args += ["--redis-url", self._redis_url]
        return args + self._extra_args

    @property
    def ws_url(self) -> str:
        """Its WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}/"

    def ws_url_with(self, query: str) -> str:
        """The WebSocket URL with a query string (a server-side filter), e.g. "types=ping"."""
        return self.ws_url + (f"?{query}" if query else "")

    @property
    def http_url(self) -> str:
        """Its HTTP plane's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def records(self) -> list[Record]:
        """Its log records so far."""
        self.log.poll()
        return self.log.records

    @property
    def raw_lines(self) -> list[str]:
        """Its log lines so far, as written (a piped log only)."""
        return self.log.raw_lines

    @property
    def tree(self) -> ProcessTree:
        """Its process and the workers under it, for memory, CPU and descriptors."""
        if self._tree is None:
            if self.process is None:
                raise HarnessError("the relay was never started")
            self._tree = ProcessTree(self.process.pid)
        return self._tree

    def _running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self, *, wait_subscribed: bool = True, timeout: float = 20.0) -> None:
        """Starts it; waits until it listens and, by default, has subscribed to Redis."""
        for attempt in range(BIND_ATTEMPTS):
            await self.start_process()
            try:
                await self.wait_for("listening", timeout=timeout)
                break
            except HarnessError as exc:
                lost_race = self._ports_chosen and "address already in use" in str(exc)
                if not lost_race or attempt == BIND_ATTEMPTS - 1:
                    raise
                await self._restart_on_fresh_ports()
        if wait_subscribed:
            await self.wait_for(
                lambda r: r.get("event") in ("redis_subscribed", "redis_outage_end"),
                timeout=timeout,
            )

    async def start_process(self) -> None:
        """Starts the process and its log reader, without waiting for it to listen."""
        stderr: int | IO[bytes] = asyncio.subprocess.PIPE
        if self.log_path is not None:
            self._log_file = stderr = self.log_path.open("wb")
        launch: Callable[..., Awaitable[asyncio.subprocess.Process]] = (
            spawn if self.children is None else self.children.spawn
        )
        self.process = await launch(
            sys.executable, "-m", "pingpong_relay", "serve", *self.args,
            nofile=self.nofile,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
            env=self.env,
        )  # fmt: skip
        if self.cores is not None:
            pin(self.process.pid, self.cores)
        if self.process.stderr is not None:
            self._reader = asyncio.create_task(
                self.log.pump(self.process.stderr), name="relay-log-reader"
            )

    async def _restart_on_fresh_ports(self) -> None:
        """After the relay lost a port to another process: its old run gone, new ports."""
        await self.wait_exit()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.port, self.http_port = free_port(), free_port()
        self.args = self._command_args()
        self.log = LogFollower(self.log_path, keep=self._log_keep, running=self._running)
        self._tree = None

    def events(self, name: str) -> list[Record]:
        """Every log record of this event so far."""
        return self.log.events(name)

    async def wait_for(self, match: Match, *, count: int = 1, timeout: float = 20.0) -> Record:
        """Waits until `count` log records match; returns the last one."""
        return await self.log.wait_for(match, count=count, timeout_s=timeout)

    def worker_pids(self) -> dict[int, int]:
        """Each worker's current pid, from the supervisor's worker_started lines."""
        return {int(e["worker"]): int(e["pid"]) for e in self.events("worker_started")}

    def signal(self, sig: int) -> None:
        """Sends it a signal."""
        if self.process is None:
            raise HarnessError("the relay was never started")
        self.process.send_signal(sig)

    async def wait_exit(self, timeout: float = 15.0) -> int:
        """Waits for it to exit, and for its log to be read to the end; its exit code."""
        if self.process is None:
            raise HarnessError("the relay was never started")
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM (SIGKILL after `grace_s`), then closes its log and HTTP session."""
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.process is not None:
            if self.children is not None:
                await self.children.stop(self.process, grace_s)
            else:
                await stop_process(self.process, grace_s)
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)
        self.log.poll()
        self.log.close()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    async def get(
        self, path: str, *, data_port: bool = False, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One GET on a connection of its own: (status, body)."""
        base = f"http://127.0.0.1:{self.port}" if data_port else self.http_url
        async with (
            aiohttp.ClientSession(headers=headers or self.http_headers) as session,
            session.get(base + path, allow_redirects=False) as response,
        ):
            return response.status, await response.read()

    async def metric(self, name: str) -> float:
        """One sample's value from /metrics, e.g. 'pingpong_deliveries_total'."""
        _, body = await self.get("/metrics")
        for line in body.decode().splitlines():
            key, _, value = line.rpartition(" ")
            if key == name:
                return float(value)
        raise HarnessError(f"metric {name} not in /metrics")

    async def metric_until(
        self, name: str, done: Callable[[float], bool], timeout_s: float = 20.0
    ) -> float:
        """Reads sample `name` from /metrics until `done(value)`, polling (the relay's state
        has no event to wait on), for at most `timeout_s`; its value then."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            value = await self.metric(name)
            if done(value):
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise HarnessError(f"{name} is still {value} after {timeout_s} s")
            await asyncio.sleep(0.05)

    def _session(self) -> aiohttp.ClientSession:
        # One keep-alive connection for the repeated reads of a benchmark, opened on the
        # first; a test's one-off `get` opens its own.
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self._http

    async def health(self) -> dict[str, Any]:
        """/healthz?detail=1 (the client count, and each worker's), kept alive."""
        url = f"{self.http_url}/healthz?detail=1"
        async with self._session().get(url, headers=self.http_headers) as response:
            body: dict[str, Any] = orjson.loads(await response.read())
            return body

    async def metrics(self) -> dict[str, float] | None:
        """The relay's unlabelled /metrics series plus histogram buckets, kept alive; None
        when /metrics does not answer (a relay out of file descriptors cannot accept)."""
        try:
            url = f"{self.http_url}/metrics"
            async with self._session().get(url, headers=self.http_headers) as response:
                text = (await response.read()).decode()
        except (aiohttp.ClientError, TimeoutError):
            return None
        return parse_metrics(text)


def parse_metrics(text: str) -> dict[str, float]:
    """Unlabelled Prometheus series by name; a histogram bucket as `<name>_bucket:<le>`
    (e.g. "…_bucket:0.005", "…_bucket:+Inf"), cumulative, as Prometheus exposes it."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        if "{" in name:
            base, _, labels = name.partition("{")
            if not base.endswith("_bucket") or not labels.startswith('le="'):
                continue
            bound = labels[len('le="') :].partition('"')[0]
            name = f"{base}:{bound}"
        with contextlib.suppress(ValueError):
            values[name] = float(value)
    return values


RelayFactory = Callable[..., Awaitable[RelayProcess]]
