"""Fixtures of the ingestion tests: a stand-in for freqtrade's REST API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support import FakeFreqtrade


@pytest.fixture
async def freqtrade() -> AsyncIterator[FakeFreqtrade]:
    """A healthy FakeFreqtrade (user freqtrader, password p@ss:w/rd%), stopped afterwards."""
    async with FakeFreqtrade(password="p@ss:w/rd%") as server:
        yield server
