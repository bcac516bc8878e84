"""systemd's Type=notify over a real $NOTIFY_SOCKET: READY only once subscribed, STATUS lines,
watchdog pings from the live event loop, STOPPING on SIGTERM; with --workers, the supervisor
alone speaks. The unit file passes `systemd-analyze verify`."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from pingpong_relay.app.sd_notify import SystemdNotifier
from pingpong_relay.tasks import cancel_and_wait
from tests.support import DESIGN_PING, Collector, RedisServer, RelayFactory, RelayProcess

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "pingpong-relay.service"
EXEC_PATH = "/opt/pingpong-relay/.venv/bin/pingpong-relay"  # ExecStart='s, as installed
WATCHDOG_USEC = 400_000  # pings every 0.2 s
UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True, slots=True)
class Notice:
    """One datagram the relay sent: its assignments, who sent it, and when it came."""

    fields: dict[str, str]
    pid: int
    at: float


class NotifySocket:
    """What systemd listens on: a datagram socket that records every notice and its
    sender's pid (SO_PASSCRED, as systemd checks NotifyAccess=main with)."""

    def __init__(self, address: str) -> None:
        self.address = address  # as $NOTIFY_SOCKET says it: a path or "@name"
        self.notices: list[Notice] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self._sock.setblocking(False)
        self._arrived = asyncio.Event()
        asyncio.get_running_loop().add_reader(self._sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data, ancillary, _, _ = self._sock.recvmsg(4096, socket.CMSG_SPACE(UCRED.size))
            except BlockingIOError:
                return
            pid = -1
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = UCRED.unpack(payload[: UCRED.size])[0]
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            self.notices.append(Notice(fields, pid, time.monotonic()))
            self._arrived.set()

    async def wait_for(
        self, match: Callable[[Notice], bool], *, after: int = 0, timeout: float = 20.0
    ) -> Notice:
        """The first notice from index `after` on that matches, waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for notice in self.notices[after:]:
                if match(notice):
                    return notice
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [n.fields for n in self.notices[after:] if "WATCHDOG" not in n.fields]
                raise AssertionError(f"no matching notice in {timeout} s; besides pings: {seen}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue

    async def count(self, name: str, *, at_least: int, after: int, timeout: float) -> float:
        """Waits for `at_least` notices with `name` from index `after` on; the seconds from
        the first to the last."""

        def hits() -> list[Notice]:
            return [notice for notice in self.notices[after:] if name in notice.fields]

        await self.wait_for(lambda _: len(hits()) >= at_least, after=after, timeout=timeout)
        counted = hits()[:at_least]
        return counted[-1].at - counted[0].at

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        self._sock.close()


@pytest.fixture
async def notify_socket() -> AsyncIterator[NotifySocket]:
    # A short directory of its own: a socket path may not exceed 107 bytes.
    directory = tempfile.mkdtemp(prefix="sd-")
    listener = NotifySocket(os.path.join(directory, "notify"))
    try:
        yield listener
    finally:
        listener.close()
        shutil.rmtree(directory, ignore_errors=True)


def _env(listener: NotifySocket) -> dict[str, str]:
    return {"NOTIFY_SOCKET": listener.address, "WATCHDOG_USEC": str(WATCHDOG_USEC)}


def _has(name: str, value: str | None = None) -> Callable[[Notice], bool]:
    return lambda n: name in n.fields and (value is None or value in n.fields[name])


def _stopped(pid: int) -> bool:
    return bool(psutil.Process(pid).status() == psutil.STATUS_STOPPED)


async def test_ready_only_once_subscribed_then_status_watchdog_and_stopping(
    notify_socket: NotifySocket, start_relay: RelayFactory
) -> None:
    redis = RedisServer()  # not started yet: the relay comes up without Redis
    try:
        relay = await start_relay(
            redis.url, "--stats-interval", "1", env=_env(notify_socket), wait_subscribed=False
        )
        assert relay.process is not None
        pid = relay.process.pid
        waiting = await notify_socket.wait_for(_has("STATUS", "waiting for Redis"))
        assert "READY" not in waiting.fields
        # It keeps waiting, pinging the watchdog, and never says READY without Redis.
        await notify_socket.count("WATCHDOG", at_least=5, after=0, timeout=20)
        assert not any("READY" in n.fields for n in notify_socket.notices)
        status, _ = await relay.get("/healthz")
        assert status == 503

        await redis.start()
        ready = await notify_socket.wait_for(_has("READY", "1"))
        assert ready.fields["STATUS"] == "Redis subscribed; 0 clients"
        status, _ = await relay.get("/healthz")  # READY meant it: listening and subscribed
        assert status == 200

        # WATCHDOG=1 at about half of WATCHDOG_USEC (0.2 s): 6 pings take 1 s; loosely.
        mark = len(notify_socket.notices)
        span_s = await notify_socket.count("WATCHDOG", at_least=6, after=mark, timeout=20)
        assert 0.5 <= span_s <= 15

        client = Collector()
        await client.connect(relay.ws_url)
        one = await notify_socket.wait_for(_has("STATUS", "1 client"), after=mark)
        assert one.fields["STATUS"] == "Redis subscribed; 1 client"
        await client.close()

        mark = len(notify_socket.notices)
        redis.kill()  # a change of Redis's state is told at once, not at the next interval
        down = await notify_socket.wait_for(_has("STATUS", "Redis disconnected"), after=mark)
        assert down.fields["STATUS"].endswith("; 0 clients")

        mark = len(notify_socket.notices)
        relay.signal(signal.SIGTERM)
        stopping = await notify_socket.wait_for(_has("STOPPING", "1"), after=mark)
        assert stopping.fields["STATUS"].startswith("shutting down")
        assert await relay.wait_exit() == 0
        after_stopping = notify_socket.notices[notify_socket.notices.index(stopping) + 1 :]
        assert not any("READY" in n.fields or "STATUS" in n.fields for n in after_stopping)
        # Every notice came from the relay's own process (NotifyAccess=main would accept it).
        assert {n.pid for n in notify_socket.notices} == {pid}
    finally:
        redis.stop()


async def test_a_stopped_event_loop_stops_the_watchdog(
    notify_socket: NotifySocket, redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    relay = await start_relay(redis_server.url, env=_env(notify_socket))
    assert relay.process is not None
    pid = relay.process.pid
    await notify_socket.wait_for(_has("READY"))
    relay.signal(signal.SIGSTOP)  # as good as a wedged loop: nothing in the process runs
    try:
        for _ in range(200):  # bounded: the kernel stops it within a few milliseconds
            if _stopped(pid):
                break
            await asyncio.sleep(0.01)
        assert _stopped(pid)
        stopped_at = len(notify_socket.notices)
        with pytest.raises(AssertionError, match="no matching notice"):
            await notify_socket.wait_for(_has("WATCHDOG"), after=stopped_at, timeout=1.5)
    finally:
        relay.signal(signal.SIGCONT)
    # The pings come back with the loop: they come from the live process, not a thread.
    await notify_socket.count("WATCHDOG", at_least=3, after=stopped_at, timeout=20)


async def test_abstract_socket(redis_server: RedisServer, start_relay: RelayFactory) -> None:
    listener = NotifySocket(f"@pingpong-relay-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        relay = await start_relay(redis_server.url, env=_env(listener))
        ready = await listener.wait_for(_has("READY", "1"))
        assert ready.fields["STATUS"] == "Redis subscribed; 0 clients"
        assert relay.process is not None
        assert ready.pid == relay.process.pid
        await listener.count("WATCHDOG", at_least=2, after=0, timeout=20)
    finally:
        listener.close()


async def test_workers_the_supervisor_alone_says_ready_once_all_are(
    notify_socket: NotifySocket, redis_server: RedisServer
) -> None:
    relay = RelayProcess(redis_server.url, "--workers", "2", env=_env(notify_socket))
    try:
        await relay.start(wait_subscribed=False)
        assert relay.process is not None
        supervisor = relay.process.pid
        ready = await notify_socket.wait_for(_has("READY", "1"))
        assert ready.fields["STATUS"] == "2 of 2 workers ready; Redis subscribed; 0 clients"
        status, _ = await relay.get("/healthz")  # every worker listens and is subscribed
        assert status == 200
        mark = len(notify_socket.notices)
        await notify_socket.count("WATCHDOG", at_least=4, after=mark, timeout=20)
        # The workers were never told where systemd listens.
        for worker_pid in relay.worker_pids().values():
            environ = psutil.Process(worker_pid).environ()
            assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & environ.keys()
        relay.signal(signal.SIGTERM)
        await notify_socket.wait_for(_has("STOPPING", "1"), after=mark)
        assert await relay.wait_exit(timeout=30) == 0
        assert sum("READY" in n.fields for n in notify_socket.notices) == 1
        assert {n.pid for n in notify_socket.notices} == {supervisor}
    finally:
        await relay.stop()


def _console_script() -> Path:
    """The venv's `pingpong-relay` (what ExecStart= names on a real host)."""
    script = Path(sys.executable).parent / "pingpong-relay"
    if not script.exists():
        pytest.skip("no pingpong-relay console script next to this Python")
    return script


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = UNIT.read_text()
    assert f"ExecStart={EXEC_PATH} serve" in text
    # verify checks that ExecStart's binary exists: a copy naming this checkout's script.
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(EXEC_PATH, str(_console_script())))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = [line for line in result.stderr.splitlines() if UNIT.name in line]
    assert result.returncode == 0, result.stderr
    assert complaints == [], result.stderr


