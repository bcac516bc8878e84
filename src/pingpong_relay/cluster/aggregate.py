"""One relay's view from several workers: merged /metrics and /healthz (pure).

Every worker has its own Redis subscription, so each sees every message, while each
serves only its own clients. Merging therefore depends on what a metric counts: what
happens per client (connections, deliveries, skips) is summed; what every worker sees
alike (messages received, bot statuses, bot latency) is taken once (the maximum, which
also covers a worker that restarted and counts from zero); the Redis subscription and
the MQTT bridge are up only if they are up in every worker.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

__all__ = ["merge_health", "merge_metrics"]

# Families (names without _total/_bucket suffixes) that every worker sees alike.
SEEN_BY_EVERY_WORKER: Final = frozenset(
    {
        "pingpong_messages_received",
        "pingpong_messages_forwarded",
        "pingpong_messages_rejected",
        "pingpong_message_errors",
        "pingpong_bot_up",
        "pingpong_bot_latency_seconds",
        "pingpong_bot_last_seen_timestamp_seconds",
        "pingpong_alerts_firing",
        "pingpong_bot_messages_untracked",
        "pingpong_bot_messages_dropped",
        "pingpong_relay_build_info",  # the same program in every worker: one series, 1
    }
)
# Each worker has its own Redis subscription and MQTT bridge: up only if up in all.
UP_IN_EVERY_WORKER: Final = frozenset({"pingpong_redis_subscribed", "pingpong_mqtt_connected"})


def _key(sample: Sample) -> tuple[str, tuple[tuple[str, str], ...]]:
    return sample.name, tuple(sorted(sample.labels.items()))


def merge_metrics(texts: Sequence[str]) -> str:
    """Prometheus text exposition of several workers, merged into one (see the module)."""
    merged: dict[str, tuple[str, str, dict[Any, float]]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            name = family.name
            values = merged.setdefault(name, (family.type, family.documentation, {}))[2]
            combine: Callable[[float, float], float]
            if name in UP_IN_EVERY_WORKER or name.endswith("_created"):
                combine = min  # for *_created: when the first worker created it
            elif name in SEEN_BY_EVERY_WORKER:
                combine = max
            else:
                combine = operator.add
            for sample in family.samples:
                key = _key(sample)
                values[key] = combine(values[key], sample.value) if key in values else sample.value
    return "".join(_render(name, kind, doc, values) for name, (kind, doc, values) in merged.items())


def _render(name: str, kind: str, doc: str, values: dict[Any, float]) -> str:
    # As prometheus_client writes the text format: a counter's family is named with _total.
    family = f"{name}_total" if kind == "counter" else name
    lines = [f"# HELP {family} {_escape_help(doc)}\n", f"# TYPE {family} {kind}\n"]
    for (sample_name, labels), value in values.items():
        label_text = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
        selector = f"{sample_name}{{{label_text}}}" if labels else sample_name
        lines.append(f"{selector} {_number(value)}\n")
    return "".join(lines)


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 2**53:
        return f"{int(value)}.0"
    return repr(value)


def merge_health(
    expected: int, answers: Iterable[tuple[int, dict[str, Any] | None]]
) -> tuple[bool, dict[str, Any]]:
    """The relay's /healthz from its workers' (index, body or None if it did not answer):
    ok only when every one of the `expected` workers answered ok."""
    workers = []
    bodies = []
    for index, body in sorted(answers, key=lambda answer: answer[0]):
        if body is None:
            workers.append({"worker": index, "status": "unavailable", "reason": "not answering"})
            continue
        bodies.append(body)
        workers.append(
            {
                "worker": index,
                "status": body.get("status"),
                "redis": body.get("redis"),
                "clients": body.get("clients", 0),
                "pid": body.get("pid"),
            }
        )
    ok = len(workers) == expected and all(w["status"] == "ok" for w in workers)
    first = bodies[0] if bodies else {}
    merged: dict[str, Any] = {
        "status": "ok" if ok else "unavailable",
        "redis": next((b["redis"] for b in bodies if b.get("redis") != "subscribed"), None)
        or first.get("redis", "unknown"),
        "clients": sum(b.get("clients", 0) for b in bodies),
        "channels": first.get("channels", []),
        "uptime_s": max((b.get("uptime_s", 0.0) for b in bodies), default=0.0),
        "version": first.get("version"),
        "workers": workers,
    }
    merged.update(_merge_mqtt(bodies, workers))
    if not ok:
        down = [w for w in workers if w["status"] != "ok"]
        merged["reason"] = f"{len(down)} of {expected} workers not ok" if down else "no workers"
    return ok, merged


def _merge_mqtt(bodies: list[dict[str, Any]], workers: list[dict[str, Any]]) -> dict[str, Any]:
    """The MQTT bridge's state across workers (each has its own): subscribed only when every
    one is, shown per worker too; nothing without --mqtt-url. Never part of `ok`."""
    states = [b["mqtt"] for b in bodies if "mqtt" in b]
    if not states:
        return {}
    for worker, body in zip((w for w in workers if "pid" in w), bodies, strict=False):
        worker["mqtt"] = body.get("mqtt")
    first = next(b for b in bodies if "mqtt" in b)
    merged = {"mqtt": next((s for s in states if s != "subscribed"), "subscribed")}
    if "mqtt_broker" in first:
        merged["mqtt_broker"] = first["mqtt_broker"]
    return merged
