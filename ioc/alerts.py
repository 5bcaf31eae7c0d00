"""The alert record of DESIGN.md, with deterministic fingerprint and alert id.

>>> fp = fingerprint("reservoir.level.near_nwl", {"source_id": "ta-trach"})
>>> fp == fingerprint("reservoir.level.near_nwl", {"source_id": "ta-trach"})
True
>>> make_alert_id(fp, 1761526800.0) == f"{fp}-1761526800000"
True
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from ioc.timeutil import format_ts

__all__ = ["Alert", "fingerprint", "fingerprint_of", "make_alert_id"]

_ALERT_ID = re.compile(r"^([0-9a-f]{16})-(-?[0-9]+)$")


def fingerprint(rule_id: str, key: dict[str, Any]) -> str:
    """Stable hash of a rule id and its key values: the same across runs, hosts and versions."""
    canonical = orjson.dumps([rule_id, sorted(key.items())])
    return hashlib.sha256(canonical).hexdigest()[:16]


def make_alert_id(fp: str, starts_at: float) -> str:
    """One episode of a fingerprint: fingerprint + start in epoch milliseconds (replays agree)."""
    return f"{fp}-{round(starts_at * 1000)}"


def fingerprint_of(alert_id: str) -> str:
    """The fingerprint in an alert id (the key of its records on `ioc.alerts` and of the actions on
    it); ValueError if `alert_id` is not one.

    >>> fingerprint_of("eece90541220b5d3-1761526800000")
    'eece90541220b5d3'
    """
    match = _ALERT_ID.match(alert_id)
    if match is None:
        raise ValueError(f"{alert_id[:80]!r} is not an alert id (16 hex digits, '-', the start in epoch "
                         "milliseconds, e.g. eece90541220b5d3-1761526800000)")
    return match.group(1)


@dataclass(slots=True)
class Alert:
    """One alert transition (firing or resolved), as published on `ioc.alerts`."""

    fingerprint: str
    alert_id: str
    rule_id: str
    stream: str
    kind: str
    severity: str
    status: str
    key: dict[str, Any]
    labels: dict[str, str]
    summary: str
    description: str
    starts_at: float
    ends_at: float | None
    detected_at: float
    value: Any = None
    evidence: list[str] = field(default_factory=list)
    sla: dict[str, float] | None = None
    # The rule as it was: `CompiledRule.version` (a hash of its normalised definition and the
    # reference rows it joins) and where it is written (`rules/reservoir.yaml:11`).
    rule_version: str | None = None
    rule_source: str | None = None
    # The rule's condition as it fired: reference fields and constants put in (`level_m >= 44.5`).
    condition: str | None = None
    # The rule's annotations, rendered (`runbook_url` among them), and what the kind found
    # besides the measured `value` (matched keywords, the zone, the new value...).
    annotations: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    # Wall time the triggering event reached the broker, for event-to-alert latency; not published.
    received_at: float | None = None

    def to_record(self) -> dict[str, Any]:
        """The JSON-able record of DESIGN.md (times as RFC 3339 UTC)."""
        return {
            "fingerprint": self.fingerprint,
            "alert_id": self.alert_id,
            "rule_id": self.rule_id,
            "stream": self.stream,
            "kind": self.kind,
            "severity": self.severity,
            "status": self.status,
            "key": self.key,
            "labels": self.labels,
            "summary": self.summary,
            "description": self.description,
            "starts_at": format_ts(self.starts_at),
            "ends_at": format_ts(self.ends_at) if self.ends_at is not None else None,
            "detected_at": format_ts(self.detected_at),
            "value": self.value,
            "evidence": self.evidence,
            "sla": (
                {name: format_ts(at) for name, at in self.sla.items()} if self.sla is not None else None
            ),
            "rule_version": self.rule_version,
            "rule_source": self.rule_source,
            "condition": self.condition,
            "annotations": self.annotations,
            "details": self.details,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_record(), option=orjson.OPT_NON_STR_KEYS)
