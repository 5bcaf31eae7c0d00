"""Benchmark: the live worker side by side with Quix Streams, aiokafka and confluent-kafka,
in one run on one embedded broker.

    make bench                                   # the full run (~1.06 M storm-day events)
    make bench BENCH_ARGS="--quick"              # ~100 k events, shorter phases (1-2 min)
    .venv/bin/python bench/runtime.py --only worker-threshold,quix-threshold --json

The worker is a black box (`ioc worker` in a subprocess, watched through its /metrics), so
the same script measures the current runtime and a rewritten one. Every system reads the
same preloaded events with a fresh consumer group (each worker from its own copy of the raw
topics: see bench/_context.py); CPU is utime + stime from /proc. The machine is shared and
noisy: compare figures of one invocation, not across runs. The figures are also saved as
JSON under .ioc/bench/logs/<run>/result.json, next to each process's log.
A benchmark, not a test: it prints figures and asserts nothing.

Short runs flatter the fastest consumers: their clients prefetch the first fetch (megabytes
per partition) while they join, before the first event is counted.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from _context import Row, Run, log
from _engine import engine_shipped, key_curve, rule_curve
from _events import CACHE_DIR, REPO_ROOT, scenario_files
from _kafka import start_broker
from _latency import latency
from _procs import Processes
from _report import add_ratios, add_scaling, render, to_json
from _state import state_bytes_per_key
from _throughput import consumer_throughput, worker_throughput, workers_throughput
from quix_env import quix_python

PHASES = ("engine-shipped", "rule-curve", "key-curve", "worker-shipped", "workers-2-shipped", "worker-threshold",
          "quix-threshold", "aiokafka-ceiling", "confluent-ceiling", "latency-1000", "latency", "state-bytes-per-key")


def _phase(run: Run, name: str) -> Callable[[], Row]:
    quick = run.quick
    phases: dict[str, Callable[[], Row]] = {
        "engine-shipped": lambda: engine_shipped(run, name),
        "rule-curve": lambda: rule_curve(run, name),
        "key-curve": lambda: key_curve(run, name),
        "worker-shipped": lambda: worker_throughput(run, name, rules=None),
        "workers-2-shipped": lambda: workers_throughput(run, name, workers=2),
        "worker-threshold": lambda: worker_throughput(run, name, rules=run.threshold_rules()),
        "quix-threshold": lambda: consumer_throughput(run, name, "quix_threshold.py", _quix(run),
                                                      output=run.fresh_output("quix")),
        "aiokafka-ceiling": lambda: consumer_throughput(run, name, "aiokafka_ceiling.py", sys.executable),
        "confluent-ceiling": lambda: consumer_throughput(run, name, "confluent_ceiling.py", sys.executable),
        "latency-1000": lambda: latency(run, rate=1000.0, seconds=10.0 if quick else 20.0, name=name),
        "latency": lambda: latency(run, rate=5000.0, seconds=10.0 if quick else 20.0),
        "state-bytes-per-key": lambda: state_bytes_per_key(run, keys=20_000 if quick else 200_000),
    }
    return phases[name]


def _quix(run: Run) -> str:
    if run.quix_python is None:
        raise RuntimeError("Quix Streams is not installed (see bench/quix_env.py)")
    return run.quix_python


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="~100k events and shorter phases (1-2 minutes)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(PHASES)}")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic (default 4)")
    parser.add_argument("--duration", help="storm-day event time to preload (default 5d, --quick 12h)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true",
                        help="record the worker-shipped and worker-threshold workers with py-spy (their CPU "
                             "figures then include its sampling): <logs>/<phase>.pyspy.txt, read by "
                             "bench/profile_top.py")
    args = parser.parse_args()
    args.phases = [name.strip() for name in args.only.split(",")] if args.only else list(PHASES)
    unknown = sorted(set(args.phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    args.duration = args.duration or ("12h" if args.quick else "5d")
    return args


def _commit() -> str:
    result = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT,  # noqa: S607
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # so that every finally block stops its processes


def _run_phases(run: Run, phases: list[str]) -> dict[str, Row]:
    """Run each phase in turn; a failed phase is reported and the next one runs."""
    rows: dict[str, Row] = {}
    for name in phases:
        log(f"{name} ...")
        try:
            rows[name] = _phase(run, name)()
        except Exception as exc:  # noqa: BLE001 - one failed phase must not lose the others
            rows[name] = Row(name, error=f"{type(exc).__name__}: {exc}")
        finally:
            run.procs.stop_all()
        figures = {key: value for key, value in rows[name].figures.items() if not isinstance(value, dict)}
        log(f"{name}: {rows[name].error or figures}")
    return rows


def _quix_python() -> str | None:
    try:
        return str(quix_python())
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"no Quix Streams virtualenv ({exc}): quix-threshold will fail")
        return None


def main() -> int:
    args = _arguments()
    signal.signal(signal.SIGTERM, _terminate)
    meta: dict[str, object] = {"started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "code": f"{REPO_ROOT} ({_commit()})",
                               "cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]}
    files, total = scenario_files("storm-day", args.duration, args.seed)
    meta.update(events=total, scenario=f"storm-day, {args.duration} of event time, seed {args.seed}",
                partitions=args.partitions)
    quix = _quix_python() if "quix-threshold" in args.phases else None
    run_id = f"b{uuid.uuid4().hex[:8]}"
    log_dir = CACHE_DIR / "logs" / run_id
    with Processes() as procs, tempfile.TemporaryDirectory(prefix="ioc-bench-") as work:
        broker = start_broker(log_dir / "broker.log")
        try:
            run = Run(broker, procs, f"{run_id}.", args.partitions, files, total, args.quick, Path(work), log_dir,
                      quix, profile=args.profile)
            meta["broker"] = f"{broker.url} (embedded Tansu, pid {broker.process.pid if broker.process else '?'})"
            log(f"broker {broker.url}; logs in {log_dir}")
            rows = _run_phases(run, args.phases)
        finally:
            procs.stop_all()
            broker.stop()
    meta["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    add_ratios(rows)
    add_scaling(rows)
    (log_dir / "result.json").write_text(to_json(meta, rows), encoding="utf-8")
    log(f"figures saved to {log_dir / 'result.json'}")
    print(to_json(meta, rows) if args.json else render(meta, rows))
    return 1 if any(row.error for row in rows.values()) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: every process this run started has been stopped", file=sys.stderr)
        sys.exit(130)
