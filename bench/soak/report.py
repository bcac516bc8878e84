"""The soak's report: the measures against their bars, per Redis kill, and notes."""

from __future__ import annotations

from typing import Any

from ..tables import table


def _mib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} %"


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def _heading(result: dict[str, Any]) -> str:
    args = result["args"]
    return (
        f"## Soak: {args['duration']:g} s, {args['clients']:,} clients, {args['rate']:g} msg/s, "
        f"churn {args['churn'] * 100:g} %/s, {len(result['redis_kills'])} Redis kills, "
        f"{'1 worker kill' if result['worker_kill'] else 'no worker kill'} "
        f"({args['workers']} workers)"
    )


def _rss_rows(result: dict[str, Any]) -> list[list[str]]:
    """Relay RSS start → end, per worker, and start → just before the worker kill."""
    rss = result["rss"]
    start, end = rss.get("start") or {}, rss.get("end") or {}
    rows = [
        [
            "relay RSS start → end (MiB)",
            f"{_mib(start.get('total'))} → {_mib(end.get('total'))} "
            f"({_pct(rss.get('growth_pct'))})",
            "≤ +10 %",
        ]
    ]
    peak = rss.get("peak_clients_by_worker", {})
    killed = str(result["worker_kill"].get("worker"))
    for index, pct in sorted(rss.get("growth_pct_by_worker", {}).items()):
        note = " (restarted mid-run)" if killed == index else ""
        rows.append(
            [
                f"worker {index} RSS start → end (MiB){note}",
                f"{_mib(start['workers'].get(index))} → {_mib(end['workers'].get(index))} "
                f"({_pct(pct)}); clients {start.get('clients', {}).get(index, '?')} → "
                f"{end.get('clients', {}).get(index, '?')}, peak {peak.get(index, '?')}",
                "",
            ]
        )
    before_kill = rss.get("before_worker_kill")
    if before_kill:
        by_worker = ", ".join(
            f"w{i} {_pct(p)}"
            for i, p in sorted(rss["growth_pct_by_worker_before_worker_kill"].items())
        )
        rows.append(
            [
                f"relay RSS start → just before the worker kill at {before_kill['at_s']:g} s (MiB)",
                f"{_mib(start.get('total'))} → {_mib(before_kill['total'])} "
                f"({_pct(rss.get('growth_pct_before_worker_kill'))}; {by_worker})",
                "",
            ]
        )
    return rows


def _measures(result: dict[str, Any]) -> list[list[str]]:
    """Every row of the main table."""
    acc, resub = result["accounting"], result["resubscribe"]
    restart, latency = result["worker_restart"], result["latency"]
    return [
        ["lost outside the not-subscribed windows", f"{acc['lost']:,}", "must be 0"],
        [
            "duplicates / out of order",
            f"{acc['duplicates']:,} / {acc['out_of_order']:,}",
            "0",
        ],
        *_rss_rows(result),
        ["longest outage logged (`outage_s`)", _num(resub["max_outage_s"], " s"), ""],
        [
            "longest Redis ready → worker resubscribed",
            _num(resub["max_ready_to_subscribed_s"], " s"),
            "",
        ],
        [
            "worker restart: exited → new worker subscribed",
            _num(restart.get("exited_to_subscribed_s"), " s"),
            "",
        ],
        [
            "messages published (PUBLISH failed)",
            f"{acc['published']:,} ({acc['publish_failed']:,})",
            "",
        ],
        ["deliveries expected / received", f"{acc['expected']:,} / {acc['received']:,}", ""],
        [
            "latency p50 / p99 / max (publish → client)",
            f"{_num(latency.get('p50_ms'))} / {_num(latency.get('p99_ms'))} / "
            f"{_num(latency.get('max_ms'), ' ms')}",
            "",
        ],
        [
            "client sessions (never opened)",
            f"{acc['sessions']:,} ({acc['sessions_never_opened']:,})",
            "",
        ],
    ]


