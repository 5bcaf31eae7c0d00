"""One fetched batch of raw records in, alerts and dead letters out: the streaming path's core.

The Faust agents in `streams/` only move records: they hand each fetched batch to
`Pipeline.handle` and publish what it returns. Functional tests and backtests call the
same code without Kafka.

>>> pipeline = Pipeline(engine, metrics)                            # doctest: +SKIP
>>> result = pipeline.handle("reservoir", [RawRecord("ioc.raw.reservoir", 0, 7, b"ta-trach", b"{...}", 1.7e9)])
>>> result.alerts, result.dead_letters
([...], [])
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ioc.alerts import Alert
from ioc.engine import Engine
from ioc.events import InvalidEvent, decode_batch
from ioc.metrics import IocMetrics
from ioc.timeutil import format_duration, format_ts

__all__ = ["RawRecord", "DeadLetter", "BatchResult", "Pipeline", "dead_letter_record"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A record as fetched from a raw topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float  # broker/producer time, seconds

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    key: bytes | None
    value: bytes


@dataclass(slots=True)
class BatchResult:
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    valid: int = 0


def dead_letter_record(record: RawRecord, stream: str, error: InvalidEvent, at: float) -> dict[str, Any]:
    """The `ioc.deadletter` value: the original bytes (base64 when not UTF-8) and why."""
    raw = record.value or b""
    try:
        value: str = raw.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        value = base64.b64encode(raw).decode("ascii")
        encoding = "base64"
    return {
        "stream": stream,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
        "error": error.reason,
        "reason": error.code,
        "value": value,
        "value_encoding": encoding,
        "received_at": record.timestamp,
        "rejected_at": at,
    }


class Pipeline:
    """Decode, evaluate and account for one batch at a time (per-batch setup paid once)."""

    def __init__(
        self, engine: Engine, metrics: IocMetrics | None = None, *, clock: Callable[[], float] = time.time,
        max_future_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.max_future_s = max_future_s
        self.metrics = metrics
        self.clock = clock
        self.last_arrival: dict[str, float] = {}
        # (stream, partition) -> (wall time of its last events, its watermark then)
        self._arrivals: dict[tuple[str, int], tuple[float, float]] = {}

    def handle(self, stream: str, records: Sequence[RawRecord]) -> BatchResult:
        started = time.perf_counter()
        result = BatchResult()
        events, bad = decode_batch(stream, [r.value if r.value is not None else b"" for r in records])
        now = self.clock()
        if self.max_future_s is not None:
            events, bad = self._reject_future(events, bad, len(records), now)
        bad_index = {index for index, _ in bad}
        for index, error in bad:
            record = records[index]
            log.warning("dead letter %s: %s", record.position, error.reason)
            letter = dead_letter_record(record, stream, error, now)
            result.dead_letters.append(DeadLetter(record.key, orjson.dumps(letter)))
            if self.metrics is not None:
                self.metrics.events_invalid.labels(stream=stream, reason=error.code).inc()
        # Group by partition, keeping arrival order: watermarks are per partition.
        by_partition: dict[int, list[dict[str, Any]]] = {}
        good = iter(events)
        for index, record in enumerate(records):
            if index in bad_index:
                continue
            event = next(good)
            if event.get("id") is None:
                event["_pos"] = record.position
            event["_received"] = record.timestamp
            by_partition.setdefault(record.partition, []).append(event)
        late = evaluations = 0
        for partition, batch in by_partition.items():
            result.alerts.extend(self.engine.process(stream, batch, partition))
            stats = self.engine.last_stats
            late += stats.late
            evaluations += stats.evaluations
            self._report_errors(stream, stats.errors)
            watermark = self.engine.watermarks.get((stream, partition))
            if watermark is not None:
                self._arrivals[(stream, partition)] = (now, watermark)
        result.valid = len(events)
        if events:
            self.last_arrival[stream] = now
        if self.metrics is not None:
            self._account(stream, result, late, evaluations, events, time.perf_counter() - started)
        return result

    def _reject_future(
        self, events: list[dict[str, Any]], bad: list[tuple[int, InvalidEvent]], total: int, now: float
    ) -> tuple[list[dict[str, Any]], list[tuple[int, InvalidEvent]]]:
        """Dead-letter events stamped too far ahead of the clock: one bad sensor clock would
        otherwise move its partition's watermark into the future and make every other
        sensor's events late."""
        limit = now + self.max_future_s  # type: ignore[operator]
        if all(event["ts"] <= limit for event in events):
            return events, bad
        bad_index = {index for index, _ in bad}
        good_index = (i for i in range(total) if i not in bad_index)
        kept: list[dict[str, Any]] = []
        rejected = list(bad)
        for index, event in zip(good_index, events, strict=False):
            if event["ts"] > limit:
                reason = (f"ts {format_ts(event['ts'])} is more than {format_duration(self.max_future_s)} "  # type: ignore[arg-type]
                          f"ahead of the worker's clock ({format_ts(now)})")
                rejected.append((index, InvalidEvent(reason, "bad_ts")))
            else:
                kept.append(event)
        rejected.sort(key=lambda item: item[0])
        return kept, rejected

    def _report_errors(self, stream: str, errors: list[tuple[str, str, str]]) -> None:
        for rule_id, where, error in errors:
            log.error("rule %s failed on %s event %s: %s (the event was skipped for this rule)",
                      rule_id, stream, where, error)
            if self.metrics is not None:
                self.metrics.rule_errors.labels(rule_id=rule_id).inc()

    def advance_idle(self, now: float, grace_s: float) -> list[Alert]:
        """Live mode: let the watermark of a partition that has been silent for `grace_s`
        seconds of wall time advance with the wall clock (its last watermark plus the time
        since its last event), so absence and `for` timers fire when sensors fall silent."""
        alerts: list[Alert] = []
        for (stream, partition), (arrived, watermark) in list(self._arrivals.items()):
            idle = now - arrived
            if idle >= grace_s:
                # Minus the grace: an event stamped just before the silence but delivered a little
                # late (jitter) must still be on time.
                alerts.extend(self.engine.advance(stream, watermark + idle - grace_s, partition))
                self._report_errors(stream, self.engine.last_stats.errors)
        return alerts

    def _account(
        self, stream: str, result: BatchResult, late: int, evaluations: int,
        events: list[dict[str, Any]], elapsed: float,
    ) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        if result.valid:
            metrics.events.labels(stream=stream).inc(result.valid)
            metrics.last_event_time.labels(stream=stream).set(max(e["ts"] for e in events))
        if late:
            metrics.events_late.labels(stream=stream).inc(late)
        if evaluations:
            metrics.rule_evaluations.labels(stream=stream).inc(evaluations)
        metrics.processing.labels(stream=stream).observe(elapsed)

    def published(self, alerts: Sequence[Alert]) -> None:
        """Account for alerts once they are on the broker (counters, firing gauge, latency)."""
        metrics = self.metrics
        if metrics is None:
            return
        now = self.clock()
        for alert in alerts:
            metrics.alerts.labels(rule_id=alert.rule_id, severity=alert.severity, status=alert.status).inc()
            domain = alert.labels.get("domain", alert.stream)
            gauge = metrics.alerts_firing.labels(domain=domain, severity=alert.severity)
            if alert.status == "firing":
                gauge.inc()
            else:
                gauge.dec()
            if alert.received_at is not None:
                metrics.event_to_alert.observe(max(0.0, now - alert.received_at))
