"""The pieces of `streams.sla_runner` that decide what the tracker sees: one partition's records in
offset order, actions held back while their alert may still come, checkpoints with the next
offsets of both topics, and replays after a crash; and the wire format of the records."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from ioc.sla.calendar import WorkingCalendar
from ioc.sla.tracker import AlertTracker
from ioc.sla.wire import wire
from ioc.timeutil import format_ts
from streams.sla_runner import PartitionTracker

FP = "eece90541220b5d3"
ALERT_ID = f"{FP}-1761526800000"
T0 = 1761526800.0
ALERT = {"fingerprint": FP, "alert_id": ALERT_ID, "rule_id": "r", "stream": "reservoir", "severity": "critical",
         "status": "firing", "labels": {"domain": "water"}, "starts_at": format_ts(T0),
         "sla": {"ack_by": format_ts(T0 + 900), "resolve_by": format_ts(T0 + 3600)}}


@dataclass(frozen=True)
class Message:
    offset: int
    value: bytes | None


def ack(at: float, alert_id: str = ALERT_ID) -> bytes:
    return orjson.dumps({"alert_id": alert_id, "action": "ack", "by": "truc-ban-1", "at": format_ts(at)})


def tracked() -> PartitionTracker:
    return PartitionTracker(0, AlertTracker(calendar=WorkingCalendar()))


def test_an_action_read_before_its_alert_waits_for_it_instead_of_being_rejected() -> None:
    part = tracked()
    out, _ = part.on_actions([Message(0, ack(T0 + 60))], caught_up_at=None, now=100.0)
    assert not out and len(part.held) == 1
    # Held: a checkpoint now reads that action again.
    assert orjson.loads(part.checkpoint())["actions"] == 0
    out, latest = part.on_alerts([Message(0, orjson.dumps(ALERT))])
    assert latest == T0 and out.states[0]["operator_status"] == "open"
    out, at = part.on_actions([], caught_up_at=None, now=101.0)
    assert out.rejections == [] and out.states[0]["operator_status"] == "acked" and at == T0 + 60
    assert (part.alerts_next, part.actions_next, part.held) == (1, 1, [])


def test_an_action_for_an_unknown_alert_is_rejected_once_the_alerts_are_read_or_after_a_while() -> None:
    part = tracked()
    unknown = "0123456789abcdef-1761526800000"
    out, _ = part.on_actions([Message(0, ack(T0, unknown))], caught_up_at=1.0, now=0.0)
    assert [r["reason"] for r in out.rejections] == ["unknown alert_id: no such alert on ioc.alerts"]
    assert out.rejections[0]["alert_id"] == unknown  # the runner keys it rejection:<alert_id>
    out, _ = part.on_actions([Message(1, ack(T0, unknown))], caught_up_at=None, now=0.0)
    assert not out
    out, _ = part.on_actions([], caught_up_at=None, now=10.0)  # HOLD_S later
    assert len(out.rejections) == 1 and part.actions_next == 2


def test_malformed_records_are_rejections_not_crashes() -> None:
    part = tracked()
    out, _ = part.on_alerts([Message(0, b"{not json"), Message(1, b"[1, 2]"), Message(2, None)])
    assert len(out.rejections) == 3 and part.alerts_next == 3
    out, _ = part.on_actions([Message(0, b"\xff\xfe"), Message(1, b'{"action": "ack"}')], True, 0.0)
    assert len(out.rejections) == 2 and all(r["reason"].startswith("malformed") for r in out.rejections)


def test_a_crash_after_an_ack_replays_it_on_the_checkpointed_state_without_a_rejection() -> None:
    part = tracked()
    part.on_alerts([Message(0, orjson.dumps(ALERT))])
    saved = part.checkpoint()  # taken before the ack
    out, _ = part.on_actions([Message(0, ack(T0 + 60))], True, 0.0)
    assert out.states[0]["acked_at"] == T0 + 60
    # Crash: a new owner restores the checkpoint and reads the actions again from its offset.
    again = tracked()
    assert again.restore(saved) is None  # the tracker clock had not moved
    assert (again.alerts_next, again.actions_next) == (1, None)
    replayed, _ = again.on_actions([Message(0, ack(T0 + 60))], True, 0.0)
    assert replayed.rejections == [] and replayed.states == out.states
    # A checkpoint after the ack: restored, the ack is kept and not read again.
    later = tracked()
    later.restore(again.checkpoint())
    assert later.actions_next == 1 and later.tracker.state(ALERT_ID)["operator_status"] == "acked"
    # Escalations once: the ack deadline passed before the ack, none fires for it; the resolve one
    # fires once, and not again after a restore.
    first = later.tracker.advance(T0 + 3700).escalations
    assert [e["labels"]["escalation"] for e in first] == ["1"]
    after = tracked()
    after.restore(later.checkpoint())
    assert after.tracker.advance(T0 + 3800).escalations == []


def test_wire_times_are_rfc3339_and_other_fields_untouched() -> None:
    part = tracked()
    out, _ = part.on_alerts([Message(0, orjson.dumps(ALERT))])
    record = wire(out.states[0])
    assert record["starts_at"] == "2025-10-27T01:00:00Z" and record["ack_by"] == "2025-10-27T01:15:00Z"
    assert record["acked_at"] is None and record["escalation_level"] == 0
    assert wire({"at": 0, "notes": [{"at": 1.5, "by": "x"}], "overdue": False}) == {
        "at": "1970-01-01T00:00:00Z", "notes": [{"at": "1970-01-01T00:00:01.500Z", "by": "x"}], "overdue": False}


def test_records_fetched_before_a_rebalance_and_read_again_after_it_are_taken_once() -> None:
    part = tracked()
    alert = Message(0, orjson.dumps(ALERT))
    part.on_alerts([alert])
    part.on_actions([Message(0, ack(T0 + 60))], caught_up_at=1.0, now=0.0)
    again_alert, _ = part.on_alerts([alert])
    again_action, _ = part.on_actions([Message(0, ack(T0 + 60))], caught_up_at=1.0, now=0.0)
    assert not again_alert and not again_action  # no second state, no "already acknowledged" rejection


def test_a_highwater_polled_before_the_action_was_read_does_not_make_its_alert_unknown() -> None:
    part = tracked()
    out, _ = part.on_actions([Message(0, ack(T0 + 60))], caught_up_at=99.9, now=100.0)  # an older poll
    assert not out.rejections and part.held
    part.on_alerts([Message(0, orjson.dumps(ALERT))])  # the next poll brings the alert
    out, _ = part.on_actions([], caught_up_at=100.2, now=100.2)
    assert not out.rejections and out.states[-1]["operator_status"] == "acked"
