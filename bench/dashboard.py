"""`python -m bench.dashboard`: how long a published heartbeat takes to show on the dashboard.

Starts Redis and a relay, opens the dashboard in headless Chromium (Debian's, through
Playwright), then publishes `--messages` heartbeats `--interval` apart, each with a latency
value of its own, and times PUBLISH → the bot tile showing that latency (a MutationObserver
in the page stamps the moment the text changes; both clocks are this machine's). Prints a
Markdown table of several runs and their medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis
from playwright.async_api import Page, async_playwright

from harness import chromium
from harness.processes import Children, HarnessError
from harness.redis_server import RedisServer

from .common import bench_relay
from .runner import run_harness
from .tables import table

BOT = "bot:pingpong/bench"
# Records, in the page, when the tile's latency text last changed (ms since the epoch).
WATCH_LATENCY = """
(bot) => {
  window.__changes = [];
  const observe = () => {
    const cell = document.querySelector(`[data-bot="${bot}"] [data-field="latency"]`);
    if (!cell) { requestAnimationFrame(observe); return; }
    new MutationObserver(() => window.__changes.push(
      [cell.textContent, performance.timeOrigin + performance.now()]
    )).observe(cell, {childList: true, characterData: true, subtree: true});
  };
  observe();
}
"""


def _beat(latency: float) -> bytes:
    return orjson.dumps(
        {
            "type": "ping",
            "latency": latency,
            "timestamp": int(time.time() * 1000),
            "source": "bench",
        }
    )


async def _watch(
    page: Page, publisher: aioredis.Redis, messages: int, interval_s: float
) -> tuple[dict[str, float], list[list[Any]]]:
    """Publishes the heartbeats; when each was sent (by its latency text), and the page's
    changes of the tile's latency cell (text, when)."""
    await page.wait_for_selector('#connection[data-state="open"]', timeout=15_000)
    # The first message creates the tile; then watch its latency cell.
    await publisher.publish("bot:pingpong", _beat(0.5))
    await page.wait_for_selector(f'[data-bot="{BOT}"]', timeout=15_000)
    await page.evaluate(WATCH_LATENCY, BOT)
    sent: dict[str, float] = {}
    for n in range(1, messages + 1):
        latency = 1000 + n  # unique, so each change names its message
        sent[str(latency)] = time.time() * 1000
        await publisher.publish("bot:pingpong", _beat(latency))
        await asyncio.sleep(interval_s)
    await page.wait_for_function(
        f"window.__changes.some(([text]) => text.includes('{1000 + messages}'))",
        timeout=15_000,
    )
    changes: list[list[Any]] = await page.evaluate("window.__changes")
    return sent, changes


async def _one_run(
    children: Children, run_dir: Path, run: int, messages: int, interval_s: float
) -> list[float]:
    """One relay and one page: each heartbeat's publish → shown delay, ms."""
    problem = chromium.missing()
    if problem:
        raise HarnessError(problem)
    redis_server = RedisServer()
    await redis_server.start()
    relay = bench_relay(children, redis_server.url, run_dir / f"relay-{run}.log")
    publisher = aioredis.from_url(redis_server.url)
    try:
        await relay.start()
        async with async_playwright() as playwright:
            browser = await chromium.launch(playwright)
            page = await browser.new_page()
            await page.goto(relay.http_url + "/")
            sent, changes = await _watch(page, publisher, messages, interval_s)
            await browser.close()
    finally:
        await publisher.aclose()
        await relay.stop()
        redis_server.stop()
    shown: dict[str, float] = {}
    for text, at_ms in changes:
        for latency in sent:
            if latency in text and latency not in shown:
                shown[latency] = at_ms
    if len(shown) < messages * 0.9:
        raise HarnessError(f"only {len(shown)} of {messages} heartbeats were seen on the page")
    return [shown[k] - sent[k] for k in shown]


async def _main(children: Children, run_dir: Path, args: argparse.Namespace) -> str:
    rows = []
    medians: list[float] = []
    for run in range(args.repeat):
        delays = sorted(await _one_run(children, run_dir, run, args.messages, args.interval))
        p95 = delays[min(len(delays) - 1, int(len(delays) * 0.95))]
        medians.append(statistics.median(delays))
        rows.append(
            [
                str(run + 1),
                str(len(delays)),
                f"{statistics.median(delays):.1f}",
                f"{p95:.1f}",
                f"{delays[-1]:.1f}",
            ]
        )
    return "\n".join(
        [
            "Publish → shown on the dashboard (ms), headless Chromium, "
            f"{args.messages} heartbeats {args.interval * 1000:.0f} ms apart per run",
            "",
            *table(["run", "seen", "median", "p95", "max"], rows),
            "",
            f"Median of run medians: {statistics.median(medians):.1f} ms",
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the dashboard benchmark and prints its table; the exit code."""
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--messages", type=int, default=30, help="heartbeats per run")
    parser.add_argument(
        "--interval",
        type=float,
        default=0.4,
        help="seconds between them (above the page's 250 ms redraw, so each one shows)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs (each with a new relay)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the run directory")
    args = parser.parse_args(argv)
    code, report = run_harness(
        "bench.dashboard", lambda c, d: _main(c, d, args), keep_logs=args.keep_logs
    )
    if report:
        print(report)
    return code


if __name__ == "__main__":
    sys.exit(main())
