"""The client library (clients/js) in real Chromium: the browser build the dashboard loads
(the global PingpongRelayClient), over the browser's own WebSocket, against real relays.

The dashboard's tests exercise it through the page; this one drives it directly, as a page
of an integrator's would: server-side filters, a live subscribe, and a relay restarted
while bots publish (another relay on the same Redis records the history meanwhile), after
which the client resumes with every message once and in order.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from tests.browser.conftest import OpenDashboard
from tests.browser.dashboard_support import RELAY_DOWN_NOISE, assert_clean, beat, history_count
from tests.support import RedisServer, RelayFactory, RelayProcess

A = "bot:pingpong/chromium-a"
B = "bot:pingpong/chromium-b"

START_CLIENT = """([url, bot]) => {
  const { RelayClient } = window.PingpongRelayClient;
  const seen = { messages: [], opens: 0, closes: [] };
  const client = new RelayClient(url, { bots: [bot], backoff: { initialMs: 100, maxMs: 500 } });
  client.on('message', (e) =>
    seen.messages.push({ bot: e.bot, latency: e.data.latency, id: e.id }));
  client.on('open', () => { seen.opens += 1; });
  client.on('close', (e) => seen.closes.push(e.retryInMs));
  window.testClient = client;
  window.seen = seen;
}"""


async def seen(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("() => window.seen")
    return result


async def until(page: Page, condition: str) -> None:
    """Waits until `condition` (JavaScript over `seen`) holds in the page."""
    try:
        await page.wait_for_function(f"() => {{ const seen = window.seen; return {condition}; }}")
    except Exception:
        raise AssertionError(f"never {condition}: {await seen(page)}") from None


async def test_the_browser_build_filters_subscribes_and_resumes_after_a_restart(
    redis_server: RedisServer, start_relay: RelayFactory, open_dashboard: OpenDashboard
) -> None:
    recorder = await start_relay(redis_server.url)  # keeps the history while the other is down
    relay = RelayProcess(redis_server.url)
    restarted: RelayProcess | None = None
    try:
        await relay.start()
        dashboard = await open_dashboard(relay.http_url)
        page = dashboard.page
        await page.evaluate(START_CLIENT, [relay.ws_url, A])
        await until(page, "seen.opens === 1")

        # The relay filters: B is not asked for.
        for source, latency in (("chromium-a", 1), ("chromium-b", 90), ("chromium-a", 2)):
            await redis_server.publish(beat(source, latency=latency))
        await until(page, "seen.messages.length === 2")

        # A live subscribe widens it on the open connection, and the next connection too.
        ack = await page.evaluate(
            "(bots) => window.testClient.subscribe({ bots }).then((ack) => ack.subscription.bots)",
            [A, B],
        )
        assert sorted(ack) == [A, B]
        await redis_server.publish(beat("chromium-b", latency=3))
        await until(page, "seen.messages.length === 3")

        # Down: what is published meanwhile only the other relay's history holds.
        await relay.stop()
        await until(page, "seen.closes.length >= 1")
        for source, latency in (("chromium-a", 4), ("chromium-b", 5), ("chromium-a", 6)):
            await redis_server.publish(beat(source, latency=latency))
        await history_count(recorder, A, 4)
        await history_count(recorder, B, 2)
        restarted = RelayProcess(redis_server.url, port=relay.port, http_port=relay.http_port)
        await restarted.start()
        await until(page, "seen.opens === 2")
        await redis_server.publish(beat("chromium-a", latency=7))
        await until(page, "seen.messages.some((m) => m.latency === 7)")

        state = await seen(page)
        assert [(m["bot"], m["latency"]) for m in state["messages"]] == [
            (A, 1), (A, 2), (B, 3), (A, 4), (B, 5), (A, 6), (A, 7),
        ]  # fmt: skip
        for bot in (A, B):  # each bot's history has ids of its own
            mine = [m["id"] for m in state["messages"] if m["bot"] == bot]
            ids = [tuple(map(int, found.split("-"))) for found in mine]
            assert ids == sorted(set(ids)), f"{bot}: ids in the relay's order, none twice"
        assert all(delay is not None for delay in state["closes"]), "it retried"
        assert_clean(dashboard, *RELAY_DOWN_NOISE)
    finally:
        for process in (relay, restarted):
            if process is not None:
                await process.stop()
