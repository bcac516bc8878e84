"""Alert transitions in Alertmanager's webhook format (version 4), for receivers made for it (pure).

The format is Alertmanager's `webhook_config` payload, as documented at
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config: a group of
alerts with their status, labels, annotations and times. Each alert's labels are
`alertname` (the rule), `bot` and `kind`; its fingerprint is the one Alertmanager itself
computes from those labels (Prometheus's label signature), so it is the same for every
transition of one (rule, bot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from pingpong_relay.notifications import (
    Transition,
    dashboard_link,
    describe,
)

__all__ = [
    "RECEIVER",
    "ZERO_TIME",
    "alertmanager_alert",
    "alertmanager_payload",
    "fingerprint",
    "rfc3339",
]

# Alertmanager's endsAt of an alert still firing: Go's zero time.
ZERO_TIME: Final = "0001-01-01T00:00:00Z"
RECEIVER: Final = "pingpong-relay"

# Prometheus's label signature: 64-bit FNV-1a over sorted names and values, each
# followed by the byte 0xff (prometheus/common model.LabelsToSignature).
_FNV_OFFSET: Final = 14695981039346656037
_FNV_PRIME: Final = 1099511628211
_SEPARATOR: Final = b"\xff"
_MASK: Final = (1 << 64) - 1


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 16 lower-case hex digits."""
    signature = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), _SEPARATOR, labels[name].encode(), _SEPARATOR):
            for byte in chunk:
                signature = ((signature ^ byte) * _FNV_PRIME) & _MASK
    return f"{signature:016x}"


def rfc3339(seconds: float) -> str:
    """Seconds since the epoch as RFC 3339 in UTC, to the millisecond."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def alertmanager_alert(transition: Transition, external_url: str | None = None) -> dict[str, Any]:
    """One entry of the payload's `alerts`; ValueError for a pending alert, which
    Alertmanager never sends."""
    event = transition.event
    if event.state == "pending":
        raise ValueError(f"alert {event.rule} of {event.bot} is pending: not an Alertmanager alert")
    labels = {"alertname": event.rule, "bot": event.bot, "kind": event.kind}
    annotations = {"summary": event.summary, "description": describe(transition)}
    # A resolution whose firing this relay never saw starts (and ends) when it resolved.
    unknown_s = event.since_s if event.state == "firing" else event.at_s
    starts_s = unknown_s if transition.started_s is None else transition.started_s
    return {
        "status": event.state,
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(starts_s),
        "endsAt": rfc3339(event.at_s) if event.state == "resolved" else ZERO_TIME,
        "generatorURL": dashboard_link(external_url, event.bot) if external_url else "",
        "fingerprint": fingerprint(labels),
    }


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    first, *rest = maps
    return {key: value for key, value in first.items() if all(m.get(key) == value for m in rest)}


def alertmanager_payload(
    transitions: Sequence[Transition],
    external_url: str | None = None,
    *,
    receiver: str = RECEIVER,
) -> dict[str, Any]:
    """The version 4 webhook payload of a group of (at least one) firing or resolved
    transitions: `status` is firing while any alert fires; `groupLabels` holds the rule
    (`alertname`) when every alert is of one rule, as Alertmanager grouping by alertname
    would; `externalURL` is the relay's dashboard (`external_url`, '' without one)."""
    if not transitions:
        raise ValueError("an Alertmanager payload needs at least one alert")
    alerts = [alertmanager_alert(transition, external_url) for transition in transitions]
    common_labels = _common([alert["labels"] for alert in alerts])
    group_labels = {key: value for key, value in common_labels.items() if key == "alertname"}
    group_key = ", ".join(f'{key}="{value}"' for key, value in sorted(group_labels.items()))
    firing = any(alert["status"] == "firing" for alert in alerts)
    return {
        "version": "4",
        "groupKey": f"{{}}:{{{group_key}}}",
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([alert["annotations"] for alert in alerts]),
        "externalURL": external_url.rstrip("/") if external_url else "",
        "alerts": alerts,
    }