async def test_the_watchdog_pings_come_from_the_event_loop() -> None:
    """A wedged loop sends nothing: while this loop is blocked, no ping is queued (a thread
    pinging on its own would have queued several)."""
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    directory = tempfile.mkdtemp(prefix="sd-")  # short: a socket path's limit
    address = os.path.join(directory, "notify")
    receiver.bind(address)
    receiver.setblocking(False)
    environ = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "100000"}
    notifier = SystemdNotifier.from_environ(environ, os.getpid(), stats_interval_s=5.0)
    assert notifier is not None
    assert environ == {}  # taken out, so no child inherits them
    pinging = asyncio.create_task(notifier.keep_watchdog())
    try:
        for _ in range(100):  # the first pings, within a bounded wait
            await asyncio.sleep(0.05)
            if _queued(receiver):
                break
        else:
            raise AssertionError("no WATCHDOG=1 while the loop ran")
        time.sleep(1.0)  # noqa: ASYNC251 - the point: the loop wedged for ten ping intervals
        assert _queued(receiver) == []
        for _ in range(100):
            await asyncio.sleep(0.05)
            if _queued(receiver):
                break
        else:
            raise AssertionError("no WATCHDOG=1 once the loop ran again")
    finally:
        await cancel_and_wait(pinging)
        notifier.close()
        receiver.close()
        shutil.rmtree(directory, ignore_errors=True)


