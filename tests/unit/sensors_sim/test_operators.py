"""Simulated operators: acknowledge then resolve, mostly on time, about 1.86 % late, reproducibly."""

from __future__ import annotations

from ioc.timeutil import format_ts, parse_ts
from sensors_sim.operators import LATE_SHARE, OperatorSimulator

T0 = 1761526800.0


def _alert(number: int, **changes):  # type: ignore[no-untyped-def]
    record = {
        "alert_id": f"fp{number:05d}-{int(T0 * 1000)}", "status": "firing", "labels": {"domain": "water"},
        "starts_at": format_ts(T0), "sla": {"ack_by": format_ts(T0 + 900), "resolve_by": format_ts(T0 + 7200)},
    }
    record.update(changes)
    return record


def test_ack_then_resolve_after_the_start_and_reproducible():
    operators = OperatorSimulator(seed=3)
    actions = operators.actions_for(_alert(1))
    assert [a["action"] for a in actions] == ["ack", "resolve"]
    ack, resolve = (parse_ts(a["at"]) for a in actions)
    assert T0 < ack < resolve
    assert actions == OperatorSimulator(seed=3).actions_for(_alert(1))
    assert set(actions[0]) == {"alert_id", "action", "by", "at", "note"}


def test_late_share_is_close_to_the_seeds_figure():
    operators = OperatorSimulator(seed=1)
    late = 0
    total = 20_000
    for number in range(total):
        ack, resolve = operators.actions_for(_alert(number))
        late += parse_ts(resolve["at"]) > T0 + 7200 or parse_ts(ack["at"]) > T0 + 900
    assert abs(late / total - LATE_SHARE) < 0.005


def test_no_actions_for_resolved_or_escalation_records():
    operators = OperatorSimulator()
    assert operators.actions_for(_alert(1, status="resolved")) == []
    assert operators.actions_for(_alert(1, labels={"escalation": "ack_overdue"})) == []


def test_alerts_without_sla_get_default_deadlines():
    ack, resolve = OperatorSimulator(seed=2).actions_for(_alert(7, sla=None))
    assert T0 < parse_ts(ack["at"]) <= T0 + 2 * 900
    assert parse_ts(resolve["at"]) <= T0 + 2 * 24 * 3600
