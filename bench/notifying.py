"""The notification load of `bench.run`: --notify channels to a local receiver, flapping bots.

The issue's figure is the p99 at 1,000 clients x 20 msg/s with 3 channels configured and
50 bots flapping, against the same run without channels: `--notify-channels 3` adds
three json:// channels (to a receiver in the harness that answers 204 and counts) to
every relay, and `--flapping-bots 50` runs bench.flapping in a process of its own for the
whole run. Run once with both and once with --flapping-bots alone, and compare. With
flapping bots the scenario table's clients connect with ?bots= for the measured bot only
(the relay still fans out, tracks and alerts on every bot); the other parts do not filter,
so run them with --no-throughput --no-filters --no-idle --no-burst --no-slow.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass

from aiohttp import web

from harness.processes import Children
from harness.web import http_server
from pingpong_relay.parsing import positive_int

__all__ = ["NotificationLoad", "add_flags", "start_notification_load"]


def _count(text: str) -> int:
    return 0 if text.strip() == "0" else positive_int(text)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """--notify-channels and --flapping-bots."""
    parser.add_argument(
        "--notify-channels",
        type=_count,
        default=0,
        help="json:// --notify channels every relay sends to (a local receiver that counts)",
    )
    parser.add_argument(
        "--flapping-bots",
        type=_count,
        default=0,
        help="bots that publish 3 s, fall silent 3 s, and again, for the whole run "
        "(give the relays a short silence, e.g. --relay-args '--silence-timeout 1 "
        "--silence-for 0', so each silence fires an alert)",
    )


@dataclass(slots=True)
class NotificationLoad:
    """What the receiver got: POSTs from the relays' channels."""

    received: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        """The receiver: reads the notification, counts it, answers 204."""
        await request.read()
        self.received += 1
        return web.Response(status=204)


async def start_notification_load(
    args: argparse.Namespace, children: Children, redis_url: str, stack: AsyncExitStack
) -> NotificationLoad:
    """Starts the receiver (adding a --notify per channel to args.relay_args) and the
    flapping bots' process, each stopped by `stack`."""
    load = NotificationLoad()
    if args.notify_channels:
        port = await stack.enter_async_context(http_server("/{tail:.*}", load.handle))
        for n in range(1, args.notify_channels + 1):
            args.relay_args += ["--notify", f"json://127.0.0.1:{port}/channel-{n}"]
    if args.flapping_bots:
        process = await children.spawn(
            sys.executable, "-m", "bench.flapping", redis_url, "--bots", str(args.flapping_bots)
        )
        stack.push_async_callback(children.stop, process, 2.0)
    return load
