"""deploy/grafana/pingpong-relay.json as Grafana imports it: unique panel ids, a datasource
variable behind every query, the variables its queries use, and only metrics the relay
exports (what each query returns is tests/integration/test_grafana_dashboard.py's)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.grafana import expand, load_dashboard, panel_queries, panels
from pingpong_relay.telemetry.metrics import RelayMetrics

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_VARIABLES = {"__rate_interval", "__range"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_it_is_a_classic_model_grafana_imports(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["id"] is None  # Grafana assigns it on import
    assert dashboard["uid"] == "pingpong-relay"
    required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
    used = {("panel", p["type"]) for p in panels(dashboard)}
    assert used <= required
    assert ("datasource", "prometheus") in required


def test_panel_ids_are_unique_and_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_every_panel_queries_the_datasource_variable_and_says_what_it_shows(
    dashboard: dict[str, Any],
) -> None:
    for panel in panels(dashboard):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]
        assert panel["title"], panel["id"]
        assert panel["description"], panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]


def test_the_variables_pick_a_prometheus_a_relay_and_bots(dashboard: dict[str, Any]) -> None:
    variables = _variables(dashboard)
    assert set(variables) == {"datasource", "job", "instance", "bot"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("job", "instance", "bot"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert variable["definition"] == variable["query"]["query"]
        assert variable["definition"].startswith("label_values(")
    for name in ("instance", "bot"):
        assert variables[name]["multi"], name
        assert variables[name]["includeAll"], name
        assert variables[name]["allValue"] == ".*"
    assert variables["bot"]["definition"].startswith("label_values(pingpong_bot_up")


def test_queries_use_only_defined_variables(dashboard: dict[str, Any]) -> None:
    known = set(_variables(dashboard)) | GRAFANA_VARIABLES
    values = dict.fromkeys(known, "x")
    for query in panel_queries(dashboard):
        expand(query.expr, values)  # KeyError on a variable nobody defines
    for variable in _variables(dashboard).values():
        expand(
            str(variable["query"] if variable["type"] == "datasource" else variable["definition"]),
            values,
        )


def test_queries_name_only_metrics_the_relay_exports(dashboard: dict[str, Any]) -> None:
    # By family, not by sample: a labelled metric has no sample before its first label.
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    exported = {
        family.name + suffix
        for family in RelayMetrics(mqtt=True).registry.collect()
        for suffix in suffixes[family.type]
    }
    texts = [q.expr for q in panel_queries(dashboard)]
    texts += [v["definition"] for v in _variables(dashboard).values() if v["type"] == "query"]
    named = {name for text in texts for name in re.findall(r"\bpingpong_\w+", text)}
    assert named, "no metric found"
    assert named <= exported, named - exported


def test_the_issues_panels_are_there(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(q.expr for q in panel_queries(dashboard))
    for wanted in (
        "up{",
        "pingpong_redis_subscribed",
        "pingpong_clients_connected",
        "rate(pingpong_deliveries_total",
        "histogram_quantile(0.99, sum by (instance, le) (rate(pingpong_relay_latency_seconds",
        "pingpong_messages_rejected_total",
        "pingpong_redis_reconnects_total",
        "histogram_quantile(0.95, sum by (bot, le) (rate(pingpong_bot_latency_seconds",
        "pingpong_bot_up",
        "pingpong_alerts_firing",
    ):
        assert wanted in exprs, wanted
