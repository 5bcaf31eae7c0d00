"""Processes as black boxes: start, read their stdout lines, CPU and RSS from /proc, stop by PID.

>>> with Processes() as procs:                                   # doctest: +SKIP
...     proc = procs.spawn("worker", [sys.executable, "-m", "ioc.cli.main", "worker"], env, log_dir)
...     proc.wait_line(lambda line: "worker up" in line, timeout_s=60)
...     cpu_seconds(proc.pid)

Every process started through `Processes` is stopped (SIGTERM, then SIGKILL) when the
`with` block ends, also on errors and Ctrl-C.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["Proc", "Processes", "ProcessFailed", "cpu_seconds", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # PR_SET_PDEATHSIG: the child gets SIGTERM if the harness is killed without cleaning up.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class ProcessFailed(RuntimeError):
    """A benchmarked process exited early or did not answer in time."""


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` and of its waited-for children (/proc/PID/stat), in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        text = stat.read()
    # Fields after "pid (comm)"; comm may hold spaces or parentheses, hence rpartition.
    fields = text.rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (VmRSS in /proc/PID/status), in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ProcessFailed(f"process {pid} has no VmRSS (exited?)")


class Proc:
    """One started process: its stdout lines are queued by a reader thread, stderr goes to a log."""

    def __init__(self, name: str, popen: subprocess.Popen[str], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.pid = popen.pid
        self.log_path = log_path
        self.spawned_at = time.monotonic()
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name=f"{name}-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put((time.monotonic(), line.rstrip("\n")))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait_line(self, wanted: Callable[[str], bool], timeout_s: float) -> tuple[float, str]:
        """The first stdout line for which `wanted` is true, with the monotonic time it arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProcessFailed(f"{self.name}: no expected output within {timeout_s:g} s (log: {self.log_path})")
            try:
                arrived, line = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if not self.alive():
                    raise ProcessFailed(f"{self.name} exited with code {self.popen.returncode} "
                                        f"(log: {self.log_path})") from None
                continue
            if wanted(line):
                return arrived, line

    def close_stdin(self) -> None:
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            self.popen.stdin.close()

    def stop(self, timeout_s: float = 30.0) -> float:
        """SIGTERM by PID, wait for the exit; returns the seconds it took (SIGKILL after `timeout_s`)."""
        started = time.monotonic()
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        self.close_stdin()
        return time.monotonic() - started


class Processes:
    """Starts processes and stops every one of them, by PID, when the block ends."""

    def __init__(self) -> None:
        self._started: list[Proc] = []

    def spawn(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, cwd: Path) -> Proc:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}.log"
        with log_path.open("w") as log:
            popen = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                argv, cwd=cwd, env=env, text=True, bufsize=1,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, preexec_fn=_die_with_parent,
            )
        proc = Proc(name, popen, log_path)
        self._started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._started):
            try:
                proc.stop(timeout_s=10)
            except (OSError, subprocess.SubprocessError):
                pass  # already gone
        self._started.clear()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()
