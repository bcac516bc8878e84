"""`serve --workers N`: N relay processes on the same ports, and the supervisor that keeps them.

Each worker is a whole relay (its own Redis subscription, its own clients) bound with
SO_REUSEPORT, so the kernel spreads new connections over them. The supervisor starts
them, restarts one that crashes, passes SIGTERM/SIGINT on, and owns what they share: the
embedded Redis, if any, and a private directory of Unix sockets through which any worker
asks the others for their /metrics and /healthz, so that either endpoint answers for the
whole relay whichever worker the request lands on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Final, Protocol

from pingpong_relay.backoff import Backoff
from pingpong_relay.cluster.siblings import Worker, workers_health
from pingpong_relay.logs import setup_logging
from pingpong_relay.redis_io.resolve import resolve_redis_url
from pingpong_relay.settings import Settings
from pingpong_relay.tasks import cancel_and_wait

__all__ = ["ServiceManager", "WorkerEntry", "supervise"]

log = logging.getLogger("pingpong_relay.workers")

# Runs one relay in a worker process and returns its exit code: the CLI hands it in, so
# that this module need not import the application that imports it.
WorkerEntry = Callable[[Settings, "Worker"], int]

EXIT_FAILURE: Final = 1


class ServiceManager(Protocol):
    """Who the supervisor tells it is ready, alive and stopping (`app.sd_notify`'s
    SystemdNotifier, when systemd runs the relay): the supervisor is the main process."""

    async def keep_watchdog(self) -> None:
        """Pings the watchdog from this event loop until cancelled."""

    async def keep_status(
        self, probe: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
    ) -> None:
        """Says ready once `probe` is ok, and the status, until cancelled."""

    def stopping(self, status: str = ...) -> None:
        """Says shutdown has begun."""


# --- the worker process ---------------------------------------------------------------
class _WorkerField(logging.Filter):
    """Every log record of a worker says which one it came from."""

    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


def _die_with_parent() -> None:
    """A worker whose supervisor is killed (SIGKILL) must not live on holding the port."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def worker_main(settings: Settings, index: int, run_dir: str, run_worker: WorkerEntry) -> None:
    """The entry point of a worker process (spawned, so nothing is inherited but this);
    `run_worker` runs one relay and returns its exit code (the CLI's, handed in)."""
    _die_with_parent()
    stop_logging = setup_logging(settings.log_level, settings.log_format, background=True)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_WorkerField(index))
    try:
        code = run_worker(settings, Worker(index, settings.workers, Path(run_dir)))
    finally:
        stop_logging()
    raise SystemExit(code)


# --- the supervisor ------------------------------------------------------------------
RESTART_BACKOFF: Final = Backoff(base_s=1.0, cap_s=30.0)


@dataclass(slots=True)
class _Slot:
    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    restarts: int = 0
    crashes_in_a_row: int = 0


