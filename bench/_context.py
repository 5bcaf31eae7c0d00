"""What every phase of bench/runtime.py shares: the broker, the preloaded events, the
processes, and how a phase reports its figures.

>>> run.preloaded("worker-shipped")                                # doctest: +SKIP
'b1a2b3c4.worker-shipped-3f9a1c.'

Each worker gets a topic prefix of its own, with its own copy of the preloaded raw topics:
a fresh consumer group is not enough for a worker that keeps its input offsets in its own
checkpoints (`<prefix>state`), so a second worker on shared raw topics would resume where
the first one stopped. The plain consumers (offsets in their group) share one copy.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _kafka import STREAMS, EmbeddedBroker, bootstrap_servers, create_topics, preload
from _procs import Processes, cpu_seconds

__all__ = ["Run", "Row", "THRESHOLD", "log"]

# The benchmark's threshold rule: reservoir levels reach ~553 m (A Luoi), so this never fires
# on simulated data; the latency phase sends level 999.5 to fire it on purpose.
THRESHOLD = 999.0
THRESHOLD_RULE = f"""\
rules:
  - id: bench.reservoir.level
    stream: reservoir
    kind: threshold
    condition: "level_m >= {THRESHOLD:g}"
    severity: warning
    summary: "bench: {{source_id}} at {{level_m}} m"
"""


def log(message: str) -> None:
    """Progress goes to stderr, so that `--json` output stays one object on stdout."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


@dataclass
class Row:
    """One line of the report: a measured system and its figures (None: not measured)."""

    name: str
    figures: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Run:
    """One benchmark invocation: one broker, the events to preload (`total` of them)."""

    broker: EmbeddedBroker
    procs: Processes
    prefix: str
    partitions: int
    files: dict[str, Path]
    total: int
    quick: bool
    work_dir: Path
    log_dir: Path
    quix_python: str | None = None
    profile: bool = False  # --profile: py-spy records each worker phase (bench/profile_top.py reads it)
    _shared: str | None = None

    @property
    def url(self) -> str:
        return self.broker.url

    @property
    def bootstrap(self) -> str:
        return bootstrap_servers(self.broker.url)

    @staticmethod
    def topics_for(prefix: str) -> dict[str, str]:
        return {stream: f"{prefix}raw.{stream}" for stream in STREAMS}

    def fresh(self, what: str) -> str:
        """A name nobody used before in this broker (consumer groups, prefixes)."""
        return f"{self.prefix}{what}-{uuid.uuid4().hex[:6]}"

    def fresh_prefix(self, what: str) -> str:
        """A topic prefix of its own, with its raw topics and alerts topic created."""
        prefix = self.fresh(what) + "."
        create_topics(self.bootstrap, [*self.topics_for(prefix).values(), f"{prefix}alerts"], self.partitions)
        return prefix

    def preloaded(self, what: str) -> str:
        """A fresh prefix whose raw topics hold the preloaded events (`total` of them)."""
        prefix = self.fresh_prefix(what)
        started = time.monotonic()
        preload(self.bootstrap, self.files, self.topics_for(prefix))
        log(f"preloaded {self.total:,} events under {prefix} in {time.monotonic() - started:.1f} s")
        return prefix

    def shared_raw_topics(self) -> dict[str, str]:
        """The preloaded raw topics the plain consumers share (preloaded on first use)."""
        if self._shared is None:
            self._shared = self.preloaded("shared")
        return self.topics_for(self._shared)

    def fresh_output(self, what: str) -> str:
        """A new output topic (created here, with explicit configs)."""
        name = self.fresh(what) + ".matches"
        create_topics(self.bootstrap, [name], self.partitions)
        return name

    def threshold_rules(self) -> str:
        """Path of a rule file holding only the benchmark's threshold rule."""
        path = self.work_dir / "threshold.yaml"
        if not path.exists():
            path.write_text(THRESHOLD_RULE, encoding="utf-8")
        return str(path)

    def broker_cpu(self) -> float | None:
        process = self.broker.process
        return cpu_seconds(process.pid) if process is not None else None

    @contextmanager
    def measured(self, row: Row) -> Iterator[None]:
        """Add the broker's CPU seconds over the block to the row."""
        before = self.broker_cpu()
        try:
            yield
        finally:
            after = self.broker_cpu()
            if before is not None and after is not None:
                row.figures["broker_cpu_s"] = round(after - before, 2)
