"""SlaFigures and SlaMetrics on scripted records: windows, ratios, quantiles, overdue, bounds, state."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry
from sla_fixtures import outcome_record, state_record

from ioc.sla.figures import SlaFigures, quantile
from ioc.sla.sla_metrics import SlaMetrics

HOUR = 3600.0


def _at(figures: SlaFigures, now: float, scope: str = "all", window: str = "1h") -> dict:
    return next(r for r in figures.snapshot_records(now) if r["scope"] == scope and r["window"] == window)


def test_ratios_and_linear_quantiles_over_the_window() -> None:
    figures = SlaFigures()
    for n, (ack, resolve) in enumerate([(60.0, 600.0), (120.0, 1200.0), (600.0, 1800.0), (30.0, 5000.0)]):
        figures.on_outcome(outcome_record(f"{n:016x}-1", ack_after=ack, resolve_after=resolve))
    record = _at(figures, now=6000.0, window="24h")
    assert (record["resolved"], record["acked"], record["ack_on_time"], record["resolve_on_time"]) == (4, 4, 3, 3)
    assert record["ack_on_time_ratio"] == 0.75 and record["resolve_on_time_ratio"] == 0.75
    assert record["ack_p50_s"] == 90.0                  # between 60 and 120
    assert record["ack_p90_s"] == pytest.approx(120.0 + 0.7 * 480.0)
    assert record["resolve_p50_s"] == 1500.0


def test_window_is_half_open_over_resolved_at() -> None:
    figures = SlaFigures()
    figures.on_outcome(outcome_record("0000000000000001-1", starts_at=0.0, resolve_after=600.0))
    figures.on_outcome(outcome_record("0000000000000002-1", starts_at=HOUR, resolve_after=600.0))
    now = 600.0 + HOUR                                   # the first resolved exactly one hour ago
    assert _at(figures, now)["resolved"] == 1
    assert _at(figures, now, window="24h")["resolved"] == 2
    assert _at(figures, 600.0 + HOUR - 1)["resolved"] == 1   # the second resolves later than `now`: not yet
    assert _at(figures, 600.0)["resolved"] == 1              # resolved exactly at `now`: counted
    assert _at(figures, 599.0, window="30d")["resolved"] == 0


def test_never_acked_counts_as_late_ack_and_is_not_in_ack_times() -> None:
    figures = SlaFigures()
    figures.on_outcome(outcome_record("0000000000000001-1", ack_after=None, resolve_after=600.0))
    figures.on_outcome(outcome_record("0000000000000002-1", ack_after=100.0, resolve_after=700.0))
    record = _at(figures, HOUR)
    assert (record["resolved"], record["acked"], record["ack_on_time_ratio"]) == (2, 1, 0.5)
    assert record["ack_p50_s"] == record["ack_p90_s"] == 100.0


def test_no_data_is_null_and_the_records_are_strict_json() -> None:
    records = SlaFigures().snapshot_records(1000.0)
    assert [(r["scope"], r["window"]) for r in records] == [("all", "1h"), ("all", "24h"), ("all", "30d")]
    assert records[0]["ack_on_time_ratio"] is None and records[0]["resolve_p90_s"] is None
    json.dumps(records, allow_nan=False)


def test_overdue_now_from_the_latest_state_per_fingerprint() -> None:
    figures = SlaFigures()
    figures.on_state(state_record("000000000000000a-1", ack_by=300.0, resolve_by=3600.0))
    assert _at(figures, 300.0)["overdue_ack"] == 0           # the deadline itself is still on time
    assert (_at(figures, 301.0)["overdue_ack"], _at(figures, 301.0)["overdue_resolve"]) == (1, 0)
    figures.on_state(state_record("000000000000000a-1", operator_status="acked", acked_at=400.0, updated_at=400.0))
    figures.on_state(state_record("000000000000000a-1", updated_at=10.0))        # stale: ignored
    assert (_at(figures, 4000.0)["overdue_ack"], _at(figures, 4000.0)["overdue_resolve"]) == (0, 1)
    assert _at(figures, 4000.0, "domain=water,severity=warning", "30d")["overdue_resolve"] == 1
    figures.on_state(state_record("000000000000000a-1", operator_status="resolved", acked_at=400.0,
                                  resolved_at=5000.0, updated_at=5000.0))
    assert _at(figures, 6000.0)["overdue_resolve"] == 0


def test_an_outcome_closes_its_open_state() -> None:
    figures = SlaFigures()
    figures.on_state(state_record("000000000000000b-1", ack_by=300.0, resolve_by=600.0))
    figures.on_outcome(outcome_record("000000000000000b-1", ack_after=100.0, resolve_after=500.0))
    figures.on_state(state_record("000000000000000b-1", operator_status="acked", acked_at=100.0, updated_at=100.0))
    assert _at(figures, 1000.0)["overdue_resolve"] == 0
    assert _at(figures, 1000.0)["alerts"] == 1


def test_duplicates_are_reported_and_a_later_outcome_replaces() -> None:
    figures = SlaFigures()
    first = outcome_record("000000000000000c-1", resolve_after=600.0)
    assert figures.on_outcome(first) is True
    assert figures.on_outcome(dict(first)) is False
    assert figures.on_outcome(outcome_record("000000000000000c-1", resolve_after=7200.0)) is True
    record = _at(figures, 8000.0, window="24h")
    assert (record["resolved"], record["resolve_on_time"], record["resolve_p50_s"]) == (1, 0, 7200.0)


def test_scopes_are_bounded() -> None:
    figures = SlaFigures(max_values=2)
    for n, domain in enumerate(["water", "cyber", "press", "traffic"]):
        figures.on_outcome(outcome_record(f"{n:016x}-1", domain=domain, severity="loud" if n else "critical"))
    scopes = {r["scope"] for r in figures.snapshot_records(HOUR)}
    assert {"domain=water", "domain=cyber", "domain=other", "severity=critical", "severity=other"} <= scopes
    assert "domain=press" not in scopes and "severity=loud" not in scopes
    assert _at(figures, HOUR, "domain=other")["resolved"] == 2


def test_memory_caps_drop_the_oldest_and_retention_is_30_days() -> None:
    figures = SlaFigures(max_outcomes=10)
    for n in range(11):
        figures.on_outcome(outcome_record(f"{n:016x}-1", starts_at=float(n)))
    assert figures.dropped == 1 and _at(figures, HOUR)["resolved"] == 10
    day = 86400.0
    assert _at(figures, 30 * day + 609.0, window="30d")["resolved"] == 1    # resolved at 610: 30 d ago less 1 s
    assert _at(figures, 30 * day + 610.0, window="30d")["resolved"] == 0    # all resolved 30 days ago or more
    assert _at(figures, 600.0, window="30d")["resolved"] == 0                # and pruned for good


def test_snapshot_restore_round_trip_through_json() -> None:
    figures = SlaFigures(max_values=1)
    figures.on_outcome(outcome_record("000000000000000d-1", ack_after=None))
    figures.on_outcome(outcome_record("000000000000000e-1", domain="cyber"))
    figures.on_state(state_record("000000000000000f-1", domain="press", starts_at=100.0, updated_at=100.0))
    restored = SlaFigures(max_values=1)
    restored.restore(json.loads(json.dumps(figures.snapshot())))
    assert restored.snapshot_records(HOUR) == figures.snapshot_records(HOUR)
    restored.on_outcome(outcome_record("0000000000000010-1", domain="traffic"))
    assert "domain=traffic" not in {r["scope"] for r in restored.snapshot_records(HOUR)}


def test_quantile_matches_numpy_linear() -> None:
    import numpy as np

    values = [5.0, 1.0, 9.0, 3.0, 7.5]
    for q in (0.0, 0.5, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))


def test_metrics_histograms_counters_and_escalations() -> None:
    registry = CollectorRegistry()
    metrics = SlaMetrics(registry)
    metrics.observe_outcome(outcome_record(ack_after=None, resolve_after=90.0, severity="critical"))
    labels = {"domain": "water", "severity": "critical"}
    assert registry.get_sample_value("ioc_sla_ack_seconds_count", labels) is None
    assert registry.get_sample_value("ioc_sla_resolve_seconds_bucket", {**labels, "le": "60.0"}) == 0.0
    assert registry.get_sample_value("ioc_sla_resolve_seconds_bucket", {**labels, "le": "120.0"}) == 1.0
    assert registry.get_sample_value("ioc_sla_resolve_seconds_bucket", {**labels, "le": "604800.0"}) == 1.0
    assert registry.get_sample_value(
        "ioc_sla_outcomes_total", {**labels, "deadline": "ack", "on_time": "false"}) == 1.0
    metrics.escalated({"labels": {"domain": "water", "escalation": "2"}, "alert_id": "x"})
    metrics.escalated({"labels": {"domain": "water", "escalation": "level-42"}})
    assert registry.get_sample_value("ioc_sla_escalations_total", {"domain": "water", "level": "2"}) == 1.0
    assert registry.get_sample_value("ioc_sla_escalations_total", {"domain": "water", "level": "other"}) == 1.0


def test_metrics_gauges_follow_the_snapshot_and_drop_stale_series() -> None:
    registry = CollectorRegistry()
    metrics, figures = SlaMetrics(registry), SlaFigures()
    figures.on_outcome(outcome_record("0000000000000001-1", resolve_after=7200.0))
    figures.on_state(state_record("0000000000000002-1", domain="cyber", severity="critical", starts_at=5000.0,
                                  ack_by=5300.0, resolve_by=8000.0, updated_at=5000.0))
    metrics.set_snapshot(figures.snapshot_records(7300.0))
    ratio = {"domain": "water", "window": "1h", "deadline": "resolve"}
    overdue = {"domain": "cyber", "severity": "critical", "deadline": "ack"}
    assert registry.get_sample_value("ioc_sla_on_time_ratio", ratio) == 0.0
    assert registry.get_sample_value("ioc_sla_on_time_ratio", {**ratio, "domain": "all", "deadline": "ack"}) == 1.0
    assert registry.get_sample_value("ioc_sla_overdue", overdue) == 1.0
    assert registry.get_sample_value("ioc_sla_overdue", {**overdue, "deadline": "resolve"}) == 0.0
    metrics.set_snapshot(figures.snapshot_records(7200.0 + 2 * HOUR))     # out of the 1 h window now
    assert registry.get_sample_value("ioc_sla_on_time_ratio", ratio) is None
    assert registry.get_sample_value("ioc_sla_on_time_ratio", {**ratio, "window": "24h"}) == 0.0


def test_a_later_episode_of_a_fingerprint_replaces_an_earlier_one_updated_after_it_started() -> None:
    figures = SlaFigures()
    # Episode 1 (left unacknowledged) turned overdue at 4000 in a record written after episode 2
    # started at 3000; episode 2 is the fingerprint's current alert, acknowledged and on time.
    figures.on_state(state_record("aaaaaaaaaaaaaaaa-1", starts_at=0.0, ack_by=300.0, updated_at=4000.0))
    figures.on_state(state_record("aaaaaaaaaaaaaaaa-2", starts_at=3000.0, ack_by=9000.0, resolve_by=9999.0,
                                  operator_status="acked", acked_at=3100.0, updated_at=3100.0))
    (record,) = [r for r in figures.snapshot_records(5000.0) if r["scope"] == "all" and r["window"] == "1h"]
    assert (record["overdue_ack"], record["overdue_resolve"]) == (0, 0)
