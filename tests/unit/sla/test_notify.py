"""Acceptance 3 of issue 15: grouping, inhibition, silences (with an end, until their incident
resolves, maintenance windows) and flapping, each on a scripted timeline with the notifications
expected at the documented times (docs/notifications.md). Times are seconds from 0."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ioc.sla.notify import NotificationPolicy, NotifyRecordError
from ioc.sla.policy import NotifySettings

Step = tuple[float, dict[str, Any]]
WARN = '{domain="water",rule_id="r.warn"}'
CRIT = '{domain="water",rule_id="r.crit"}'


def alert(fp: str, status: str, at: float, *, start: float | None = None, rule: str = "r.warn",
          severity: str = "warning", source: str = "s1", domain: str = "water") -> Step:
    starts = at if start is None else start
    record = {
        "fingerprint": fp, "alert_id": f"{fp}-{int(starts)}", "rule_id": rule, "stream": "reservoir",
        "kind": "threshold", "severity": severity, "status": status, "key": {"source_id": source},
        "labels": {"domain": domain, "agency": "So NN&PTNT"}, "summary": "", "starts_at": starts,
        "ends_at": at if status == "resolved" else None,
    }
    return at, record


def play(policy: NotificationPolicy, script: list[Step], until: float, step: float | None = None) -> list[tuple]:
    """Feed the records in order, advancing the clock every `step` seconds (or only at the end)."""
    out = []
    pending = sorted(script, key=lambda s: s[0])
    now = policy.clock if policy.clock > 0 else 0.0
    while pending or now < until:
        nxt = pending[0][0] if pending else until
        if step is not None and now + step < nxt:
            now += step
            out += policy.advance(now)
            continue
        if pending:
            at, record = pending.pop(0)
            out += policy.on_alert(record)
            now = at
        else:
            out += policy.advance(until)
            now = until
    return [(n.at, n.group_key, n.reason, n.status, n.firing, n.resolved, n.flapping, n.silenced, n.inhibited)
            for n in out]


GROUPING = [
    alert("a", "firing", 0), alert("b", "firing", 10, source="s2"), alert("c", "firing", 100, source="s3"),
    alert("a", "resolved", 400, start=0),
    alert("b", "resolved", 16000, start=10, source="s2"), alert("c", "resolved", 16000, start=100, source="s3"),
]
GROUPING_EXPECTED = [
    (30, WARN, "first", "firing", ("a-0", "b-10"), (), (), (), ()),                 # group_wait 30 s
    (330, WARN, "update", "firing", ("a-0", "b-10", "c-100"), (), (), (), ()),      # + group_interval
    (630, WARN, "update", "firing", ("b-10", "c-100"), ("a-0",), (), (), ()),       # resolved notice
    (15030, WARN, "repeat", "firing", ("b-10", "c-100"), (), (), (), ()),           # 630 + 4 h
    (16230, WARN, "resolved", "resolved", (), ("b-10", "c-100"), (), (), ()),       # next tick after 16000
]


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


INHIBITION = [
    alert("w", "firing", 0), alert("w2", "firing", 0, source="s2"),
    alert("c", "firing", 0, rule="r.crit", severity="critical"),
    alert("c", "resolved", 200, start=0, rule="r.crit", severity="critical"),
]


def test_inhibition_by_equal_labels_and_target_notified_when_source_resolves() -> None:
    got = play(NotificationPolicy(), INHIBITION, until=1000)
    assert got == [
        (30, CRIT, "first", "firing", ("c-0",), (), (), (), ()),
        # w has the critical's domain and source_id: muted; w2 (source s2) is not
        (30, WARN, "first", "firing", ("w2-0",), (), (), (), ("w-0",)),
        (330, CRIT, "resolved", "resolved", (), ("c-0",), (), (), ()),
        (330, WARN, "update", "firing", ("w-0", "w2-0"), (), (), (), ()),
    ]


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


UNTIL = [
    alert("dam", "firing", 0, rule="dam.maintenance", severity="info", source="dam1"),
    alert("r1", "firing", 60, rule="reservoir.level"),
    alert("dam", "resolved", 1000, start=0, rule="dam.maintenance", severity="info", source="dam1"),
    alert("r2", "firing", 2000, rule="reservoir.level", source="s2"),
]
RES = '{domain="water",rule_id="reservoir.level"}'


def test_silence_until_the_matching_incident_resolves() -> None:
    policy = NotificationPolicy()
    sid = policy.silence('rule_id=~"reservoir\\\\..*"', starts_at=0, until_resolved='rule_id="dam.maintenance"')
    got = [n for n in play(policy, UNTIL, until=3000) if n[1] == RES]
    assert got == [
        (1290, RES, "first", "firing", ("r1-60",), (), (), (), ()),   # 1000: the incident is over
        (2190, RES, "update", "firing", ("r1-60", "r2-2000"), (), (), (), ()),  # after it: notified
    ]
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


def _flap_script() -> list[Step]:
    script: list[Step] = []
    for i, at in enumerate(range(0, 660, 60)):      # a change every minute, 0 .. 600
        start = at if i % 2 == 0 else at - 60
        script.append(alert("f", "firing" if i % 2 == 0 else "resolved", at, start=start))
    return script


def test_flapping_marked_held_and_released_after_settling() -> None:
    got = play(NotificationPolicy(), _flap_script(), until=5000)
    assert got == [
        (30, WARN, "first", "firing", ("f-0",), (), (), (), ()),
        (330, WARN, "resolved", "resolved", (), ("f-0",), (), (), ()),
        # 360: the 7th change within 1 h (more than 6): flapping, marked once, then held
        (390, WARN, "first", "firing", (), (), ("f-360",), (), ()),
        # last change 600, settled at 600 + 30 m = 2400, next tick of the group (390 + 7 * 300)
        (2490, WARN, "update", "firing", ("f-600",), (), (), (), ()),
    ]


def test_flapping_off_notifies_every_change() -> None:
    settings = NotifySettings(flapping={"max_changes": 0}, group_wait=0, group_interval=60)
    got = play(NotificationPolicy(settings), _flap_script(), until=700)
    assert [n[2] for n in got][:3] == ["first", "resolved", "first"]
    assert all(n[6] == () for n in got)


@pytest.mark.parametrize("script,until,settings", [
    (GROUPING, 40000, NotifySettings()),
    (INHIBITION, 1000, NotifySettings()),
    (_flap_script(), 5000, NotifySettings()),
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