def _queued(receiver: socket.socket) -> list[bytes]:
    """Every datagram waiting on `receiver`, read without blocking."""
    datagrams = []
    while True:
        try:
            datagrams.append(receiver.recv(4096))
        except BlockingIOError:
            return datagrams


# Loaded by every Python the relay starts (sitecustomize), before the relay's own imports:
# from then on the kernel refuses memory both writable and executable, as the unit's
# MemoryDenyWriteExecute=yes does (systemd uses this same prctl where the kernel has it).
MDWE_SITE = """\
import ctypes, os, pathlib, sys
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0):
    sys.exit("PR_SET_MDWE failed")
pathlib.Path(__file__).with_name(f"mdwe-{os.getpid()}").touch()
"""


def _mdwe_supported() -> bool:
    probe = "import ctypes, sys; sys.exit(ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0)"
    return subprocess.run([sys.executable, "-c", probe], check=False, timeout=30).returncode == 0


async def test_the_relay_needs_no_writable_executable_memory(
    tmp_path: Path, redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    if not _mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3+)")
    (tmp_path / "sitecustomize.py").write_text(MDWE_SITE)
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    relay = await start_relay(redis_server.url, env={"PYTHONPATH": path})
    assert relay.process is not None
    assert (tmp_path / f"mdwe-{relay.process.pid}").exists()  # it ran under the refusal
    client = Collector()
    await client.connect(relay.ws_url)
    await redis_server.publish(DESIGN_PING)
    [envelope] = await client.wait_count(1)
    assert envelope["data"]["latency"] == 10
    status, _ = await relay.get("/metrics")
    assert status == 200
    await client.close()


def test_without_notify_socket_there_is_no_notifier() -> None:
    environ = {"WATCHDOG_USEC": "400000", "PATH": "/usr/bin"}
    assert SystemdNotifier.from_environ(environ, os.getpid(), 5.0) is None
    assert environ == {"PATH": "/usr/bin"}


def test_an_address_neither_path_nor_abstract_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    environ = {"NOTIFY_SOCKET": "vsock:2:1234"}
    assert SystemdNotifier.from_environ(environ, os.getpid(), 5.0) is None
    assert environ == {}
    assert "neither a path nor an abstract socket" in caplog.text
