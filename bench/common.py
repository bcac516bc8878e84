"""What the bench programs share: the relay they start, its fd room, even splits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from harness.processes import Children
from harness.relay import RelayProcess

# One publisher stands for one bot at up to 800 msg/s in the throughput search; the
# per-bot limit is not what is measured here.
RELAY_ARGS: Final = ("--log-level", "INFO", "--max-bot-rate", "1000000")


def bench_relay(
    children: Children,
    redis_url: str,
    log_path: Path,
    extra_args: Sequence[str] = (),
    cores: Iterable[int] | None = None,
) -> RelayProcess:
    """A relay at INFO with JSON logs to `log_path` (a file: nothing has to drain it while
    the relay is under load), registered with `children`, plus `extra_args`."""
    return RelayProcess(
        redis_url, *RELAY_ARGS, *extra_args, log_path=log_path, children=children, cores=cores
    )


def fd_room(relay: RelayProcess) -> dict[str, int]:
    """The relay's open-file limit, the descriptors it holds before any client, and so the
    most clients it can accept (each client is one descriptor)."""
    limit = relay.tree.nofile_limit()
    in_use = relay.tree.fds()
    return {"relay_nofile": limit, "relay_fds_idle": in_use, "relay_fd_room": limit - in_use}


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` in `parts` shares that differ by at most one, the larger first."""
    return [total // parts + (i < total % parts) for i in range(parts)]
