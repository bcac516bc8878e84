"""Fixtures of the webhook tests: a live endpoint, a refusing port, the failure log, and
senders stopped after each test."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from pingpong_relay.notify.webhooks import WebhookSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.webhooks.support import (
    FAST_BACKOFF,
    WAIT_S,
    FailureLog,
    HookServer,
    SenderFactory,
)
from tests.support import attached, refused_socket


@pytest.fixture
async def server() -> AsyncIterator[HookServer]:
    async with HookServer.serving() as hooks:
        yield hooks


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback port that is bound but not listening: every connection is refused."""
    with refused_socket() as sock:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


@pytest.fixture
def failures() -> Iterator[FailureLog]:
    with attached(FailureLog(), "pingpong_relay.webhooks", logging.WARNING) as handler:
        yield handler


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


@pytest.fixture
async def make_sender(server: HookServer, metrics: RelayMetrics) -> AsyncIterator[SenderFactory]:
    """make_sender(urls, **options) -> a WebhookSender with a fast backoff, stopped afterwards."""
    made: list[WebhookSender] = []

    def make(urls: list[str], **options: Any) -> WebhookSender:
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("timeout_s", 5.0)
        sender = WebhookSender(urls, metrics, **options)
        made.append(sender)
        return sender

    try:
        yield make
    finally:
        for sender in made:
            await asyncio.wait_for(sender.stop(drain_timeout_s=0), WAIT_S)
