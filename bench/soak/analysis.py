"""The soak's analysis: losses, resubscription and restart times, RSS growth."""

from __future__ import annotations

import argparse
from typing import Any

from .accounting import Cuts, SessionTally, worker_windows
from .faults import Publisher
from .ranges import merge_ranges, range_count, subtract_ranges
from .relaylog import SoakLog


def analyse(
    result: dict[str, Any],
    sessions: list[dict[str, Any]],
    publisher: Publisher,
    log: SoakLog,
    args: argparse.Namespace,
) -> None:
    """Adds to `result`: the accounting, the windows, resubscription, restart, log, RSS."""
    t0: float = result["t0"]
    published = len(publisher.t_send)
    end_t = float(result["finished_at"])
    windows = worker_windows(log, args.workers, end_t)
    cuts = Cuts(publisher, args.margin)
    for index, spans in windows.items():
        cuts.add(index, spans)
    failed = merge_ranges([s, s + 1] for s in range(published) if not publisher.ok[s])
    kill = result["worker_kill"]
    tally = SessionTally(
        publisher, cuts, failed, log, t0, end_t, kill.get("pid"), kill.get("killed_at")
    )
    for session in sessions:
        tally.add(session)
    result["accounting"] = _accounting(tally, sessions, publisher, args.workers)
    result["windows"] = {
        str(i): [
            {"from_s": round(a - t0, 3), "to_s": round(b - t0, 3), "kind": kind}
            for a, b, kind in spans
            if b >= t0
        ]
        for i, spans in windows.items()
    }
    result["resubscribe"] = _resubscribe(result, log, args.workers)
    result["worker_restart"] = _worker_restart(result, log)
    result["relay_log"] = {
        "lines": log.lines,
        "redis_retries": log.retries,
        "client_connected_by_worker": log.connected,
        "warnings_errors": log.levels,
    }
    _rss_growth(result["rss"])


def _short_publishes(tally: SessionTally, workers: int) -> list[int]:
    """Successful PUBLISHes that reached fewer subscribers than workers, outside every
    window of every worker: a worker that was not subscribed and did not say so."""
    publisher = tally.publisher
    all_cuts = merge_ranges(r for spans in tally.cuts.all.values() for r in spans)
    return [
        s
        for s in range(len(publisher.t_send))
        if publisher.ok[s]
        and 0 <= publisher.receivers[s] < workers
        and not any(a <= s < b for a, b in all_cuts)
    ]


def _unheard(tally: SessionTally, workers: int) -> dict[str, int]:
    """Per worker, our messages it did not log as received from Redis, outside its windows."""
    publisher = tally.publisher
    published = len(publisher.t_send)
    unheard: dict[str, int] = {}
    for index in range(workers):
        heard = tally.log.received.get(index, set())
        cuts = merge_ranges([*tally.failed, *tally.cuts.all[index]])
        span = subtract_ranges([[0, published]], cuts)
        unheard[str(index)] = sum(
            1 for a, b in span for s in range(a, b) if publisher.stamp[s] not in heard
        )
    return unheard


def _accounting(
    tally: SessionTally, sessions: list[dict[str, Any]], publisher: Publisher, workers: int
) -> dict[str, Any]:
    published = len(publisher.t_send)
    short = _short_publishes(tally, workers)
    return {
        "published": published,
        "publish_failed": range_count(tally.failed),
        "publish_late_slots": publisher.late_slots,
        "sessions": len(sessions),
        "sessions_never_opened": tally.never_opened,
        "sessions_unknown_worker": tally.unknown_worker,
        "session_ends": tally.ends,
        "close_codes": tally.close_codes,
        "expected": tally.expected,
        "received": tally.received,
        "lost": tally.lost,
        "lost_distinct_seqs": len(tally.lost_seqs),
        "lost_examples": tally.lost_examples,
        "missed_in_windows": tally.missed_in,
        "duplicates": tally.dups,
        "out_of_order": tally.ooo,
        "conflated": tally.conflated,
        "worker_changed_mid_session": tally.worker_changed,
        "per_worker": tally.per_worker,
        "publishes_short_of_subscribers_outside_windows": len(short),
        "short_examples": [
            {
                "seq": s,
                "at_s": round(publisher.t_send[s] - tally.t0, 3),
                "receivers": publisher.receivers[s],
            }
            for s in short[:10]
        ],
        "not_logged_received_outside_windows": _unheard(tally, workers),
        "stamp_collisions": published - len(set(publisher.stamp)),
    }


def _rss_growth(rss: dict[str, Any]) -> None:
    """RSS growth from the start to the end, and to just before the worker kill; and the
    peak client count per worker."""
    start = rss["start"]
    for key, later in (("", rss["end"]), ("_before_worker_kill", rss["before_worker_kill"])):
        if start and later and start["total"]:
            growth = 100.0 * (later["total"] - start["total"]) / start["total"]
            rss[f"growth_pct{key}"] = round(growth, 2)
            rss[f"growth_pct_by_worker{key}"] = {
                index: round(100.0 * (later["workers"][index] - before) / before, 2)
                for index, before in start["workers"].items()
                if index in later["workers"] and before
            }
    peak: dict[str, int] = {}
    for sample in rss["series"]:
        for index, count in (sample.get("open_by_worker") or {}).items():
            peak[index] = max(peak.get(index, 0), int(count))
    rss["peak_clients_by_worker"] = peak


