"""The soak's loss accounting: per session, which messages it should have had, and got."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .faults import Publisher
from .ranges import merge_ranges, range_count, subtract_ranges
from .relaylog import SoakLog

Window = tuple[float, float, str]


def worker_windows(log: SoakLog, workers: int, end_t: float) -> dict[int, list[Window]]:
    """Per worker index, the time windows in which it could not hear Redis (unwidened).

    "outage": redis_outage_start → redis_outage_end; "start-up": worker_started → its
    first redis_subscribed (a fresh worker accepts clients before it has subscribed);
    "dead": worker_exited → the start-up of its successor. An open window ends at end_t.
    """
    order = sorted((e for e in log.events if e.get("t") is not None), key=lambda e: e["t"])
    return {index: _windows_of(order, index, end_t) for index in range(workers)}


def _windows_of(order: Sequence[dict[str, Any]], index: int, end_t: float) -> list[Window]:
    windows: list[Window] = []
    outage_from: float | None = None
    starting_from: float | None = None
    for event in order:
        if event.get("worker") != index:
            continue
        name, t = event["event"], float(event["t"])
        if name == "redis_outage_start":
            outage_from = t
        elif name == "redis_outage_end":
            begin = t - float(event.get("outage_s", 0.0))
            windows.append((min(begin, outage_from or begin), t, "outage"))
            outage_from = None
        elif name == "worker_exited":
            if outage_from is not None:
                windows.append((outage_from, t, "outage"))
                outage_from = None
            starting_from = t
        elif name == "worker_started":
            if starting_from is not None:
                windows.append((starting_from, t, "dead"))
            starting_from = t
        elif name == "redis_subscribed" and starting_from is not None:
            windows.append((starting_from, t, "start-up"))
            starting_from = None
    if outage_from is not None:
        windows.append((outage_from, end_t, "outage"))
    if starting_from is not None:
        windows.append((starting_from, end_t, "start-up"))
    return windows


@dataclass(slots=True)
class Cuts:
    """Per worker, the seqs its windows (widened by the margin) take out of what a session
    on it should get: all together, and by kind of window."""

    publisher: Publisher
    margin: float
    all: dict[int, list[list[int]]] = field(default_factory=dict)
    by_kind: dict[int, dict[str, list[list[int]]]] = field(default_factory=dict)

    def seq_span(self, begin: float, end: float) -> list[int]:
        """Seqs whose PUBLISH overlapped [begin, end]: t_ack >= begin and t_send <= end."""
        return [
            bisect.bisect_left(self.publisher.t_ack, begin),
            bisect.bisect_right(self.publisher.t_send, end),
        ]

    def add(self, index: int, windows: Sequence[Window]) -> None:
        """One worker's windows."""
        m = self.margin
        self.all[index] = merge_ranges(self.seq_span(a - m, b + m) for a, b, _ in windows)
        self.by_kind[index] = {}
        for a, b, kind in windows:
            self.by_kind[index].setdefault(kind, []).append(self.seq_span(a - m, b + m))


@dataclass(slots=True)
class SessionTally:
    """Every session's deliveries against what it should have had, added up."""

    publisher: Publisher
    cuts: Cuts
    failed: list[list[int]]
    log: SoakLog
    t0: float
    end_t: float
    killed_pid: int | None
    killed_at: float | None
    expected: int = 0
    received: int = 0
    lost: int = 0
    never_opened: int = 0
    unknown_worker: int = 0
    dups: int = 0
    ooo: int = 0
    conflated: int = 0
    worker_changed: int = 0
    missed_in: dict[str, int] = field(
        default_factory=lambda: {"outage": 0, "start-up": 0, "dead": 0}
    )
    lost_examples: list[dict[str, Any]] = field(default_factory=list)
    lost_seqs: dict[int, int] = field(default_factory=dict)
    per_worker: dict[str, dict[str, int]] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)
    close_codes: dict[str, int] = field(default_factory=dict)

    def add(self, session: dict[str, Any]) -> None:
        """One session's record (as the load process wrote it)."""
        self.dups += session["dups"]
        self.ooo += session["ooo"]
        self.conflated += session["conflated"]
        self.worker_changed += session["worker_changed"]
        reason = session["end_reason"] or "?"
        self.ends[reason] = self.ends.get(reason, 0) + 1
        if session["close_code"] is not None:
            code = str(session["close_code"])
            self.close_codes[code] = self.close_codes.get(code, 0) + 1
        received = merge_ranges(session["ranges"])
        self.received += range_count(received)
        if session["open_at"] is None:
            self.never_opened += 1
            return
        if session["worker"] not in self.cuts.all:
            self.unknown_worker += 1
            return
        self._account(session, received)

    def _session_end(self, session: dict[str, Any]) -> float:
        end = float(session["end_at"] or self.end_t)
        if self.killed_pid is not None and session["pid"] == self.killed_pid:
            end = min(end, float(self.killed_at or end))
        return end

    def _account(self, session: dict[str, Any], received: list[list[int]]) -> None:
        worker = session["worker"]
        stats = self.per_worker.setdefault(str(worker), {"sessions": 0, "expected": 0, "lost": 0})
        stats["sessions"] += 1
        end = self._session_end(session)
        lo = bisect.bisect_right(self.publisher.t_send, float(session["open_at"]))
        hi = bisect.bisect_left(self.publisher.t_ack, end - self.cuts.margin)
        if hi <= lo:
            return
        span = subtract_ranges([[lo, hi]], self.failed)
        expected = subtract_ranges(span, self.cuts.all[worker])
        missing = subtract_ranges(expected, received)
        n_expected, n_lost = range_count(expected), range_count(missing)
        self.expected += n_expected
        self.lost += n_lost
        stats["expected"] += n_expected
        stats["lost"] += n_lost
        # What the windows took from this session (not losses: the relay was deaf).
        in_windows = subtract_ranges(span, merge_ranges([*expected, *received]))
        for kind, kind_cuts in self.cuts.by_kind[worker].items():
            outside = subtract_ranges([[lo, hi]], merge_ranges(kind_cuts))
            self.missed_in[kind] += range_count(subtract_ranges(in_windows, outside))
        for a, b in missing:
            for seq in range(a, b):
                self._lost_one(session, seq, end)

    def _lost_one(self, session: dict[str, Any], seq: int, end: float) -> None:
        self.lost_seqs[seq] = self.lost_seqs.get(seq, 0) + 1
        if len(self.lost_examples) >= 20:
            return
        publisher, t0 = self.publisher, self.t0
        heard = self.log.received.get(session["worker"], set())
        self.lost_examples.append(
            {
                "sid": session["sid"],
                "worker": session["worker"],
                "pid": session["pid"],
                "seq": seq,
                "published_at_s": round(publisher.t_send[seq] - t0, 3),
                "receivers": publisher.receivers[seq],
                "worker_logged_received": publisher.stamp[seq] in heard,
                "session_open_s": round(session["open_at"] - t0, 3),
                "session_end_s": round(end - t0, 3),
                "end_reason": session["end_reason"],
            }
        )
