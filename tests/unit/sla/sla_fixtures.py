"""Shared fixtures of the SLA tests: alert, state and outcome records, scripted or from a scenario.

`reference_outcome` and `reference_states` derive outcome and state records (the tracker's
schemas) from an alert and its operator actions with the plainest arithmetic, for the pandas
side of a comparison; `tracker_timeline` is what the real `AlertTracker` makes of the same;
`expected_figures` is the pandas computation of the snapshot figures from such records.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd

from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules
from ioc.sla.calendar import WorkingCalendar
from ioc.sla.deadlines import compute_deadlines
from ioc.sla.figures import WINDOWS
from ioc.sla.settings import SlaSettings
from ioc.sla.tracker import AlertTracker
from ioc.timeutil import parse_ts
from sensors_sim.operators import OperatorSimulator
from sensors_sim.scenario import build, load_scenario

T0 = 1761498000.0  # 2025-10-27 00:00 +07:00


def outcome_record(alert_id: str = "aaaaaaaaaaaaaaaa-1", *, starts_at: float = 0.0, ack_after: float | None = 60.0,
                   resolve_after: float = 600.0, ack_budget: float | None = 300.0,
                   resolve_budget: float | None = 3600.0, domain: str = "water", severity: str = "warning",
                   agency: str = "So NN&PTNT", rule_id: str = "r.test") -> dict[str, Any]:
    """An outcome record as the tracker emits it, from times relative to the alert's start."""
    ack_by = starts_at + ack_budget if ack_budget is not None else None
    resolve_by = starts_at + resolve_budget if resolve_budget is not None else None
    acked_at = starts_at + ack_after if ack_after is not None else None
    return _outcome(alert_id, alert_id.split("-")[0], rule_id, domain, severity, agency, starts_at, ack_by,
                    resolve_by, acked_at, starts_at + resolve_after)


def state_record(alert_id: str = "aaaaaaaaaaaaaaaa-1", *, operator_status: str = "open", starts_at: float = 0.0,
                 ack_by: float | None = 300.0, resolve_by: float | None = 3600.0, acked_at: float | None = None,
                 resolved_at: float | None = None, updated_at: float | None = None, domain: str = "water",
                 severity: str = "warning", agency: str = "So NN&PTNT") -> dict[str, Any]:
    """An `ioc.alert-state` record as the tracker emits it."""
    return {
        "type": "alert_state", "fingerprint": alert_id.split("-")[0], "alert_id": alert_id, "rule_id": "r.test",
        "domain": domain, "severity": severity, "agency": agency, "status": "firing",
        "operator_status": operator_status, "assignee": None, "starts_at": starts_at, "ends_at": None,
        "ack_by": ack_by, "resolve_by": resolve_by, "acked_at": acked_at, "acked_by": "op" if acked_at else None,
        "resolved_at": resolved_at, "resolved_by": "op" if resolved_at else None, "escalation_level": 0,
        "overdue": None, "notes": [], "updated_at": updated_at if updated_at is not None else starts_at,
    }


def _outcome(alert_id: str, fingerprint: str, rule_id: str, domain: str, severity: str, agency: str,
             starts_at: float, ack_by: float | None, resolve_by: float | None, acked_at: float | None,
             resolved_at: float) -> dict[str, Any]:
    return {
        "type": "outcome", "alert_id": alert_id, "fingerprint": fingerprint, "rule_id": rule_id, "domain": domain,
        "severity": severity, "agency": agency, "starts_at": starts_at, "ack_by": ack_by, "resolve_by": resolve_by,
        "acked_at": acked_at, "resolved_at": resolved_at,
        "ack_s": acked_at - starts_at if acked_at is not None else None,
        "resolve_s": resolved_at - starts_at,
        "ack_late_s": acked_at - ack_by if acked_at is not None and ack_by is not None else None,
        "resolve_late_s": resolved_at - resolve_by if resolve_by is not None else None,
        # No deadline: nothing to be late for. Never acked: late once the deadline passed.
        "ack_on_time": ack_by is None or (acked_at is not None and acked_at <= ack_by),
        "resolve_on_time": resolve_by is None or resolved_at <= resolve_by,
    }


def _times(alert: dict[str, Any], actions: list[dict[str, Any]]) -> tuple[float | None, float | None]:
    acks = [parse_ts(a["at"]) for a in actions if a["action"] == "ack"]
    resolves = [parse_ts(a["at"]) for a in actions if a["action"] == "resolve"]
    return (min(acks) if acks else None), (min(resolves) if resolves else None)


def _labels(alert: dict[str, Any]) -> tuple[str, str, str, float, float | None, float | None]:
    """Domain, severity, agency, start and deadlines: the record's own `sla`, and for a deadline
    it lacks, the severity's default (ioc.sla.deadlines, unit-tested on its own: weekends, holidays)."""
    sla = alert.get("sla") or {}
    starts = parse_ts(alert["starts_at"])
    defaults = compute_deadlines(starts, alert["severity"], alert["rule_id"], None, _SETTINGS, _calendar())
    return (alert["labels"].get("domain"), alert["severity"], alert["labels"].get("agency"), starts,
            parse_ts(sla["ack_by"]) if sla.get("ack_by") else defaults.ack.due_at,
            parse_ts(sla["resolve_by"]) if sla.get("resolve_by") else defaults.resolve.due_at)


