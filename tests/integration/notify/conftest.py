"""Fixtures of the notification-channel tests: an HTTP receiver for json://, an SMTP server
for mailto://, a refusing port, the sender's log, and senders stopped after each test."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from pingpong_relay.notify.channels import NotificationSender
from pingpong_relay.telemetry.metrics import RelayMetrics
from tests.integration.notify.support import (
    FAST_BACKOFF,
    WAIT_S,
    EventLog,
    SenderFactory,
    SmtpServer,
)
from tests.integration.webhooks.support import HookServer
from tests.support import attached, refused_socket


@pytest.fixture
async def receiver() -> AsyncIterator[HookServer]:
    """A real HTTP server recording what Apprise's json:// POSTs (/ok/…, /status/…, /slow/…)."""
    async with HookServer.serving() as hooks:
        yield hooks


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def refused_port() -> Iterator[socket.socket]:
    """A loopback port that is bound but not listening: every connection is refused."""
    with refused_socket() as sock:
        yield sock


@pytest.fixture
def sender_log() -> Iterator[EventLog]:
    with attached(EventLog(), "pingpong_relay.notify", logging.DEBUG) as handler:
        yield handler


@pytest.fixture
def metrics() -> RelayMetrics:
    return RelayMetrics()


@pytest.fixture
async def make_sender(receiver: HookServer, metrics: RelayMetrics) -> AsyncIterator[SenderFactory]:
    """make_sender(channels, **options) -> a started NotificationSender with a short
    group wait and a fast backoff, stopped afterwards."""
    made: list[NotificationSender] = []

    def make(channels: list[str], **options: Any) -> NotificationSender:
        options.setdefault("backoff", FAST_BACKOFF)
        options.setdefault("group_wait_s", 0.2)
        options.setdefault("group_interval_s", 0.5)
        options.setdefault("timeout_s", 5.0)
        sender = NotificationSender(channels, metrics, **options)
        made.append(sender)
        sender.start()
        return sender

    try:
        yield make
    finally:
        for sender in made:
            await asyncio.wait_for(sender.stop(drain_timeout_s=0), WAIT_S)
