"""The metrics factory: every Prometheus metric of the engine, on an injected registry.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = IocMetrics(registry)
>>> metrics.events.labels(stream="reservoir").inc()
>>> registry.get_sample_value("ioc_events_total", {"stream": "reservoir"})
1.0

Labels stay bounded: stream, rule id, severity, domain, reason; never a sensor id.
All durations are seconds.
"""

from __future__ import annotations

import functools
import platform
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ioc import __version__

__all__ = ["CheckpointGauges", "IocMetrics", "LATENCY_BUCKETS", "ReservoirGauges"]

# From 1 ms (the target path) to 60 s (a broker with a long fetch wait, or backlog).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PROCESSING_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


class IocMetrics:
    """All engine metrics, registered on `registry` (tests pass their own)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.events = Counter(
            "ioc_events", "Valid events received, by stream", ["stream"], registry=registry
        )
        self.events_invalid = Counter(
            "ioc_events_invalid", "Events rejected to the dead-letter topic, by stream and reason",
            ["stream", "reason"], registry=registry,
        )
        self.events_late = Counter(
            "ioc_events_late", "Events older than the stream's watermark, not evaluated",
            ["stream"], registry=registry,
        )
        self.rule_evaluations = Counter(
            "ioc_rule_evaluations", "Rule evaluations (events x rules of the stream)",
            ["stream"], registry=registry,
        )
        self.alerts = Counter(
            "ioc_alerts", "Alert transitions published, by rule, domain, severity and status",
            ["rule_id", "domain", "severity", "status"], registry=registry,
        )
        self.alerts_firing = Gauge(
            "ioc_alerts_firing", "Alerts this worker published firing and not yet resolved, by rule, domain, severity",
            ["rule_id", "domain", "severity"], registry=registry,
        )
        self.event_to_alert = Histogram(
            "ioc_event_to_alert_seconds",
            "From an event's arrival on the broker to its alert being published",
            buckets=LATENCY_BUCKETS, registry=registry,
        )
        self.processing = Histogram(
            "ioc_processing_seconds", "Engine time per batch of events, by stream",
            ["stream"], buckets=PROCESSING_BUCKETS, registry=registry,
        )
        self.freshness = Gauge(
            "ioc_stream_freshness_seconds", "Seconds since the newest event of the stream arrived",
            ["stream"], registry=registry,
        )
        self.last_event_time = Gauge(
            "ioc_stream_last_event_timestamp_seconds", "Event time (ts) of the newest event, by stream",
            ["stream"], registry=registry,
        )
        self.rule_errors = Counter(
            "ioc_rule_errors", "Rule evaluations that raised an error (the event was skipped for that rule)",
            ["rule_id"], registry=registry,
        )
        self.rules_loaded = Gauge("ioc_rules_loaded", "Rules in the running rule set", registry=registry)
        self.shards = Gauge(
            "ioc_shards", "Input partitions this worker holds state for, by kind (raw, rekey)",
            ["kind"], registry=registry,
        )
        self.state_keys = Gauge("ioc_state_keys", "Rule keys with state in this worker's shards", registry=registry)
        self.timers = Gauge("ioc_timers", "Timers pending in this worker's shards", registry=registry)
        self.rule_keys_refused = Counter(
            "ioc_rule_keys_refused", "Events of new keys a rule did not evaluate because it holds its key limit",
            ["rule_id"], registry=registry,
        )
        self.publish_failures = Counter(
            "ioc_publish_failures",
            "Records that could not be published and were given up once (too large, invalid topic)",
            ["topic", "reason"], registry=registry,
        )
        self.broker_reconnects = Counter(
            "ioc_broker_reconnects", "Times the worker lost the broker and got it back", registry=registry
        )
        self.rules_reload_errors = Counter(
            "ioc_rules_reload_errors", "Rule reloads rejected because of errors", registry=registry
        )
        self.consumer_lag = Gauge(
            "ioc_consumer_lag", "Records of the stream's raw topic not read yet by this worker (its partitions)",
            ["stream"], registry=registry,
        )
        self.checkpoints = CheckpointGauges(registry)
        self.reservoirs = ReservoirGauges(registry)
        self.rules_info = Gauge("ioc_rules_info", "1, labelled with the running rule set's version (a hash)",
                                ["version"], registry=registry)
        self.build_info = Gauge("ioc_build_info", "1, labelled with the engine's version and Python's",
                                ["version", "python"], registry=registry)
        self.build_info.labels(version=__version__, python=platform.python_version()).set(1)

    def rules_running(self, count: int, version: str,
                      reservoirs: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """The rule set now running: `ioc_rules_loaded`, `ioc_rules_info{version}`, and the
        reservoirs of its reference data (`ioc_reservoir_*`)."""
        self.rules_loaded.set(count)
        self.reservoirs.reference(reservoirs or {})
        self.rules_info.clear()
        self.rules_info.labels(version=version).set(1)


class CheckpointGauges:
    """`ioc_checkpoint_age_seconds{runner}` (since the oldest checkpoint of what this worker holds
    was saved, or found still current) and `ioc_checkpoint_bytes{runner}` (their sizes summed), for `runner` in shards,
    sla, cluster. A runner reports each save, and forgets a key it no longer holds.

    >>> registry = CollectorRegistry()
    >>> gauges = CheckpointGauges(registry, clock=lambda: 100.0)
    >>> gauges.saved("shards", "raw.reservoir/0", 2048, at=40.0)
    >>> registry.get_sample_value("ioc_checkpoint_age_seconds", {"runner": "shards"})
    60.0
    """

    RUNNERS = ("shards", "sla", "cluster")

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._saved: dict[str, dict[str, tuple[float, int]]] = {runner: {} for runner in self.RUNNERS}
        self.age = Gauge("ioc_checkpoint_age_seconds",
                         "Seconds since the oldest checkpoint of what this worker holds was saved, by runner",
                         ["runner"], registry=registry)
        self.size = Gauge("ioc_checkpoint_bytes", "Bytes of the latest checkpoints of what this worker holds",
                          ["runner"], registry=registry)
        for runner in self.RUNNERS:
            self.age.labels(runner=runner).set_function(functools.partial(self._age, runner))
            self.size.labels(runner=runner).set_function(functools.partial(self._size, runner))

    def _age(self, runner: str) -> float:
        saved = self._saved[runner]
        return 0.0 if not saved else max(0.0, self._clock() - min(at for at, _ in saved.values()))

    def _size(self, runner: str) -> float:
        return float(sum(size for _, size in self._saved[runner].values()))

    def saved(self, runner: str, key: str, size: int, at: float | None = None) -> None:
        self._saved[runner][key] = (self._clock() if at is None else at, size)

    def confirm(self, runner: str, key: str) -> None:
        """The key's checkpoint is still its state (nothing moved since): as good as a new save."""
        held = self._saved[runner].get(key)
        if held is not None:
            self._saved[runner][key] = (self._clock(), held[1])

    def forget(self, runner: str, key: str) -> None:
        self._saved[runner].pop(key, None)


