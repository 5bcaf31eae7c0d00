"""The protocol between bench/runtime.py and the consumer scripts it runs (stdlib only: the
Quix Streams script runs in its own virtualenv, without the ioc package).

A script takes one JSON argument (see `Job`), counts what it consumes with `Progress`, and
prints JSON lines on stdout: `{"event": "first", "t": ...}` at its first message and
`{"event": "done", "t": ..., "count": ..., "matches": ...}` when it has consumed the
preloaded count. After "done" it waits until the harness closes its stdin (the harness reads
the process's CPU time from /proc in between), then exits.

>>> job = Job.from_argv(['{"bootstrap": "127.0.0.1:9092", "topics": ["t"], "group": "g", "total": 1}'])
>>> job.total
1
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Job", "Progress", "matches"]


@dataclass(frozen=True)
class Job:
    """What a consumer script does: read `topics` as group `group` until `total` records."""

    bootstrap: str
    topics: list[str]
    group: str
    total: int
    threshold: float = 999.0
    output: str = ""  # the topic matches go to (Quix Streams only)
    session_timeout_ms: int = 6000

    @classmethod
    def from_argv(cls, argv: list[str]) -> Job:
        return cls(**json.loads(argv[0]))


def matches(event: Any, threshold: float) -> bool:
    """The benchmark's threshold rule: a reservoir event with `level_m >= threshold`."""
    if not isinstance(event, dict) or event.get("stream") != "reservoir":
        return False
    level = event.get("level_m")
    return isinstance(level, (int, float)) and level >= threshold


class Progress:
    """Counts consumed records; reports the first one and the last one to the harness."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.matches = 0
        self.finished = False

    def add(self, records: int, matched: int = 0) -> bool:
        """Count `records` (of which `matched` matched); True once the total is reached, after
        the harness has read this process's CPU time."""
        if records and not self.count:
            _emit({"event": "first", "t": time.time()})
        self.count += records
        self.matches += matched
        if self.count >= self.total and not self.finished:
            self.finished = True
            _emit({"event": "done", "t": time.time(), "count": self.count, "matches": self.matches})
            sys.stdin.readline()  # the harness closes stdin once it has sampled /proc
        return self.finished


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
