"""A process and its descendants as the kernel counts them: memory, CPU, descriptors."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import psutil


class ProcessTree:
    """A process and its live descendants (a relay's workers, if it has any)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)

    def processes(self) -> list[psutil.Process]:
        """The root and its live descendants."""
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return [self.root]

    def rss_by_pid(self) -> dict[int, int]:
        """RSS in bytes of each live process of the tree, the root first."""
        out: dict[int, int] = {}
        for process in self.processes():
            with contextlib.suppress(psutil.Error):
                out[process.pid] = int(process.memory_info().rss)
        return out

    def rss_bytes(self) -> int:
        """RSS summed over the tree."""
        return sum(self.rss_by_pid().values())

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU seconds of the live tree (a child's time is counted while it
        runs; one that exits mid-measurement takes its time with it)."""
        user = system = 0.0
        for process in self.processes():
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                user += float(times.user)
                system += float(times.system)
        return user, system

    def reset_peak_rss(self) -> bool:
        """Resets VmHWM (the peak RSS) of every process; False if the kernel refused."""
        done = True
        for process in self.processes():
            try:
                Path(f"/proc/{process.pid}/clear_refs").write_text("5")
            except OSError:
                done = False
        return done

    def peak_rss_bytes(self) -> int:
        """VmHWM (peak RSS since start or `reset_peak_rss`), summed over the tree: exact
        with one process, an upper bound on the tree's joint peak with several."""
        total = 0
        for process in self.processes():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
        return total

    def nofile_limit(self) -> int:
        """The root's soft open-file limit."""
        return int(self.root.rlimit(psutil.RLIMIT_NOFILE)[0])

    def fds(self) -> int:
        """File descriptors the root has open."""
        return int(self.root.num_fds())


class RssSampler:
    """Samples the RSS of a set of processes every `interval_s` in a thread; keeps the max."""

    def __init__(self, pids: Sequence[int], interval_s: float = 0.01) -> None:
        self._paths = [Path(f"/proc/{pid}/statm") for pid in pids]
        self._interval_s = interval_s
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self.max_bytes = 0
        self.samples = 0

    def _read(self) -> int:
        total = 0
        for path in self._paths:
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int(path.read_text().split()[1]) * self._page
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.max_bytes = max(self.max_bytes, self._read())
            self.samples += 1
            self._stop.wait(self._interval_s)

    def start(self) -> None:
        """Starts sampling."""
        self._thread.start()

    def stop(self) -> int:
        """Stops sampling; returns the largest RSS seen, in bytes."""
        self._stop.set()
        self._thread.join(2.0)
        return self.max_bytes