class ReservoirGauges(Collector):
    """The reference gauges of the reservoir stream, for a level panel with its thresholds:
    `ioc_reservoir_level_meters{reservoir,name}`, the newest `level_m` (by event time) of each
    reservoir and gauge *of the reference data* (config/reference/reservoir.yaml) that this worker
    read in the last `stale_s` seconds, and `ioc_reservoir_threshold_meters{reservoir,name,threshold}`,
    its reference levels (nwl, dead, flood_wait, bd1, bd2, bd3: those it has).

    The series are the reference data's, whatever the sensors send: a source id that is not in it
    adds none. A level not updated for `stale_s` is dropped (its partition moved to another worker,
    or the sensor went quiet), so `max by (reservoir)` over workers is the live one.

    >>> registry = CollectorRegistry()
    >>> gauges = ReservoirGauges(registry, clock=lambda: 100.0)
    >>> gauges.reference({"ta-trach": {"name": "Hồ Tả Trạch", "nwl_m": 45.0, "dead_m": 23.0, "bd1_m": None}})
    >>> gauges.observe([{"source_id": "ta-trach", "ts": 50.0, "level_m": 44.1},
    ...                 {"source_id": "unknown-1", "ts": 51.0, "level_m": 9.0}])
    >>> registry.get_sample_value("ioc_reservoir_level_meters", {"reservoir": "ta-trach", "name": "Hồ Tả Trạch"})
    44.1
    >>> registry.get_sample_value("ioc_reservoir_threshold_meters",
    ...                           {"reservoir": "ta-trach", "name": "Hồ Tả Trạch", "threshold": "nwl"})
    45.0
    """

    THRESHOLDS = {"nwl_m": "nwl", "dead_m": "dead", "flood_wait_m": "flood_wait",
                  "bd1_m": "bd1", "bd2_m": "bd2", "bd3_m": "bd3"}
    STALE_S = 900.0

    def __init__(self, registry: CollectorRegistry | None = None, clock: Callable[[], float] = time.time,
                 stale_s: float = STALE_S) -> None:
        self._clock = clock
        self._stale_s = stale_s
        # (names by id, threshold samples): replaced whole, as `collect` runs in the HTTP server's thread
        self._reference: tuple[dict[str, str], tuple[tuple[str, str, str, float], ...]] = ({}, ())
        self._levels: dict[str, tuple[float, float, float]] = {}  # id -> (event ts, level, read at)
        if registry is not None:
            registry.register(self)

    def reference(self, rows: Mapping[str, Mapping[str, Any]]) -> None:
        """The reservoirs and gauges of the reference data (again after a reload)."""
        names = {str(sid): str(row.get("name") or sid) for sid, row in rows.items()}
        thresholds = tuple(
            (str(sid), names[str(sid)], label, float(row[field]))
            for sid, row in sorted(rows.items()) for field, label in self.THRESHOLDS.items()
            if isinstance(row.get(field), (int, float)) and not isinstance(row.get(field), bool)
        )
        self._levels = {sid: level for sid, level in self._levels.items() if sid in names}
        self._reference = (names, thresholds)

    def observe(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Take the levels of a batch of valid reservoir events."""
        names, levels = self._reference[0], self._levels
        now = None
        for event in events:
            sid = event.get("source_id")
            if sid not in names:
                continue
            held = levels.get(sid)
            ts = event["ts"]
            if held is None or ts >= held[0]:
                now = self._clock() if now is None else now
                levels[sid] = (ts, float(event["level_m"]), now)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        names, thresholds = self._reference
        level = GaugeMetricFamily("ioc_reservoir_level_meters",
                                  "Newest water level of each reservoir and gauge of the reference data (m)",
                                  labels=["reservoir", "name"])
        oldest = self._clock() - self._stale_s
        for sid, (_, value, read_at) in sorted(self._levels.copy().items()):
            if read_at >= oldest and sid in names:
                level.add_metric([sid, names[sid]], value)
        threshold = GaugeMetricFamily("ioc_reservoir_threshold_meters",
                                      "Reference levels of each reservoir and gauge (m): nwl normal water level, "
                                      "dead, flood_wait, bd1-bd3 alarm levels",
                                      labels=["reservoir", "name", "threshold"])
        for sid, name, label, value in thresholds:
            threshold.add_metric([sid, name, label], value)
        yield level
        yield threshold
