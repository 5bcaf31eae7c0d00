"""The pieces of `streams.cluster_runner` that decide what the notification policy and the SLA
figures see: alerts of several partitions fed in time order whatever the interleaving, a
checkpoint mid-way that changes nothing, the SLA runner's records read back from the wire."""

from __future__ import annotations

import itertools

import orjson
import pytest
from notify_timelines import (
    FLAP_EXPECTED,
    GROUPING,
    GROUPING_EXPECTED,
    INHIBITION,
    INHIBITION_EXPECTED,
    Step,
    as_tuple,
    flap_script,
    play,
)
from sla_fixtures import outcome_record, state_record

from ioc.sla.figures import SlaFigures
from ioc.sla.notify import NotificationPolicy
from ioc.sla.silences import silence_record
from ioc.sla.wire import wire
from ioc.timeutil import format_ts
from streams.cluster_runner import HOLD_S, ClusterState, Row

ALERTS = "ioc.alerts"


def rows(script: list[Step], partitions: int = 3) -> list[Row]:
    """The script's records as fetched rows: partition by fingerprint, offsets per partition,
    times on the wire as RFC 3339."""
    offsets = dict.fromkeys(range(partitions), 0)
    out = []
    for _, record in script:
        partition = sum(record["fingerprint"].encode()) % partitions
        wired = {**record, "starts_at": format_ts(record["starts_at"]),
                 "ends_at": format_ts(record["ends_at"]) if record["ends_at"] is not None else None}
        out.append((ALERTS, partition, offsets[partition], orjson.dumps(wired)))
        offsets[partition] += 1
    return out


def fetched(batch: list[Row]) -> list[Row]:
    """A batch as a consumer hands it over: partition after partition, each in offset order."""
    return sorted(batch, key=lambda row: (row[1], row[2]))


def run(state: ClusterState, batches: list[list[Row]], until: float) -> list[tuple]:
    out = []
    for batch in batches:
        notifications, skipped = state.on_alerts(fetched(batch))
        assert skipped == 0
        out += notifications + state.policy.advance(state.event_clock or 0.0)
    return [as_tuple(n) for n in out + state.policy.advance(until)]


@pytest.mark.parametrize("script,until,expected", [(GROUPING, 40000, GROUPING_EXPECTED),
                                                    (INHIBITION, 1000, INHIBITION_EXPECTED)])
@pytest.mark.parametrize("batch_size", [1, 2, 100])
def test_alerts_of_all_partitions_give_the_documented_notifications(script, until, expected, batch_size) -> None:
    records = rows(script)
    batches = [records[i:i + batch_size] for i in range(0, len(records), batch_size)]
    assert run(ClusterState(NotificationPolicy()), batches, until) == expected


@pytest.mark.parametrize("split", [1, 3, 5])
def test_a_checkpoint_mid_way_changes_nothing(split: int) -> None:
    records = rows(GROUPING)
    first = ClusterState(NotificationPolicy())
    got = run(first, [records[:split]], until=GROUPING[split - 1][0])
    restored = ClusterState(NotificationPolicy())
    restored.restore(first.checkpoint())
    assert restored.offsets == first.offsets
    got += run(restored, [records[split:]], until=40000)
    assert got == play(NotificationPolicy(), GROUPING, until=40000)


def test_the_event_clock_follows_alerts_not_escalations_and_junk_is_counted() -> None:
    state = ClusterState(NotificationPolicy())
    _, record = GROUPING[1]
    escalation = {**record, "alert_id": "e-1", "fingerprint": "e", "starts_at": format_ts(99999.0),
                  "labels": {**record["labels"], "escalation": "1"}}
    batch = [(ALERTS, 0, 0, orjson.dumps({**record, "starts_at": format_ts(10.0)})),
             (ALERTS, 0, 1, orjson.dumps(escalation)), (ALERTS, 0, 2, b"{not json"),
             (ALERTS, 0, 3, orjson.dumps({"status": "open"}))]
    _, skipped = state.on_alerts(batch)
    assert (state.event_clock, skipped, state.offsets) == (10.0, 2, {(ALERTS, 0): 4})


