"""A Python client for pingpong-relay: prints every bot ping/pong the relay broadcasts.

    python examples/python_client.py [ws://HOST:2808/] [--count N]

`pingpong_relay.client.envelopes` does the WebSocket work (aiohttp underneath): it yields each
message the relay sends, already parsed, and reconnects with backoff when the connection drops,
asking for what it missed meanwhile (a relay with history replays it, each message once).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pingpong_relay.client import envelopes

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_time(ms: object) -> str:
    """Milliseconds since the epoch as ISO-8601 UTC, as JavaScript's toISOString() writes it."""
    if isinstance(ms, bool) or not isinstance(ms, int | float):
        return "N/A"
    try:
        moment = EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return "N/A"
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def latency_text(latency: object) -> str:
    if isinstance(latency, bool) or not isinstance(latency, int | float):
        return "N/A"
    # 7.0 and 7 are the same latency; print it as JavaScript would.
    return f"{int(latency)} ms" if float(latency).is_integer() else f"{latency} ms"


def describe(envelope: dict[str, Any]) -> str | None:
    """One line for a heartbeat, or None for anything that is not one."""
    data = envelope.get("data")
    if envelope.get("type") != "bot:pingpong" or not isinstance(data, dict):
        return None
    kind = str(data.get("type")).upper()
    return (
        f"{kind} from bot: latency {latency_text(data.get('latency'))}, "
        f"bot time {iso_time(data.get('timestamp'))}, "
        f"relay time {iso_time(envelope.get('timestamp'))}"
    )


async def watch(url: str, count: int) -> None:
    received = 0
    print(f"connecting to {url}", flush=True)
    async for envelope in envelopes(url):
        line = describe(envelope)
        if line is None:
            continue
        print(line, flush=True)
        received += 1
        if count and received >= count:
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "url",
        nargs="?",
        default=os.environ.get("RELAY_URL", "ws://localhost:2808/"),
        help="relay URL (default: $RELAY_URL or ws://localhost:2808/)",
    )
    parser.add_argument("--count", type=int, default=0, help="exit after N heartbeats")
    args = parser.parse_args()
    # The client library reports lost connections and reconnects through logging.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch(args.url, args.count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
