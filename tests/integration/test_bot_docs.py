"""The snippets of docs/bots/ run as written against a real relay, its own Redis and a real
WebSocket client: each must make its bot's heartbeat reach the client (with the `via` the
page promises) or its bot's status become what the page says.

The MQTT and poller tests need those ways in (issue 16, items 4 and 5); until they are
merged the relay accepts the flags and hears nothing, and those tests fail waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from pingpong_relay.poll_targets import parse_poll_target
from pingpong_relay.rules import SilenceRule, load_rules
from tests.integration.doc_snippets import (
    BOT_DOCS,
    EXAMPLE_TOKEN,
    for_test,
    marked_snippets,
    running,
    snippet,
)
from tests.support import ROOT, Collector, RedisServer, RelayFactory, RelayProcess

NODE_BOT = ROOT / "examples" / "node-bot"
# The snippets each page must keep marked (a test below runs each).
MARKED = {
    "README.md": {"rules"},
    "cron.md": {"with-ping", "one-liner"},
    "freqtrade.md": {"api-server", "poll", "webhook"},
    "hummingbot.md": {"relay", "heartbeat"},
    "jesse.md": {"env", "helper"},
    "node.md": {"bot", "run"},
    "octobot.md": {"poll"},
    "python.md": {"publisher", "redis-py", "down"},
}
Envelope = dict[str, Any]


def test_every_page_keeps_its_runnable_snippets_marked() -> None:
    pages = {page.name for page in BOT_DOCS.glob("*.md")}
    assert pages == set(MARKED), "a page was added or removed: list its snippets in MARKED"
    for page, names in MARKED.items():
        assert set(marked_snippets(BOT_DOCS / page)) == names, page


def test_the_slow_bots_silence_rule_judges_only_them() -> None:
    rules = {rule.name: rule for rule in load_rules(snippet("README.md", "rules"))}
    assert set(rules) == {"silent", "cron-silent"}
    fast, slow = rules["silent"], rules["cron-silent"]
    assert isinstance(fast, SilenceRule)
    assert isinstance(slow, SilenceRule)
    assert slow.timeout_s == 2 * 3600
    for bot, judged_by in (
        ("bot:pingpong/cron-backup", slow),
        ("bot:pingpong/gate-1", fast),
        ("bot:pingpong/hbot-desk", fast),
    ):
        assert [rule for rule in rules.values() if rule.applies_to(bot)] == [judged_by], bot


async def _first(
    client: Collector, match: Callable[[Envelope], bool], what: str, after: int
) -> Envelope:
    """The first message from index `after` on that matches, waiting up to 30 s for it."""

    async def wait() -> Envelope:
        while True:
            for message in client.messages[after:]:
                if match(message):
                    return message
            await client.wait_count(len(client.messages) + 1, timeout=60)

    try:
        return await asyncio.wait_for(wait(), 30)
    except TimeoutError:
        raise AssertionError(f"no {what} reached the client within 30 s") from None


async def _envelope(
    client: Collector, match: Callable[[Envelope], bool], what: str, *, after: int = 0
) -> Envelope:
    """The first bot:pingpong envelope whose `data` matches (waiting for it)."""
    return await _first(
        client,
        lambda message: message.get("type") == "bot:pingpong" and match(message["data"]),
        what,
        after,
    )


async def _status(client: Collector, bot: str, status: str) -> Envelope:
    """The first bot:status message saying `bot` is `status` (waiting for it)."""
    return await _first(
        client,
        lambda m: m.get("type") == "bot:status" and (m["bot"], m["status"]) == (bot, status),
        f"status {status} of {bot}",
        0,
    )


def _from(source: str, via: str | None) -> tuple[Callable[[Envelope], bool], str]:
    """A match for a heartbeat from `source` that came `via` (None: from Redis), and its name."""
    return (
        lambda data: data.get("source") == source and data.get("via") == via,
        f"heartbeat from {source} via {via or 'Redis'}",
    )


@pytest.fixture
async def watch() -> AsyncIterator[Callable[[RelayProcess], Any]]:
    """watch(relay) -> a real WebSocket client of `relay`, receiving heartbeats and statuses."""
    clients: list[Collector] = []

    async def connect(relay: RelayProcess) -> Collector:
        client = Collector()
        await client.connect(relay.ws_url_with("events=pingpong,status"))
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


async def _run(argv: list[str], *, env: dict[str, str] | None = None) -> tuple[int, str]:
    """A snippet that ends by itself: its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


# --- cron jobs ---------------------------------------------------------------------------


