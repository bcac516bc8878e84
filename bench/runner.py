"""How a bench program runs: under uvloop, in a run directory, every child stopped at the end."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import uvloop

from harness.processes import Children, HarnessError

T = TypeVar("T")


def progress(text: str) -> None:
    """A progress line on stderr (stdout is the report's)."""
    print(text, file=sys.stderr, flush=True)


def cancel_on_sigterm() -> None:
    """SIGTERM unwinds the running task like Ctrl-C does, through every finally that stops
    a child."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def run_harness(
    name: str,
    main: Callable[[Children, Path], Awaitable[T]],
    *,
    keep_logs: bool,
    errors: tuple[type[BaseException], ...] = (HarnessError,),
) -> tuple[int, T | None]:
    """Runs one program under uvloop with a run directory and every child cleaned up.

    Returns (exit code, result): 0 and the coroutine's result, or the code for an
    interruption (130), a SIGTERM (143) or a harness failure (1), reported on stderr.
    """
    run_dir = Path(tempfile.mkdtemp(prefix=f"pingpong-{name.replace('.', '-')}-"))
    children = Children()
    failed = True
    try:
        result = uvloop.run(_awaited(main(children, run_dir)))
        failed = False
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT, None
    except asyncio.CancelledError:
        print(f"{name}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM, None
    except errors as exc:
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1, None
    finally:
        children.kill_all()
        if keep_logs or failed:
            print(f"{name}: logs kept in {run_dir}", file=sys.stderr)
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return 0, result


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


def report_main(
    name: str,
    args: argparse.Namespace,
    run: Callable[[argparse.Namespace, Children, Path], Awaitable[str]],
) -> int:
    """A program whose coroutine returns its Markdown report: runs it (see run_harness,
    with timeouts and OS errors counted as failures), prints the report, returns the code."""
    code, report = run_harness(
        name,
        lambda children, run_dir: run(args, children, run_dir),
        keep_logs=args.keep_logs,
        errors=(HarnessError, TimeoutError, OSError),
    )
    if code == 0:
        print(report)
    return code
