"""Run-time silences: the records of `ioc.silences` applied to the policy (ioc.sla.silences), and
`NotificationPolicy.expire`."""

from __future__ import annotations

import pytest
from notify_timelines import GROUPING, WARN, play

from ioc.sla.notify import NotificationPolicy
from ioc.sla.policy import NotifySettings
from ioc.sla.silences import SilenceRecordError, apply, expire_record, silence_record


def test_a_silence_record_is_applied_once_and_read_again_changes_nothing() -> None:
    policy = NotificationPolicy()
    record = silence_record({"matchers": 'rule_id="r.warn"', "starts_at": 0, "ends_at": 100000}, "s1", "ops")
    assert record["starts_at"] == "1970-01-01T00:00:00Z" and record["created_by"] == "ops"
    assert [apply(policy, record), apply(policy, record)] == ["added", "known"]
    assert play(policy, GROUPING, until=40000) == []


def test_expire_ends_a_silence_and_muted_alerts_are_notified_at_the_next_tick() -> None:
    policy = NotificationPolicy()
    apply(policy, silence_record({"matchers": 'rule_id="r.warn"', "starts_at": 0, "ends_at": 100000}, "s1", "ops"))
    assert apply(policy, expire_record("s1", "ops", 500.0)) == "expired"
    got = play(policy, GROUPING, until=1000)
    assert got[0][:4] == (630, WARN, "first", "firing")
    assert apply(policy, expire_record("nope", "ops", 500.0)) == "unknown"


def test_expiring_a_silence_before_its_start_drops_it() -> None:
    policy = NotificationPolicy()
    policy.silence('rule_id="r.warn"', starts_at=1000, ends_at=2000, silence_id="later")
    assert policy.expire("later", 500) and policy.silences() == []


@pytest.mark.parametrize("fields,message", [
    ({"matchers": 'rule_id="x"'}, "ends_at, until_resolved"),
    ({"matchers": 'rule_id="x"', "starts_at": 10, "ends_at": 5}, "after starts_at"),
    ({"matchers": "rule_id x", "ends_at": 5}, "expected name, operator"),
])
def test_bad_silences_are_refused_with_the_field(fields: dict, message: str) -> None:
    with pytest.raises(SilenceRecordError, match=message):
        silence_record(fields, "s1", "ops")


def test_records_of_another_kind_are_refused() -> None:
    with pytest.raises(SilenceRecordError, match="type must be silence or expire"):
        apply(NotificationPolicy(), {"type": "mute"})
    with pytest.raises(SilenceRecordError, match="at: not a time"):
        apply(NotificationPolicy(), {"type": "expire", "id": "s1", "at": "yesterday"})


def test_a_silence_from_now_for_a_while_starts_at_the_policy_clock() -> None:
    policy = NotificationPolicy()
    policy.advance(10_000.0)  # the clock: wall time, or event time (sla.clock)
    record = silence_record({"matchers": 'rule_id="r.warn"'}, "s1", "ops", for_s=600.0)
    assert (record["starts_at"], record["ends_at"], record["for_s"]) == (None, None, 600.0)
    assert apply(policy, record) == "added"
    (held,) = policy.silences()
    assert (held["starts_at"], held["ends_at"]) == (10_000.0, 10_600.0)
    assert apply(policy, expire_record("s1", "ops", None)) == "expired"  # now, on that clock
    assert policy.silences() == []  # ended at its very start: dropped


def test_configured_silences_win_over_a_checkpoint_kept_from_an_older_configuration() -> None:
    old = NotificationPolicy(NotifySettings(silences=[
        {"id": "gone", "matchers": 'rule_id="a"', "ends_at": 1000},
        {"id": "kept", "matchers": 'rule_id="b"', "until_resolved": True},
        {"id": "changed", "matchers": 'rule_id="c"', "ends_at": 1000}]))
    old.silence('rule_id="d"', starts_at=0, ends_at=5000, silence_id="from-the-shell")
    new = NotificationPolicy(NotifySettings(silences=[
        {"id": "kept", "matchers": 'rule_id="b"', "until_resolved": True},
        {"id": "changed", "matchers": 'rule_id="c"', "ends_at": 2000},
        {"id": "added", "matchers": 'rule_id="e"', "ends_at": 1000}]))
    new.restore(old.snapshot())
    by_id = {s["id"]: s for s in new.silences()}
    assert sorted(by_id) == ["added", "changed", "from-the-shell", "kept"]
    assert by_id["changed"]["ends_at"] == 2000


def test_a_configured_silence_expired_or_over_stays_so_after_a_restore() -> None:
    settings = NotifySettings(silences=[{"id": "cfg", "matchers": 'rule_id="b"', "ends_at": 9000},
                                        {"id": "inc", "matchers": 'rule_id="r.warn"', "until_resolved": True}])
    policy = NotificationPolicy(settings)
    policy.expire("cfg", 100.0)
    play(policy, GROUPING, until=20000)  # r.warn fires and resolves: "inc" is over, and forgotten
    held = {s["id"]: s for s in policy.silences()}
    assert "inc" not in held and held.get("cfg") is None
    restored = NotificationPolicy(settings)
    restored.restore(policy.snapshot())
    assert restored.silences() == policy.silences()