async def test_the_cron_wrapper_reports_a_run_and_its_failure(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any, tmp_path: Path
) -> None:
    relay = await start_relay(redis_server.url, "--push-token", f"{EXAMPLE_TOKEN}=cron-backup")
    client = await watch(relay)
    wrapper = tmp_path / "with-ping"
    wrapper.write_text(for_test(snippet("cron.md", "with-ping"), relay=relay.http_url))

    assert await _run(["sh", str(wrapper), EXAMPLE_TOKEN, "true"]) == (0, "\n")
    start = await _envelope(client, lambda data: data.get("event") == "start", "the start")
    assert start["data"]["via"] == "healthchecks"
    done = await _envelope(client, lambda data: "duration_ms" in data, "the run's end")
    assert (done["data"]["source"], done["data"]["via"]) == ("cron-backup", "healthchecks")
    assert "status" not in done["data"]

    job = ["sh", "-c", "echo disk full; echo more >&2; exit 2"]
    status, output = await _run(["sh", str(wrapper), EXAMPLE_TOKEN, *job])
    assert (status, output) == (2, "disk full\nmore\n")
    down = await _status(client, "bot:pingpong/cron-backup", "down")
    assert down["reason"].endswith("reported down: exit status 2: disk full")


async def test_the_cron_one_liner_pushes_when_the_job_succeeds(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    relay = await start_relay(redis_server.url, "--push-token", f"{EXAMPLE_TOKEN}=cron-sync")
    client = await watch(relay)
    line = snippet("cron.md", "one-liner").strip()
    command = line.split(maxsplit=5)[5]  # after the five schedule fields
    for job, pushed in (("false", False), ("true", True)):
        shell = for_test(command, relay=relay.http_url, replace={"/usr/local/bin/sync.sh": job})
        assert (await _run(["sh", "-c", shell]))[0] == (0 if pushed else 1)
    envelope = await _envelope(client, *_from("cron-sync", "push"))
    assert envelope["data"]["type"] == "pong"
    assert await relay.metric('pingpong_ingest_accepted_total{via="push"}') == 1.0


# --- freqtrade ---------------------------------------------------------------------------


def _api_server() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads("{" + snippet("freqtrade.md", "api-server") + "}")
    return dict(parsed["api_server"])


def _serve_flags(text: str) -> list[str]:
    """The flags of a `pingpong-relay serve …` snippet, as the relay's argv."""
    words = shlex.split(text.replace("\\\n", " "))
    assert words[:2] == ["pingpong-relay", "serve"], text
    return words[2:]


def test_the_poll_line_matches_freqtrades_api_server_section() -> None:
    api = _api_server()
    assert api["enabled"] is True
    (flag, value) = _serve_flags(snippet("freqtrade.md", "poll"))
    assert flag == "--poll"
    target = parse_poll_target(value)
    assert (target.name, target.mode) == ("ft1", "freqtrade")
    assert target.url == f"http://{api['listen_ip_address']}:{api['listen_port']}"
    assert (target.user, target.password) == (api["username"], api["password"])


async def test_freqtrades_webhook_setting_pushes_on_each_event(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    relay = await start_relay(redis_server.url, "--push-token", f"{EXAMPLE_TOKEN}=ft1")
    client = await watch(relay)
    webhook = json.loads("{" + snippet("freqtrade.md", "webhook") + "}")["webhook"]
    assert (webhook["enabled"], webhook["format"]) == (True, "form")
    url = for_test(webhook["url"], relay=relay.http_url)
    async with aiohttp.ClientSession() as session:
        # As freqtrade sends its status message when it starts: the form, to the URL.
        form = {key: value.format(status="running") for key, value in webhook["status"].items()}
        async with session.post(url, data=form) as response:
            assert (response.status, await response.json()) == (200, {"ok": True})
    envelope = await _envelope(client, *_from("ft1", "push"))
    assert envelope["data"]["msg"] == "freqtrade"


@contextlib.asynccontextmanager
async def fake_freqtrade(user: str, password: str) -> AsyncIterator[tuple[str, list[str]]]:
    """A server answering /api/v1/ping and /api/v1/health as freqtrade's REST API does;
    yields its base URL and the paths it was asked, with `+auth` when the credentials were
    right."""
    asked: list[str] = []
    good = aiohttp.encode_basic_auth(user, password)

    async def ping(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.json_response({"status": "pong"})

    async def health(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != good:
            asked.append(request.path)
            return web.json_response({"detail": "Unauthorized"}, status=401)
        asked.append(request.path + "+auth")
        now = time.time()
        return web.json_response(
            {"last_process": "now", "last_process_ts": int(now), "bot_start_ts": int(now) - 60}
        )

    app = web.Application()
    app.router.add_get("/api/v1/ping", ping)
    app.router.add_get("/api/v1/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    finally:
        await runner.cleanup()


async def test_the_freqtrade_poller_hears_a_running_bot(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    api = _api_server()
    async with fake_freqtrade(api["username"], api["password"]) as (url, asked):
        example_url = f"http://{api['listen_ip_address']}:{api['listen_port']}"
        line = for_test(
            snippet("freqtrade.md", "poll"),
            replace={example_url: url, "interval=30s": "interval=5s"},
        )
        relay = await start_relay(redis_server.url, *_serve_flags(line))
        client = await watch(relay)
        envelope = await _envelope(client, *_from("ft1", "poll"))
    assert envelope["data"]["type"] == "pong"
    assert isinstance(envelope["data"]["latency"], int | float)
    assert "/api/v1/ping" in asked
    assert "/api/v1/health+auth" in asked
    assert "status" not in envelope["data"]  # up: its last process is a second old


async def test_the_octobot_poller_hears_its_web_interface(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    async def home(request: web.Request) -> web.Response:
        return web.Response(text="<html>OctoBot</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        line = for_test(
            snippet("octobot.md", "poll"),
            replace={"http://127.0.0.1:5001": url, "interval=30s": "interval=5s"},
        )
        relay = await start_relay(redis_server.url, *_serve_flags(line))
        client = await watch(relay)
        envelope = await _envelope(client, *_from("octobot", "poll"))
    finally:
        await runner.cleanup()
    assert envelope["data"]["type"] == "pong"


# --- Hummingbot --------------------------------------------------------------------------


async def test_a_hummingbot_heartbeat_reaches_a_client_through_mqtt(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    assert shutil.which("mosquitto_pub"), "mosquitto_pub is missing (apt install mosquitto-clients)"
    instance = f"docs-{uuid.uuid4().hex[:10]}"  # the broker at 1883 is shared
    flags = _serve_flags(snippet("hummingbot.md", "relay"))
    # Its own share group, so that no other relay on the shared broker takes the heartbeats.
    relay = await start_relay(redis_server.url, *flags, "--mqtt-share-group", instance)
    client = await watch(relay)
    publish = for_test(snippet("hummingbot.md", "heartbeat"), replace={"my-hbot-1": instance})

    async def keep_publishing() -> None:
        # Until the relay has subscribed, a heartbeat reaches no one: send one a second,
        # as Hummingbot sends one every 10 s.
        while True:
            assert (await _run(["sh", "-c", publish]))[0] == 0
            await asyncio.sleep(1)

    publisher = asyncio.create_task(keep_publishing())
    try:
        envelope = await _envelope(client, *_from(instance, "mqtt"))
    finally:
        publisher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publisher
    assert envelope["data"]["type"] == "pong"


# --- Jesse -------------------------------------------------------------------------------


async def test_the_jesse_helper_pushes_once_per_period_and_not_in_backtests(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    relay = await start_relay(redis_server.url, "--push-token", f"{EXAMPLE_TOKEN}=jesse-btc")
    client = await watch(relay)
    (export,) = [line for line in snippet("jesse.md", "env").splitlines() if "export" in line]
    name, _, value = shlex.split(export)[1].partition("=")
    assert name == "RELAY_PUSH_URL"
    # The strategy's hook on three candles in a row, then the push threads finishing.
    candles = (
        snippet("jesse.md", "helper")
        + "for _ in range(3):\n    heartbeat()\n"
        + "for thread in threading.enumerate():\n"
        + "    if thread is not threading.main_thread():\n        thread.join(10)\n"
    )
    backtest = await _run([sys.executable, "-c", candles], env={name: ""})
    assert backtest == (0, "")
    live = await _run(
        [sys.executable, "-c", candles], env={name: for_test(value, relay=relay.http_url)}
    )
    assert live == (0, "")
    envelope = await _envelope(client, *_from("jesse-btc", "push"))
    assert envelope["data"]["type"] == "pong"
    assert await relay.metric('pingpong_ingest_accepted_total{via="push"}') == 1.0


# --- your own bots -----------------------------------------------------------------------


async def test_the_python_bots_publish_and_report_a_problem(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    relay = await start_relay(redis_server.url)
    client = await watch(relay)
    for name in ("publisher", "redis-py"):
        code = for_test(snippet("python.md", name), redis=redis_server.url)
        seen = len(client.messages)  # this snippet's heartbeat, not the one before
        async with running([sys.executable, "-c", code]):
            envelope = await _envelope(client, *_from("my-bot", None), after=seen)
        assert envelope["data"]["type"] == "ping", name
        assert isinstance(envelope["data"]["latency"], int | float), name
        assert abs(envelope["data"]["timestamp"] - envelope["timestamp"]) < 60_000, name

    down = for_test(snippet("python.md", "down"), redis=redis_server.url)
    assert await _run([sys.executable, "-c", down]) == (0, "")
    status = await _status(client, "bot:pingpong/my-bot", "down")
    assert status["reason"].endswith("reported down: exchange API answers 503")


async def test_the_node_bot_on_the_page_is_the_example_and_publishes(
    redis_server: RedisServer, start_relay: RelayFactory, watch: Any
) -> None:
    bot = NODE_BOT / "bot.js"
    assert snippet("node.md", "bot") == bot.read_text(encoding="utf-8")
    assert (NODE_BOT / "node_modules" / "redis").is_dir(), (
        "examples/node-bot has no node_modules: `make pytest` runs npm ci there"
    )
    relay = await start_relay(redis_server.url)
    client = await watch(relay)
    command = for_test(snippet("node.md", "run"), redis=redis_server.url)
    async with running(["sh", "-c", command], cwd=NODE_BOT):
        envelope = await _envelope(client, *_from("node-bot", None))
    data = envelope["data"]
    assert data["type"] == "ping"
    assert isinstance(data["latency"], int | float)
    assert abs(data["timestamp"] - envelope["timestamp"]) < 60_000