def _per_kill(result: dict[str, Any]) -> list[str]:
    """Per Redis kill and worker: noticed, outage, ready → resubscribed."""
    workers = int(result["args"]["workers"])
    per_kill = result["resubscribe"]["per_kill"]
    header = ["#", "at", "down"]
    for i in range(workers):
        header += [f"w{i} noticed", f"w{i} outage", f"w{i} ready→sub"]
    rows = []
    for row in per_kill:
        cells = [str(row["kill"]), _num(row["at_s"]), _num(row["down_s"])]
        for i in range(workers):
            cell = row[f"w{i}"]
            star = " *" if cell["via_successor"] else ""
            cells += [
                _num(cell["noticed_s"]),
                _num(cell["outage_s"]) + star,
                _num(cell["ready_to_subscribed_s"]) + star,
            ]
        rows.append(cells)
    out = [
        "",
        "Per Redis kill (s; `noticed`: kill → redis_outage_start, `outage`: the relay's "
        "`outage_s`, `ready→sub`: Redis answering again → redis_outage_end):",
        "",
        *table(header, rows),
    ]
    if any(row[f"w{i}"]["via_successor"] for row in per_kill for i in range(workers)):
        out += ["", "\\* the worker was killed during the outage; its successor subscribed."]
    return out


def _notes(result: dict[str, Any]) -> list[str]:
    args, acc = result["args"], result["accounting"]
    workers = int(args["workers"])
    notes = [
        f"- A message counts as expected by a session when its PUBLISH succeeded after the "
        f"session's relay:state arrived, ended more than {args['margin']:g} s before the "
        f"session closed, and lay more than {args['margin']:g} s outside every window in "
        f"which the session's worker could not hear Redis (outage, start-up, dead). "
        f"Deliveries missed inside those windows: {acc['missed_in_windows']}.",
        f"- Session ends: {acc['session_ends']}; close codes from the relay: "
        f"{acc['close_codes'] or 'none'}; sessions per worker: "
        f"{ {k: v['sessions'] for k, v in acc['per_worker'].items()} }.",
        f"- Relay conflation skips: {acc['conflated']:,}; connect failures: "
        f"{result['load'].get('connect_failures', 0):,} "
        f"{result['load'].get('connect_errors') or ''}.",
        f"- Successful PUBLISHes that reached fewer than {workers} subscribers outside every "
        f"window: {acc['publishes_short_of_subscribers_outside_windows']}; our messages a "
        f"worker did not log as received outside its windows: "
        f"{acc['not_logged_received_outside_windows']}.",
    ]
    return notes + _fault_notes(result)


def _fault_notes(result: dict[str, Any]) -> list[str]:
    rss, resub, restart = result["rss"], result["resubscribe"], result["worker_restart"]
    notes = []
    if rss.get("before_worker_kill"):
        notes.append(
            "- RSS: after the worker kill its clients reconnect to the survivor(s) (peak "
            f"clients per worker {rss.get('peak_clients_by_worker', {})}), whose RSS keeps "
            "that high-water mark (freed memory is not returned to the OS), while the killed "
            "worker's successor starts afresh; start → end mixes both in, start → just "
            "before the kill is free of them."
        )
    if restart:
        notes.append(
            f"- Worker {restart['worker']} (pid {restart['old_pid']}) SIGKILLed at "
            f"{result['worker_kill']['at_s']} s: exited (code {restart.get('exit_code')}) "
            f"after {_num(restart.get('kill_to_exited_s'), ' s')}, successor pid "
            f"{restart.get('new_pid')} started after "
            f"{_num(restart.get('kill_to_started_s'), ' s')}, subscribed after "
            f"{_num(restart.get('kill_to_subscribed_s'), ' s')}."
        )
    if resub["unexplained_outages"]:
        notes.append(f"- Outages not caused by a Redis kill: {resub['unexplained_outages']}")
    if resub["not_resubscribed"]:
        notes.append(f"- Worker outages with no redis_outage_end: {resub['not_resubscribed']}")
    if result["accounting"]["lost_examples"]:
        notes.append(f"- Lost, first examples: {result['accounting']['lost_examples'][:5]}")
    warn = result["relay_log"]["warnings_errors"]
    notes.append(
        f"- Relay log: {result['relay_log']['lines']:,} lines, warnings/errors {warn or 'none'}; "
        f"relay exit code {result['relay_exit_code']} after {result['relay_stop_s']} s."
    )
    return notes


def render(result: dict[str, Any]) -> str:
    """The whole report."""
    lines = [
        _heading(result),
        "",
        *table(["measure", "value", "bar"], _measures(result), text_columns=1, text_first=1),
        *_per_kill(result),
        "",
        "Notes:",
        "",
        *_notes(result),
    ]
    return "\n".join(lines)
