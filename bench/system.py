"""Process-level helpers shared by the harness and its client processes: fd limits, parent death."""

from __future__ import annotations

import ctypes
import resource
import signal
import sys
from typing import Final

_PR_SET_PDEATHSIG: Final = 1


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


def die_with_parent() -> None:
    """For preexec_fn: the kernel kills the child when the harness dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
