"""Run inside a fresh network namespace (nothing on 127.0.0.1:6379): the embedded-Redis checks.

Prints one JSON object with what it observed; test_lifecycle.py asserts on it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import orjson

from tests.support import DESIGN_PING, Collector, RelayProcess, publish


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it holds no port, so it counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


async def _wait_gone(pid: int) -> bool:
    for _ in range(200):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.025)
    return False


async def scenario() -> dict[str, Any]:
    result: dict[str, Any] = {}
    relay = RelayProcess(None)  # no --redis-url: the embedded default applies
    await relay.start()
    started = relay.events("embedded_redis_started")[0]
    result["redis_url"] = started["redis_url"]
    result["embedded_pid"] = started["pid"]
    client = Collector()
    await client.connect(relay.ws_url)
    await relay.wait_for("client_connected")
    result["receivers"] = await publish(started["redis_url"], DESIGN_PING)
    [envelope] = await client.wait_count(1)
    result["envelope"] = envelope
    relay.signal(signal.SIGTERM)
    result["exit_code"] = await relay.wait_exit()
    result["embedded_gone_after_sigterm"] = await _wait_gone(started["pid"])
    await client.close()

    # SIGKILL gives the relay no chance to clean up: the kernel's parent-death signal must.
    relay = RelayProcess(None)
    await relay.start()
    pid = relay.events("embedded_redis_started")[0]["pid"]
    relay.signal(signal.SIGKILL)
    await relay.wait_exit()
    result["embedded_gone_after_sigkill"] = await _wait_gone(pid)
    return result


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    print(orjson.dumps(asyncio.run(scenario())).decode())
    sys.stdout.flush()


if __name__ == "__main__":
    main()
