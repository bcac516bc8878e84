"""Load-generator processes, driven by JSON lines: commands in on stdin, events out on stdout."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from .processes import Children, HarnessError, pin

Message = dict[str, Any]


class LoadProcess:
    """A load-generator child (`python -m <module> ARGS`) spoken to one JSON object a line.

    Every line it prints is an event, {"event": NAME, ...}; `expect` takes the next one,
    which must be the named event. Events named in `latest_only` (a periodic "status")
    are not queued: the last one is kept in `latest`. Its stderr goes to `log_path`.
    `cores` pins it to those CPUs.
    """

    def __init__(
        self,
        children: Children,
        module: str,
        args: Sequence[str],
        log_path: Path,
        *,
        name: str = "load process",
        latest_only: Sequence[str] = (),
        cores: Iterable[int] | None = None,
    ) -> None:
        self.children = children
        self.module = module
        self.args = list(args)
        self.log_path = log_path
        self.name = name
        self.latest_only = frozenset(latest_only)
        self.cores = None if cores is None else sorted(cores)
        self.latest: dict[str, Message] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._events: asyncio.Queue[Message | None] = asyncio.Queue()
        self._log: IO[bytes] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Spawns it (through `children`, so it is stopped with the rest)."""
        self._log = self.log_path.open("wb")
        self.process = await self.children.spawn(
            sys.executable, "-m", self.module, *self.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )  # fmt: skip
        if self.cores is not None and not pin(self.process.pid, self.cores):
            raise HarnessError(f"could not pin {self.name} to cores {self.cores}")
        self._reader = asyncio.create_task(self._read(), name=f"{self.module}-reader")

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            with contextlib.suppress(orjson.JSONDecodeError):
                message = orjson.loads(line)
                if not isinstance(message, dict):
                    continue
                if message.get("event") in self.latest_only:
                    self.latest[str(message["event"])] = message
                else:
                    await self._events.put(message)
        await self._events.put(None)  # EOF

    def stderr_tail(self, chars: int = 2000) -> str:
        """The end of what it wrote to stderr, for an error message."""
        return self.log_path.read_bytes().decode(errors="replace")[-chars:]

    async def expect(self, event: str, timeout_s: float) -> Message:
        """Its next event, which must be `event`."""
        try:
            message = await asyncio.wait_for(self._events.get(), timeout_s)
        except TimeoutError:
            raise HarnessError(f"{self.name} sent no {event!r} within {timeout_s} s") from None
        if message is None:
            raise HarnessError(
                f"{self.name} exited before {event!r}; its stderr:\n{self.stderr_tail()}"
            )
        if message.get("event") != event:
            raise HarnessError(
                f"{self.name} said {message!r}, expected {event!r}; its stderr:\n"
                + self.stderr_tail()
            )
        return message

    async def send(self, command: Message) -> None:
        """One command line to its stdin."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(orjson.dumps(command) + b"\n")
        await self.process.stdin.drain()

    async def stop(self, farewell: Message | None, wait_s: float, grace_s: float) -> None:
        """Sends `farewell` (if any) and closes its stdin, waits up to `wait_s` for it to
        exit by itself, then stops it (SIGTERM, SIGKILL after `grace_s`)."""
        process = self.process
        if process is not None:
            if process.returncode is None and process.stdin is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    if farewell is not None:
                        process.stdin.write(orjson.dumps(farewell) + b"\n")
                        await process.stdin.drain()
                    process.stdin.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(process.wait(), wait_s)
            await self.children.stop(process, grace_s)
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._log is not None:
            self._log.close()
            self._log = None
