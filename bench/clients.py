"""Load-generator process: N picows WebSocket clients on one uvloop loop, recording arrivals.

Clients come in groups, each with its own URL (so its own query, i.e. its own server-side
filter): `--url U --clients N` is one group, `--group URL COUNT` (repeatable) several.

Protocol with the harness: one JSON object per line. It prints {"event": "ready"} once
connected, then obeys commands read from stdin: "arm" (fresh preallocated buffers for a
round), "collect" (wait until every client has the round's messages or a deadline, print
"complete", analyse, write the result file, print "result"), and "quit". EOF on stdin,
or its own lifetime running out, also ends it. "collect" may carry "wanted": per group,
a list of 0/1 per seq of the round, the subset that group's filter lets through; without
it every client expects every seq; with "frames" (a count) it waits only until every
client has had that many frames, recorded or not (a round armed with capacity 0 counts
frames without keeping them, as overflow). With "raw_out" it also writes the round's latencies
(pickled int64 arrays) there, for the harness to merge with other client processes'.

The harness may run several of these processes, each with its share of every group (the
same groups in the same order, so "wanted" means the same in each).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pickle
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from harness.processes import raise_nofile

from .stats import ClientLog, analyse_round

_now_ns = time.time_ns
_TEXT = WSMsgType.TEXT
_CLOSE = WSMsgType.CLOSE
POLL_S = 0.01
FD_MARGIN = 64


class RecordingClient(WSListener):
    """Stores (arrival ns, payload bytes) per frame and nothing else: parsing waits until later."""

    def __init__(self) -> None:
        super().__init__()
        self.group = 0
        self.transport: WSTransport | None = None
        self.times_ns: list[int] = []
        self.payloads: list[bytes] = []
        self.count = 0
        self.capacity = 0
        self.overflow = 0
        self.disconnected = False

    def arm(self, capacity: int) -> None:
        """Fresh buffers for `capacity` frames of the next round."""
        # Preallocated so the receive path never grows a list mid-round.
        self.times_ns = [0] * capacity
        self.payloads = [b""] * capacity
        self.count = 0
        self.capacity = capacity
        self.overflow = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == _TEXT:
            index = self.count
            if index < self.capacity:
                self.times_ns[index] = _now_ns()
                self.payloads[index] = frame.get_payload_as_bytes()
                self.count = index + 1
            else:
                self.overflow += 1
        elif kind == _CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.disconnected = True

    def log(self) -> ClientLog:
        """What it recorded this round, for the analysis."""
        return ClientLog(
            self.times_ns, self.payloads, self.count, self.overflow, self.disconnected, self.group
        )

    def last_payload(self) -> bytes | None:
        """The last frame it recorded, if any."""
        return self.payloads[self.count - 1] if self.count else None


def emit(event: str, **fields: Any) -> None:
    """One event line to the harness."""
    # A harness that is gone cannot read it; the parent-death signal ends us anyway.
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.buffer.write(orjson.dumps({"event": event, **fields}) + b"\n")
        sys.stdout.buffer.flush()


def interleave(groups: Sequence[tuple[str, int]]) -> list[tuple[int, str]]:
    """(group index, URL) per connection, round-robin over the groups.

    Interleaved rather than group after group, so that no filter's clients hold all the
    early (or late) sockets, in the relay's accept order or in this process's own.
    """
    order: list[tuple[int, str]] = []
    for turn in range(max((count for _, count in groups), default=0)):
        order += [(g, url) for g, (url, count) in enumerate(groups) if turn < count]
    return order


async def connect_all(
    groups: Sequence[tuple[str, int]], concurrency: int, timeout_s: float
) -> tuple[list[RecordingClient], list[str]]:
    """Connects every group's clients; those that connected, and why the rest did not."""
    # Bounded concurrency: a burst of thousands of SYNs overflows the relay's accept
    # backlog, and the kernel's retry after 1 s would then dominate the connect time.
    gate = asyncio.Semaphore(concurrency)
    errors: list[str] = []

    async def one(group: int, url: str) -> RecordingClient | None:
        async with gate:
            try:
                _transport, listener = await asyncio.wait_for(
                    ws_connect(RecordingClient, url, websocket_handshake_timeout=timeout_s),
                    timeout_s,
                )
            except Exception as exc:  # a failed connect is reported, and the rest go on
                errors.append(repr(exc))
                return None
        if not isinstance(listener, RecordingClient):
            # picows returns without a listener when the server closes the connection
            # before answering the upgrade (e.g. a relay out of file descriptors).
            errors.append("connection closed before the upgrade was answered")
            return None
        listener.group = group
        return listener

    results = await asyncio.gather(*(one(group, url) for group, url in interleave(groups)))
    return [client for client in results if client is not None], errors