def test_sla_records_read_back_from_the_wire_give_the_figures_of_the_tracker_records() -> None:
    states = [state_record(f"{fp:016x}-1", starts_at=float(fp), updated_at=float(fp) + 5) for fp in range(1, 6)]
    outcomes = [outcome_record(f"{fp:016x}-1", starts_at=float(fp), resolve_after=4000.0 + fp) for fp in range(1, 4)]
    direct = SlaFigures()
    for record in states:
        direct.on_state(record)
    new_direct = [direct.on_outcome(record) for record in outcomes]
    state = ClusterState(NotificationPolicy())
    offset = itertools.count()
    wire_rows = [("ioc.alert-state", 0, next(offset), orjson.dumps(wire(r))) for r in states]
    wire_rows += [("ioc.sla", 0, next(offset), orjson.dumps(wire(r))) for r in outcomes]
    wire_rows += [("ioc.sla", 0, next(offset), orjson.dumps(wire({"type": "snapshot", "scope": "all", "at": 1.0}))),
                  ("ioc.sla", 0, next(offset), orjson.dumps({"type": "rejection", "reason": "x"})),
                  ("ioc.alert-state", 0, next(offset), None),                                # a tombstone
                  ("ioc.sla", 0, next(offset), orjson.dumps({"type": "outcome", "alert_id": "x"}))]  # broken
    new, skipped = state.on_sla_records(wire_rows)
    assert [r["alert_id"] for r in new] == [r["alert_id"] for r, n in zip(outcomes, new_direct, strict=True) if n]
    assert skipped == 1
    assert state.figures.snapshot_records(9000.0) == direct.snapshot_records(9000.0)
    again, _ = state.on_sla_records(wire_rows[:8])  # read again after a crash: nothing new
    assert again == []


def test_a_backlog_read_partition_after_partition_reaches_the_policy_in_time_order() -> None:
    records = rows(GROUPING, partitions=2)
    by_partition = {p: [r for r in records if r[1] == p] for p in (0, 1)}
    assert all(by_partition.values())
    state = ClusterState(NotificationPolicy())
    out, _ = state.on_alerts(by_partition[0], behind=[1], now=0.0)   # partition 1 not fetched yet
    assert out == [] and len(state.held) == len(by_partition[0])
    # What a new owner would resume from: the first alert still held, not past it.
    assert state.resume_offsets()[(ALERTS, 0)] == 0
    got, _ = state.on_alerts(by_partition[1], behind=[], now=0.1)
    got += state.policy.advance(40000)
    assert [as_tuple(n) for n in got] == GROUPING_EXPECTED
    # Read in the same interleaving without holding back, the policy sees it out of order.
    unordered = ClusterState(NotificationPolicy())
    wrong, _ = unordered.on_alerts(by_partition[0])
    wrong += unordered.on_alerts(by_partition[1])[0] + unordered.policy.advance(40000)
    assert [as_tuple(n) for n in wrong] != GROUPING_EXPECTED


def test_an_alert_waits_for_a_silent_partition_at_most_hold_s() -> None:
    state = ClusterState(NotificationPolicy())
    state.on_alerts(rows(GROUPING[:1]), behind=[2], now=100.0)
    assert state.held and state.release(behind=[2], now=100.0 + HOLD_S - 0.1)[0] == []
    state.release(behind=[2], now=100.0 + HOLD_S)
    assert not state.held and state.event_clock == 0.0


def test_rows_fetched_before_a_rebalance_and_read_again_after_it_are_taken_once() -> None:
    records = rows(flap_script(), partitions=1)
    whole = ClusterState(NotificationPolicy())
    want = whole.on_alerts(records)[0] + whole.policy.advance(5000)
    state = ClusterState(NotificationPolicy())
    got = state.on_alerts(records[:4])[0]
    restored = ClusterState(NotificationPolicy())
    restored.restore(state.checkpoint())
    # The stale batch (offsets 4..7) is handed over after the seek back to offset 4, then read again.
    got += restored.on_alerts(records[4:8])[0] + restored.on_alerts(records[4:])[0] + restored.policy.advance(5000)
    assert [as_tuple(n) for n in got] == [as_tuple(n) for n in want] == FLAP_EXPECTED


def test_a_silence_from_now_waits_for_the_policy_clock_and_holds_its_offset_meanwhile() -> None:
    state = ClusterState(NotificationPolicy())
    record = silence_record({"matchers": 'rule_id="r.warn"'}, "s1", "ops", for_s=600.0)
    done, refused = state.on_silences([("ioc.silences", 0, 7, orjson.dumps(record))])
    assert (done, refused) == ([], 0) and state.resume_offsets()[("ioc.silences", 0)] == 7
    state.on_alerts(rows(GROUPING[:1]))          # the first alert gives the policy its clock (0)
    state.policy.advance(5.0)
    done, _ = state.apply_silences()
    assert done == ["added"] and [(s["starts_at"], s["ends_at"]) for s in state.policy.silences()] == [(5.0, 605.0)]
    assert state.resume_offsets()[("ioc.silences", 0)] == 8
