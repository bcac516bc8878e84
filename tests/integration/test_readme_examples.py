"""README.md's client and bot examples run as written against a real relay and its own Redis:
what each prints (or publishes) must be what went through the relay.

The TypeScript snippets are compiled with the package's own tsc (strict), so that a wrong
type in an example fails here too, then run with node against the built package
(clients/js/dist), as a project that installed it would.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from pingpong_relay.subscriptions import position_key
from tests.integration.doc_snippets import (
    README,
    VENV_BIN,
    for_test,
    marked_snippets,
    readme_snippet,
    running,
)
from tests.support import ROOT, Collector, RedisServer, RelayFactory, RelayProcess

JS = ROOT / "clients" / "js"
# The example values the README's snippets use, replaced by the test's.
EXAMPLE_WS = "ws://localhost:2808/"
EXAMPLE_REDIS = "redis://127.0.0.1:6379/0"
EXAMPLE_EXCHANGE = "https://api.binance.com/api/v3/ping"
MARKED = {"python-publisher", "python-client", "ts-client", "node-bot"}
Envelope = dict[str, Any]


def test_the_readme_keeps_its_runnable_snippets_marked() -> None:
    assert set(marked_snippets(README)) == MARKED, "a test below runs each: list it in MARKED"


class Printed:
    """What a running snippet prints on stdout, line by line, as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None, "run it with running(..., output=True)"
        self._stdout = process.stdout
        self.lines: list[str] = []

    async def until(
        self, done: Callable[[list[str]], bool], what: str, timeout_s: float = 30.0
    ) -> list[str]:
        """Reads lines until `done(lines)`; fails when the snippet ends or is silent first."""

        async def read() -> None:
            while not done(self.lines):
                line = await self._stdout.readline()
                if not line:
                    raise AssertionError(f"the snippet ended before {what}: {self.lines}")
                self.lines.append(line.decode(errors="replace").rstrip("\n"))

        try:
            await asyncio.wait_for(read(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout_s} s: {self.lines}") from None
        return self.lines


def as_script(snippet: str) -> str:
    """A Python snippet written for an async prompt, as a script (inside an async def)."""
    return (
        "import asyncio\n\n\nasync def main():\n"
        + textwrap.indent(snippet, "    ")
        + "\n\nasyncio.run(main())\n"
    )


def beat(source: str, kind: str, latency: float) -> bytes:
    return orjson.dumps({"type": kind, "latency": latency, "timestamp": 1, "source": source})


async def first_envelope(client: Collector, match: Callable[[Envelope], bool]) -> Envelope:
    """The first bot:pingpong envelope the client received whose data matches (waiting)."""
    for _ in range(100):
        for message in client.messages:
            if message.get("type") == "bot:pingpong" and match(message["data"]):
                return message
        await client.wait_count(len(client.messages) + 1)
    raise AssertionError(f"no matching envelope among {client.messages}")


@pytest.fixture
async def watcher() -> AsyncIterator[Callable[[RelayProcess], Any]]:
    """watcher(relay) -> a real WebSocket client of `relay`, receiving every heartbeat."""
    clients: list[Collector] = []

    async def connect(relay: RelayProcess) -> Collector:
        client = Collector()
        await client.connect(relay.ws_url)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


# --- Python --------------------------------------------------------------------------------


async def test_the_python_publisher_publishes_what_its_comment_says(
    redis_server: RedisServer, start_relay: RelayFactory, watcher: Any
) -> None:
    relay = await start_relay(redis_server.url)
    client = await watcher(relay)
    snippet = readme_snippet("python-publisher")
    # The comment shows the message sent, with <now ms> for the bot's clock.
    (promised,) = re.findall(r"# (\{.*\})$", snippet, re.MULTILINE)
    expected = orjson.loads(promised.replace("<now ms>", "0"))
    script = as_script(for_test(snippet, replace={EXAMPLE_REDIS: redis_server.url}))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert (process.returncode, stdout) == (0, b""), stderr.decode(errors="replace")
    envelope = await first_envelope(client, lambda data: True)
    data = envelope["data"]
    assert {**data, "timestamp": 0} == expected
    assert abs(data["timestamp"] - envelope["timestamp"]) < 60_000


def handled(record: dict[str, object]) -> bool:
    return record.get("event") in ("history_recorded", "history_duplicate")


async def test_the_python_client_resumes_after_a_restart_and_prints_the_gap(
    redis_server: RedisServer, start_relay: RelayFactory
) -> None:
    flags = ("--log-level", "DEBUG", "--history-max-entries", "10")
    first = await start_relay(redis_server.url, *flags)
    second = await start_relay(redis_server.url, *flags)  # records while the first is down
    script = as_script(
        for_test(readme_snippet("python-client"), replace={EXAMPLE_WS: first.ws_url})
    )
    command = [sys.executable, "-c", script]
    async with running(command, env={"PYTHONUNBUFFERED": "1"}, output=True) as process:
        printed = Printed(process)
        await first.wait_for("client_connected")
        for n in range(5):
            await redis_server.publish(beat("gate-1", "ping", n))
        await printed.until(lambda lines: len(lines) == 5, "the five live heartbeats")
        await first.stop()
        for n in range(5, 35):  # 30 while it is down, and the history keeps 10
            await redis_server.publish(beat("gate-1", "ping", n))
        await second.wait_for(handled, count=35)
        await start_relay(redis_server.url, *flags, port=first.port)
        await printed.until(lambda lines: len(lines) == 16, "the gap and the 10 kept")
        await redis_server.publish(beat("gate-1", "ping", 35))
        lines = await printed.until(lambda lines: len(lines) == 17, "the next live heartbeat")

    gap = lines[5].split()
    beats = [line.split() for line in lines[:5] + lines[6:]]
    assert [(b[0], b[2]) for b in beats] == [("bot:pingpong/gate-1", "ping")] * 16, lines
    assert [int(b[3]) for b in beats] == [0, 1, 2, 3, 4, *range(25, 36)], lines
    ids = [b[1] for b in beats]
    assert ids == sorted(ids, key=position_key), lines
    assert len(set(ids)) == 16, lines
    assert gap[:3] == ["missed", "bot:pingpong/gate-1", "from"], lines
    assert gap[4] == "to", lines
    assert position_key(gap[3]) <= position_key(ids[4]), "the gap begins at what was seen last"
    assert gap[5] == ids[5], "the gap ends where the kept history starts"


# --- TypeScript / Node -----------------------------------------------------------------------


def node_project(tmp_path: Path, snippet: str) -> Path:
    """A project with the snippet as snippet.ts, the package (and redis) installed from
    clients/js, compiled by the package's tsc; returns the JavaScript to run."""
    missing = [p for p in (JS / "node_modules", JS / "dist" / "index.js") if not p.exists()]
    assert not missing, f"{missing} missing: run `make js-client` (make test does)"
    (tmp_path / "package.json").write_text('{"name": "readme", "private": true, "type": "module"}')
    modules = tmp_path / "node_modules"
    modules.mkdir()
    (modules / "pingpong-relay-client").symlink_to(JS)
    for name in ("redis", "@types"):
        (modules / name).symlink_to(JS / "node_modules" / name)
    (tmp_path / "snippet.ts").write_text(snippet, encoding="utf-8")
    tsc = [
        str(VENV_BIN / "node"), str(JS / "node_modules" / "typescript" / "bin" / "tsc"),
        "--strict", "--target", "ES2022", "--module", "NodeNext", "--moduleResolution", "NodeNext",
        "--lib", "ES2022,DOM", "--types", "node", "--skipLibCheck", "snippet.ts",
    ]  # fmt: skip
    done = subprocess.run(
        tsc, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"the README's snippet does not compile:\n{done.stdout}"
    return tmp_path / "snippet.js"


async def test_the_ts_client_prints_its_bots_heartbeats_and_statuses(
    redis_server: RedisServer, start_relay: RelayFactory, watcher: Any, tmp_path: Path
) -> None:
    relay = await start_relay(redis_server.url)
    everything = await watcher(relay)
    script = node_project(
        tmp_path, for_test(readme_snippet("ts-client"), replace={EXAMPLE_WS: relay.ws_url})
    )
    async with running(["node", str(script)], cwd=tmp_path, output=True) as process:
        printed = Printed(process)
        await relay.wait_for("client_connected", count=2)
        # A bot outside its bots:[…] first: delivered to the watcher of everything, not to it.
        await redis_server.publish(beat("other-1", "ping", 99))
        await first_envelope(everything, lambda data: data["source"] == "other-1")
        await redis_server.publish(beat("gate-1", "ping", 12.5))
        await redis_server.publish(beat("gate-2", "pong", 7))
        # Each heartbeat, and each bot's status as the relay first hears from it.
        expected = {
            "ping 12.5 gate-1",
            "pong 7 gate-2",
            "bot:pingpong/gate-1 is up",
            "bot:pingpong/gate-2 is up",
        }
        lines = await printed.until(lambda lines: expected <= set(lines), "what was published")
    assert sorted(lines) == sorted(expected), "other-1 is not one of its bots"


@pytest.fixture
async def exchange() -> AsyncIterator[tuple[str, list[str]]]:
    """A stand-in for the exchange's ping endpoint: its URL, and the paths it was asked."""
    asked: list[str] = []

    async def ping(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/api/v3/ping", ping)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/v3/ping", asked
    finally:
        await runner.cleanup()


async def test_the_node_bot_times_the_exchange_and_publishes_what_it_prints(
    redis_server: RedisServer,
    start_relay: RelayFactory,
    watcher: Any,
    exchange: tuple[str, list[str]],
    tmp_path: Path,
) -> None:
    relay = await start_relay(redis_server.url)
    client = await watcher(relay)
    url, asked = exchange
    snippet = for_test(
        readme_snippet("node-bot"), replace={EXAMPLE_REDIS: redis_server.url, EXAMPLE_EXCHANGE: url}
    )
    script = node_project(tmp_path, snippet)
    async with running(["node", str(script)], cwd=tmp_path, output=True) as process:
        (line,) = await Printed(process).until(bool, "the first heartbeat")
        envelope = await first_envelope(client, lambda data: data.get("source") == "gate-1")
    printed = re.fullmatch(r"pong ([0-9.]+) ms, (\d+) relay\(s\)", line)
    assert printed is not None, line
    data = envelope["data"]
    assert (data["type"], data["latency"]) == ("pong", float(printed[1]))
    assert int(printed[2]) == 1  # the one relay subscribed to this test's Redis
    assert asked == ["/api/v3/ping"]  # timed once, at start(): the next is 10 s later
