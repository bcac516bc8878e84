"""The notes under a bench table: what a reader of the medians would otherwise miss."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .tables import Run, ms


def short(runs: Sequence[Run]) -> bool:
    """Whether some run held fewer clients than it asked for."""
    return any(run.get("connected", run["clients"]) < run["clients"] for run in runs)


def run_notes(label: str, run: Run) -> list[str]:
    """Anything in one run that a reader of the medians would otherwise miss."""
    notes = []
    p99 = run["p99_ms"]
    first = run["first_message_ms"].get("max", math.nan)
    if first > max(2 * p99, p99 + 5):
        notes.append(
            f"{label}: first message slow: max {ms(first)} ms across clients "
            f"(p99 of the run {ms(p99)} ms)"
        )
    per_seq = run["per_seq_max_ms"]
    if per_seq and run["max_ms"] > max(5 * p99, p99 + 20):
        worst = max(range(len(per_seq)), key=per_seq.__getitem__)
        notes.append(
            f"{label}: latency outlier: max {ms(run['max_ms'])} ms on message "
            f"#{worst} of {len(per_seq)} (p99 {ms(p99)} ms)"
        )
    if run["lost"] or run["duplicates"] or run["out_of_order"]:
        metrics = run["relay_metrics"]
        notes.append(
            f"{label}: lost {run['lost']} of {run['expected']} deliveries on "
            f"{run['clients_with_loss']} clients, duplicates {run['duplicates']}, "
            f"out of order {run['out_of_order']}; clients disconnected {run['disconnected']}, "
            f"relay slow-client closes {metrics['slow_client_closes']:.0f}, "
            f"send failures {metrics['send_failures']:.0f}; relay wrote "
            f"{metrics['deliveries']:,.0f} deliveries"
            + (
                f", so the rest were still in flight at the {run['drain_s']:g} s drain deadline"
                if metrics["deliveries"] >= run["expected"]
                else ""
            )
        )
    if run.get("unexpected"):
        notes.append(
            f"{label}: {run['unexpected']} deliveries outside the client's filter "
            f"(the relay sent a message the client's query excludes)"
        )
    for key in ("malformed", "stale", "overflow", "unheard_publishes"):
        if run[key]:
            notes.append(f"{label}: {key.replace('_', ' ')}: {run[key]}")
    notes += connect_notes(label, run)
    if run["publish_rate"] < 0.95 * run["rate"]:
        notes.append(
            f"{label}: publisher reached only {run['publish_rate']:.1f} of {run['rate']:g} msg/s"
        )
    if run["client_wall_s"] and run["client_cpu_s"] / run["client_wall_s"] > 0.85:
        notes.append(
            f"{label}: client process used "
            f"{run['client_cpu_s'] / run['client_wall_s']:.0%} of a core; "
            f"latency includes its own queueing"
        )
    return notes


def connect_notes(label: str, run: Run) -> list[str]:
    """Clients that did not connect, and what the relay's descriptors left room for."""
    notes = []
    clients: int = run.get("clients", 0)
    connected: int = run.get("connected", clients)
    if run.get("connect_failed") or connected < clients:
        room = ""
        if "relay_fd_room" in run:
            room = (
                f"; the relay's open-file limit {run['relay_nofile']:,} minus the "
                f"{run['relay_fds_idle']} descriptors it held before any client leaves room "
                f"for {run['relay_fd_room']:,} clients"
            )
        notes.append(
            f"{label}: {connected:,} of {clients:,} clients connected, "
            f"{run.get('connect_failed', 0):,} failed: {run.get('connect_errors')}{room}"
        )
    relay_clients = run.get("relay_clients")
    # A stalled row's extra client is the relay's too.
    expected = connected + bool(run.get("stalled"))
    if relay_clients is not None and relay_clients != expected:
        notes.append(
            f"{label}: the relay counts {relay_clients:,} clients, the harness holds {expected:,}"
        )
    if run.get("count_source") == "log":
        notes.append(
            f"{label}: the relay's HTTP plane did not answer (a relay out of file "
            f"descriptors cannot accept the request); its client count comes from its log, "
            f"and its /metrics columns are missing"
        )
    return notes


def log_notes(label: str, events: dict[str, int]) -> list[str]:
    """The relay's warnings, errors and events of note over a run (scan_relay_log)."""
    if not events:
        return []
    listed = ", ".join(f"{name} ×{times}" for name, times in sorted(events.items()))
    return [f"{label}: relay logged {listed}"]
