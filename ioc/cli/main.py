"""`ioc`: the IOC engine's command line.

    ioc demo [--duration N]       broker + topics + simulator + worker + metrics, one command
    ioc worker                    run one stream worker
    ioc simulate                  publish simulated sensor events (or write JSONL)
    ioc rules check PATH...       validate rule files
    ioc rules test PATH...        run rule unit tests (*.test.yaml)
    ioc backtest --events F       replay recorded events through the rules
    ioc explain ALERT_ID          why an alert fired (a backtest's or the live alerts)
    ioc alerts tail               follow alerts as they arrive
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from ioc import __version__
from ioc.cli import alerts, backtest, bench, demo, explain, rules, silences, simulate, worker
from ioc.cli.common import fail
from ioc.exceptions import IocError

__all__ = ["main", "build_parser", "GuardedStream"]

# Commands that run until stopped: a closed stdout must not kill them (SIGPIPE's default
# action would, silently, exit 141). The others end like any command-line tool.
LONG_LIVED = frozenset({"worker", "demo"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ioc", description="IOC stream engine: sensor events to alerts for a smart-city operations centre."
    )
    parser.add_argument("--version", action="version", version=f"ioc {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for module in (demo, worker, simulate, rules, backtest, explain, alerts, silences, bench):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if argv is None:
        _pipes(args.command)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except IocError as exc:
        return fail(str(exc))


def _pipes(command: str) -> None:
    """SIGPIPE and broken stdout/stderr, per command (only when run as the `ioc` program)."""
    if not hasattr(signal, "SIGPIPE"):
        return
    if command not in LONG_LIVED:
        # Like other command-line tools: `ioc rules check | head` ends quietly when head is done.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        return
    # A worker (or the demo) ignores SIGPIPE; a write to a closed pipe raises BrokenPipeError,
    # which GuardedStream turns into "discard output from now on". The demo exists to print, so
    # it then stops cleanly (`ioc demo | head` ends, as with SIG_DFL before, but through its
    # shutdown); a worker keeps working.
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    stop = _stop_self if command == "demo" else None
    sys.stdout = GuardedStream(sys.stdout, "stdout", stop)
    sys.stderr = GuardedStream(sys.stderr, "stderr", stop)


def _stop_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


class GuardedStream:
    """A text stream that survives its reader going away: on the first BrokenPipeError its file
    descriptor is pointed at /dev/null (so nothing, not even the final flush at exit, fails
    again), later writes are dropped, and `on_broken` runs once.

    >>> import io
    >>> stream = GuardedStream(io.StringIO(), "stdout")
    >>> stream.write("ok\\n")
    3
    """

    def __init__(self, stream: TextIO, name: str, on_broken: Callable[[], None] | None = None) -> None:
        self._stream = stream
        self._name = name
        self._on_broken = on_broken
        self.broken = False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._broke()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._broke()

    def _broke(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass  # not a real file: dropping writes is enough
        logging.getLogger("ioc.cli").warning("%s is closed (broken pipe): its output is discarded from now on",
                                             self._name)
        if self._on_broken is not None:
            self._on_broken()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if __name__ == "__main__":
    sys.exit(main())