def _round_finished(client: RecordingClient, round_id: int, last_seq: int) -> bool:
    payload = client.last_payload()
    if payload is None:
        return False
    try:
        data = orjson.loads(payload)["data"]
        return bool(data["round"] == round_id and data["seq"] == last_seq)
    except (ValueError, KeyError, TypeError):
        return False


def round_targets(
    count: int, groups: int, wanted: Sequence[Sequence[int]] | None
) -> list[tuple[int, int]]:
    """Per group: (messages it should get, the seq of its last one; -1 if it gets none)."""
    if wanted is None:
        return [(count, count - 1)] * groups
    targets = []
    for mask in wanted:
        seqs = [seq for seq, flag in enumerate(mask[:count]) if flag]
        targets.append((len(seqs), seqs[-1] if seqs else -1))
    return targets


async def wait_for_round(
    clients: Sequence[RecordingClient],
    round_id: int,
    targets: Sequence[tuple[int, int]],
    timeout_s: float,
) -> bool:
    """Until every live client holds the round's last message, or the deadline; True if all did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = [c for c in clients if targets[c.group][0] > 0]
    while pending and loop.time() < deadline:
        # Only the cheap count check runs every poll; the last payload is parsed once a
        # client has enough frames, so duplicates cannot end the wait early.
        pending = [
            c
            for c in pending
            if not c.disconnected
            and not (
                c.count >= targets[c.group][0] and _round_finished(c, round_id, targets[c.group][1])
            )
        ]
        if pending:
            await asyncio.sleep(POLL_S)
    return not pending


async def wait_for_frames(
    clients: Sequence[RecordingClient], frames: int, timeout_s: float
) -> bool:
    """Until every live client has had `frames` text frames since it was armed (recorded
    or not: a round armed with no room only counts them), or the deadline; True if all did."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    pending = list(clients)
    while pending and loop.time() < deadline:
        pending = [c for c in pending if not c.disconnected and c.count + c.overflow < frames]
        if pending:
            await asyncio.sleep(POLL_S)
    return not pending


async def close_all(clients: Sequence[RecordingClient], timeout_s: float) -> None:
    """Closes every client, waiting up to `timeout_s` for them to go."""
    waits = []
    for client in clients:
        transport = client.transport
        if transport is None or client.disconnected:
            continue
        with contextlib.suppress(Exception):
            transport.send_close(WSCloseCode.OK)
            transport.disconnect()
        waits.append(transport.wait_disconnected())
    if waits:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*waits, return_exceptions=True), timeout_s)


