"""The Alertmanager sink's bookkeeping and payloads, without Kafka or HTTP."""

from __future__ import annotations

from typing import Any

from ioc.alertmanager.client import classify
from ioc.alertmanager.forwarder import Forwarder
from ioc.alertmanager.payload import am_alert
from ioc.timeutil import format_ts

NOW = 1_761_530_400.0


def _record(alert_id: str, status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {"alert_id": alert_id, "fingerprint": alert_id.split("-")[0], "rule_id": "reservoir.level.at_nwl",
            "stream": "reservoir", "kind": "threshold", "severity": "critical", "status": status,
            "key": {"source_id": "ta-trach"}, "labels": {"domain": "water"}, "summary": "s",
            "starts_at": format_ts(NOW - 600), "ends_at": format_ts(NOW - 60) if status == "resolved" else None,
            **extra}


def _ids(forwarder: Forwarder, now: float = NOW) -> list[str]:
    return [r["alert_id"] for r in forwarder.batch(now).records]


def test_history_rebuilds_what_fires_and_only_later_transitions_are_sent() -> None:
    fw = Forwarder(resend_s=60.0)
    fw.open(0, sent_upto=3, end=5)
    fw.take(0, [(0, _record("a-1")), (1, _record("b-1")), (2, _record("a-1", "resolved")),
                (3, _record("c-1")), (4, _record("b-1", "resolved"))])
    assert set(fw.outbox) == {"c-1", "b-1"}
    assert fw.firing() == 1  # c-1; a-1 and b-1 resolved
    batch = fw.batch(NOW)
    assert sorted(r["alert_id"] for r in batch.records) == ["b-1", "c-1"]
    fw.sent(batch, NOW)
    assert not fw.outbox and not fw.due(NOW + 59) and fw.due(NOW + 60)
    assert _ids(fw, NOW + 60) == ["c-1"]  # firing alerts again, every resend_s


def test_records_read_again_are_skipped_and_junk_is_counted() -> None:
    fw = Forwarder(resend_s=60.0)
    fw.open(1, sent_upto=0, end=0)
    assert fw.take(1, [(0, _record("a-1")), (1, b"junk"), (2, {"alert_id": "x"})]) == 2
    fw.sent(fw.batch(NOW), NOW)
    assert fw.take(1, [(0, _record("a-1")), (1, None), (2, None)]) == 0  # fetched again after a rewind
    assert not fw.outbox and fw.expected(1) == 3


def test_a_transition_read_during_a_post_stays_to_send_and_holds_back_the_commit() -> None:
    fw = Forwarder(resend_s=60.0)
    fw.open(0, sent_upto=0, end=0)
    fw.open(1, sent_upto=0, end=0)
    fw.take(0, [(0, _record("a-1"))])
    fw.take(1, [(0, _record("b-1"))])
    batch = fw.batch(NOW)
    fw.take(0, [(1, _record("a-1", "resolved"))])  # while the post is under way
    fw.sent(batch, NOW)
    assert list(fw.outbox) == ["a-1"] and fw.outbox["a-1"][1]["status"] == "resolved"
    assert fw.committable() == {1: 1}
    fw.close(0)  # revoked: its next owner sends it
    assert not fw.outbox and fw.committable() == {1: 1}


def test_a_new_assignment_sends_every_firing_alert_at_once() -> None:
    fw = Forwarder(resend_s=60.0)
    fw.open(0, sent_upto=5, end=5)
    fw.take(0, [(i, _record(f"a{i}-1")) for i in range(5)])
    fw.sent(fw.batch(NOW), NOW)
    fw.open(1, sent_upto=1, end=1)  # a rebalance added a partition
    fw.take(1, [(0, _record("b-1"))])
    batch = fw.batch(NOW + 1)
    assert [r["alert_id"] for r in batch.records] == ["b-1"] and batch.resent == {1}


def test_nothing_is_posted_or_committed_before_the_partition_is_read_to_where_it_was() -> None:
    """Read in several rounds after a restart: a1 fired and resolved in history, b1 fired before
    the committed offset, c1 fired and resolved after it (an earlier owner may have posted both)."""
    fw = Forwarder(resend_s=60.0)
    fw.open(0, sent_upto=3, end=6)
    rounds = [[(0, _record("a-1")), (1, _record("b-1"))], [(2, _record("a-1", "resolved")), (3, _record("c-1"))],
              [(4, _record("c-1", "resolved")), (5, _record("d-1"))]]
    for records in rounds[:2]:
        fw.take(0, records)
        assert not fw.due(NOW) and fw.committable() == {}  # a-1 must not be posted firing again
    fw.take(0, rounds[2])
    batch = fw.batch(NOW)
    assert sorted((r["alert_id"], r["status"]) for r in batch.records) == [
        ("b-1", "firing"), ("c-1", "resolved"), ("d-1", "firing")]
    fw.sent(batch, NOW)
    assert fw.committable() == {0: 6}


def test_a_resolution_is_posted_with_the_labels_of_the_firing_it_ends() -> None:
    fw = Forwarder(resend_s=60.0)
    fw.open(0, sent_upto=0, end=0)
    fw.take(0, [(0, _record("a-1"))])
    fw.sent(fw.batch(NOW), NOW)
    # A reload changed the rule's severity and labels while it fired.
    fw.take(0, [(1, _record("a-1", "resolved", severity="warning", labels={"domain": "dam"}))])
    (resolved,) = fw.batch(NOW).records
    assert (resolved["status"], resolved["severity"], resolved["labels"]) == ("resolved", "critical",
                                                                             {"domain": "water"})
    assert resolved["ends_at"] == format_ts(NOW - 60)


def test_payload_labels_annotations_and_times() -> None:
    escalation = _record("e-1", labels={"domain": "water", "escalation": "ack:1", "agency.name": "IOC"})
    alert = am_alert(escalation, now=NOW, valid_s=240.0, rule_source="rules/reservoir.yaml:22",
                     runbook_url="https://wiki/runbooks/{rule_id}", generator_url="http://g/alerts/{alert_id}")
    assert alert["labels"] == {"alertname": "reservoir.level.at_nwl", "rule_id": "reservoir.level.at_nwl",
                               "severity": "critical", "stream": "reservoir", "kind": "threshold",
                               "domain": "water", "agency_name": "IOC", "escalation": "ack:1",
                               "source_id": "ta-trach"}
    assert alert["annotations"] == {"summary": "s", "alert_id": "e-1", "fingerprint": "e",
                                    "rule": "rules/reservoir.yaml:22",
                                    "runbook_url": "https://wiki/runbooks/reservoir.level.at_nwl"}
    assert alert["generatorURL"] == "http://g/alerts/e-1"
    assert (alert["startsAt"], alert["endsAt"]) == (format_ts(NOW - 600), format_ts(NOW + 240))
    resolved = am_alert(_record("a-1", "resolved"), now=NOW, valid_s=240.0)
    assert resolved["endsAt"] == format_ts(NOW - 60) and "generatorURL" not in resolved


def test_event_time_ahead_of_the_wall_clock_is_capped_at_now() -> None:
    ahead = _record("a-1", "resolved", starts_at=format_ts(NOW + 3600), ends_at=format_ts(NOW + 7200))
    alert = am_alert(ahead, now=NOW, valid_s=240.0)
    assert alert["startsAt"] == alert["endsAt"] == format_ts(NOW)


def test_answers_that_are_retried_and_answers_that_drop_the_alerts() -> None:
    assert [classify(s) for s in (200, 202, 400, 404, 408, 429, 500, 503)] == [
        "sent", "sent", "refused", "refused", "retry", "retry", "retry", "retry"]
