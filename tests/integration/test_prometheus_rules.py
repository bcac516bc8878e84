"""deploy/prometheus: promtool checks the rules and runs their unit tests; every metric a
rule reads exists on a live relay; every alert has a runbook section in docs/alerts.md."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from harness.processes import ROOT
from tests.integration.prometheus_support import (
    RULES,
    RULES_TEST,
    exposed_names,
    promtool,
    start_busy_relay,
)
from tests.support import FakeFreqtrade, RedisServer, RelayFactory
from tests.unit.test_docs import anchor

RUNBOOK = ROOT / "docs" / "alerts.md"
# Metric names in expressions; recording rules' names (level:metric:operations) excluded.
METRIC_NAME = re.compile(r"(?<![:\w])pingpong_[a-z_]+(?![:\w])")


@pytest.fixture
async def freqtrade() -> AsyncIterator[FakeFreqtrade]:
    async with FakeFreqtrade() as server:
        yield server


def _alerts() -> list[tuple[str, str]]:
    """(alert name, runbook_url) of each alerting rule, in file order."""
    text = RULES.read_text()
    names = re.findall(r"^\s+- alert: (\S+)$", text, re.MULTILINE)
    runbooks = re.findall(r'^\s+runbook_url: "([^"]+)"$', text, re.MULTILINE)
    assert len(names) == len(runbooks) > 10
    return list(zip(names, runbooks, strict=True))


def test_promtool_finds_the_rules_valid() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_rules_unit_tests_pass_and_test_every_alert() -> None:
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
    tests = RULES_TEST.read_text()
    for name, _ in _alerts():
        # Each alert both fires (exp_alerts) and stays quiet somewhere in the tests.
        cases = re.findall(rf"alertname: {name}\n(\s+exp_alerts:)?", tests)
        assert {bool(firing) for firing in cases} == {True, False}, name


def test_every_alert_links_its_runbook_section() -> None:
    doc = RUNBOOK.read_text()
    anchors = {anchor(heading) for heading in re.findall(r"^#+ (.+)$", doc, re.MULTILINE)}
    for name, url in _alerts():
        assert url == f"docs/alerts.md#{name.lower()}", (name, url)
        assert name.lower() in anchors, f"docs/alerts.md has no section {name}"


async def test_every_metric_the_rules_read_is_exported_by_a_relay(
    redis_server: RedisServer, start_relay: RelayFactory, freqtrade: FakeFreqtrade
) -> None:
    exposition = await start_busy_relay(redis_server, start_relay, freqtrade)
    exported = exposed_names(exposition.text)
    expressions = "\n".join(
        re.findall(r"^\s+expr: (.*(?:\n\s{10,}.*)*)", RULES.read_text(), re.MULTILINE)
    )
    used = set(METRIC_NAME.findall(expressions))
    assert {"pingpong_deliveries_total", "pingpong_mqtt_connected"} <= used
    assert not used - exported, f"not exported by a relay: {sorted(used - exported)}"
