"""`ioc worker` as a black box: the CLI in a subprocess, watched through its /metrics.

>>> worker = Worker.start(procs, "worker-shipped", broker_url, prefix="b1a2b3c4.", app_id="g1",
...                       partitions=4, log_dir=log_dir)                       # doctest: +SKIP
>>> worker.counts().processed
1061492

Relies only on the CLI's contract: `ioc worker --quiet` prints `worker up: N rules, metrics at
URL` when ready, reads the IOC_* variables, and serves `ioc_events_total{stream}`,
`ioc_events_invalid_total{stream,reason}` and `ioc_alerts_total{rule_id,severity,status}`.
"""

from __future__ import annotations

import os
import re
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from _events import REPO_ROOT
from _procs import Proc, Processes, cpu_seconds, rss_bytes
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Counts", "Worker"]

_READY = re.compile(r"worker up: (\d+) rules, metrics at (http://\S+/metrics)")


@dataclass(frozen=True)
class Counts:
    """What the worker's /metrics says it has done so far."""

    events: float = 0.0
    invalid: float = 0.0
    late: float = 0.0
    alerts_firing: float = 0.0
    alert_transitions: float = 0.0
    by_stream: tuple[tuple[str, float], ...] = ()
    firing_by_rule: tuple[tuple[str, float], ...] = ()

    @property
    def processed(self) -> int:
        """Valid plus rejected events: every consumed raw record is one or the other."""
        return int(self.events + self.invalid)

    def stream(self, name: str) -> float:
        return dict(self.by_stream).get(name, 0.0)


class Worker:
    """One running `ioc worker --quiet` process."""

    def __init__(self, proc: Proc, metrics_url: str, rules: int, up_at: float) -> None:
        self.proc = proc
        self.metrics_url = metrics_url
        self.rules = rules
        self.up_at = up_at

    @classmethod
    def start(
        cls, procs: Processes, name: str, broker_url: str, *, prefix: str, app_id: str, partitions: int,
        log_dir: Path, rules: str | None = None, timeout_s: float = 120.0,
    ) -> Worker:
        """Spawn the worker and wait for its `worker up` line (rules loaded, /metrics served)."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("IOC_")}
        env.update(
            IOC_BROKER=broker_url, IOC_TOPIC_PREFIX=prefix, IOC_APP_ID=app_id, IOC_METRICS_PORT="0",
            IOC_PARTITIONS=str(partitions), COLUMNS="200",
        )
        if rules is not None:
            env["IOC_RULES"] = rules
        argv = [sys.executable, "-m", "ioc.cli.main", "worker", "--quiet"]
        proc = procs.spawn(name, argv, env, log_dir, cwd=REPO_ROOT)
        up_at, line = proc.wait_line(lambda text: _READY.search(text) is not None, timeout_s)
        match = _READY.search(line)
        assert match is not None
        return cls(proc, match.group(2), int(match.group(1)), up_at)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def counts(self) -> Counts:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310 - our own http URL
            text = response.read().decode("utf-8")
        events = invalid = late = firing = transitions = 0.0
        by_stream: dict[str, float] = {}
        by_rule: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "ioc_events_total":
                    events += sample.value
                    stream = sample.labels.get("stream", "")
                    by_stream[stream] = by_stream.get(stream, 0.0) + sample.value
                elif sample.name == "ioc_events_invalid_total":
                    invalid += sample.value
                elif sample.name == "ioc_events_late_total":
                    late += sample.value
                elif sample.name == "ioc_alerts_total":
                    transitions += sample.value
                    if sample.labels.get("status") == "firing":
                        firing += sample.value
                        rule = sample.labels.get("rule_id", "")
                        by_rule[rule] = by_rule.get(rule, 0.0) + sample.value
        return Counts(events, invalid, late, firing, transitions, tuple(sorted(by_stream.items())),
                      tuple(sorted(by_rule.items())))

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def alive(self) -> bool:
        return self.proc.alive()

    def stop(self) -> float:
        """SIGTERM by PID; the seconds until it exited."""
        return self.proc.stop()
