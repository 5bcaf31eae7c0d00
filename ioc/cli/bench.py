"""`ioc bench`: the benchmark, side by side with Quix Streams, in one run on one embedded broker.

It runs bench/runtime.py from the repository (the engine alone, the rule and key cost curves,
the worker end to end with the shipped rules and with one threshold rule, the same threshold in
Quix Streams and plain aiokafka/confluent-kafka loops as ceilings, latency at a fixed rate,
state per key); Quix Streams goes into a virtualenv of its own (.ioc/bench/quix-venv, the
`bench` extra) on first use. Progress goes to stderr; the report (or `--json`) to stdout.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from ioc.cli.common import fail
from ioc.config import REPO_ROOT

__all__ = ["register"]

SCRIPT = REPO_ROOT / "bench" / "runtime.py"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "bench", help="benchmark the engine and the worker side by side with Quix Streams",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short run (~100k events, a few minutes)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--only", help="comma-separated phases (default: all; see bench/runtime.py)")
    parser.add_argument("--partitions", type=int, help="partitions per topic (default 4)")
    parser.add_argument("--duration", help="storm-day event time to preload (default 5d, --quick 12h)")
    parser.add_argument("--seed", type=int, help="simulation seed")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not SCRIPT.exists():
        return fail(f"{SCRIPT} not found: `ioc bench` runs from a clone of the repository")
    argv = [sys.executable, str(SCRIPT)]
    for flag in ("quick", "json"):
        if getattr(args, flag):
            argv.append(f"--{flag}")
    for option in ("only", "partitions", "duration", "seed"):
        value = getattr(args, option)
        if value is not None:
            argv += [f"--{option}", str(value)]
    # Ctrl-C reaches the script too (same process group): it stops the broker and every process
    # it started; this side waits for it rather than killing it half-way.
    # (Ignored only once the child runs: an ignored signal would be inherited.)
    child = subprocess.Popen(argv, cwd=REPO_ROOT)  # noqa: S603 - fixed script
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
