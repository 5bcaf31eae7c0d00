"""Acceptance 2 of issue 15 at the pure level: over the storm-day scenario handled by the operator
simulator, every snapshot figure (SlaFigures) and every `ioc_sla_*` sample (SlaMetrics) equals
an independent pandas computation over the same state and outcome records."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry
from sla_fixtures import T0, scenario_alerts, scenario_timeline, tracker_timeline

from ioc.sla.figures import WINDOWS, SlaFigures
from ioc.sla.sla_metrics import SLA_BUCKETS, SlaMetrics
from sensors_sim.operators import LATE_SHARE, OperatorSimulator

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
    latest = states.sort_values("updated_at", kind="stable").groupby("fingerprint").tail(1)
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


def _same(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return actual == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.fixture(scope="module", params=[LATE_SHARE, 0.3], ids=["seed-late-share", "late-share-0.3"])
def run(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Feed the scenario's records in time order, snapshotting on a grid and just after missed deadlines."""
    alerts = scenario_alerts()
    operators = OperatorSimulator(seed=0, late_share=request.param)
    # Expected: pandas over the alert and action records (plain arithmetic per alert, below).
    timeline = scenario_timeline(alerts, operators)
    # Actual: the real tracker's state and outcome records through SlaFigures and SlaMetrics.
    tracked, rejections = tracker_timeline(alerts, operators)
    assert rejections == []
    end = timeline[-1][0] + 3600.0
    # Just after each missed deadline: the moments an alert is overdue.
    deadlines = {r[f"{d}_by"] + 1.0 for _, kind, r in timeline if kind == "outcome" for d in ("ack", "resolve")
                 if not r[f"{d}_on_time"]}
    times = sorted(set(np.linspace(T0, end, 25).tolist()) | deadlines | {end})
    registry = CollectorRegistry()
    figures, metrics = SlaFigures(), SlaMetrics(registry)
    snapshots: list[tuple[float, list[dict[str, Any]], dict[str, Any]]] = []
    position = 0
    for now in times:
        while position < len(tracked) and tracked[position][0] <= now:
            _, kind, record = tracked[position]
            if kind == "state":
                figures.on_state(record)
            elif figures.on_outcome(record):
                metrics.observe_outcome(record)
            position += 1
        records = figures.snapshot_records(now)
        metrics.set_snapshot(records)
        gauges = {(s.name, tuple(sorted(s.labels.items()))): s.value
                  for family in registry.collect() if family.type == "gauge" for s in family.samples}
        snapshots.append((now, records, gauges))
    states = pd.DataFrame([r for _, k, r in timeline if k == "state"])
    outcomes = pd.DataFrame([r for _, k, r in timeline if k == "outcome"])
    expected = {now: expected_figures(states, outcomes, now) for now in times}
    return {"snapshots": snapshots, "expected": expected, "outcomes": outcomes, "registry": registry,
            "late_share": request.param}


def test_every_snapshot_figure_equals_pandas(run: dict[str, Any]) -> None:
    compared = overdue_seen = late_seen = 0
    for now, records, _ in run["snapshots"]:
        expected = run["expected"][now]
        actual = {(r["scope"], r["window"]): r for r in records}
        assert set(actual) == set(expected), now
        for key, figures in expected.items():
            for field, value in figures.items():
                assert _same(actual[key][field], value), (now - T0, key, field, actual[key][field], value)
                compared += 1
        json.dumps(records, allow_nan=False)  # null where there is no data, never NaN
        overdue_seen += actual[("all", "1h")]["overdue_ack"] + actual[("all", "1h")]["overdue_resolve"]
        late_seen += (actual[("all", "30d")]["resolve_on_time_ratio"] or 1.0) < 1.0
    assert compared > 5000
    assert overdue_seen > 0 or run["outcomes"]["resolve_on_time"].all()


def test_late_share_gives_late_and_overdue_figures(run: dict[str, Any]) -> None:
    """Guards the comparison above against a run where nothing is ever late or overdue."""
    if run["late_share"] == LATE_SHARE:  # 1.86 %: the seed's few dozen alerts are all on time
        assert run["outcomes"][["ack_on_time", "resolve_on_time"]].all().all()
        return
    assert not run["outcomes"]["resolve_on_time"].all()
    overdue = [r["overdue_ack"] for _, records, _ in run["snapshots"] for r in records if r["scope"] == "all"]
    ratios = [r["ack_on_time_ratio"] for _, records, _ in run["snapshots"] for r in records if r["scope"] == "all"]
    assert max(overdue) > 0
    assert min(x for x in ratios if x is not None) < 1.0


def test_prometheus_histograms_and_counters_equal_pandas(run: dict[str, Any]) -> None:
    registry, outcomes = run["registry"], run["outcomes"]
    for (domain, severity), group in outcomes.groupby(["domain", "severity"]):
        labels = {"domain": domain, "severity": severity}
        for name, column in (("ioc_sla_ack_seconds", "ack_s"), ("ioc_sla_resolve_seconds", "resolve_s")):
            values = group[column].dropna()
            assert registry.get_sample_value(f"{name}_count", labels) == len(values)
            assert registry.get_sample_value(f"{name}_sum", labels) == pytest.approx(values.sum())
            for le in SLA_BUCKETS:
                sample = registry.get_sample_value(f"{name}_bucket", {**labels, "le": str(le)})
                assert sample == (values <= le).sum(), (name, labels, le)
        for deadline in ("ack", "resolve"):
            for on_time in (True, False):
                count = (group[f"{deadline}_on_time"] == on_time).sum()
                sample = registry.get_sample_value("ioc_sla_outcomes_total", {
                    **labels, "deadline": deadline, "on_time": str(on_time).lower()})
                assert (sample or 0.0) == count


def test_prometheus_gauges_equal_pandas_at_every_snapshot(run: dict[str, Any]) -> None:
    checked = 0
    for now, _, gauges in run["snapshots"]:
        expected = run["expected"][now]
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
        assert set(gauges) == set(want), now
        for key, value in want.items():
            assert gauges[key] == pytest.approx(value, rel=1e-12), (now - T0, key)
            checked += 1
    assert checked > 500
