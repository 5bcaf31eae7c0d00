"""The alert tracker on scripted timelines: SLA arithmetic, rejections, escalation exactly once,
snapshot/restore, working-time deadlines, and a run over the simulated operators' actions."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.alerts import fingerprint, fingerprint_of, make_alert_id
from ioc.sla.calendar import WorkingCalendar
from ioc.sla.exceptions import SnapshotError
from ioc.sla.tracker import AlertTracker, Output
from ioc.timeutil import format_ts, parse_ts
from sensors_sim.operators import LATE_SHARE, OperatorSimulator

CAL = WorkingCalendar.default()
T0 = parse_ts("2025-10-27T08:00:00+07:00")   # a Monday morning
M = 60.0
H = 3600.0


def alert(start: float = T0, status: str = "firing", ack: float | None = 15 * M, resolve: float | None = 2 * H,
          severity: str = "critical", rule: str = "camera.crowd", n: int = 0, **extra: Any) -> dict[str, Any]:
    fp = fingerprint(rule, {"source_id": f"cam-{n}"})
    sla = None if ack is None and resolve is None else {
        **({"ack_by": format_ts(start + ack)} if ack is not None else {}),
        **({"resolve_by": format_ts(start + resolve)} if resolve is not None else {})}
    record = {"fingerprint": fp, "alert_id": make_alert_id(fp, start), "rule_id": rule, "stream": "camera",
              "kind": "threshold", "severity": severity, "status": status, "key": {"source_id": f"cam-{n}"},
              "labels": {"domain": "traffic", "agency": "CA tỉnh"}, "summary": "Đông người", "description": "",
              "starts_at": format_ts(start), "ends_at": None, "detected_at": format_ts(start), "value": 1,
              "evidence": [], "sla": sla}
    record.update(extra)
    return record


def act(record: dict[str, Any], action: str, at: float, by: str = "truc-ban-1", **extra: Any) -> dict[str, Any]:
    return {"alert_id": record["alert_id"], "action": action, "by": by, "at": format_ts(at), "note": None, **extra}


def tracker() -> AlertTracker:
    return AlertTracker(calendar=CAL)


def outcome_of(t: AlertTracker, record: dict[str, Any], actions: list[tuple[str, float]]) -> list[dict[str, Any]]:
    t.on_alert(record)
    out = Output()
    for verb, at in actions:
        out.extend(t.on_action(act(record, verb, T0 + at)))
    assert not out.rejections, out.rejections
    return out.outcomes


def test_on_time():
    a = alert()
    t = tracker()
    first = t.on_alert(a).states[0]
    assert (first["operator_status"], first["status"], first["ack_by"], first["resolve_by"]) == (
        "open", "firing", T0 + 900, T0 + 7200)
    assert (first["domain"], first["agency"], first["type"]) == ("traffic", "CA tỉnh", "alert_state")
    acked = t.on_action(act(a, "ack", T0 + 5 * M)).states[0]
    assert (acked["operator_status"], acked["acked_at"], acked["acked_by"]) == ("acked", T0 + 300, "truc-ban-1")
    out = t.on_action(act(a, "resolve", T0 + H, note="xong"))
    [o] = out.outcomes
    assert o == {"type": "outcome", "alert_id": a["alert_id"], "fingerprint": a["fingerprint"],
                 "rule_id": "camera.crowd", "domain": "traffic", "severity": "critical", "agency": "CA tỉnh",
                 "starts_at": T0, "ack_by": T0 + 900, "resolve_by": T0 + 7200, "acked_at": T0 + 300,
                 "resolved_at": T0 + H, "ack_s": 300.0, "resolve_s": H, "ack_late_s": 0.0, "resolve_late_s": 0.0,
                 "ack_on_time": True, "resolve_on_time": True, "revision": 0, "working_time": False}
    state = out.states[0]
    assert state["operator_status"] == "resolved" and state["notes"][-1] == {
        "by": "truc-ban-1", "at": T0 + H, "action": "resolve", "note": "xong"}
    assert t.advance(T0 + 100 * H).escalations == []


def test_late_ack():
    [o] = outcome_of(tracker(), alert(), [("ack", 20 * M), ("resolve", H)])
    assert (o["ack_on_time"], o["ack_late_s"], o["resolve_on_time"], o["ack_s"]) == (False, 300.0, True, 1200.0)


def test_late_resolve():
    [o] = outcome_of(tracker(), alert(), [("ack", 10 * M), ("resolve", 3 * H)])
    assert (o["ack_on_time"], o["resolve_on_time"], o["resolve_late_s"], o["resolve_s"]) == (True, False, H, 3 * H)


def test_exactly_at_the_deadline_is_on_time():
    [o] = outcome_of(tracker(), alert(), [("ack", 15 * M), ("resolve", 2 * H)])
    assert o["ack_on_time"] and o["resolve_on_time"]


def test_never_acked():
    t = tracker()
    a = alert()
    t.on_alert(a)
    t.advance(T0 + 16 * M)
    assert t.state(a["alert_id"])["overdue"] == "ack"   # type: ignore[index]
    t.advance(T0 + 2 * H + 1)
    assert t.state(a["alert_id"])["overdue"] == "resolve"   # type: ignore[index]
    [o] = t.on_action(act(a, "resolve", T0 + 3 * H)).outcomes
    # Resolving without an ack acknowledges at the same time: the ack deadline was long missed.
    assert (o["acked_at"], o["ack_on_time"], o["ack_late_s"], o["resolve_on_time"]) == (T0 + 3 * H, False,
                                                                                       3 * H - 900, False)
    assert t.state(a["alert_id"])["overdue"] is None   # type: ignore[index]


def test_resolved_before_the_ack_deadline_without_ack_is_on_time():
    [o] = outcome_of(tracker(), alert(), [("resolve", 10 * M)])
    assert o["ack_on_time"] and o["ack_s"] == 600.0


def test_reopened_gives_a_new_outcome_revision():
    t = tracker()
    a = alert()
    outcomes = outcome_of(t, a, [("ack", 5 * M), ("resolve", H), ("reopen", 90 * M), ("resolve", 3 * H)])
    assert [(o["revision"], o["resolve_on_time"], o["ack_on_time"]) for o in outcomes] == [
        (0, True, True), (1, False, True)]
    assert outcomes[1]["acked_at"] == T0 + 300   # the ack stands


def test_reopened_alert_escalates_its_resolve_deadline_again():
    t = tracker()
    a = alert()
    outcome_of(t, a, [("ack", 5 * M), ("resolve", H), ("reopen", 90 * M)])
    state = t.state(a["alert_id"])
    assert state is not None and state["operator_status"] == "acked" and state["resolved_at"] is None
    fired = t.advance(T0 + 2 * H + 1).escalations
    assert [(e["labels"]["overdue"], e["labels"]["escalation"]) for e in fired] == [("resolve", "1")]


def test_out_of_order_and_unknown_actions_are_rejected_with_a_reason():
    t = tracker()
    a = alert()
    t.on_alert(a)
    cases = [
        (act(a, "ack", T0 - 60), "before the alert started"),
        (act(a, "reopen", T0 + 60), "reopen of an open alert (operator status: open)"),
        (act(a, "comment", T0 + 60), "comment without a note"),
        (act(a, "resolve", T0 + 600), None),
        (act(a, "ack", T0 + 700), "ack after resolve (resolved at"),
        (act(a, "assign", T0 + 700, assignee="so-nnptnt"), "assign after resolve"),
        (act(a, "resolve", T0 + 800), "resolve of an already resolved alert"),
        (act(alert(n=9), "ack", T0 + 60), "unknown alert_id: no such alert"),
        ({"alert_id": a["alert_id"], "action": "close", "by": "x", "at": T0}, "malformed: action: 'close'"),
        ({"alert_id": a["alert_id"], "action": "comment", "by": "x", "note": "?"}, "no time"),
    ]
    for record, reason in cases:
        out = t.on_action(record)
        if reason is None:
            assert not out.rejections and out.outcomes
            continue
        [rejection] = out.rejections
        assert reason in rejection["reason"], (reason, rejection["reason"])
        assert rejection["type"] == "rejection" and rejection["source"] == "action"
        assert not out.states and not out.outcomes
    assert t.on_action(b"garbage").rejections[0]["reason"] == "malformed: not JSON"


def test_ack_twice_assign_and_comment():
    t = tracker()
    a = alert()
    t.on_alert(a)
    assigned = t.on_action(act(a, "assign", T0 + 60, assignee="so-nnptnt")).states[0]
    # Assigning is taking the alert in hand: it acknowledges it.
    assert (assigned["operator_status"], assigned["assignee"], assigned["acked_at"]) == ("assigned", "so-nnptnt",
                                                                                          T0 + 60)
    assert "already acknowledged" in t.on_action(act(a, "ack", T0 + 120)).rejections[0]["reason"]
    assert "already assigned" in t.on_action(act(a, "assign", T0 + 120, assignee="so-nnptnt")).rejections[0]["reason"]
    for i in range(7):
        t.on_action(act(a, "comment", T0 + 200 + i, note=f"n{i}"))
    notes = t.state(a["alert_id"])["notes"]   # type: ignore[index]
    assert [n["note"] for n in notes] == ["n2", "n3", "n4", "n5", "n6"]
    assert t.on_action(act(a, "comment", T0 + 300, note="sau")).states   # comments are allowed when resolved too
    t.on_action(act(a, "resolve", T0 + 400))
    assert t.on_action(act(a, "comment", T0 + 500, note="sau")).states[0]["operator_status"] == "resolved"


def test_an_action_without_time_uses_the_time_given():
    t = tracker()
    a = alert()
    t.on_alert(a)
    out = t.on_action({"alert_id": a["alert_id"], "action": "ack", "by": "x"}, at=T0 + 42)
    assert out.states[0]["acked_at"] == T0 + 42


def test_escalation_exactly_once_per_level_and_deadline():
    t = tracker()
    a = alert()
    t.on_alert(a)
    seen = []
    for minutes in (10, 15, 16, 16, 20, 31, 31, 35):
        seen += t.advance(T0 + minutes * M).escalations
    assert [(e["labels"]["overdue"], e["labels"]["escalation"], e["labels"]["escalated_to"]) for e in seen] == [
        ("ack", "1", "Trực ban IOC"), ("ack", "2", "Lãnh đạo Trung tâm IOC")]
    assert len({e["alert_id"] for e in seen}) == 2 and all(e["status"] == "firing" for e in seen)
    assert all(fingerprint_of(e["alert_id"]) == e["fingerprint"] != a["fingerprint"] for e in seen)
    assert seen[0]["details"]["escalation"]["of_alert_id"] == a["alert_id"]
    assert seen[0]["labels"]["domain"] == "traffic"
    assert t.state(a["alert_id"])["escalation_level"] == 2   # type: ignore[index]
    # The ack ends the ack escalations (resolved transitions), and no ack level 3 follows.
    closed = t.on_action(act(a, "ack", T0 + 40 * M)).escalations
    assert [(e["alert_id"], e["status"]) for e in closed] == [(e["alert_id"], "resolved") for e in seen]
    assert t.advance(T0 + 50 * M).escalations == []
    # The resolve deadline escalates on its own, once per level, all due levels at once.
    late = t.advance(T0 + 5 * H).escalations     # resolve 2 h: levels due at 2 h, 4 h, 6 h
    assert [(e["labels"]["overdue"], e["labels"]["escalation"]) for e in late] == [("resolve", "1"), ("resolve", "2")]
    assert t.advance(T0 + 5 * H).escalations == [] and t.advance(T0 + 3 * H).escalations == []
    assert [e["labels"]["escalation"] for e in t.advance(T0 + 7 * H).escalations] == ["3"]
    assert t.advance(T0 + 70 * H).escalations == [] and t.state(a["alert_id"])["escalation_level"] == 3  # type: ignore[index]
    # Escalation records fed back from ioc.alerts are not tracked, and the operators ignore them.
    assert not t.on_alert(late[0]) and OperatorSimulator().actions_for(late[0]) == []


def test_engine_resolve_keeps_the_alert_open_for_operators():
    t = tracker()
    a = alert()
    t.on_alert(a)
    state = t.on_alert({**a, "status": "resolved", "ends_at": format_ts(T0 + 5 * M)}).states[0]
    assert (state["status"], state["ends_at"], state["operator_status"]) == ("resolved", T0 + 300, "open")
    assert len(t.advance(T0 + 16 * M).escalations) == 1     # still unacknowledged: escalates
    [o] = t.on_action(act(a, "resolve", T0 + 20 * M)).outcomes
    assert not o["ack_on_time"] and o["resolve_on_time"]


def test_duplicates_and_stale_records_are_idempotent():
    t = tracker()
    a = alert()
    assert t.on_alert(a).states
    assert not t.on_alert(a)
    resolved = {**a, "status": "resolved", "ends_at": format_ts(T0 + 60)}
    assert t.on_alert(resolved).states
    assert not t.on_alert(resolved) and not t.on_alert(a)   # a late duplicate firing does not reopen
    assert not t.on_alert({**alert(n=5), "status": "resolved"})   # never seen firing: nothing to track
    bad = t.on_alert({**alert(n=6), "starts_at": "soon"})
    assert "malformed alert" in bad.rejections[0]["reason"] and len(t) == 1
    assert "missing field 'rule_id'" in t.on_alert({k: v for k, v in alert(n=7).items() if k != "rule_id"}
                                                   ).rejections[0]["reason"]
    assert "not an episode" in t.on_alert({**alert(n=8), "fingerprint": "0" * 16}).rejections[0]["reason"]


def test_closed_alerts_are_forgotten_after_the_retention():
    t = tracker()
    a = alert()
    t.on_alert(a)
    t.on_alert({**a, "status": "resolved", "ends_at": format_ts(T0 + 60)})
    t.on_action(act(a, "resolve", T0 + 600))
    t.advance(T0 + 6 * 86400)
    assert len(t) == 1
    t.advance(T0 + 8 * 86400)
    assert len(t) == 0
    assert "closed and forgotten" in t.on_action(act(a, "reopen", T0 + 8 * 86400)).rejections[0]["reason"]
    assert not t.on_alert(a)   # a redelivered firing record does not start it again


def test_working_hours_deadlines_across_a_weekend_and_a_public_holiday():
    # An info alert without `sla` on Friday 29/08/2025 16:00: 1 working day to acknowledge;
    # the weekend and Quốc khánh (01-02/09) do not count.
    start = parse_ts("2025-08-29T16:00:00+07:00")
    t = tracker()
    a = alert(start=start, ack=None, resolve=None, severity="info")
    state = t.on_alert(a).states[0]
    assert state["ack_by"] == parse_ts("2025-09-03T16:00:00+07:00")
    assert t.advance(parse_ts("2025-09-02T23:00:00+07:00")).escalations == []
    assert len(t.advance(parse_ts("2025-09-03T16:00:01+07:00")).escalations) == 1
    [o] = t.on_action(act(a, "resolve", parse_ts("2025-09-03T10:00:00+07:00"))).outcomes
    assert o["ack_on_time"] and o["working_time"] and o["ack_s"] == 5 * 86400 - 6 * H



def _script() -> list[tuple[str, Any]]:
    a, b, c = alert(), alert(n=1, start=T0 + 60), alert(n=2, start=T0 + 120, severity="warning", ack=None,
                                                         resolve=None)
    return [
        ("alert", a), ("alert", b), ("advance", T0 + 10 * M), ("action", act(a, "ack", T0 + 5 * M)),
        ("alert", c), ("advance", T0 + 17 * M), ("action", act(b, "assign", T0 + 18 * M, assignee="x")),
        ("advance", T0 + 40 * M), ("alert", {**a, "status": "resolved", "ends_at": format_ts(T0 + 50 * M)}),
        # --- a snapshot is taken here in the restore test ---
        ("advance", T0 + 61 * M), ("action", act(a, "resolve", T0 + H)), ("action", act(a, "ack", T0 + H)),
        ("advance", T0 + 3 * H), ("action", act(b, "resolve", T0 + 3 * H)), ("action", act(a, "reopen", T0 + 3 * H)),
        ("advance", T0 + 5 * H), ("action", act(c, "resolve", T0 + 5 * H)), ("action", act(a, "resolve", T0 + 6 * H)),
        ("advance", T0 + 30 * H), ("advance", T0 + 30 * H),
    ]


def _run(t: AlertTracker, steps: list[tuple[str, Any]]) -> Output:
    out = Output()
    for kind, item in steps:
        out.extend(t.on_alert(item) if kind == "alert" else t.on_action(item) if kind == "action" else t.advance(item))
    return out


def test_snapshot_restore_mid_sequence_gives_identical_outputs():
    steps = _script()
    whole = _run(tracker(), steps)
    assert whole.escalations and whole.outcomes and whole.rejections
    for cut in range(len(steps) + 1):
        first = tracker()
        out = _run(first, steps[:cut])
        second = tracker()
        second.restore(json.loads(json.dumps(first.snapshot())))
        out.extend(_run(second, steps[cut:]))
        assert out == whole, cut
        assert second.snapshot() == json.loads(json.dumps(second.snapshot()))


def test_restore_refuses_what_is_not_a_snapshot():
    with pytest.raises(SnapshotError, match="version"):
        tracker().restore({"alerts": []})
    with pytest.raises(SnapshotError, match="bad"):
        tracker().restore({"version": 1, "alerts": [{"alert_id": "x"}]})


@settings(max_examples=60, deadline=None)
@given(times=st.lists(st.floats(min_value=0, max_value=10 * H), min_size=4, max_size=4, unique=True),
       advances=st.lists(st.floats(min_value=0, max_value=12 * H), max_size=6),
       positions=st.lists(st.integers(min_value=0, max_value=4), max_size=6),
       verbs=st.sampled_from([("ack", "comment", "assign", "resolve"), ("comment", "ack", "assign", "resolve"),
                              ("comment", "comment", "comment", "resolve")]))
def test_any_interleaving_with_advance_gives_the_same_outcome(times, advances, positions, verbs):
    a = alert()
    times = sorted(times)
    actions: list[tuple[str, Any]] = [
        ("action", act(a, verb, T0 + at, **({"assignee": "x"} if verb == "assign" else {}),
                       **({"note": "n"} if verb == "comment" else {})))
        for verb, at in zip(verbs, times, strict=True)]
    plain = _run(tracker(), [("alert", a), *actions])
    steps = [("alert", a), *actions]
    for pos, now in zip(positions, advances, strict=False):
        steps.insert(1 + pos, ("advance", T0 + now))
    mixed = _run(tracker(), steps)
    assert plain.outcomes == mixed.outcomes and len(plain.outcomes) == 1
    assert not plain.rejections and not mixed.rejections
    tags = [(e["alert_id"], e["status"]) for e in mixed.escalations]
    assert len(tags) == len(set(tags))


def test_simulated_operators_over_backtest_alerts_are_late_about_late_share():
    from ioc.analysis.backtest import RawEvent, run_backtest
    from ioc.config import REPO_ROOT
    from ioc.refdata import load_reference
    from ioc.rules.loader import load_rules
    from sensors_sim.reservoir import ReservoirSimulator, load_stations

    ruleset = load_rules([REPO_ROOT / "rules" / "reservoir.yaml"], load_reference(REPO_ROOT / "config" / "reference"))
    sim = ReservoirSimulator(load_stations(), seed=3, start=T0, flood_at_s=3600.0)
    result = run_backtest(ruleset, [RawEvent("reservoir", dict(e), "x") for e in sim.events(36 * H)])
    templates = [a.to_record() for a in result.alerts if a.status == "firing" and a.sla]
    assert templates
    # The same real records, as many episodes (shifted by whole hours) as a month of operation gives.
    records = []
    for shift in range(4000 // len(templates) + 1):
        for template in templates:
            start = parse_ts(template["starts_at"]) + shift * H
            sla = {k: format_ts(parse_ts(v) + shift * H) for k, v in template["sla"].items()}
            records.append({**template, "alert_id": make_alert_id(template["fingerprint"], start),
                            "starts_at": format_ts(start), "sla": sla})
    operators = OperatorSimulator(seed=11)
    t = tracker()
    out = Output()
    timeline: list[tuple[float, int, dict[str, Any]]] = []
    for record in records:
        timeline.append((parse_ts(record["starts_at"]), 0, record))
        timeline += [(parse_ts(action["at"]), 1, action) for action in operators.actions_for(record)]
    timeline.sort(key=lambda item: (item[0], item[1]))
    for at, is_action, item in timeline:   # the clock moves with the records, as live
        out.extend(t.advance(at))
        out.extend(t.on_action(item) if is_action else t.on_alert(item))
    out.extend(t.advance(timeline[-1][0] + 48 * H))
    assert not out.rejections
    assert len(out.outcomes) == len(records)
    late = [o for o in out.outcomes if not (o["ack_on_time"] and o["resolve_on_time"])]
    assert len(records) >= 4000 and abs(len(late) / len(records) - LATE_SHARE) < 0.007, len(late)
    assert all(o["ack_late_s"] > 0 or o["resolve_late_s"] > 0 for o in late)
    # Escalations only for what was late, at most one per level and deadline.
    ids = [e["alert_id"] for e in out.escalations if e["status"] == "firing"]
    assert ids and len(ids) == len(set(ids))
    assert len([e for e in out.escalations if e["status"] == "resolved"]) == len(ids)   # all handled in the end
    late_ids = {o["alert_id"] for o in late}
    assert {e["details"]["escalation"]["of_alert_id"] for e in out.escalations} <= late_ids


def test_state_records_of_an_alert_never_go_back_in_updated_at():
    """Found when the real tracker fed the SLA figures: an action stamped before the alert's
    detection (a dwell rule detects an hour after its start) must not make the newer state look
    older than the firing one (a compacted topic's readers keep the latest by updated_at)."""
    t = tracker()
    record = alert(detected_at=format_ts(T0 + H), ack=2 * H)
    [firing] = t.on_alert(record).states
    assert firing["updated_at"] == T0 + H
    [acked] = t.on_action(act(record, "ack", T0 + 10 * M)).states
    assert acked["acked_at"] == T0 + 10 * M and acked["operator_status"] == "acked"
    assert acked["updated_at"] >= firing["updated_at"]


def test_escalations_carry_the_rule_version_and_source_of_their_alert():
    t = tracker()
    a = alert(rule_version="68d6b74a38ffcd35", rule_source="rules/camera.yaml:12")
    t.on_alert(a)
    fired = t.advance(T0 + 16 * M).escalations
    assert fired and all((e["rule_version"], e["rule_source"]) == ("68d6b74a38ffcd35", "rules/camera.yaml:12")
                         for e in fired)
    # A snapshot of before those fields restores (they are then unknown: null).
    snapshot = json.loads(json.dumps(t.snapshot()))
    for state in snapshot["alerts"]:
        state.pop("rule_version", None)
        state.pop("rule_source", None)
    again = tracker()
    again.restore(snapshot)
    assert [(e["rule_version"], e["rule_source"]) for e in again.advance(T0 + 40 * M).escalations] == [(None, None)]
