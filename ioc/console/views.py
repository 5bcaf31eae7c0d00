"""JSON shapes of the API: an alert's row in the list, its detail, the SLA strip.

Times are RFC 3339 UTC text as on the topics; `now` is the console's clock (`sla.clock`), and
the time left to a deadline is counted on it (negative: overdue by that much).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ioc.console.store import AlertView, ConsoleStore
from ioc.timeutil import format_ts, parse_ts

__all__ = ["SLA_TARGET", "alert_detail", "alert_row", "sla_strip"]

SLA_TARGET = 0.95  # on time: docs/domain.md "SLA baselines" (administrative files 95-98 % on time)


def _deadlines(view: AlertView) -> dict[str, Any]:
    state = view.state or {}
    found = view.record.get("sla")
    sla: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return {"ack_by": state.get("ack_by") or sla.get("ack_by"),
            "resolve_by": state.get("resolve_by") or sla.get("resolve_by")}


def _left(deadline: Any, now: float) -> float | None:
    if deadline is None:
        return None
    try:
        return round(parse_ts(deadline) - now, 3)
    except (TypeError, ValueError):
        return None


def alert_row(view: AlertView, now: float, where: tuple[float, float] | None = None) -> dict[str, Any]:
    """The list's row of an alert."""
    state = view.state or {}
    deadlines = _deadlines(view)
    closed = view.operator_status == "resolved"
    acked = state.get("acked_at") is not None or view.operator_status in ("acked", "assigned", "resolved")
    return {
        "alert_id": view.alert_id,
        "rule_id": view.record.get("rule_id"),
        "stream": view.record.get("stream"),
        "severity": view.severity,
        "status": view.status,
        "operator_status": view.operator_status,
        "domain": view.domain,
        "agency": view.agency or None,
        "assignee": state.get("assignee"),
        "summary": view.record.get("summary"),
        "starts_at": view.record.get("starts_at"),
        "ends_at": view.record.get("ends_at"),
        **deadlines,
        "ack_left_s": None if acked or closed else _left(deadlines["ack_by"], now),
        "resolve_left_s": None if closed else _left(deadlines["resolve_by"], now),
        "escalation_level": state.get("escalation_level") or 0,
        "location": {"lat": where[0], "lon": where[1]} if where else None,
    }


def alert_detail(view: AlertView, now: float, rule: Any | None, where: tuple[float, float] | None) -> dict[str, Any]:
    """An alert's detail: its row, the record (evidence, value...), its state and its rule as written."""
    record = view.record
    return {
        "now": format_ts(now),
        "alert": alert_row(view, now, where),
        "record": {name: record.get(name) for name in (
            "fingerprint", "kind", "key", "labels", "summary", "description", "value", "evidence",
            "detected_at", "condition", "rule_source", "rule_version", "annotations", "details", "sla")},
        "state": view.state,
        "rule": None if rule is None else {
            "id": rule.id,
            "summary": rule.summary.text,          # the template as the analyst wrote it
            "description": rule.description.text,
            "place": rule.place,
            "severity": rule.spec.severity,
            "labels": dict(rule.spec.labels),
        },
    }


def sla_strip(store: ConsoleStore, now: float) -> dict[str, Any]:
    """The SLA strip: on-time ratios (latest snapshot of scope `all`) against the target, overdue now,
    escalations today (Huế's day of the console clock)."""
    windows = {}
    for window in ("24h", "30d"):
        snapshot = store.snapshots.get(("all", window))
        if snapshot is not None:
            windows[window] = {name: snapshot.get(name) for name in (
                "at", "resolved", "ack_on_time_ratio", "resolve_on_time_ratio", "overdue_ack", "overdue_resolve")}
    return {
        "now": format_ts(now),
        "target": SLA_TARGET,
        "windows": windows,
        "overdue": store.overdue(now),
        "escalations_today": store.escalations_today(now),
        "alerts": len(store.alerts),
    }
