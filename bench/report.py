"""Markdown rendering of benchmark results: the scenario table, the throughput search, notes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .stats import median

Run = dict[str, Any]


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def _count(value: float) -> str:
    return "–" if math.isnan(value) else f"{round(value):,}"


def _num(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


def _median_of(runs: Sequence[Run], key: str) -> float:
    return median(float(run[key]) if run[key] is not None else math.nan for run in runs)


def _latency_cells(runs: Sequence[Run]) -> list[str]:
    """p50, p99, max, lost and duplicates / out-of-order: the medians every table shows."""
    return [
        _ms(_median_of(runs, "p50_ms")),
        _ms(_median_of(runs, "p99_ms")),
        _ms(_median_of(runs, "max_ms")),
        _count(_median_of(runs, "lost")),
        f"{_count(_median_of(runs, 'duplicates'))} / {_count(_median_of(runs, 'out_of_order'))}",
    ]


def _table(
    header: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int = 0
) -> list[str]:
    """A Markdown table, numbers right-aligned; the last `text_columns` columns left-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    first_text = len(header) - text_columns

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i >= first_text else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        ":" + "-" * (w + 1) if i >= first_text else "-" * (w + 1) + ":"
        for i, w in enumerate(widths)
    ]
    return [line(header), "|" + "|".join(rule) + "|", *(line(row) for row in rows)]


def _short(runs: Sequence[Run]) -> bool:
    """Whether some run held fewer clients than it asked for."""
    return any(run.get("connected", run["clients"]) < run["clients"] for run in runs)


def _scenario_table(scenarios: Sequence[dict[str, Any]]) -> list[str]:
    """The scenario table; a "connected" column when some row fell short, a "relay args"
    column when some row has relay arguments of its own."""
    scenarios = [scenario for scenario in scenarios if scenario["runs"]]
    connected_column = any(_short(scenario["runs"]) for scenario in scenarios)
    args_column = any(scenario.get("relay_args") for scenario in scenarios)
    header = ["clients"]
    header += ["connected"] if connected_column else []
    header += [
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup / ooo",
        "RSS KB/conn",
        "CPU µs/delivery",
        "deliveries/s",
    ]
    header += ["relay args"] if args_column else []
    rows = []
    for scenario in scenarios:
        runs = scenario["runs"]
        row = [_count(scenario["clients"])]
        if connected_column:
            row.append(_count(_median_of(runs, "connected")))
        row += [
            *_latency_cells(runs),
            _num(_median_of(runs, "rss_kb_per_conn")),
            _num(_median_of(runs, "cpu_us_per_delivery")),
            _count(_median_of(runs, "deliveries_per_s")),
        ]
        if args_column:
            extra = scenario.get("relay_args") or []
            row.append(f"`{' '.join(extra)}`" if extra else "")
        rows.append(row)
    return _table(header, rows, text_columns=1 if args_column else 0)


def _step_rows(steps: Sequence[Run]) -> list[list[str]]:
    return [
        [
            _count(step["rate"]),
            _count(step["publish_rate"]),
            _count(step["deliveries_per_s"]),
            _ms(step["p50_ms"]),
            _ms(step["p99_ms"]),
            _ms(step["max_ms"]),
            _count(step["lost"]),
            _num(step["cpu_us_per_delivery"]),
            "pass" if not step["failures"] else "FAIL: " + "; ".join(step["failures"]),
        ]
        for step in steps
    ]


