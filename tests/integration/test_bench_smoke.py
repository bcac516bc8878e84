"""Every benchmark program, at a tiny size, still runs and prints its tables.

A smoke test, not a measurement: a handful of clients for a second or two, and nothing
is asserted about the figures or how long anything took; only that each program exits 0
and prints each of its tables (the header row, the rule under it, at least one data row).
So a refactor of bench/ or of the harness it shares with these tests cannot silently
break the benchmark. The programs run concurrently, each a subprocess, each bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from harness import chromium
from harness.processes import ROOT

# Each program's tiny invocation, and the first header cells of each table it prints.
PROGRAMS: dict[str, tuple[Sequence[str], Sequence[Sequence[str]]]] = {
    "bench.run": (
        (
            "--clients", "4", "--rate", "4", "--duration", "1", "--drain-timeout", "2",
            "--throughput-clients", "4", "--throughput-rates", "20", "--throughput-step", "1",
            "--filter-clients", "8", "--idle-clients", "4",
            "--burst-messages", "20", "--burst-clients", "4", "--burst-policies", "conflate",
            "--slow-clients", "4", "--slow-policies", "conflate", "--connect-concurrency", "8",
            "--no-floor",  # its own test below
        ),
        (
            ("clients", "p50 ms", "p99 ms"),  # the scenario table
            ("msg/s", "published/s"),  # throughput
            ("run", "msgs/client"),  # filters
            ("clients", "connected", "relay holds"),  # idle memory
            ("policy", "clients", "publish ms"),  # burst
            ("run", "readers"),  # one stalled client
        ),
    ),
    "bench.flood": (
        (
            "--junk", "50", "--batch", "25", "--no-expiry", "--timeout", "60",
            "--silence-timeout", "1.5", "--silence-for", "0.5",
        ),
        (("measure", "value"),),
    ),
    "bench.history": (
        ("--days", "1", "--keep-raw-days", "1", "--requests", "2", "--warmups", "0"),
        (("stage", "used_memory MB"), ("endpoint", "median ms"), ("window", "messages.count")),
    ),
    "bench.push": (
        (
            "--clients", "5", "--bots", "3", "--rate", "20", "--duration", "1",
            "--drain-timeout", "2", "--concurrency", "4", "--connect-concurrency", "5",
        ),
        (("clients", "mode", "pushes/s offered", "pushes/s accepted"),),
    ),
    "bench.soak": (
        (
            "--duration", "10", "--clients", "4", "--rate", "5", "--workers", "2",
            "--redis-kill-every", "0", "--worker-kill-at", "4", "--warmup", "1",
        ),
        (("measure", "value", "bar"),),
    ),
}  # fmt: skip
# The notification load (bench/notifying.py): the scenario table with 3 --notify channels
# and flapping bots, as the figure is measured, at a tiny size.
NOTIFYING = (
    "--clients", "4", "--rate", "4", "--duration", "1", "--drain-timeout", "2",
    "--no-throughput", "--no-filters", "--no-idle", "--no-burst", "--no-slow", "--no-floor",
    "--notify-channels", "3", "--flapping-bots", "5",
    "--relay-args", "--silence-timeout 1 --silence-for 0",
)  # fmt: skip
# The floor part alone: the relay and the bare picows relay, 20 clients each, one round.
FLOOR = (
    "--no-scenarios", "--no-throughput", "--no-filters", "--no-idle", "--no-burst", "--no-slow",
    "--floor-clients", "20", "--rate", "5", "--duration", "1", "--drain-timeout", "5",
    "--connect-concurrency", "10", "--repeat", "1",
)  # fmt: skip
FLOOR_HEADER = ("clients", "server", "p50 ms", "p99 ms", "lost")
DASHBOARD = (("--messages", "3", "--interval", "0.3", "--repeat", "1"), (("run", "seen"),))
# Each program takes seconds at these sizes; this bounds a hung one.
RUN_TIMEOUT_S = 200.0


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table in `text`: (header cells, data rows' cells)."""
    found = []
    lines = text.splitlines()
    index = 0
    while index < len(lines) - 1:
        if lines[index].startswith("|") and set(lines[index + 1]) <= set("|-: "):
            header = [cell.strip() for cell in lines[index].strip("|").split("|")]
            index += 2
            rows = []
            while index < len(lines) and lines[index].startswith("|"):
                rows.append([cell.strip() for cell in lines[index].strip("|").split("|")])
                index += 1
            found.append((header, rows))
        else:
            index += 1
    return found


