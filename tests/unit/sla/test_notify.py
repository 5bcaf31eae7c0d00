"""Acceptance 3 of issue 15: grouping, inhibition, silences (with an end, until their incident
resolves, maintenance windows) and flapping, each on a scripted timeline with the notifications
expected at the documented times (docs/notifications.md). Times are seconds from 0."""

from __future__ import annotations

import json

import pytest
from notify_timelines import (
    FLAP_EXPECTED,
    GROUPING,
    GROUPING_EXPECTED,
    INHIBITION,
    INHIBITION_EXPECTED,
    RES,
    UNTIL,
    UNTIL_EXPECTED,
    UNTIL_SILENCE,
    WARN,
    Step,
    alert,
    flap_script,
    play,
)

from ioc.sla.notify import NotificationPolicy, NotifyRecordError
from ioc.sla.policy import NotifySettings


@pytest.mark.parametrize("step", [None, 60.0, 7.0])
def test_grouping_wait_interval_repeat_and_resolved(step: float | None) -> None:
    assert play(NotificationPolicy(), GROUPING, until=40000, step=step) == GROUPING_EXPECTED


def test_groups_are_separate_and_keyed_by_their_labels() -> None:
    script = [alert("a", "firing", 0), alert("x", "firing", 100, rule="r.other")]
    got = play(NotificationPolicy(), script, until=200)
    assert got == [
        (30, WARN, "first", "firing", ("a-0",), (), (), (), ()),
        (130, '{domain="water",rule_id="r.other"}', "first", "firing", ("x-100",), (), (), (), ()),
    ]
    by_source = NotificationPolicy(NotifySettings(group_by=("source_id",), group_wait=0))
    assert [n.group_key for n in by_source.on_alert(alert("a", "firing", 5)[1])] == ['{source_id="s1"}']


def test_inhibition_by_equal_labels_and_target_notified_when_source_resolves() -> None:
    assert play(NotificationPolicy(), INHIBITION, until=1000) == INHIBITION_EXPECTED


def test_an_alert_matching_source_and_target_does_not_inhibit_itself() -> None:
    settings = NotifySettings(inhibit_rules=[{"source_matchers": 'domain="water"', "target_matchers": 'domain="water"',
                                              "equal": ["domain"]}])
    got = play(NotificationPolicy(settings), [alert("w", "firing", 0)], until=100)
    assert got == [(30, WARN, "first", "firing", ("w-0",), (), (), (), ())]


def test_silence_with_an_end() -> None:
    policy = NotificationPolicy()
    policy.silence('rule_id="r.warn"', starts_at=0, ends_at=1000, created_by="ops")
    got = play(policy, [alert("a", "firing", 0), alert("x", "firing", 0, rule="r.other")], until=2000)
    assert got == [
        (30, '{domain="water",rule_id="r.other"}', "first", "firing", ("x-0",), (), (), (), ()),
        (1230, WARN, "first", "firing", ("a-0",), (), (), (), ()),  # first tick after the silence ends
    ]
    assert policy.silences() == []  # over, and forgotten


def test_silence_until_the_matching_incident_resolves() -> None:
    policy = NotificationPolicy()
    sid = policy.silence(UNTIL_SILENCE["matchers"], starts_at=0, until_resolved=UNTIL_SILENCE["until_resolved"])
    got = [n for n in play(policy, UNTIL, until=3000) if n[1] == RES]
    assert got == UNTIL_EXPECTED
    assert sid not in {s["id"] for s in policy.silences()}


def test_until_resolved_silence_waits_for_its_incident_and_keeps_muting_meanwhile() -> None:
    policy = NotificationPolicy()
    policy.silence('rule_id="reservoir.level"', starts_at=0, until_resolved='rule_id="dam.maintenance"')
    got = play(policy, [alert("r1", "firing", 60, rule="reservoir.level")], until=50000)
    assert got == []
    assert [s["resolved_at"] for s in policy.silences()] == [None]


