"""The refusal reasons exported as metric labels from the start are every reason the code
refuses for: a reason written in the code but missing from its list would appear only once
it happened, and its first occurrence would be invisible to rate()."""

from __future__ import annotations

import re
from pathlib import Path

from pingpong_relay.auth import AUTH_REASONS
from pingpong_relay.limits import CONNECTION_REFUSAL_REASONS
from pingpong_relay.telemetry.metrics import RelayMetrics

SRC = Path(__file__).resolve().parents[2] / "src" / "pingpong_relay"
# Refused only on the HTTP plane (401 for /metrics), counted there, never as a client's.
HTTP_ONLY = {"wrong_token"}


def _quoted_after(pattern: str, paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        found |= set(re.findall(pattern, path.read_text(encoding="utf-8")))
    return found


def test_every_auth_refusal_reason_is_listed() -> None:
    written = _quoted_after(r'AuthError\(\s*"([a-z_]+)"', list(SRC.rglob("*.py")))
    written |= _quoted_after(r'"(wrong_token)" if', list(SRC.rglob("*.py")))
    assert written - HTTP_ONLY == set(AUTH_REASONS)


def test_every_connection_refusal_reason_is_listed() -> None:
    written = _quoted_after(
        r'connections_refused\.labels\("([a-z_]+)"\)', [SRC / "ws" / "admission.py"]
    )
    assert written == set(CONNECTION_REFUSAL_REASONS)


def test_each_reason_is_exported_before_it_happens() -> None:
    text = RelayMetrics().render().decode()
    for reason in AUTH_REASONS:
        assert f'pingpong_auth_failures_total{{reason="{reason}"}} 0.0' in text
    for reason in CONNECTION_REFUSAL_REASONS:
        assert f'pingpong_connections_refused_total{{reason="{reason}"}} 0.0' in text
