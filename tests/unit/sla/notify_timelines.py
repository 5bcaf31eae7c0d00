"""Scripted alert timelines and the notifications docs/notifications.md says they give, with the
default `notify:` settings: shared by the policy's unit tests (tests/unit/sla/test_notify.py) and
the live worker's (tests/integration/test_notifications_runtime.py). Times are seconds from 0;
a notification is (at, group_key, reason, status, firing, resolved, flapping, silenced, inhibited)."""

from __future__ import annotations

from typing import Any

from ioc.sla.notify import Notification, NotificationPolicy

Step = tuple[float, dict[str, Any]]
WARN = '{domain="water",rule_id="r.warn"}'
CRIT = '{domain="water",rule_id="r.crit"}'
RES = '{domain="water",rule_id="reservoir.level"}'


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


def as_tuple(n: Notification) -> tuple:
    return (n.at, n.group_key, n.reason, n.status, n.firing, n.resolved, n.flapping, n.silenced, n.inhibited)


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
    return [as_tuple(n) for n in out]


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

INHIBITION = [
    alert("w", "firing", 0), alert("w2", "firing", 0, source="s2"),
    alert("c", "firing", 0, rule="r.crit", severity="critical"),
    alert("c", "resolved", 200, start=0, rule="r.crit", severity="critical"),
]
INHIBITION_EXPECTED = [
    (30, CRIT, "first", "firing", ("c-0",), (), (), (), ()),
    # w has the critical's domain and source_id: muted; w2 (source s2) is not
    (30, WARN, "first", "firing", ("w2-0",), (), (), (), ("w-0",)),
    (330, CRIT, "resolved", "resolved", (), ("c-0",), (), (), ()),
    (330, WARN, "update", "firing", ("w-0", "w2-0"), (), (), (), ()),
]

# With a silence of `rule_id=~"reservoir\\..*"` until the `rule_id="dam.maintenance"` incident resolves.
UNTIL_SILENCE = {"matchers": 'rule_id=~"reservoir\\\\..*"', "until_resolved": 'rule_id="dam.maintenance"'}
UNTIL = [
    alert("dam", "firing", 0, rule="dam.maintenance", severity="info", source="dam1"),
    alert("r1", "firing", 60, rule="reservoir.level"),
    alert("dam", "resolved", 1000, start=0, rule="dam.maintenance", severity="info", source="dam1"),
    alert("r2", "firing", 2000, rule="reservoir.level", source="s2"),
]
UNTIL_EXPECTED = [  # of the group RES
    (1290, RES, "first", "firing", ("r1-60",), (), (), (), ()),   # 1000: the incident is over
    (2190, RES, "update", "firing", ("r1-60", "r2-2000"), (), (), (), ()),  # after it: notified
]


def flap_script() -> list[Step]:
    """A change every minute, 0 .. 600."""
    script: list[Step] = []
    for i, at in enumerate(range(0, 660, 60)):
        start = at if i % 2 == 0 else at - 60
        script.append(alert("f", "firing" if i % 2 == 0 else "resolved", at, start=start))
    return script


FLAP_EXPECTED = [
    (30, WARN, "first", "firing", ("f-0",), (), (), (), ()),
    (330, WARN, "resolved", "resolved", (), ("f-0",), (), (), ()),
    # 360: the 7th change within 1 h (more than 6): flapping, marked once, then held
    (390, WARN, "first", "firing", (), (), ("f-360",), (), ()),
    # last change 600, settled at 600 + 30 m = 2400, next tick of the group (390 + 7 * 300)
    (2490, WARN, "update", "firing", ("f-600",), (), (), (), ()),
]


def on_the_wire(record: dict[str, Any]) -> dict[str, Any]:
    """An alert record as the worker publishes it: times as RFC 3339."""
    from ioc.timeutil import format_ts

    ends = record.get("ends_at")
    return {**record, "starts_at": format_ts(record["starts_at"]), "ends_at": format_ts(ends) if ends is not None
            else None}


def relabelled(script: list[Step], tag: str, offset: float) -> list[Step]:
    """The script moved `offset` seconds on, its fingerprints prefixed with `tag` and its domain
    `water<tag>`: several scripts then share one policy without meeting."""
    out = []
    for at, record in script:
        starts = record["starts_at"] + offset
        fp = f"{tag}{record['fingerprint']}"
        out.append((at + offset, {
            **record, "fingerprint": fp, "alert_id": f"{fp}-{int(starts)}", "starts_at": starts,
            "ends_at": record["ends_at"] + offset if record["ends_at"] is not None else None,
            "labels": {**record["labels"], "domain": f"{record['labels']['domain']}{tag}"},
        }))
    return out


def relabelled_expected(expected: list[tuple], tag: str, offset: float) -> list[tuple]:
    """The notifications of `relabelled(script, tag, offset)`, from the script's own."""
    def ids(values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{tag}{v.rsplit('-', 1)[0]}-{int(v.rsplit('-', 1)[1]) + int(offset)}" for v in values)

    return [(at + offset, key.replace('domain="water"', f'domain="water{tag}"'), reason, status,
             *(ids(v) for v in rest)) for at, key, reason, status, *rest in expected]