_SETTINGS = SlaSettings()


@functools.cache
def _calendar() -> WorkingCalendar:
    return WorkingCalendar.from_file(_SETTINGS.calendar, _SETTINGS.working_hours)


def reference_outcome(alert: dict[str, Any], actions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The outcome record of a firing alert and its actions (first ack, first resolve); None while
    unresolved."""
    acked_at, resolved_at = _times(alert, actions)
    if resolved_at is None:
        return None
    domain, severity, agency, starts, ack_by, resolve_by = _labels(alert)
    return _outcome(alert["alert_id"], alert["fingerprint"], alert["rule_id"], domain, severity, agency, starts,
                    ack_by, resolve_by, acked_at, resolved_at)


def reference_states(alert: dict[str, Any], actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The state records of an alert: open at its start, then acked, then resolved."""
    acked_at, resolved_at = _times(alert, actions)
    domain, severity, agency, starts, ack_by, resolve_by = _labels(alert)
    common = {"starts_at": starts, "ack_by": ack_by, "resolve_by": resolve_by, "domain": domain,
              "severity": severity, "agency": agency}
    states = [state_record(alert["alert_id"], **common)]
    if acked_at is not None:
        states.append(state_record(alert["alert_id"], operator_status="acked", acked_at=acked_at,
                                   updated_at=acked_at, **common))
    if resolved_at is not None:
        states.append(state_record(alert["alert_id"], operator_status="resolved", acked_at=acked_at,
                                   resolved_at=resolved_at, updated_at=resolved_at, **common))
    for state in states:
        state["fingerprint"] = alert["fingerprint"]
    return states


@functools.cache
def _scenario_alerts(duration_s: float, seed: int) -> tuple[dict[str, Any], ...]:
    run = build(load_scenario("storm-day"), seed=seed, start=T0, duration_s=duration_s)
    rules = load_rules([REPO_ROOT / "rules"], load_reference(REPO_ROOT / "config" / "reference"))
    result = run_backtest(rules, (RawEvent(stream, event, "storm-day") for stream, event in run.events()))
    return tuple(alert.to_record() for alert in result.alerts)


def scenario_alerts(duration_s: float = 8 * 3600.0, seed: int = 0) -> list[dict[str, Any]]:
    """The alert records (every transition) of the storm-day scenario's first `duration_s`."""
    return [dict(record) for record in _scenario_alerts(duration_s, seed)]


def scenario_timeline(alerts: list[dict[str, Any]], operators: OperatorSimulator
                      ) -> list[tuple[float, str, dict[str, Any]]]:
    """(event time, "state" | "outcome", record) of every firing alert handled by `operators`,
    in time order (a state record before the outcome of the same instant, as the tracker emits)."""
    timeline: list[tuple[float, int, str, dict[str, Any]]] = []
    for alert in alerts:
        actions = operators.actions_for(alert)
        if not actions:
            continue
        for state in reference_states(alert, actions):
            timeline.append((state["updated_at"], 0, "state", state))
        outcome = reference_outcome(alert, actions)
        if outcome is not None:
            timeline.append((outcome["resolved_at"], 1, "outcome", outcome))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return [(at, kind, record) for at, _, kind, record in timeline]


def tracker_timeline(alerts: list[dict[str, Any]], operators: OperatorSimulator
                     ) -> tuple[list[tuple[float, str, dict[str, Any]]], list[dict[str, Any]]]:
    """What the real `AlertTracker` makes of the same alerts and actions, fed in event-time order
    (a transition at its start or end, an action at its `at`) with the clock moved to each record's
    time: (event time, "state" | "outcome", record) in emission order, and its rejections."""
    inputs: list[tuple[float, int, str, dict[str, Any]]] = []
    for alert in alerts:
        at = parse_ts(alert["ends_at"] if alert["status"] == "resolved" else alert["starts_at"])
        inputs.append((at, 0, "alert", alert))
        for action in operators.actions_for(alert):
            inputs.append((parse_ts(action["at"]), 1, "action", action))
    inputs.sort(key=lambda item: (item[0], item[1]))
    tracker = AlertTracker()
    timeline: list[tuple[float, str, dict[str, Any]]] = []
    rejections: list[dict[str, Any]] = []
    for at, _, kind, record in inputs:
        for out in (tracker.advance(at), tracker.on_alert(record) if kind == "alert" else tracker.on_action(record)):
            timeline += [(at, "state", state) for state in out.states]
            timeline += [(at, "outcome", outcome) for outcome in out.outcomes]
            rejections += out.rejections
    return timeline, rejections


FIELDS = ("alerts", "acked", "resolved", "ack_on_time", "resolve_on_time", "ack_on_time_ratio",
          "resolve_on_time_ratio", "overdue_ack", "overdue_resolve", "ack_p50_s", "ack_p90_s",
          "resolve_p50_s", "resolve_p90_s")


def _with_scopes(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (record, scope) it counts in."""
    parts = [
        frame.assign(scope="all"),
        frame.assign(scope="domain=" + frame["domain"]),
        frame.assign(scope="severity=" + frame["severity"]),
        frame.assign(scope="agency=" + frame["agency"]),
        frame.assign(scope="domain=" + frame["domain"] + ",severity=" + frame["severity"]),
    ]
    return pd.concat(parts, ignore_index=True)


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def expected_figures(states: pd.DataFrame, outcomes: pd.DataFrame, now: float) -> dict[tuple[str, str], dict]:
    """The snapshot figures at `now` from the records published up to `now`, with pandas."""
    outcomes = outcomes[(outcomes["resolved_at"] <= now) & (outcomes["resolved_at"] > now - WINDOWS["30d"])]
    states = states[states["updated_at"] <= now]
    started = pd.concat([states, outcomes])[["alert_id", "starts_at", "domain", "severity", "agency"]]
    started = started.drop_duplicates("alert_id")
    started = started[started["starts_at"] > now - WINDOWS["30d"]]
    # ioc.alert-state is compacted by fingerprint: the latest record of each is what holds now.
    # Of a fingerprint, its latest episode counts (a new one replaces an earlier left open).
    latest = states.sort_values(["starts_at", "updated_at"], kind="stable").groupby("fingerprint").tail(1)
    open_ = latest[latest["operator_status"] != "resolved"]
    open_ = open_.assign(late_ack=open_["acked_at"].isna() & (open_["ack_by"] < now),
                         late_resolve=open_["resolve_by"] < now)
    scoped_open = _with_scopes(open_).groupby("scope")[["late_ack", "late_resolve"]].sum()
    scopes = {"all"} | set(_with_scopes(outcomes)["scope"]) | set(_with_scopes(started)["scope"]) \
        | set(_with_scopes(open_)["scope"])
    expected: dict[tuple[str, str], dict] = {}
    for window, length in WINDOWS.items():
        done = _with_scopes(outcomes[(outcomes["resolved_at"] > now - length)])
        begun = _with_scopes(started[(started["starts_at"] > now - length) & (started["starts_at"] <= now)])
        by_scope = done.groupby("scope")
        table = pd.DataFrame({
            "resolved": by_scope.size(),
            "acked": by_scope["ack_s"].count(),
            "ack_on_time": by_scope["ack_on_time"].sum(),
            "resolve_on_time": by_scope["resolve_on_time"].sum(),
            "ack_on_time_ratio": by_scope["ack_on_time"].mean(),
            "resolve_on_time_ratio": by_scope["resolve_on_time"].mean(),
            "ack_p50_s": by_scope["ack_s"].quantile(0.5, interpolation="linear"),
            "ack_p90_s": by_scope["ack_s"].quantile(0.9, interpolation="linear"),
            "resolve_p50_s": by_scope["resolve_s"].quantile(0.5, interpolation="linear"),
            "resolve_p90_s": by_scope["resolve_s"].quantile(0.9, interpolation="linear"),
        }) if len(done) else pd.DataFrame()
        alerts = begun.groupby("scope").size()
        for scope in scopes:
            row = table.loc[scope].to_dict() if scope in table.index else {}
            figures = {field: _plain(row.get(field)) for field in FIELDS if field in table.columns}
            for count in ("resolved", "acked", "ack_on_time", "resolve_on_time"):
                figures[count] = int(figures.get(count) or 0)
            figures["alerts"] = int(alerts.get(scope, 0))
            figures["overdue_ack"] = int(scoped_open["late_ack"].get(scope, 0))
            figures["overdue_resolve"] = int(scoped_open["late_resolve"].get(scope, 0))
            expected[(scope, window)] = {field: figures.get(field) for field in FIELDS}
    return expected


def expected_gauges(expected: dict[tuple[str, str], dict]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The `ioc_sla_on_time_ratio` and `ioc_sla_overdue` samples SlaMetrics.set_snapshot makes of
    `expected_figures`: (name, sorted labels) -> value."""
    want: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for (scope, window), figures in expected.items():
        if scope == "all" or scope.count("=") == 1 and scope.startswith("domain="):
            domain = "all" if scope == "all" else scope.split("=", 1)[1]
            for deadline in ("ack", "resolve"):
                if figures[f"{deadline}_on_time_ratio"] is not None:
                    labels = (("deadline", deadline), ("domain", domain), ("window", window))
                    want[("ioc_sla_on_time_ratio", labels)] = figures[f"{deadline}_on_time_ratio"]
        elif scope.startswith("domain=") and ",severity=" in scope and window == "1h":
            domain, severity = (part.split("=", 1)[1] for part in scope.split(","))
            for deadline in ("ack", "resolve"):
                labels = (("deadline", deadline), ("domain", domain), ("severity", severity))
                want[("ioc_sla_overdue", labels)] = figures[f"overdue_{deadline}"]
    return want
