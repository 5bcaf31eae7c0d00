"""Throughput phases: how fast a system consumes the preloaded raw topics, and at what CPU.

Each system gets a fresh consumer group; each worker also its own copy of the preloaded raw
topics (see _context.Run.preloaded), the plain consumers share one. The clock runs from the
first processed event to the moment the preloaded count is reached; CPU is the process's
utime + stime (children included) from /proc over the same span, per 100,000 events.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from _context import THRESHOLD, Row, Run, log
from _events import REPO_ROOT
from _procs import ProcessFailed, cpu_seconds
from _worker import Worker

__all__ = ["worker_throughput", "workers_throughput", "consumer_throughput"]

POLL_S = 0.2


def _deadline_s(run: Run) -> float:
    """Give up on a phase after this long (1,000 events/s would be very slow)."""
    return 120.0 + run.total / 1000.0


def worker_throughput(run: Run, name: str, rules: str | None) -> Row:
    """`ioc worker` over the preloaded events: events/s, CPU, start-up, stop, alerts."""
    row = Row(name)
    prefix = run.preloaded(name)
    with run.measured(row):
        worker = Worker.start(run.procs, name, run.url, prefix=prefix, app_id=run.fresh(name),
                              partitions=run.partitions, log_dir=run.log_dir, rules=rules)
        spawned = worker.proc.spawned_at
        if run.profile:
            _record_profile(run, name, worker.pid)
        row.figures["rules"] = worker.rules
        first: tuple[float, int, float] | None = None  # (time, processed, cpu) at the first event
        deadline = time.monotonic() + _deadline_s(run)
        last_log = 0.0
        while True:
            now = time.monotonic()
            counts = worker.counts()
            cpu = worker.cpu_seconds()
            if first is None and counts.processed > 0:
                first = (now, counts.processed, cpu)
                row.figures["startup_s"] = round(now - spawned, 2)
            if counts.processed >= run.total:
                break
            if not worker.alive() or now > deadline:
                raise ProcessFailed(f"{name}: {counts.processed:,} of {run.total:,} events processed "
                                    f"when it {'exited' if not worker.alive() else 'timed out'}")
            if now - last_log >= 10:
                log(f"{name}: {counts.processed:,}/{run.total:,} events")
                last_log = now
            time.sleep(POLL_S)
        assert first is not None
        _rate(row, first, (now, counts.processed, cpu))
        time.sleep(1.0)  # alerts of the last batch are published after it is counted
        counts = worker.counts()
        row.figures.update(alerts=int(counts.alerts_firing), invalid=int(counts.invalid), late=int(counts.late),
                           alerts_by_rule={rule: int(n) for rule, n in counts.firing_by_rule})
        row.figures["stop_s"] = round(worker.stop(), 2)
    return row


def _record_profile(run: Run, name: str, pid: int) -> None:
    """py-spy samples the worker from outside (it stops with the worker): raw stacks, 100 per second."""
    out = run.log_dir / f"{name}.pyspy.txt"
    argv = [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(pid), "--nonblocking",
            "--rate", "100", "--format", "raw", "--output", str(out)]
    run.procs.spawn(f"{name}-py-spy", argv, dict(os.environ), run.log_dir, REPO_ROOT)
    log(f"{name}: py-spy records pid {pid} into {out}")


def workers_throughput(run: Run, name: str, workers: int = 2) -> Row:
    """`workers` workers in one group over the preloaded events, shipped rules: events/s and CPU
    over the span when all of them process (from the last one's first event to the end), and
    that rate against one worker's (`worker-shipped`, same run) as `vs_one_worker`."""
    row = Row(name)
    prefix = run.preloaded(name)
    app_id = run.fresh(name)
    with run.measured(row):
        started = [Worker.start(run.procs, f"{name}-{n}", run.url, prefix=prefix, app_id=app_id,
                                partitions=run.partitions, log_dir=run.log_dir) for n in range(workers)]
        deadline = time.monotonic() + _deadline_s(run)
        first: tuple[float, int, float] | None = None
        while True:
            now = time.monotonic()
            counts = [worker.counts().processed for worker in started]
            cpu = sum(worker.cpu_seconds() for worker in started)
            if first is None and all(count > 0 for count in counts):
                first = (now, int(sum(counts)), cpu)
            if sum(counts) >= run.total:
                break
            if not all(worker.alive() for worker in started) or now > deadline:
                raise ProcessFailed(f"{name}: {int(sum(counts)):,} of {run.total:,} events processed")
            time.sleep(POLL_S)
        if first is None:  # one worker did everything before the other took a partition
            raise ProcessFailed(f"{name}: not every worker processed events (counts {counts})")
        _rate(row, first, (now, int(sum(counts)), cpu))
        row.figures.update(rules=started[0].rules, workers=workers, events_measured=int(sum(counts)) - first[1],
                           by_worker=[int(count) for count in counts])
        row.figures["stop_s"] = round(max(worker.stop() for worker in started), 2)
    return row


def consumer_throughput(run: Run, name: str, script: str, python: str, output: str = "") -> Row:
    """A consumer script (bench/_child.py protocol) over the preloaded events."""
    row = Row(name)
    job = {"bootstrap": run.bootstrap, "topics": list(run.shared_raw_topics().values()), "group": run.fresh(name),
           "total": run.total, "threshold": THRESHOLD, "output": output}
    with run.measured(row):
        proc = run.procs.spawn(name, [python, str(REPO_ROOT / "bench" / script), json.dumps(job)], dict(os.environ),
                               run.log_dir, cwd=REPO_ROOT)
        timeout = _deadline_s(run)
        arrived, line = proc.wait_line(lambda text: '"first"' in text, timeout)
        first_cpu = cpu_seconds(proc.pid)
        row.figures["startup_s"] = round(arrived - proc.spawned_at, 2)
        first_t = json.loads(line)["t"]
        _, line = proc.wait_line(lambda text: '"done"' in text, timeout)
        done_cpu = cpu_seconds(proc.pid)
        done = json.loads(line)
        proc.close_stdin()
        _rate(row, (first_t, 1, first_cpu), (done["t"], done["count"], done_cpu))
        row.figures["matches"] = done["matches"]
        row.figures["stop_s"] = round(proc.stop(), 2)
    return row


def _rate(row: Row, first: tuple[float, int, float], last: tuple[float, int, float]) -> None:
    """Events/s and CPU s per 100k events between two (time, processed count, CPU) samples."""
    seconds = last[0] - first[0]
    events = last[1] - first[1]
    row.figures["events"] = last[1]
    row.figures["seconds"] = round(seconds, 2)
    row.figures["events_per_s"] = round(events / seconds) if seconds > 0 else None
    row.figures["cpu_s_per_100k"] = round((last[2] - first[2]) / events * 100_000, 2) if events > 0 else None