def _run_notes(label: str, run: Run) -> list[str]:
    """Anything in one run that a reader of the medians would otherwise miss."""
    notes = []
    p99 = run["p99_ms"]
    first = run["first_message_ms"].get("max", math.nan)
    if first > max(2 * p99, p99 + 5):
        notes.append(
            f"{label}: first message slow: max {_ms(first)} ms across clients "
            f"(p99 of the run {_ms(p99)} ms)"
        )
    per_seq = run["per_seq_max_ms"]
    if per_seq and run["max_ms"] > max(5 * p99, p99 + 20):
        worst = max(range(len(per_seq)), key=per_seq.__getitem__)
        notes.append(
            f"{label}: latency outlier: max {_ms(run['max_ms'])} ms on message "
            f"#{worst} of {len(per_seq)} (p99 {_ms(p99)} ms)"
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
    notes += _connect_notes(label, run)
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


def _connect_notes(label: str, run: Run) -> list[str]:
    """Clients that did not connect, and what the relay's descriptors left room for."""
    notes = []
    clients = run.get("clients", 0)
    connected = run.get("connected", clients)
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


def _log_notes(label: str, events: dict[str, int]) -> list[str]:
    if not events:
        return []
    listed = ", ".join(f"{name} ×{count}" for name, count in sorted(events.items()))
    return [f"{label}: relay logged {listed}"]


def _bucket_ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return "> 1000" if math.isinf(value) else f"≤ {_ms(value)}"


def _relay_metric(runs: Sequence[Run], key: str) -> float:
    return median(float(run["relay_metrics"][key]) for run in runs)


def _filter_row(label: str, runs: Sequence[Run]) -> list[str]:
    return [
        label,
        _count(_median_of(runs, "expected_per_client")),
        _ms(_median_of(runs, "p50_ms")),
        _ms(_median_of(runs, "p99_ms")),
        _ms(_median_of(runs, "max_ms")),
        _count(_median_of(runs, "lost")),
        f"{_count(_median_of(runs, 'duplicates'))} / "
        f"{_count(_median_of(runs, 'out_of_order'))} / "
        f"{_count(_median_of(runs, 'unexpected'))}",
        _num(_median_of(runs, "cpu_us_per_delivery")),
        _count(_median_of(runs, "deliveries_per_s")),
        _bucket_ms(_relay_metric(runs, "broadcast_p99_ms_bucket")),
        _ms(_relay_metric(runs, "broadcast_mean_ms")),
    ]


def _ratio(numerator: float, denominator: float) -> str:
    if math.isnan(numerator) or math.isnan(denominator) or denominator <= 0:
        return "–"
    return f"{numerator / denominator:.2f}×"


def _ratio_line(label: str, runs: Sequence[Run], baseline: Sequence[Run]) -> str:
    """`label` = X.XX× of the medians' p99, with the per-run ratios when there are several."""
    p99 = _median_of(runs, "p99_ms") if runs else math.nan
    p99_baseline = _median_of(baseline, "p99_ms") if baseline else math.nan
    per_run = ""
    if len(baseline) > 1 and len(baseline) == len(runs):
        pairs = zip(baseline, runs, strict=True)
        per_run = " (runs: " + ", ".join(_ratio(r["p99_ms"], b["p99_ms"]) for b, r in pairs) + ")"
    return f"**{label} = {_ratio(p99, p99_baseline)}**{per_run}"


def _by_group(title: str, runs: Sequence[Run], queries: Sequence[str]) -> list[str]:
    if not runs or not runs[0].get("groups"):
        return []
    by_filter = [
        f"`?{query}` {_ms(median(run['groups'][i]['latency_ms']['p99'] for run in runs))}"
        for i, query in enumerate(queries)
    ]
    return [f"{title}: " + ", ".join(by_filter) + "."]


def _filter_section(section: dict[str, Any], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The filter scenario's table, its ratio lines, and its notes."""
    unfiltered: list[Run] = section["unfiltered"]
    filtered: list[Run] = section["filtered"]
    match_all: list[Run] = section.get("match_all", [])
    clients = section["clients"]
    queries = section["queries"]
    match_all_queries = section.get("match_all_queries", [])
    out = [
        "",
        f"### Server-side filters at {clients:,} clients",
        "",
        f"Relay with `--channel-pattern '{section['channel_pattern']}'` in every row; "
        f"{args['rate']:g} msg/s for {args['duration']:g} s over "
        f"{', '.join(f'`{c}`' for c in section['channels'])} (ping and pong in turn). "
        f"Unfiltered: every client gets every message. Filtered: {clients:,} clients split "
        f"evenly across {', '.join(f'`?{q}`' for q in queries)}; each gets half the "
        f"messages."
        + (
            f" Match-all: {clients:,} clients split evenly across "
            f"{', '.join(f'`?{q}`' for q in match_all_queries)}; four subscription groups, "
            f"each getting every message."
            if match_all_queries
            else ""
        )
        + " Each client is checked against its own expected subset. Relay columns come from "
        "its `pingpong_relay_latency_seconds` histogram (Redis receipt → every write issued; "
        "p99 at bucket resolution).",
        "",
    ]
    rows = []
    if unfiltered:
        rows.append(_filter_row(f"{clients:,} unfiltered", unfiltered))
    if filtered:
        rows.append(_filter_row(f"{clients:,} in {len(queries)} filters", filtered))
    if match_all:
        rows.append(
            _filter_row(f"{clients:,} in {len(match_all_queries)} match-all filters", match_all)
        )
    if rows:
        out += _table(
            [
                "run",
                "msgs/client",
                "p50 ms",
                "p99 ms",
                "max ms",
                "lost",
                "dup / ooo / unexp",
                "CPU µs/delivery",
                "deliveries/s",
                "relay p99 ms",
                "relay mean ms",
            ],
            rows,
        )
    out += ["", _ratio_line("filtered p99 / unfiltered p99", filtered, unfiltered)]
    if match_all:
        out += [
            "",
            _ratio_line(
                f"match-all {len(match_all_queries)}-group p99 / unfiltered p99",
                match_all,
                unfiltered,
            ),
        ]
    for line in (
        *_by_group("Filtered p99 ms by filter", filtered, queries),
        *_by_group("Match-all p99 ms by filter", match_all, match_all_queries),
    ):
        out += ["", line]
    notes: list[str] = []
    for row, runs in (("unfiltered", unfiltered), ("filtered", filtered), ("match-all", match_all)):
        for index, run in enumerate(runs, 1):
            label = f"filters, {row}" + (f" run {index}" if len(runs) > 1 else "")
            notes += _run_notes(label, run)
            notes += _log_notes(label, run["relay_log_events"])
    return out, notes


IDLE_TARGET_KB = 15.0
BURST_TARGET_US = 6.0


def _mb(kb: float) -> str:
    return "–" if math.isnan(kb) else f"{kb / 1024:,.1f}"


def _runs_label(part: str, runs: Sequence[Run], index: int) -> str:
    return part + (f" run {index}" if len(runs) > 1 else "")


def _idle_section(section: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Idle memory: the relay's RSS per connection with nothing flowing."""
    rows = []
    notes: list[str] = []
    for entry in section:
        runs = entry["runs"]
        if not runs:
            continue
        rows.append(
            [
                _count(entry["clients"]),
                _count(_median_of(runs, "connected")),
                _count(median(float(run["relay_clients"] or math.nan) for run in runs)),
                _mb(_median_of(runs, "rss_before_kb")),
                _mb(_median_of(runs, "rss_connected_kb")),
                _num(_median_of(runs, "rss_kb_per_conn")),
                f"{_count(_median_of(runs, 'relay_nofile'))} / "
                f"{_count(_median_of(runs, 'relay_fds_idle'))} / "
                f"{_count(_median_of(runs, 'relay_fds_connected'))}",
                _count(_median_of(runs, "relay_fd_room")),
                _num(_median_of(runs, "connect_s")),
            ]
        )
        for index, run in enumerate(runs, 1):
            label = _runs_label(f"idle {entry['clients']} clients", runs, index)
            notes += _connect_notes(label, run)
            notes += _log_notes(label, run["relay_log_events"])
    if not rows:
        return [], notes
    out = [
        "",
        "### Idle memory per connection",
        "",
        "One relay per row; its RSS before any client, then 2 s after the last of N idle "
        "clients connected (nothing published). KB/conn = (RSS with them − RSS before) / the "
        "clients the relay holds. fds: the relay's open-file limit / descriptors open before "
        "any client / with them; room = limit − descriptors before, the most clients one "
        "relay process can hold.",
        "",
    ]
    out += _table(
        [
            "clients",
            "connected",
            "relay holds",
            "RSS before MB",
            "RSS with N MB",
            "KB/conn",
            "fds: limit / before / with N",
            "room",
            "connect s",
        ],
        rows,
    )
    held = [
        (run["relay_clients"] or run["connected"], run["rss_kb_per_conn"])
        for entry in section
        for run in entry["runs"]
    ]
    if held:
        most, kb = max(held)
        verdict = "meets" if kb <= IDLE_TARGET_KB else "misses"
        out += [
            "",
            f"**Idle memory at {most:,} connections: {_num(kb)} KB/conn** "
            f"({verdict} the ≤ {IDLE_TARGET_KB:g} KB target, which is set at 20,000)",
        ]
    return out, notes


def _burst_section(section: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Burst: messages in one pipeline, drain time, CPU per delivery, peak RSS."""
    rows = []
    notes: list[str] = []
    for entry in section["rows"]:
        runs = entry["runs"]
        if not runs:
            continue
        rows.append(
            [
                f"`{entry['policy']}`",
                _count(_median_of(runs, "connected")),
                _ms(_median_of(runs, "publish_s") * 1e3),
                _ms(_median_of(runs, "span_s") * 1e3),
                _ms(_median_of(runs, "p50_ms")),
                _ms(_median_of(runs, "p99_ms")),
                _count(_median_of(runs, "lost")),
                f"{_count(_median_of(runs, 'duplicates'))} / "
                f"{_count(_median_of(runs, 'out_of_order'))}",
                f"{_count(_relay_metric(runs, 'conflated'))} / "
                f"{_count(_median_of(runs, 'conflated_notices'))}",
                _count(_relay_metric(runs, "slow_client_closes")),
                _num(_median_of(runs, "cpu_us_per_delivery"), 2),
                _mb(_median_of(runs, "rss_start_kb")),
                _mb(_median_of(runs, "peak_rss_kb")),
                _count(_median_of(runs, "deliveries_per_s")),
            ]
        )
        for index, run in enumerate(runs, 1):
            label = _runs_label(f"burst {entry['policy']}", runs, index)
            notes += _burst_notes(label, run)
            notes += _connect_notes(label, run)
            notes += _log_notes(label, run["relay_log_events"])
    if not rows:
        return [], notes
    out = [
        "",
        f"### Burst: {section['messages']:,} messages at once to {section['clients']:,} clients",
        "",
        "One relay per row, with that `--slow-client` policy; every client reads as fast as "
        "it can. The messages go out in one Redis pipeline; drain = first PUBLISH → the last "
        "client's last message; p50/p99 are of every delivery's time since the burst began. "
        "CPU µs/delivery = relay user+sys CPU from just before the pipeline until every "
        "client has everything, / deliveries. Peak RSS: the larger of VmHWM (reset just "
        "before the burst) and RSS sampled every 10 ms.",
        "",
    ]
    out += _table(
        [
            "policy",
            "clients",
            "publish ms",
            "drain ms",
            "p50 ms",
            "p99 ms",
            "lost",
            "dup / ooo",
            "conflated / notices",
            "slow closes",
            "CPU µs/delivery",
            "RSS before MB",
            "peak RSS MB",
            "deliveries/s",
        ],
        rows,
    )
    cpu = [
        (entry["policy"], _median_of(entry["runs"], "cpu_us_per_delivery"))
        for entry in section["rows"]
        if entry["runs"]
    ]
    out += [
        "",
        "**CPU per delivery in the burst: "
        + ", ".join(f"{policy} {_num(value, 2)} µs" for policy, value in cpu)
        + f"** (target < {BURST_TARGET_US:g} µs)",
    ]
    return out, notes


def _burst_notes(label: str, run: Run) -> list[str]:
    notes = []
    if run["lost"] or run["duplicates"] or run["out_of_order"]:
        metrics = run["relay_metrics"]
        notes.append(
            f"{label}: lost {run['lost']:,} of {run['expected']:,} deliveries on "
            f"{run['clients_with_loss']:,} clients, duplicates {run['duplicates']:,}, out of "
            f"order {run['out_of_order']:,}; relay conflated {_count(metrics['conflated'])}, "
            f"closed {_count(metrics['slow_client_closes'])} slow clients; clients "
            f"disconnected {run['disconnected']:,}; notices seen {run['conflated_notices']:,} "
            f"(skipped {run['conflated_skipped']:,})"
        )
    for key in ("malformed", "stale", "overflow", "unheard_publishes"):
        if run[key]:
            notes.append(f"{label}: {key.replace('_', ' ')}: {run[key]}")
    if not run["all_received"]:
        notes.append(f"{label}: not every client had the last message at the deadline")
    if run["client_wall_s"] and run["client_cpu_s"] / run["client_wall_s"] > 0.85:
        notes.append(
            f"{label}: a client process used "
            f"{run['client_cpu_s'] / run['client_wall_s']:.0%} of a core; the drain time "
            f"includes its own reading"
        )
    return notes


def _kb(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value / 1024:,.1f}"


def _stalled_end(run: Run) -> dict[str, Any] | None:
    """The relay's socket to the stalled client at the end, from /proc/net/tcp."""
    end: dict[str, Any] | None = (run.get("stalled_state") or {}).get("relay_end")
    return end


def _stalled_send_q(run: Run) -> float:
    end = _stalled_end(run)
    return math.nan if end is None else float(end["tx_bytes"])


def _stalled_sndbuf(run: Run) -> float:
    value = (run.get("stalled_state") or {}).get("relay_sndbuf")
    return math.nan if value is None else float(value)


def _stalled_state(run: Run) -> str:
    end = _stalled_end(run)
    return "gone" if end is None else str(end["state"])


def _slow_section(section: dict[str, Any], args: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Slow client: readers' latency with and without one client that never reads."""
    rows = []
    notes: list[str] = []
    for entry in section["rows"]:
        runs = entry["runs"]
        if not runs:
            continue
        policy = entry["policy"]
        name = "all reading" if policy is None else f"+1 stalled, `{policy}`"
        if policy is None:
            send_q, sndbuf, state = "", "", ""
        else:
            send_q = _kb(median(_stalled_send_q(run) for run in runs))
            sndbuf = _kb(median(_stalled_sndbuf(run) for run in runs))
            state = ", ".join(sorted({_stalled_state(run) for run in runs}))
        rows.append(
            [
                name,
                _count(_median_of(runs, "connected")),
                *_latency_cells(runs),
                _num(_median_of(runs, "cpu_us_per_delivery")),
                _count(_relay_metric(runs, "conflated")),
                _count(_relay_metric(runs, "slow_client_closes")),
                _count(
                    median(
                        float(run["relay_log_events"].get("INFO:client_backed_up", 0))
                        for run in runs
                    )
                ),
                send_q,
                sndbuf,
                state,
            ]
        )
        for index, run in enumerate(runs, 1):
            label = _runs_label(f"slow client, {name}", runs, index)
            notes += _run_notes(label, run)
            fate = (run.get("stalled_state") or {}).get("relay_log") or {}
            if fate.get("why"):
                notes.append(
                    f"{label}: the relay dropped the stalled client ({fate['client']}) at "
                    f"{fate.get('time')}: {fate['why']}"
                )
            notes += _log_notes(label, run["relay_log_events"])
    if not rows:
        return [], notes
    out = [
        "",
        f"### One stalled client among {section['clients']:,} readers",
        "",
        f"One relay per row; {section['clients']:,} clients reading at {args['rate']:g} msg/s "
        f"for {args['duration']:g} s. A stalled row adds one raw client (SO_RCVBUF "
        f"{args['stalled_rcvbuf']:,}) that completes the upgrade and never reads again, and "
        "runs the relay with that `--slow-client` policy. Latency and loss are the readers' "
        "only. What the relay did to the stalled one, over the round: `conflated` "
        "(`pingpong_conflated_total`: messages it skipped for a newer one), slow-client "
        "closes, `client_backed_up` log lines; and at the end, from /proc/net/tcp, the bytes "
        "its socket to the stalled client still holds (Send-Q), that socket's send buffer "
        "(`ss -m` tb: the kernel takes this much before the relay's own buffer, and so its "
        "policy, comes into play) and its state.",
        "",
    ]
    out += _table(
        [
            "run",
            "readers",
            "p50 ms",
            "p99 ms",
            "max ms",
            "lost",
            "dup / ooo",
            "CPU µs/delivery",
            "conflated",
            "slow closes",
            "backed up",
            "stalled Send-Q KB",
            "its sndbuf KB",
            "stalled socket",
        ],
        rows,
        text_columns=1,
    )
    reading = next((e["runs"] for e in section["rows"] if e["policy"] is None), [])
    for entry in section["rows"]:
        if entry["policy"] is not None and entry["runs"] and reading:
            out += [
                "",
                _ratio_line(
                    f"readers' p99 with one stalled (`{entry['policy']}`) / all reading",
                    entry["runs"],
                    reading,
                ),
            ]
    return out, notes


def render_report(results: dict[str, Any]) -> str:
    args = results["args"]
    meta = results["meta"]
    repeat = args["repeat"]
    relay_args = f", extra arguments `{' '.join(args['relay_args'])}`" if args["relay_args"] else ""
    procs = f"; here always {args['client_procs']}" if args.get("client_procs") else ""
    out = [
        f"## pingpong-relay benchmark: {args['rate']:g} msg/s for {args['duration']:g} s "
        f"per scenario, {'median of ' + str(repeat) + ' runs' if repeat > 1 else '1 run'}",
        "",
        f"Python {meta['python']}, {meta['cpus']} CPUs, {meta['platform']}; relay at INFO with "
        f"JSON logs to a file{relay_args}; clients in one uvloop/picows process (two above "
        f"8,000 clients{procs}); all on loopback; "
        f"{meta['elapsed_s']:.0f} s in all.",
        "",
    ]
    out += _scenario_table(results["scenarios"])
    notes: list[str] = []
    for scenario in results["scenarios"]:
        extra = " ".join(scenario.get("relay_args") or [])
        for index, run in enumerate(scenario["runs"], 1):
            label = (
                f"{scenario['clients']} clients"
                + (f" (`{extra}`)" if extra else "")
                + (f" run {index}" if repeat > 1 else "")
            )
            notes += _run_notes(label, run)
            notes += _log_notes(label, run["relay_log_events"])
    searches = results["throughput"]
    if searches:
        first = searches[0]
        out += [
            "",
            f"### Max sustained throughput at {first['clients']:,} clients",
            "",
            f"Publish rate raised in {args['throughput_step']:g} s steps; a step passes when "
            f"nothing is lost and p99 < {first['p99_limit_ms']:g} ms.",
            "",
        ]
        for index, search in enumerate(searches, 1):
            if repeat > 1:
                out += [f"Run {index}:", ""]
            out += _table(
                [
                    "msg/s",
                    "published/s",
                    "deliveries/s",
                    "p50 ms",
                    "p99 ms",
                    "max ms",
                    "lost",
                    "CPU µs/delivery",
                    "result",
                ],
                _step_rows(search["steps"]),
                text_columns=1,
            )
            out.append("")
            label = "throughput" + (f" run {index}" if repeat > 1 else "")
            for step in search["steps"]:
                notes += _run_notes(f"{label} at {step['rate']:g} msg/s", step)
            notes += _log_notes(label, search["relay_log_events"])
        best_rate = median(s["best_rate"] for s in searches)
        best_deliveries = median(s["best_deliveries_per_s"] for s in searches)
        tried = args["throughput_rates"]
        ceiling = (
            " (the highest rate tried: raise --throughput-rates)"
            if all(s["best_rate"] == tried[-1] for s in searches)
            else ""
        )
        spread = ""
        if repeat > 1:
            spread = "; runs: " + ", ".join(_count(s["best_rate"]) for s in searches)
        out.append(
            f"**Max sustained throughput at {first['clients']:,} clients: "
            f"{_count(best_deliveries)} deliveries/s** "
            f"({_count(best_rate)} msg/s{spread}){ceiling}"
            if not math.isnan(best_rate)
            else f"**Max sustained throughput at {first['clients']:,} clients: none of the "
            f"rates tried passed**"
        )
    if results.get("filters"):
        section, filter_notes = _filter_section(results["filters"], args)
        out += section
        notes += filter_notes
    if results.get("idle"):
        section, part_notes = _idle_section(results["idle"])
        out += section
        notes += part_notes
    if results.get("burst"):
        section, part_notes = _burst_section(results["burst"])
        out += section
        notes += part_notes
    if results.get("slow"):
        section, part_notes = _slow_section(results["slow"], args)
        out += section
        notes += part_notes
    if notes:
        out += ["", "Notes:", ""] + [f"- {note}" for note in notes]
    return "\n".join(out)
