"""The shared harness itself: what the tests rely on it for."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import harness.relay
from harness.processes import free_port
from harness.relay import RelayProcess
from tests.support import RedisServer


async def test_a_relay_that_loses_its_port_to_another_process_starts_on_fresh_ones(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = free_port()
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", taken)
    handed: list[int] = []
    ports: Iterator[int] = iter([taken])

    def first_taken() -> int:
        port = next(ports, None) or free_port()
        handed.append(port)
        return port

    monkeypatch.setattr(harness.relay, "free_port", first_taken)
    relay = RelayProcess(redis_server.url)
    try:
        assert relay.port == taken  # as another process would have taken it meanwhile
        await relay.start()
        assert relay.port != taken
        assert len(handed) == 4  # two ports, then two fresh ones
        assert relay.events("listening")
    finally:
        blocker.close()
        await relay.stop()
