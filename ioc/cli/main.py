"""`ioc`: the IOC engine's command line.

    ioc demo [--duration N]       broker + topics + simulator + worker + metrics, one command
    ioc worker                    run one stream worker
    ioc simulate                  publish simulated sensor events (or write JSONL)
    ioc rules check PATH...       validate rule files
    ioc rules test PATH...        run rule unit tests (*.test.yaml)
    ioc backtest --events F       replay recorded events through the rules
    ioc alerts tail               follow alerts as they arrive
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from ioc import __version__
from ioc.cli import alerts, backtest, demo, rules, simulate, worker
from ioc.cli.common import fail
from ioc.exceptions import IocError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ioc", description="IOC stream engine: sensor events to alerts for a smart-city operations centre."
    )
    parser.add_argument("--version", action="version", version=f"ioc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (demo, worker, simulate, rules, backtest, alerts):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE") and argv is None:
        # Like other command-line tools: `ioc demo | head` ends quietly when head is done
        # instead of failing (or hanging in shutdown) on writes to a closed pipe. The embedded
        # broker is told to stop by PR_SET_PDEATHSIG, so nothing is left running.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except IocError as exc:
        return fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