class Supervisor:
    """Starts the workers, restarts a crashed one, stops them all on SIGTERM/SIGINT."""

    def __init__(
        self,
        settings: Settings,
        start_worker: Callable[..., BaseProcess],
        systemd: ServiceManager | None = None,
    ) -> None:
        self.settings = settings
        self._start_worker = start_worker
        self._systemd = systemd
        self._slots = [_Slot(i) for i in range(settings.workers)]
        self._stopping = asyncio.Event()
        self._all_exited = asyncio.Event()
        self._failed = False
        self.run_dir = Path(tempfile.mkdtemp(prefix="pingpong-relay-"))

    def _ready_path(self, slot: _Slot) -> Path:
        return Worker(slot.index, self.settings.workers, self.run_dir).ready_path()

    def _spawn(self, slot: _Slot) -> None:
        self._ready_path(slot).unlink(missing_ok=True)
        process = self._start_worker(self.settings, slot.index, str(self.run_dir))
        slot.process, slot.started_at = process, time.monotonic()
        log.info(
            "worker %d started (pid %s)",
            slot.index,
            process.pid,
            extra={"event": "worker_started", "worker": slot.index, "pid": process.pid},
        )
        asyncio.get_running_loop().add_reader(process.sentinel, self._exited, slot)

    def _exited(self, slot: _Slot) -> None:
        process = slot.process
        assert process is not None
        asyncio.get_running_loop().remove_reader(process.sentinel)
        process.join()
        if self._stopping.is_set():
            if not any(s.process is not None and s.process.is_alive() for s in self._slots):
                self._all_exited.set()
            return
        lived_s = time.monotonic() - slot.started_at
        log.error(
            "worker %d (pid %s) exited with %s after %.1f s",
            slot.index,
            process.pid,
            process.exitcode,
            lived_s,
            extra={
                "event": "worker_exited",
                "worker": slot.index,
                "pid": process.pid,
                "exit_code": process.exitcode,
            },
        )
        # A worker that returns an error before it said it had started (a port in use, a
        # bad certificate) could not start, however long that took on a loaded machine:
        # restarting it would only loop, so the supervisor gives up instead. Killed by a
        # signal, or failing after it started, it crashed: that is what restarts are for.
        exit_code = process.exitcode or 0
        if slot.restarts == 0 and exit_code > 0 and not self._ready_path(slot).exists():
            log.error(
                "worker %d could not start; stopping the relay",
                slot.index,
                extra={"event": "worker_start_failed", "worker": slot.index},
            )
            self._failed = True
            self._stopping.set()
            return
        # A worker that crashes again soon waits longer each time (1 s doubling to 30 s).
        slot.crashes_in_a_row = 0 if lived_s > 60 else slot.crashes_in_a_row + 1
        delay_s = RESTART_BACKOFF.delay(slot.crashes_in_a_row)
        slot.restarts += 1
        log.info(
            "restarting worker %d in %.1f s",
            slot.index,
            delay_s,
            extra={"event": "worker_restarting", "worker": slot.index, "delay_s": delay_s},
        )
        asyncio.get_running_loop().call_later(delay_s, self._respawn, slot)

    def _respawn(self, slot: _Slot) -> None:
        if not self._stopping.is_set():
            self._spawn(slot)

    async def run(self) -> int:
        """Keeps the workers running until SIGTERM or SIGINT, or until one cannot start; then
        stops them all. The exit code: 0, or 1 when a worker could not start."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        log.info(
            "supervising %d workers on ports %d and %d",
            len(self._slots),
            self.settings.port,
            self.settings.http_port,
            extra={"event": "supervising", "workers": len(self._slots)},
        )
        systemd = self._systemd
        watchdog = status = None
        if systemd is not None:  # from this loop: a wedged supervisor stops the pings
            watchdog = asyncio.create_task(systemd.keep_watchdog(), name="systemd-watchdog")
        try:
            for slot in self._slots:
                self._spawn(slot)
            if systemd is not None:  # ready once every worker is (listens, subscribed)
                status = asyncio.create_task(systemd.keep_status(self.health), name="systemd")
            await self._stopping.wait()
        finally:
            await cancel_and_wait(status)
            if systemd is not None:
                systemd.stopping(f"shutting down: stopping {len(self._slots)} workers")
            await self._stop_all()
            await cancel_and_wait(watchdog)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        return EXIT_FAILURE if self._failed else 0

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Every worker's health, merged (what /healthz?detail=1 says on any of them)."""
        return await workers_health(self.run_dir, len(self._slots))

    async def _stop_all(self) -> None:
        live = [s.process for s in self._slots if s.process is not None and s.process.is_alive()]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid or 0, signal.SIGTERM)
        if live:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._all_exited.wait(), self.settings.shutdown_timeout + 5.0
                )
        for process in live:
            if process.is_alive():
                log.warning("worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
            process.join(timeout=1.0)
        log.info("all workers stopped", extra={"event": "workers_stopped"})


def start_worker_process(
    settings: Settings, index: int, run_dir: str, run_worker: WorkerEntry
) -> BaseProcess:
    """Spawns worker `index`; `run_worker` must be a module-level function (it is pickled)."""
    process = multiprocessing.get_context("spawn").Process(
        target=worker_main,
        args=(settings, index, run_dir, run_worker),
        name=f"pingpong-relay-worker-{index}",
    )
    process.start()
    return process


async def supervise(
    settings: Settings, run_worker: WorkerEntry, systemd: ServiceManager | None = None
) -> int:
    """`serve --workers N`: the shared Redis first (embedded if need be), then the workers,
    each running `run_worker` (the CLI's entry point for one relay); `systemd`, when it
    runs the relay, hears from the supervisor alone."""
    try:
        redis_url, embedded = await resolve_redis_url(settings)
    except RuntimeError as exc:
        log.error("cannot start the relay: %s", exc, extra={"event": "start_failed"})
        return EXIT_FAILURE
    # Every worker subscribes to the same Redis: the one resolved here.
    settings = dataclasses.replace(settings, redis_url=redis_url, redis_url_explicit=True)
    try:
        return await Supervisor(
            settings, partial(start_worker_process, run_worker=run_worker), systemd
        ).run()
    finally:
        if embedded is not None:
            embedded.stop()