async def collect(
    clients: Sequence[RecordingClient],
    groups: int,
    command: dict[str, Any],
    cpu_at_arm: float,
    wall_at_arm: float,
) -> bool:
    """The "collect" command: wait for the round, say "complete", analyse it, write the
    result, say "result"; False (after an "error") for a command it cannot follow."""
    round_id = int(command["round"])
    count = int(command["count"])
    wanted: list[list[int]] | None = command.get("wanted")
    if wanted is not None and len(wanted) != groups:
        emit("error", error=f"{len(wanted)} masks for {groups} groups")
        return False
    targets = round_targets(count, groups, wanted)
    timeout_s = float(command["timeout_s"])
    if "frames" in command:  # a round that only counts (see wait_for_frames)
        all_received = await wait_for_frames(clients, int(command["frames"]), timeout_s)
    else:
        all_received = await wait_for_round(clients, round_id, targets, timeout_s)
    cpu_s = time.process_time() - cpu_at_arm
    wall_s = time.perf_counter() - wall_at_arm
    emit("complete", round=round_id, all_received=all_received)
    masks = None if wanted is None else [bytes(mask[:count]) for mask in wanted]
    raw: dict[str, Any] | None = {} if command.get("raw_out") else None
    analysis = analyse_round([c.log() for c in clients], round_id, count, masks, raw)
    result = analysis.to_json()
    result["all_received"] = all_received
    result["client_cpu_s"] = round(cpu_s, 3)
    result["client_wall_s"] = round(wall_s, 3)
    if raw is not None:
        # Latencies for the harness to merge with another client process's.
        data = pickle.dumps(raw, protocol=pickle.HIGHEST_PROTOCOL)
        await asyncio.to_thread(Path(command["raw_out"]).write_bytes, data)
    await asyncio.to_thread(Path(command["out"]).write_bytes, orjson.dumps(result))
    for client in clients:
        client.arm(0)  # frees the round's payloads before the next one
    emit("result", round=round_id, path=command["out"])
    return True


async def serve_commands(args: argparse.Namespace) -> int:
    """Connects, says "ready", then obeys the harness's commands until "quit" or EOF."""
    total = sum(count for _, count in args.groups)
    nofile = raise_nofile(total + FD_MARGIN)
    if nofile < total + FD_MARGIN:
        emit("error", error=f"RLIMIT_NOFILE {nofile} is too low for {total} clients")
        return 2
    started = time.perf_counter()
    clients, errors = await connect_all(
        args.groups, args.connect_concurrency, args.connect_timeout_s
    )
    emit(
        "ready",
        connected=len(clients),
        failed=len(errors),
        errors=sorted(set(errors))[:5],
        connect_s=round(time.perf_counter() - started, 3),
        nofile=nofile,
    )
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    cpu_at_arm = time.process_time()
    wall_at_arm = time.perf_counter()
    try:
        while True:
            line = await stdin.readline()
            if not line:
                return 0
            command = orjson.loads(line)
            name = command["cmd"]
            if name == "arm":
                for client in clients:
                    client.arm(int(command["capacity"]))
                cpu_at_arm = time.process_time()
                wall_at_arm = time.perf_counter()
                emit("armed", round=command["round"])
            elif name == "collect":
                if not await collect(clients, len(args.groups), command, cpu_at_arm, wall_at_arm):
                    return 2
            elif name == "quit":
                return 0
            else:
                emit("error", error=f"unknown command {name!r}")
                return 2
    finally:
        await close_all(clients, 3.0)
        emit("bye")


async def amain(args: argparse.Namespace) -> int:
    """`serve_commands`, within the process's lifetime."""
    try:
        async with asyncio.timeout(args.max_lifetime_s):
            return await serve_commands(args)
    except TimeoutError:
        emit("error", error=f"lifetime of {args.max_lifetime_s} s ran out")
        return 3


def main(argv: Sequence[str] | None = None) -> int:
    """The client process's entry point (`python -m bench.clients`, started by the fleet)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="one group: every client connects here")
    parser.add_argument("--clients", type=int, help="size of the --url group")
    parser.add_argument(
        "--group",
        nargs=2,
        action="append",
        default=[],
        metavar=("URL", "COUNT"),
        help="a group of COUNT clients connecting to URL (path and query included); repeatable",
    )
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument("--connect-timeout-s", type=float, default=10.0)
    parser.add_argument("--max-lifetime-s", type=float, required=True)
    args = parser.parse_args(argv)
    groups: list[tuple[str, int]] = [(url, int(count)) for url, count in args.group]
    if args.url is not None and args.clients is not None:
        groups.insert(0, (args.url, args.clients))
    elif args.url is not None or args.clients is not None:
        parser.error("--url and --clients go together")
    if not groups or any(count < 0 for _, count in groups):
        parser.error("give --url and --clients, or --group URL COUNT, with counts >= 0")
    args.groups = groups
    return uvloop.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