def missing_tables(output: str, headers: Sequence[Sequence[str]]) -> list[str]:
    """The expected tables not printed, or printed without a data row."""
    printed = tables(output)
    problems = []
    for expected in headers:
        match = [rows for header, rows in printed if header[: len(expected)] == list(expected)]
        if not match:
            problems.append(f"no table headed {' | '.join(expected)}")
        elif not match[0]:
            problems.append(f"the table headed {' | '.join(expected)} has no data row")
    return problems


async def run_program(module: str, args: Sequence[str]) -> tuple[int, str, str]:
    """`python -m module args` from the repository root: (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        # SIGTERM first: the program stops its own children on the way out.
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 20.0)
        if process.returncode is None:
            process.kill()
        stdout, stderr = await process.communicate()
        return -1, stdout.decode(errors="replace"), stderr.decode(errors="replace")
    code = process.returncode
    assert code is not None
    return code, stdout.decode(errors="replace"), stderr.decode(errors="replace")


def problems_of(
    module: str, result: tuple[int, str, str], headers: Sequence[Sequence[str]]
) -> list[str]:
    """What is wrong with one program's run, each line naming the program."""
    code, stdout, stderr = result
    if code != 0:
        return [f"{module} exited {code}; its stderr ends:\n{stderr[-3000:]}"]
    return [f"{module}: {problem}" for problem in missing_tables(stdout, headers)]


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
async def test_every_benchmark_prints_its_tables_at_a_tiny_size() -> None:
    results = await asyncio.gather(
        *(run_program(module, args) for module, (args, _) in PROGRAMS.items())
    )
    problems = [
        problem
        for (module, (_, headers)), result in zip(PROGRAMS.items(), results, strict=True)
        for problem in problems_of(module, result, headers)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
async def test_the_dashboard_benchmark_prints_its_table_at_a_tiny_size() -> None:
    problem = chromium.missing()
    if problem:
        pytest.skip(problem)
    args, headers = DASHBOARD
    result = await run_program("bench.dashboard", args)
    problems = problems_of("bench.dashboard", result, headers)
    assert not problems, "\n".join(problems)


def test_the_table_reader_needs_a_header_a_rule_and_a_row() -> None:
    text = "intro\n\n| a | b |\n|--:|:--|\n| 1 | x |\n\n| c |\n|---|\n"
    assert tables(text) == [(["a", "b"], [["1", "x"]]), (["c"], [])]
    assert missing_tables(text, [("a",)]) == []
    assert missing_tables(text, [("c",)]) == ["the table headed c has no data row"]
    assert missing_tables(text, [("d",)]) == ["no table headed d"]


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
async def test_the_notification_load_runs_beside_the_scenario_table() -> None:
    result = await run_program("bench.run", NOTIFYING)
    assert not problems_of("bench.run", result, [("clients", "p50 ms", "p99 ms")])
    assert "Notification load: 3 channel(s), 5 flapping bot(s);" in result[1]


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
async def test_the_floor_part_measures_the_relay_beside_a_bare_relay(tmp_path: Path) -> None:
    results_path = tmp_path / "floor.json"
    result = await run_program("bench.run", [*FLOOR, "--json", str(results_path)])
    assert not problems_of("bench.run", result, [FLOOR_HEADER])
    printed = [rows for header, rows in tables(result[1]) if header[:5] == list(FLOOR_HEADER)]
    assert [row[:2] for row in printed[0]] == [["20", "relay"], ["20", "bare picows"]]
    # Only the floor's table: the scenario table was skipped.
    assert len(tables(result[1])) == 1
    rows = orjson.loads(results_path.read_bytes())["floor"]["rows"]
    bare = next(row for row in rows if row["server"] == "bare picows")
    [run] = bare["runs"]
    # The bare relay delivered every published message to every client, once and in order.
    assert run["published"] > 0
    assert run["expected"] == run["published"] * 20
    assert (run["delivered"], run["lost"], run["duplicates"], run["out_of_order"]) == (
        run["expected"],
        0,
        0,
        0,
    )
    assert run["all_received"] is True
