"""The SLA half's Prometheus metrics (`ioc_sla_*`), on an injected registry.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = SlaMetrics(registry)
>>> metrics.observe_outcome({"domain": "water", "severity": "warning", "ack_s": 120.0,
...     "resolve_s": 3000.0, "ack_on_time": True, "resolve_on_time": False})
>>> registry.get_sample_value("ioc_sla_ack_seconds_count", {"domain": "water", "severity": "warning"})
1.0
>>> registry.get_sample_value("ioc_sla_outcomes_total",
...     {"domain": "water", "severity": "warning", "deadline": "resolve", "on_time": "false"})
1.0

Labels stay bounded: domain (rule label, at most MAX_VALUES values then `other`), severity (the
four severities, else `other`), deadline (`ack`, `resolve`), window (`1h`, `24h`, `30d`),
escalation level (1-9, else `other`). Never an alert, rule-key or sensor id. Seconds throughout.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ioc.sla.figures import MAX_VALUES, OTHER, SEVERITIES, WINDOWS, LabelBound

__all__ = ["SLA_BUCKETS", "SlaMetrics"]

# From 1 min (a quick ack) to 7 days (past the 5-working-day deadline of administrative files).
SLA_BUCKETS = (60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0,
               86400.0, 172800.0, 345600.0, 604800.0)
DEADLINES = ("ack", "resolve")
# Which snapshot window feeds `ioc_sla_overdue` (overdue is "now": every window carries the same).
OVERDUE_WINDOW = next(iter(WINDOWS))


class SlaMetrics:
    """`ioc_sla_*` metrics, registered on `registry` (tests pass their own).

    `observe_outcome` once per new outcome record (SlaFigures.on_outcome says which are new),
    `set_snapshot` with each batch of snapshot records, `escalated` per escalation record."""

    def __init__(self, registry: CollectorRegistry, *, max_values: int = MAX_VALUES) -> None:
        self.registry = registry
        self._domain = LabelBound(max_values)
        self._severity = LabelBound(allowed=SEVERITIES)
        self.ack_seconds = Histogram(
            "ioc_sla_ack_seconds", "Time from an alert's start to its acknowledgement, by domain and severity",
            ["domain", "severity"], buckets=SLA_BUCKETS, registry=registry,
        )
        self.resolve_seconds = Histogram(
            "ioc_sla_resolve_seconds", "Time from an alert's start to its resolution by an operator",
            ["domain", "severity"], buckets=SLA_BUCKETS, registry=registry,
        )
        self.outcomes = Counter(
            "ioc_sla_outcomes", "Alerts resolved by operators, by deadline (ack, resolve) and whether it was met",
            ["domain", "severity", "deadline", "on_time"], registry=registry,
        )
        self.overdue = Gauge(
            "ioc_sla_overdue", "Alerts open now past their ack or resolve deadline (one alert may be in both)",
            ["domain", "severity", "deadline"], registry=registry,
        )
        self.on_time_ratio = Gauge(
            "ioc_sla_on_time_ratio", "Share of the alerts resolved in the window that met the deadline",
            ["domain", "window", "deadline"], registry=registry,
        )
        self.escalations = Counter(
            "ioc_sla_escalations", "Escalation records published, by domain and level", ["domain", "level"],
            registry=registry,
        )
        self._overdue_set: set[tuple[str, str, str]] = set()
        self._ratio_set: set[tuple[str, str, str]] = set()

    def observe_outcome(self, record: Mapping[str, Any]) -> None:
        """An outcome record (`ioc.sla`, type outcome): its times and whether each deadline was met."""
        domain, severity = self._domain(record.get("domain")), self._severity(record.get("severity"))
        if record.get("ack_s") is not None:
            self.ack_seconds.labels(domain=domain, severity=severity).observe(float(record["ack_s"]))
        if record.get("resolve_s") is not None:
            self.resolve_seconds.labels(domain=domain, severity=severity).observe(float(record["resolve_s"]))
        for deadline in DEADLINES:
            on_time = "true" if record.get(f"{deadline}_on_time") else "false"
            self.outcomes.labels(domain=domain, severity=severity, deadline=deadline, on_time=on_time).inc()

    def set_snapshot(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Gauges from one batch of snapshot records (SlaFigures.snapshot_records): on-time ratios
        of the `all` (as domain="all") and `domain=...` scopes, overdue counts of the
        `domain=...,severity=...` scopes. A series without data (ratio null, scope gone) is removed,
        not set to NaN."""
        overdue: dict[tuple[str, str, str], float] = {}
        ratios: dict[tuple[str, str, str], float] = {}
        for record in records:
            if record.get("type") != "snapshot":
                continue
            parts = dict(part.split("=", 1) for part in str(record["scope"]).split(",") if "=" in part)
            window = str(record["window"])
            if record["scope"] == "all" or set(parts) == {"domain"}:
                domain = "all" if record["scope"] == "all" else self._domain(parts["domain"])
                for deadline in DEADLINES:
                    ratio = record.get(f"{deadline}_on_time_ratio")
                    if ratio is not None and window in WINDOWS:
                        ratios[(domain, window, deadline)] = float(ratio)
            elif set(parts) == {"domain", "severity"} and window == OVERDUE_WINDOW:
                key = (self._domain(parts["domain"]), self._severity(parts["severity"]))
                for deadline in DEADLINES:
                    labels = (*key, deadline)
                    overdue[labels] = overdue.get(labels, 0.0) + float(record[f"overdue_{deadline}"])
        self._overdue_set = _replace(self.overdue, self._overdue_set, overdue, ("domain", "severity", "deadline"))
        self._ratio_set = _replace(self.on_time_ratio, self._ratio_set, ratios, ("domain", "window", "deadline"))

    def expect(self, domains: Iterable[str], levels: int) -> None:
        """Start the escalation counters of these domains and chain levels at 0: a series that
        exists before the first escalation shows 0 in rates and dashboards, not "no data"."""
        for domain in sorted(set(domains)):
            for level in range(1, min(levels, 9) + 1):
                self.escalations.labels(domain=self._domain(domain), level=str(level))

    def escalated(self, record: Mapping[str, Any]) -> None:
        """An escalation record (an alert record with label `escalation`, its level)."""
        labels = record.get("labels") or {}
        # As the alert's own domain (ioc.runtime.pipeline): the rule's label, else the stream.
        domain = self._domain(labels.get("domain", record.get("domain") or record.get("stream")))
        raw = labels.get("escalation", record.get("escalation_level", record.get("level")))
        digits = "".join(ch for ch in str(raw) if ch.isdigit())
        level = digits if digits and 1 <= int(digits) <= 9 else OTHER
        self.escalations.labels(domain=domain, level=level).inc()


def _replace(gauge: Gauge, previous: set[tuple[str, str, str]], values: dict[tuple[str, str, str], float],
             names: tuple[str, str, str]) -> set[tuple[str, str, str]]:
    for labels in previous - set(values):
        gauge.remove(*labels)
    for labels, value in values.items():
        gauge.labels(**dict(zip(names, labels, strict=True))).set(value)
    return set(values)
