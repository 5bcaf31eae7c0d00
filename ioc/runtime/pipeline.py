"""Raw records in, validated events and dead letters out; metrics of what the shards did.

The shard host (ioc.runtime.host) decodes each fetched batch here before its shard
evaluates it, and accounts here for the engine's work and for published alerts.

>>> pipeline = Pipeline(metrics)                                     # doctest: +SKIP
>>> events, dead = pipeline.decode("reservoir", [RawRecord("ioc.raw.reservoir", 0, 7, b"ta-trach", b"{...}", 1.7e9)])
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ioc.alerts import Alert
from ioc.config import LimitSettings
from ioc.engine import EngineStats
from ioc.events import InvalidEvent, decode_batch
from ioc.events.declared import EventSchemas
from ioc.metrics import IocMetrics
from ioc.timeutil import format_duration, format_ts

__all__ = ["RawRecord", "DeadLetter", "Pipeline", "dead_letter", "dead_letter_record", "too_large"]

log = logging.getLogger(__name__)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~5x, once per record fetched
class RawRecord:
    """A record as fetched from a raw topic (not to be changed)."""

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


# What a dead letter adds around the embedded value (field names, topic, reason...), bounded
# because every field but the value and the key is short. Kept apart when fitting a letter.
_LETTER_OVERHEAD = 2048
# The original key is kept whole when it is at most this long (a sensor id); longer ones are cut.
DEAD_LETTER_KEY_BYTES = 1024


def _embed(raw: bytes, limit: int) -> tuple[str, str, bool]:
    """(value, encoding, truncated): at most `limit` bytes of `raw`, as text when UTF-8 (a cut
    inside a multi-byte character drops that character), else base64."""
    cut = raw[:limit]
    truncated = len(cut) < len(raw)
    try:
        return cut.decode("utf-8"), "utf-8", truncated
    except UnicodeDecodeError as exc:
        # Only the tail of a cut may be a partial character (at most 3 bytes of it).
        if truncated and exc.start >= len(cut) - 3 and exc.reason == "unexpected end of data":
            return cut[: exc.start].decode("utf-8"), "utf-8", True
    return base64.b64encode(cut).decode("ascii"), "base64", truncated


def dead_letter_record(
    record: RawRecord, stream: str, error: InvalidEvent, at: float, *, value_bytes: int | None = None,
) -> dict[str, Any]:
    """The `ioc.deadletter` value: the original bytes (base64 when not UTF-8) and why.

    `value_bytes`: keep only the first that many bytes of the original value (`value_truncated`
    says so; `size` is always the original's size in bytes). None keeps it whole."""
    raw = record.value or b""
    value, encoding, truncated = _embed(raw, len(raw) if value_bytes is None else value_bytes)
    key = record.key
    return {
        "stream": stream,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key[:DEAD_LETTER_KEY_BYTES].decode("utf-8", "replace") if key is not None else None,
        "error": error.reason,
        "reason": error.code,
        "size": len(raw),
        "value": value,
        "value_encoding": encoding,
        "value_truncated": truncated,
        "received_at": record.timestamp,
        "rejected_at": at,
    }


def dead_letter(
    record: RawRecord, stream: str, error: InvalidEvent, at: float, limits: LimitSettings,
) -> DeadLetter:
    """A dead letter that fits `limits.record_bytes`: the original value whole when it fits (and
    was not refused for its size), else its first `limits.dead_letter_value_bytes` bytes (less if
    even that would not fit).

    >>> letter = dead_letter(RawRecord("ioc.raw.press", 0, 9, b"k", b"x" * 2_000_000, 0.0), "press",
    ...                      InvalidEvent("too big", "too_large"), 0.0, LimitSettings())
    >>> len(letter.value) <= LimitSettings().record_bytes
    True
    """
    key = record.key[:DEAD_LETTER_KEY_BYTES] if record.key is not None else None
    room = limits.record_bytes - len(key or b"")
    raw_size = len(record.value or b"")
    # JSON escapes may make text up to 6 times longer, base64 4/3: the whole value is tried only
    # when it could fit, so that a huge value is never encoded whole just to be thrown away.
    value_bytes: int | None = None
    if error.code == "too_large" or raw_size * 6 + _LETTER_OVERHEAD > room:
        value_bytes = min(raw_size, limits.dead_letter_value_bytes)
    while True:
        body = orjson.dumps(dead_letter_record(record, stream, error, at, value_bytes=value_bytes))
        if len(body) <= room or value_bytes == 0:
            return DeadLetter(key, body)
        value_bytes = min(raw_size, limits.dead_letter_value_bytes) if value_bytes is None else value_bytes // 2


def too_large(size: int, limit: int) -> InvalidEvent:
    """The error of a record over `limits.event_bytes` (its dead letter keeps only its start)."""
    return InvalidEvent(f"event is {size} bytes, above the limit of {limit} bytes (not decoded)", "too_large")


class Pipeline:
    """Decode one partition's fetched records and account for what the shards did with them."""

    def __init__(
        self, metrics: IocMetrics | None = None, *, clock: Callable[[], float] = time.time,
        max_future_s: float | None = None, limits: LimitSettings | None = None,
        schemas: EventSchemas | None = None,
    ) -> None:
        self.limits = limits if limits is not None else LimitSettings()
        # The event models with the deployment's declared fields (ioc.events.declared).
        self.schemas = schemas
        self.max_future_s = max_future_s
        self.metrics = metrics
        self.clock = clock
        self.last_arrival: dict[str, float] = {}
        # alert_id -> (rule_id, domain, severity) of the alerts counted in ioc_alerts_firing.
        self._firing: dict[str, tuple[str, str, str]] = {}

    def decode(self, stream: str, records: Sequence[RawRecord]) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
        """Valid events (in offset order, each with `_off`, `_received` and `_pos` when it has no
        `id`) and the dead letters of the invalid ones. A record larger than `limits.event_bytes`
        is never decoded (parsing megabytes of JSON is the cost a sender must not impose)."""
        limit = self.limits.event_bytes
        sizes = [len(r.value) if r.value is not None else 0 for r in records]
        if max(sizes, default=0) > limit:
            oversized = [(index, too_large(size, limit)) for index, size in enumerate(sizes) if size > limit]
            small = [index for index, size in enumerate(sizes) if size <= limit]
            events, bad_small = decode_batch(stream, [records[i].value or b"" for i in small], max_bytes=limit,
                                             schemas=self.schemas)
            bad = sorted(oversized + [(small[i], error) for i, error in bad_small], key=lambda item: item[0])
        else:
            events, bad = decode_batch(stream, [r.value if r.value is not None else b"" for r in records],
                                       max_bytes=limit, schemas=self.schemas)
        now = self.clock()
        if self.max_future_s is not None:
            events, bad = self._reject_future(events, bad, len(records), now)
        dead_letters = []
        bad_index = {index for index, _ in bad}
        for index, error in bad:
            record = records[index]
            log.warning("dead letter %s: %s", record.position, error.reason)
            dead_letters.append(dead_letter(record, stream, error, now, self.limits))
            if self.metrics is not None:
                self.metrics.events_invalid.labels(stream=stream, reason=error.code).inc()
        good = iter(events)
        for index, record in enumerate(records):
            if index in bad_index:
                continue
            event = next(good)
            if event.get("id") is None:
                event["_pos"] = record.position
            event["_off"] = record.offset
            event["_received"] = record.timestamp
        if events:
            self.last_arrival[stream] = now
        return events, dead_letters

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

    def evaluated(
        self, stream: str, stats: EngineStats, events: Sequence[dict[str, Any]], elapsed: float, *,
        received: bool = True,
    ) -> None:
        """Account for one engine call over `events` of `stream` (counters, errors, timing);
        `received`: the events are new to the worker (not re-keyed ones, counted when they came)."""
        for rule_id, where, error in stats.errors:
            log.error("rule %s failed on %s event %s: %s (the event was skipped for this rule)",
                      rule_id, stream, where, error)
            if self.metrics is not None:
                self.metrics.rule_errors.labels(rule_id=rule_id).inc()
        metrics = self.metrics
        if metrics is None:
            return
        valid = len(events) if stream and received else 0
        if valid:
            metrics.events.labels(stream=stream).inc(valid)
            metrics.last_event_time.labels(stream=stream).set(max(e["ts"] for e in events))
            metrics.processing.labels(stream=stream).observe(elapsed)
            if stream == "reservoir":
                metrics.reservoirs.observe(events)
        if stats.late and stream:
            metrics.events_late.labels(stream=stream).inc(stats.late)
        if stats.evaluations and stream:
            metrics.rule_evaluations.labels(stream=stream).inc(stats.evaluations)

    def late(self, stream: str, count: int) -> None:
        """Count events a key space received after its watermark had passed them."""
        if self.metrics is not None and count:
            self.metrics.events_late.labels(stream=stream).inc(count)

    def published(self, alerts: Sequence[Alert]) -> None:
        """Account for alerts once they are on the broker (counters, firing gauge, latency)."""
        metrics = self.metrics
        if metrics is None:
            return
        now = self.clock()
        for alert in alerts:
            domain = alert.labels.get("domain", alert.stream)
            metrics.alerts.labels(rule_id=alert.rule_id, domain=domain, severity=alert.severity,
                                  status=alert.status).inc()
            if alert.status == "firing":
                if alert.alert_id not in self._firing:
                    labels = (alert.rule_id, domain, alert.severity)
                    self._firing[alert.alert_id] = labels
                    metrics.alerts_firing.labels(*labels).inc()
            else:
                # The series it was counted in: a reload may have changed its severity or domain
                # since. One this worker never counted (fired before a restart) is not taken off.
                counted = self._firing.pop(alert.alert_id, None)
                if counted is not None:
                    metrics.alerts_firing.labels(*counted).dec()
            if alert.received_at is not None:
                metrics.event_to_alert.observe(max(0.0, now - alert.received_at))
