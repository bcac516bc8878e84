"""Merging workers' /metrics and /healthz into the relay's: what is summed, what is not."""

from __future__ import annotations

import platform

from prometheus_client.parser import text_string_to_metric_families

from pingpong_relay import __version__
from pingpong_relay.cluster.aggregate import merge_health, merge_metrics
from pingpong_relay.telemetry.metrics import RelayMetrics


def _worker(clients: int, received: int, deliveries: int, subscribed: bool) -> str:
    metrics = RelayMetrics()
    metrics.clients_connected.set(clients)
    metrics.connections_total.inc(clients)
    metrics.messages_received.inc(received)
    metrics.deliveries.inc(deliveries)
    metrics.redis_subscribed.set(1 if subscribed else 0)
    metrics.bot_up.labels("bot:pingpong/a").set(1)
    metrics.bot_latency.labels("bot:pingpong/a").observe(0.02)
    metrics.messages_rejected.labels("bad_type").inc(received // 10)
    return metrics.render().decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_per_client_counts_add_up_and_per_message_counts_are_taken_once() -> None:
    merged = _samples(merge_metrics([_worker(3, 50, 150, True), _worker(5, 50, 250, True)]))
    assert merged[("pingpong_clients_connected", ())] == 8
    assert merged[("pingpong_connections_total", ())] == 8
    assert merged[("pingpong_deliveries_total", ())] == 400
    # Both workers received the same 50 messages from their own subscriptions.
    assert merged[("pingpong_messages_received_total", ())] == 50
    assert merged[("pingpong_messages_rejected_total", (("reason", "bad_type"),))] == 5
    assert merged[("pingpong_bot_up", (("bot", "bot:pingpong/a"),))] == 1
    assert merged[("pingpong_bot_latency_seconds_count", (("bot", "bot:pingpong/a"),))] == 1
    assert merged[("pingpong_redis_subscribed", ())] == 1


def test_a_restarted_worker_counting_from_zero_does_not_lower_the_totals() -> None:
    merged = _samples(merge_metrics([_worker(3, 50, 150, True), _worker(0, 2, 0, True)]))
    assert merged[("pingpong_messages_received_total", ())] == 50


def test_redis_is_subscribed_only_if_every_worker_is() -> None:
    merged = _samples(merge_metrics([_worker(1, 1, 1, True), _worker(1, 1, 1, False)]))
    assert merged[("pingpong_redis_subscribed", ())] == 0


def test_the_merged_text_is_what_prometheus_reads_back_with_types_and_help() -> None:
    text = merge_metrics([_worker(1, 1, 1, True)])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["pingpong_deliveries"].type == "counter"
    assert families["pingpong_bot_latency_seconds"].type == "histogram"
    assert "# TYPE pingpong_deliveries_total counter" in text
    assert families["pingpong_clients_connected"].documentation


def _health(status: str, clients: int, pid: int) -> dict[str, object]:
    return {
        "status": status,
        "redis": "subscribed" if status == "ok" else "disconnected",
        "clients": clients,
        "channels": ["bot:pingpong"],
        "uptime_s": 3.0,
        "version": "0.1.0",
        "pid": pid,
    }


def test_healthy_only_when_every_expected_worker_answers_ok() -> None:
    ok, body = merge_health(2, [(1, _health("ok", 4, 11)), (0, _health("ok", 3, 10))])
    assert ok
    assert body["clients"] == 7
    assert [w["worker"] for w in body["workers"]] == [0, 1]
    ok, body = merge_health(2, [(0, _health("ok", 3, 10)), (1, None)])
    assert not ok
    assert body["reason"] == "1 of 2 workers not ok"
    ok, body = merge_health(2, [(0, _health("ok", 3, 10)), (1, _health("unavailable", 0, 11))])
    assert not ok
    assert body["redis"] == "disconnected"


def test_mqtt_is_subscribed_only_when_every_worker_is_and_never_decides_ok() -> None:
    broker = {"mqtt_broker": "mqtt://u:***@b:1883"}
    up = {**_health("ok", 1, 10), "mqtt": "subscribed", **broker}
    down = {**_health("ok", 1, 11), "mqtt": "disconnected", **broker}
    ok, body = merge_health(2, [(0, up), (1, down)])
    assert ok
    assert (body["mqtt"], body["mqtt_broker"]) == ("disconnected", "mqtt://u:***@b:1883")
    assert [w["mqtt"] for w in body["workers"]] == ["subscribed", "disconnected"]
    _, body = merge_health(2, [(0, up), (1, {**down, "mqtt": "subscribed"})])
    assert body["mqtt"] == "subscribed"
    _, body = merge_health(2, [(0, _health("ok", 1, 10)), (1, _health("ok", 1, 11))])
    assert "mqtt" not in body


def test_the_build_info_appears_once_with_value_one_however_many_workers() -> None:
    merged = _samples(merge_metrics([_worker(1, 1, 1, True) for _ in range(3)]))
    info = [(labels, value) for (name, labels), value in merged.items() if name.endswith("_info")]
    assert len(info) == 1
    labels, value = info[0]
    assert value == 1
    assert dict(labels)["version"] == __version__
    assert dict(labels)["python"] == platform.python_version()


def test_mqtt_metrics_exist_only_with_a_broker_and_merge_like_the_redis_subscription() -> None:
    assert "pingpong_mqtt" not in RelayMetrics().render().decode()
    texts = []
    for connected in (1, 0):
        metrics = RelayMetrics(mqtt=True)
        metrics.mqtt_connected.set(connected)
        texts.append(metrics.render().decode())
    assert _samples(merge_metrics(texts))[("pingpong_mqtt_connected", ())] == 0
    assert _samples(merge_metrics([texts[0], texts[0]]))[("pingpong_mqtt_connected", ())] == 1
