"""The push load generator of `bench.push`: GET /api/push/<token> over keep-alive aiohttp
connections, at most `--concurrency` requests in flight, on loopback only.

Protocol with the harness: one JSON object per line. It prints {"event": "ready"}, then
obeys commands from stdin:

- {"cmd": "open", "round": R, "rate": X, "count": N, "time_limit_s": T}: push N at X/s
  (request i is due at start + i/X and never skipped to catch up; with every slot in
  flight it waits for one, and counts itself late), stopping early at T seconds;
- {"cmd": "closed", "round": R, "duration_s": D, "max_requests": M}: every slot sends its
  next push as soon as its last one is answered, for D seconds or M pushes;
- {"cmd": "quit"} (or EOF).

Each push is `?msg=<tag>&ping=12.3`, the tag naming the round, its seq and the
`time.time_ns()` taken just before the request is sent (bench.stats.push_tag), so a client
can time its delivery. Push seq i uses token i mod --bots. After each round it prints
{"event": "done", ...}: pushes sent, answers by status (0: no answer), 0/1 per seq for
"answered 200" (open loop only), the round's wall time and the answer-time percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from array import array
from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

import aiohttp
import orjson
import uvloop
from yarl import URL

from ..stats import percentile, push_tag

PUSH_PATH: Final = "/api/push/"
# Ample for a loopback answer; a request that takes longer counts as no answer (status 0).
REQUEST_TIMEOUT_S: Final = 10.0


def push_tokens(bots: int) -> list[str]:
    """The tokens of bots push-0 … push-(bots-1), as the harness gives them to the relay."""
    return [f"bench-push-token-{index:06d}" for index in range(bots)]


def push_bot(index: int) -> str:
    """The bot token `index` pushes as."""
    return f"push-{index}"


def emit(event: str, **fields: Any) -> None:
    """One event line to the harness."""
    with contextlib.suppress(BrokenPipeError):
        sys.stdout.buffer.write(orjson.dumps({"event": event, **fields}) + b"\n")
        sys.stdout.buffer.flush()


class Pusher:
    """The session, its slots, and one round's record: status and answer time per seq."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, bots: int) -> None:
        self.session = session
        self.prefixes = [
            f"{base_url}{PUSH_PATH}{token}?ping=12.3&msg=" for token in push_tokens(bots)
        ]
        self.statuses = array("h")
        self.answer_ns = array("q")
        self.first_sent_ns = 0

    def reset(self, count: int) -> None:
        """A fresh record for up to `count` pushes."""
        self.statuses = array("h", [-1]) * count
        self.answer_ns = array("q", [0]) * count
        self.first_sent_ns = 0

    async def push(self, round_id: int, seq: int) -> None:
        """Push number `seq`: its status (0 for no answer) and answer time are recorded."""
        sent_ns = time.time_ns()
        self.first_sent_ns = self.first_sent_ns or sent_ns
        url = URL(
            self.prefixes[seq % len(self.prefixes)] + push_tag(round_id, seq, sent_ns), encoded=True
        )
        try:
            async with self.session.get(url) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        self.statuses[seq] = status
        self.answer_ns[seq] = time.time_ns() - sent_ns

    def summary(self, sent: int, elapsed_s: float, cpu_s: float) -> dict[str, Any]:
        """The round's "done" fields, for the first `sent` pushes."""
        statuses = self.statuses[:sent]
        answers = sorted(self.answer_ns[:sent])
        return {
            "sent": sent,
            "statuses": {str(code): n for code, n in sorted(Counter(statuses).items())},
            "accepted": statuses.count(200),
            "first_sent_ns": self.first_sent_ns,
            "elapsed_s": elapsed_s,
            "answer_p50_ms": percentile(answers, 0.50) / 1e6,
            "answer_p99_ms": percentile(answers, 0.99) / 1e6,
            "answer_max_ms": answers[-1] / 1e6 if answers else float("nan"),
            "load_cpu_s": cpu_s,
        }


async def open_loop(pusher: Pusher, command: dict[str, Any], slots: int) -> dict[str, Any]:
    """Pushes at a fixed rate, at most `slots` in flight; "done" with 0/1 per seq."""
    round_id, rate, count = int(command["round"]), float(command["rate"]), int(command["count"])
    time_limit_s = float(command["time_limit_s"])
    pusher.reset(count)
    gate = asyncio.Semaphore(slots)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    cpu_start, start = time.process_time(), loop.time()
    late = sent = 0

    async def one(seq: int) -> None:
        try:
            await pusher.push(round_id, seq)
        finally:
            gate.release()

    for seq in range(count):
        due = start + seq / rate
        if loop.time() - start > time_limit_s:
            break
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        if gate.locked():
            late += 1
        await gate.acquire()
        task = asyncio.create_task(one(seq))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        sent += 1
    # Each push is slotted 1/rate apart: exactly count/rate when on schedule.
    elapsed_s = max(loop.time() - start, sent / rate)
    await asyncio.gather(*tasks)
    summary = pusher.summary(sent, elapsed_s, time.process_time() - cpu_start)
    statuses = pusher.statuses[:sent]
    return {**summary, "late": late, "mask": [int(code == 200) for code in statuses]}


async def closed_loop(pusher: Pusher, command: dict[str, Any], slots: int) -> dict[str, Any]:
    """Every slot pushes again as soon as answered, for a duration or a count."""
    round_id, limit = int(command["round"]), int(command["max_requests"])
    pusher.reset(limit)
    loop = asyncio.get_running_loop()
    cpu_start, start = time.process_time(), loop.time()
    end = start + float(command["duration_s"])
    next_seq = 0

    async def slot() -> None:
        nonlocal next_seq
        while next_seq < limit and loop.time() < end:
            seq = next_seq
            next_seq += 1
            await pusher.push(round_id, seq)

    await asyncio.gather(*(slot() for _ in range(slots)))
    elapsed_s = loop.time() - start
    return pusher.summary(next_seq, elapsed_s, time.process_time() - cpu_start)


async def serve(args: argparse.Namespace) -> int:
    """Says "ready", then runs the harness's rounds until "quit" or EOF."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        pusher = Pusher(session, args.base_url, args.bots)
        emit("ready")
        while line := await stdin.readline():
            command = orjson.loads(line)
            name = command["cmd"]
            if name == "open":
                emit("done", **await open_loop(pusher, command, args.concurrency))
            elif name == "closed":
                emit("done", **await closed_loop(pusher, command, args.concurrency))
            elif name == "quit":
                break
            else:
                emit("error", error=f"unknown command {name!r}")
                return 2
    return 0


async def amain(args: argparse.Namespace) -> int:
    """`serve`, within the process's lifetime."""
    try:
        async with asyncio.timeout(args.max_lifetime_s):
            return await serve(args)
    except TimeoutError:
        emit("error", error=f"lifetime of {args.max_lifetime_s} s ran out")
        return 3


def main(argv: Sequence[str] | None = None) -> int:
    """The load generator's entry point (`python -m bench.push.load`, started by bench.push)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base-url", required=True, help="the relay's HTTP plane (loopback)")
    parser.add_argument("--bots", type=int, required=True, help="tokens, one per bot")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--max-lifetime-s", type=float, required=True)
    args = parser.parse_args(argv)
    host = URL(args.base_url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        parser.error(f"--base-url must be on loopback, not {host!r}")
    return uvloop.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
