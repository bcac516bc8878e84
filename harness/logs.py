"""The relay's JSON log: followed line by line as records to wait on, or scanned whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, Final

import orjson

from .processes import HarnessError

Record = dict[str, Any]
Match = str | Callable[[Record], bool]
# How often a file is read again while someone waits on it.
POLL_S: Final = 0.02
WARNING_LEVELS: Final = ("WARNING", "ERROR", "CRITICAL")


def parse_line(text: str) -> Record:
    """One log line as a record; a line that is not a JSON object is kept as "unparsed"."""
    try:
        record = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"event": "unparsed", "message": text}
    return record if isinstance(record, dict) else {"event": "unparsed", "message": text}


class LogFollower:
    """A relay's log lines as records, and waits on them.

    Fed in one of two ways: `pump` reads a pipe, record by record as the relay writes them
    (what tests wait on); or, given `path`, the file is read whenever someone asks, so that
    nothing in this process has to drain it while the relay is under load (what
    benchmarks measure under). `keep` decides which records are kept (all by default): a
    long run can tally the rest instead of holding them. `running` says whether the
    writer still runs; a wait fails as soon as it stops without the awaited line.
    """

    def __init__(
        self,
        path: Path | None = None,
        *,
        keep: Callable[[Record], bool] | None = None,
        running: Callable[[], bool] | None = None,
    ) -> None:
        self.path = path
        self.keep = keep
        self.running = running
        self.records: list[Record] = []
        self.raw_lines: list[str] = []  # kept for a pipe only: a file has them already
        self.ended = False  # the pipe reached EOF
        self._closed = False
        self._file: IO[bytes] | None = None
        self._partial = b""
        self._changed = asyncio.Event()

    def feed(self, text: str) -> None:
        """One line, without its newline."""
        if self.path is None:
            self.raw_lines.append(text)
        record = parse_line(text)
        if self.keep is None or self.keep(record):
            self.records.append(record)
        self._notify()

    def _notify(self) -> None:
        # A fresh event per change, so every waiter of the old one wakes and none clears
        # another's.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def pump(self, stream: asyncio.StreamReader) -> None:
        """Feeds every line of a pipe until EOF."""
        self.ended = False
        async for line in stream:
            self.feed(line.decode(errors="replace").rstrip("\n"))
        self.ended = True
        self._notify()

    def poll(self) -> None:
        """Reads what the file gained since last time (nothing for a pipe, or once closed)."""
        if self.path is None or self._closed:
            return
        if self._file is None:
            if not self.path.exists():
                return
            self._file = self.path.open("rb")
        data = self._partial + self._file.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self.feed(line.decode(errors="replace"))

    def events(self, name: str) -> list[Record]:
        """Every kept record of this event, in order."""
        self.poll()
        return [r for r in self.records if r.get("event") == name]

    def warnings(self) -> list[Record]:
        """Every kept record at WARNING and above."""
        self.poll()
        return [r for r in self.records if r.get("level") in WARNING_LEVELS]

    def _over(self) -> bool:
        return self.ended or (self.running is not None and not self.running())

    async def wait_for(self, match: Match, *, count: int = 1, timeout_s: float = 20.0) -> Record:
        """Waits until `count` kept records match; returns the last of them.

        Raises HarnessError when the writer stops first, or after `timeout_s`.
        """
        predicate = (lambda r: r.get("event") == match) if isinstance(match, str) else match
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        scanned = found = 0
        while True:
            changed = self._changed
            over = self._over()  # before the last read, so no line written at exit is missed
            self.poll()
            for record in self.records[scanned:]:
                scanned += 1
                if predicate(record):
                    found += 1
                    if found == count:
                        return record
            if over:
                raise HarnessError(f"relay exited before {match!r}:\n{self.tail()}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise HarnessError(f"no {match!r} ×{count} in relay log:\n{self.tail()}")
            wait_s = remaining if self.path is None else min(remaining, POLL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait_s)

    def tail(self, lines: int = 30) -> str:
        """The last lines of the log, for an error message."""
        if self.path is None:
            return "\n".join(self.raw_lines[-lines:])
        if not self.path.exists():
            return "(no log file)"
        text = self.path.read_bytes().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        """Closes the file, if one was opened; the records stay."""
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None


def scan_relay_log(path: Path, info_events: Sequence[str] = ()) -> dict[str, int]:
    """Counts of the relay's WARNING and ERROR events, by event name, over a whole log file;
    plus those of the INFO events named in `info_events` (e.g. "client_backed_up")."""
    counts: dict[str, int] = {}
    wanted = [f'"event":"{name}"'.encode() for name in info_events]
    with path.open("rb") as log:
        for line in log:
            # Most lines are INFO; a substring test spares parsing them all.
            if (
                b'"level":"WARNING"' not in line
                and b'"level":"ERROR"' not in line
                and not any(event in line for event in wanted)
            ):
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            key = f"{record.get('level')}:{record.get('event', record.get('message', '?'))}"
            counts[key] = counts.get(key, 0) + 1
    return counts
