"""Deadlines: the rule's `sla` as published, severity defaults, working time, escalation times."""

from __future__ import annotations

import pytest

from ioc.sla.calendar import WorkingCalendar
from ioc.sla.deadlines import compute_deadlines, escalation_plan
from ioc.sla.settings import DeadlineDefaults, SlaSettings
from ioc.timeutil import format_ts, parse_ts

CAL = WorkingCalendar.default()
H = 3600.0


def local(text: str) -> float:
    return parse_ts(text + "+07:00")


def test_the_records_sla_is_used_as_it_is_in_plain_time():
    start = local("2025-10-24T16:00:00")   # a Friday afternoon: plain time ignores the weekend
    d = compute_deadlines(start, "warning", "r", {"ack_by": format_ts(start + 900), "resolve_by": start + 2 * H},
                          SlaSettings(), CAL)
    assert (d.ack_by, d.resolve_by) == (start + 900, start + 2 * H)
    assert (d.ack_source, d.resolve_source, d.ack.working_time) == ("rule", "rule", False)


def test_defaults_per_severity_fill_what_the_rule_lacks():
    start = local("2025-10-27T08:00:00")
    s = SlaSettings()
    assert compute_deadlines(start, "emergency", "r", None, s, CAL).ack_by == start + 300
    partial = compute_deadlines(start, "critical", "r", {"resolve_by": start + H}, s, CAL)
    assert (partial.ack_by, partial.resolve_by, partial.ack_source) == (start + 900, start + H, "default")
    unknown = compute_deadlines(start, "page-me", "r", {}, s, CAL)
    assert (unknown.ack_by, unknown.resolve_by) == (start + H, start + 24 * H)   # warning's


def test_info_defaults_are_working_days_across_a_holiday():
    # Info: ack within 1 working day (8 h), resolve within 5 (40 h); 01-02/09/2025 are holidays.
    start = local("2025-08-29T16:00:00")
    d = compute_deadlines(start, "info", "r", None, SlaSettings(), CAL)
    assert d.ack_by == local("2025-09-03T16:00:00")
    assert d.resolve_by == local("2025-09-09T16:00:00")   # 1 + 8 + 8 + 8 + 8 + 7 h
    assert d.ack.working_time and d.resolve.budget == 40 * H


def test_a_rule_in_working_time_counts_its_budget_again_over_the_weekend():
    start = local("2025-10-24T16:00:00")
    sla = {"ack_by": start + 900, "resolve_by": start + 2 * H}
    for settings, record_sla in ((SlaSettings(working_time_rules=("camera.*",)), sla),
                                 (SlaSettings(), {**sla, "working_time": True})):
        d = compute_deadlines(start, "warning", "camera.crowd", record_sla, settings, CAL)
        assert d.ack_by == local("2025-10-24T16:15:00")
        assert d.resolve_by == local("2025-10-27T08:00:00")
    assert compute_deadlines(start, "warning", "cyber.x", sla, SlaSettings(working_time_rules=("camera.*",)),
                             CAL).resolve_by == start + 2 * H


def test_working_time_for_all_defaults_and_per_severity_override():
    start = local("2025-10-24T16:00:00")
    s = SlaSettings(working_time=True, defaults={
        "warning": DeadlineDefaults(ack="2h", resolve="8h"),
        "critical": DeadlineDefaults(ack="2h", resolve="8h", working_time=False)})
    assert compute_deadlines(start, "warning", "r", None, s, CAL).ack_by == local("2025-10-27T08:00:00")
    assert compute_deadlines(start, "critical", "r", None, s, CAL).ack_by == start + 2 * H


def test_escalation_levels_follow_the_chain_one_budget_apart():
    start = local("2025-10-27T08:00:00")
    d = compute_deadlines(start, "critical", "r", {"ack_by": start + 900, "resolve_by": start + 4 * H},
                          SlaSettings(), CAL)
    plan = escalation_plan(start, d, SlaSettings(), CAL)
    assert [(e.kind, e.level, e.due_at - start) for e in plan] == [
        ("ack", 1, 900.0), ("ack", 2, 1800.0), ("ack", 3, 2700.0),
        ("resolve", 1, 4 * H), ("resolve", 2, 8 * H), ("resolve", 3, 12 * H)]
    assert [e.agency for e in plan[:3]] == ["Trực ban IOC", "Lãnh đạo Trung tâm IOC", "Lãnh đạo UBND tỉnh"]


def test_escalation_in_working_time():
    start = local("2025-10-24T16:00:00")
    d = compute_deadlines(start, "info", "r", None, SlaSettings(), CAL)
    plan = [e for e in escalation_plan(start, d, SlaSettings(), CAL) if e.kind == "ack"]
    assert [e.due_at for e in plan] == [local("2025-10-27T16:00:00"), local("2025-10-28T16:00:00"),
                                        local("2025-10-29T16:00:00")]


def test_a_bad_sla_time_is_a_value_error():
    with pytest.raises(ValueError, match="RFC 3339"):
        compute_deadlines(0.0, "info", "r", {"ack_by": "tomorrow"}, SlaSettings(), CAL)
