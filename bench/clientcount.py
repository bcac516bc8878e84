"""How many clients a relay holds, and what became of one: from /healthz, else from its log."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from harness.relay import RelayProcess


def logged_clients(relay: RelayProcess) -> int | None:
    """The relay's client count as its last connect/disconnect log line gives it."""
    for record in reversed(relay.records):
        if record.get("event") in ("client_connected", "client_disconnected"):
            return int(record["clients"])
    return None


def client_fate(relay: RelayProcess, remote: str) -> dict[str, Any] | None:
    """What the relay logged about the client connected from `remote` ("ip:port"): its
    id, and when and why it was disconnected (None while connected)."""
    client = None
    for record in relay.records:
        event = record.get("event")
        if event == "client_connected" and record.get("remote") == remote:
            client = record.get("client")
        elif event == "client_disconnected" and client and record.get("client") == client:
            return {"client": client, "why": record.get("why"), "time": record.get("time")}
    return None if client is None else {"client": client, "why": None}


async def client_count(relay: RelayProcess) -> tuple[int | None, str]:
    """How many clients the relay holds, and where that came from: "/healthz", or its
    log when the HTTP plane does not answer (a relay out of file descriptors cannot
    accept the connection)."""
    try:
        return int((await relay.health())["clients"]), "/healthz"
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        return logged_clients(relay), "log"


async def settle_clients(
    relay: RelayProcess, expected: int, timeout_s: float
) -> tuple[int | None, str]:
    """Waits until the relay holds `expected` clients, or its count stops changing for
    3 s, or `timeout_s`; returns the last count and its source. Never raises for a
    count that falls short: the caller reports it."""
    deadline = time.monotonic() + timeout_s
    last: int | None = None
    source = "?"
    changed = time.monotonic()
    while time.monotonic() < deadline:
        count, source = await client_count(relay)
        if count == expected:
            return count, source
        if count != last:
            last, changed = count, time.monotonic()
        elif time.monotonic() - changed > 3.0:
            break
        await asyncio.sleep(0.1)  # the relay's count, polled: bounded by the deadline
    return last, source