def _resubscribe(result: dict[str, Any], log: SoakLog, workers: int) -> dict[str, Any]:
    """Per Redis kill and worker: notice delay, outage_s, and Redis ready → resubscribed."""
    rows: list[dict[str, Any]] = []
    t0 = result["t0"]
    for number, kill in enumerate(result["redis_kills"], 1):
        row: dict[str, Any] = {"kill": number, "at_s": kill["at_s"], "down_s": kill["down_s"]}
        for index in range(workers):
            start = next(
                (e for e in log.of("redis_outage_start", index) if e["t"] >= kill["killed_at"]),
                None,
            )
            # A worker that died during the outage comes back through a successor, whose
            # first subscription is a redis_subscribed rather than a redis_outage_end.
            end = next(
                (
                    e
                    for e in log.events
                    if e.get("worker") == index
                    and e.get("event") in ("redis_outage_end", "redis_subscribed")
                    and e["t"] >= kill["killed_at"]
                ),
                None,
            )
            outage_s = None
            if end is not None and end["event"] == "redis_outage_end":
                outage_s = end.get("outage_s")
            elif end is not None and start is not None:
                outage_s = round(end["t"] - start["t"], 3)
            row[f"w{index}"] = {
                "noticed_s": round(start["t"] - kill["killed_at"], 3) if start else None,
                "outage_s": outage_s,
                "ready_to_subscribed_s": round(end["t"] - kill["ready_at"], 3) if end else None,
                "via_successor": end is not None and end["event"] == "redis_subscribed",
            }
        rows.append(row)
    unexplained = [
        {"worker": e.get("worker"), "at_s": round(e["t"] - t0, 3), "error": e.get("error")}
        for e in log.of("redis_outage_start")
        if e["t"] >= t0
        and not any(
            k["killed_at"] - 1.0 <= e["t"] <= k["ready_at"] + 5.0 for k in result["redis_kills"]
        )
    ]
    outages = [float(e["outage_s"]) for e in log.of("redis_outage_end") if e["t"] >= t0]
    outages += [
        float(cell["outage_s"])
        for row in rows
        for key, cell in row.items()
        if key.startswith("w") and cell["via_successor"] and cell["outage_s"] is not None
    ]
    ready_to = [
        cell["ready_to_subscribed_s"]
        for row in rows
        for key, cell in row.items()
        if key.startswith("w") and cell["ready_to_subscribed_s"] is not None
    ]
    missing = sum(
        1
        for row in rows
        for key, cell in row.items()
        if key.startswith("w") and cell["ready_to_subscribed_s"] is None
    )
    return {
        "per_kill": rows,
        "max_outage_s": max(outages, default=None),
        "max_ready_to_subscribed_s": max(ready_to, default=None),
        "outages_logged": len(outages),
        "not_resubscribed": missing,
        "unexplained_outages": unexplained,
    }


def _worker_restart(result: dict[str, Any], log: SoakLog) -> dict[str, Any]:
    kill = result["worker_kill"]
    if not kill:
        return {}
    index, killed_at = kill["worker"], kill["killed_at"]
    exited = next((e for e in log.of("worker_exited", index) if e["t"] >= killed_at - 0.5), None)
    started = next((e for e in log.of("worker_started", index) if e["t"] >= killed_at), None)
    subscribed = None
    if started is not None:
        subscribed = next(
            (e for e in log.of("redis_subscribed", index) if e["t"] >= started["t"]), None
        )
    out: dict[str, Any] = {"worker": index, "old_pid": kill["pid"]}
    if exited is not None:
        out["exit_code"] = exited.get("exit_code")
        out["kill_to_exited_s"] = round(exited["t"] - killed_at, 3)
    if started is not None:
        out["new_pid"] = started.get("pid")
        out["kill_to_started_s"] = round(started["t"] - killed_at, 3)
    if subscribed is not None:
        out["kill_to_subscribed_s"] = round(subscribed["t"] - killed_at, 3)
        if exited is not None:
            out["exited_to_subscribed_s"] = round(subscribed["t"] - exited["t"], 3)
    return out


def latency_summary(hist: dict[str, int]) -> dict[str, Any]:
    """Percentiles of the load process's 1 ms latency histogram."""
    counts = sorted((int(ms), n) for ms, n in hist.items())
    total = sum(n for _, n in counts)
    if not total:
        return {"deliveries": 0}
    out: dict[str, Any] = {"deliveries": total}
    for label, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        target, seen = q * total, 0
        for ms, n in counts:
            seen += n
            if seen >= target:
                out[label] = ms
                break
    out["max_ms"] = counts[-1][0]
    out["over_1s"] = sum(n for ms, n in counts if ms >= 1000)
    return out
