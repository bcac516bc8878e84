"""Child processes: spawned to die with us, stopped in order, limited and pinned; free ports."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import resource
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import psutil

from pingpong_relay.redis_io.embedded import free_loopback_port

ROOT: Final = Path(__file__).resolve().parent.parent
_PR_SET_PDEATHSIG: Final = 1


class HarnessError(AssertionError):
    """What the harness waited for did not happen (a child exited, a wait ran out).

    An AssertionError, so a test fails with it as with any other unmet expectation; a
    benchmark reports it and exits 1.
    """


def free_port() -> int:
    """A free loopback TCP port (the relay's own helper, so there is one copy of it)."""
    return free_loopback_port()


def die_with_parent() -> None:
    """For preexec_fn: the kernel kills the child when we die, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def child_setup(nofile: int | None = None) -> Callable[[], None]:
    """A preexec_fn: die with this process and, given `nofile`, hold that many open files."""

    def setup() -> None:
        die_with_parent()
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    return setup


def raise_nofile(needed: int) -> int:
    """Raise the soft RLIMIT_NOFILE as far as the hard limit allows; returns the new soft limit.

    Children inherit it, which is how the relay (whose code we do not touch) gets enough fds.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, needed, 65536)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def pin(pid: int, cores: Iterable[int]) -> bool:
    """Pins a process, every thread it has so far, to these CPU cores (what `taskset -a -p`
    does; threads and children it starts later inherit it); False if it could not."""
    wanted = sorted(cores)
    with contextlib.suppress(psutil.Error, OSError, ValueError):
        process = psutil.Process(pid)
        process.cpu_affinity(wanted)
        # The call above sets one thread's mask (the main one); a running redis-server or
        # this harness already has others.
        for thread in process.threads():
            with contextlib.suppress(ProcessLookupError):  # a thread that just ended
                os.sched_setaffinity(thread.id, wanted)
        return True
    return False


def affinity(pid: int) -> set[int] | None:
    """The CPU cores a process may run on; None if it is gone."""
    with contextlib.suppress(psutil.Error, OSError):
        return set(psutil.Process(pid).cpu_affinity())
    return None


async def spawn(
    *argv: str, nofile: int | None = None, new_session: bool = False, **kwargs: Any
) -> asyncio.subprocess.Process:
    """A child process that dies with this one (see `die_with_parent`).

    `new_session`: its own session, so a Ctrl-C reaches only us, and we stop the children
    in order instead of racing their own SIGINT handling.
    """
    return await asyncio.create_subprocess_exec(
        *argv, start_new_session=new_session, preexec_fn=child_setup(nofile), **kwargs
    )


async def stop_process(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace_s`; reaps it either way."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.wait_for(process.wait(), 5.0)


class Children:
    """Every process a benchmark started, so that none outlives it, whatever ends the run."""

    def __init__(self) -> None:
        self._processes: list[asyncio.subprocess.Process] = []

    async def spawn(self, *argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        """`spawn` in its own session, from the repository root, and remembered."""
        process = await spawn(*argv, new_session=True, cwd=ROOT, **kwargs)
        self._processes.append(process)
        return process

    async def stop(self, process: asyncio.subprocess.Process, grace_s: float) -> None:
        """`stop_process`, and forget it."""
        await stop_process(process, grace_s)
        with contextlib.suppress(ValueError):
            self._processes.remove(process)

    def kill_all(self) -> None:
        """Last resort after the event loop is gone: SIGKILL whatever is still unreaped."""
        for process in self._processes:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(process.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError, OSError):
                    os.waitpid(process.pid, 0)
        self._processes.clear()