def test_maintenance_window_from_settings() -> None:
    settings = NotifySettings(silences=[{"kind": "maintenance", "matchers": {"source_id": "s1"},
                                         "starts_at": 1000, "ends_at": "1970-01-01T01:16:40Z"}])  # 4600
    script = [alert("a", "firing", 1200), alert("b", "firing", 1200, source="s2")]
    got = play(NotificationPolicy(settings), script, until=6000)
    assert got == [
        (1230, WARN, "first", "firing", ("b-1200",), (), (), ("a-1200",), ()),
        (4830, WARN, "update", "firing", ("a-1200", "b-1200"), (), (), (), ()),  # 1230 + 12 * 300
    ]


def test_flapping_marked_held_and_released_after_settling() -> None:
    assert play(NotificationPolicy(), flap_script(), until=5000) == FLAP_EXPECTED


def test_flapping_off_notifies_every_change() -> None:
    settings = NotifySettings(flapping={"max_changes": 0}, group_wait=0, group_interval=60)
    got = play(NotificationPolicy(settings), flap_script(), until=700)
    assert [n[2] for n in got][:3] == ["first", "resolved", "first"]
    assert all(n[6] == () for n in got)


@pytest.mark.parametrize("script,until,settings", [
    (GROUPING, 40000, NotifySettings()),
    (INHIBITION, 1000, NotifySettings()),
    (flap_script(), 5000, NotifySettings()),
])
@pytest.mark.parametrize("split", [1, 2, 3, 4])
def test_snapshot_restore_mid_timeline_gives_identical_notifications(script: list[Step], until: float,
                                                                    settings: NotifySettings, split: int) -> None:
    whole = play(NotificationPolicy(settings), script, until=until, step=60)
    first = NotificationPolicy(settings)
    got = play(first, script[:split], until=script[split - 1][0], step=60)
    restored = NotificationPolicy(settings)
    restored.restore(json.loads(json.dumps(first.snapshot())))
    got += play(restored, script[split:], until=until, step=60)
    assert got == whole


def test_snapshot_restore_keeps_runtime_silences_and_their_incident() -> None:
    policy = NotificationPolicy()
    policy.silence('rule_id=~"reservoir\\\\..*"', starts_at=0, until_resolved='rule_id="dam.maintenance"')
    got = play(policy, UNTIL[:2], until=500)
    restored = NotificationPolicy()
    restored.restore(json.loads(json.dumps(policy.snapshot())))
    got += play(restored, UNTIL[2:], until=3000)
    assert [n[0] for n in got if n[1] == RES] == [1290, 2190]


def test_bad_records_are_refused_with_the_field() -> None:
    policy = NotificationPolicy()
    with pytest.raises(NotifyRecordError, match="status"):
        policy.on_alert({**alert("a", "firing", 0)[1], "status": "open"})
    with pytest.raises(NotifyRecordError, match="starts_at"):
        policy.on_alert({**alert("a", "firing", 0)[1], "starts_at": "yesterday"})
    with pytest.raises(NotifyRecordError, match="alert_id"):
        policy.on_alert({**alert("a", "firing", 0)[1], "alert_id": None})


def test_record_schema() -> None:
    policy = NotificationPolicy()
    policy.on_alert(alert("a", "firing", 0)[1])
    (record,) = [n.to_record() for n in policy.advance(30)]
    assert record == {
        "type": "notification", "group_key": WARN, "group_labels": {"domain": "water", "rule_id": "r.warn"},
        "status": "firing", "reason": "first", "at": 30.0, "alerts": ["a-0"], "firing": ["a-0"], "resolved": [],
        "flapping": [], "silenced": [], "inhibited": [], "severity": "warning",
    }


def test_silence_refuses_a_bad_request() -> None:
    policy = NotificationPolicy()
    with pytest.raises(ValueError, match="ends_at, until_resolved"):
        policy.silence('rule_id="x"', starts_at=0)
    with pytest.raises(ValueError, match="RE2"):
        policy.silence('rule_id=~"(?<=a)b"', starts_at=0, ends_at=10)
