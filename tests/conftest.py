"""Fixtures: every integration test gets its own redis-server and relay processes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import RedisServer, RelayFactory, RelayProcess, WebhookReceiver, http_server


@pytest.fixture
async def redis_server() -> AsyncIterator[RedisServer]:
    server = RedisServer()
    await server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def start_relay() -> AsyncIterator[RelayFactory]:
    """start_relay(redis_url, *flags, wait_subscribed=True) -> a running RelayProcess."""
    started: list[RelayProcess] = []

    async def start(
        redis_url: str | None,
        *args: str,
        wait_subscribed: bool = True,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> RelayProcess:
        relay = RelayProcess(redis_url, *args, env=env, port=port)
        started.append(relay)
        await relay.start(wait_subscribed=wait_subscribed)
        return relay

    try:
        yield start
    finally:
        for relay in started:
            await relay.stop()


@pytest.fixture
async def relay(redis_server: RedisServer, start_relay: RelayFactory) -> RelayProcess:
    # The design's stage lines at INFO: what many tests wait on (a relay started with no
    # flag logs them at DEBUG only).
    return await start_relay(redis_server.url, "--log-stages")


@pytest.fixture
async def webhook() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    async with http_server("/hook", receiver.handle, receiver.port):
        yield receiver
