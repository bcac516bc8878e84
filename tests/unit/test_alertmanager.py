"""alertmanager.py: transitions as Alertmanager's version 4 webhook payload.

The reference is the format Prometheus documents for `webhook_config`
(https://prometheus.io/docs/alerting/latest/configuration/#webhook_config) and the label
signature of prometheus/common's model package, which Alertmanager's fingerprints are.
"""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from pingpong_relay.alertmanager import (
    ZERO_TIME,
    alertmanager_alert,
    alertmanager_payload,
    fingerprint,
    rfc3339,
)
from pingpong_relay.notifications import Transition, began_s
from tests.unit.notifications_support import GATE, T0, event

URL = "https://relay.example.com"
# The keys Prometheus documents, at the top and in each alert.
PAYLOAD_KEYS = {
    "version",
    "groupKey",
    "truncatedAlerts",
    "status",
    "receiver",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "alerts",
}
ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}
# RFC 3339 as Alertmanager writes it in UTC.
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def firing(bot: str = GATE, **kwargs: Any) -> Transition:
    made = event(bot=bot, **kwargs)
    return Transition(made, began_s(made))


def resolved(bot: str = GATE, started_s: float | None = T0 - 125.0, **kwargs: Any) -> Transition:
    return Transition(
        event(bot=bot, state="resolved", value=0.2, at_s=T0 + 300, **kwargs), started_s
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # prometheus/common model: TestLabelsToSignature and TestMetricToFingerprint.
        ({}, 14695981039346656037),
        ({"name": "garland, briggs", "fear": "love is not enough"}, 5799056148416392346),
    ],
)
def test_fingerprints_are_prometheus_label_signatures(
    labels: dict[str, str], expected: int
) -> None:
    assert fingerprint(labels) == f"{expected:016x}"


def test_a_fingerprint_is_stable_per_rule_and_bot() -> None:
    first = alertmanager_alert(firing())["fingerprint"]
    assert alertmanager_alert(resolved())["fingerprint"] == first
    assert alertmanager_alert(firing(value=999.0, at_s=T0 + 50))["fingerprint"] == first
    assert alertmanager_alert(firing(bot="other"))["fingerprint"] != first
    assert alertmanager_alert(firing(kind="latency", value=900.0))["fingerprint"] != first
    assert re.fullmatch(r"[0-9a-f]{16}", first)


def test_rfc3339_in_utc_to_the_millisecond() -> None:
    assert rfc3339(T0 + 0.1234) == "2026-01-01T00:00:00.123Z"
    assert RFC3339.match(rfc3339(T0))


def test_a_firing_alert_as_alertmanager_sends_it() -> None:
    payload = alertmanager_payload([firing(summary="gate-1 silent for 125 s")], URL)
    assert set(payload) == PAYLOAD_KEYS
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["receiver"] == "pingpong-relay"
    assert payload["externalURL"] == URL
    assert payload["truncatedAlerts"] == 0
    (alert,) = payload["alerts"]
    assert set(alert) == ALERT_KEYS
    assert alert["status"] == "firing"
    assert alert["labels"] == {"alertname": "silence", "bot": GATE, "kind": "silence"}
    assert alert["annotations"]["summary"] == "gate-1 silent for 125 s"
    assert alert["annotations"]["description"].splitlines() == [
        "Value: silent for 125 s, threshold 30 s",
        "Since: 2025-12-31T23:57:55Z (2m 5s)",
    ]
    assert alert["startsAt"] == "2025-12-31T23:57:55.000Z"
    assert alert["endsAt"] == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert alert["generatorURL"] == f"{URL}/?bot=bot%3Apingpong%2Fgate-1"
    assert payload["commonLabels"] == alert["labels"]
    assert payload["commonAnnotations"] == alert["annotations"]
    assert payload["groupLabels"] == {"alertname": "silence"}
    assert payload["groupKey"] == '{}:{alertname="silence"}'


def test_a_resolved_alert_ends_when_it_resolved() -> None:
    (alert,) = alertmanager_payload([resolved()])["alerts"]
    assert alert["status"] == "resolved"
    assert alert["startsAt"] == "2025-12-31T23:57:55.000Z"
    assert alert["endsAt"] == "2026-01-01T00:05:00.000Z"
    assert alert["generatorURL"] == ""


def test_a_resolution_whose_start_is_unknown_starts_when_it_ends() -> None:
    (alert,) = alertmanager_payload([resolved(started_s=None)])["alerts"]
    assert alert["startsAt"] == alert["endsAt"] == "2026-01-01T00:05:00.000Z"


def test_a_group_fires_while_any_alert_fires_and_shares_only_what_is_common() -> None:
    group = [firing("a"), firing("b"), resolved("c")]
    payload = alertmanager_payload(group, URL + "/")
    assert payload["status"] == "firing"
    assert payload["externalURL"] == URL
    assert [a["status"] for a in payload["alerts"]] == ["firing", "firing", "resolved"]
    assert payload["commonLabels"] == {"alertname": "silence", "kind": "silence"}
    assert payload["groupLabels"] == {"alertname": "silence"}
    # Summaries differ by bot: no common annotation.
    assert "summary" not in payload["commonAnnotations"]
    assert alertmanager_payload([resolved("a"), resolved("b")])["status"] == "resolved"


def test_a_group_of_two_rules_has_no_group_labels() -> None:
    payload = alertmanager_payload([firing("a"), firing("a", kind="latency", value=900.0)])
    assert payload["groupLabels"] == {}
    assert payload["groupKey"] == "{}:{}"
    assert payload["commonLabels"] == {"bot": "a"}


def test_every_time_is_rfc3339_and_the_payload_is_json() -> None:
    payload = alertmanager_payload([firing(), resolved("b"), resolved("c", started_s=None)], URL)
    assert orjson.loads(orjson.dumps(payload)) == payload
    for alert in payload["alerts"]:
        assert RFC3339.match(alert["startsAt"]), alert
        assert alert["endsAt"] == ZERO_TIME or RFC3339.match(alert["endsAt"]), alert


def test_pending_is_not_an_alertmanager_alert() -> None:
    with pytest.raises(ValueError, match="is pending"):
        alertmanager_payload([Transition(event(state="pending"), None)])


def test_an_empty_group_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one alert"):
        alertmanager_payload([])
