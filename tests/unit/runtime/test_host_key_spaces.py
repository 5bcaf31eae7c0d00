"""`ShardHost` with a key space: raw shards of `raw.cyber` hand events keyed by `src_ip` on to
the shards of `rekey.cyber.src_ip` as frames; the frames go back in as a broker would carry
them. The alerts equal the backtest's; a shard closed and reopened from its checkpoint goes
on as if never closed; a closed shard leaves nothing behind."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from brokerless import Brokerless
from kindtest import T0, make_rules

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.refdata import Reference
from ioc.rules.loader import RuleSet
from ioc.runtime.checkpoint import decode_checkpoint, encode_checkpoint
from ioc.runtime.frames import NO_WATERMARK, decode_frame
from ioc.runtime.host import HostSettings, Output, ShardHost, ShardKey
from ioc.runtime.partitioner import KeyPartitioner
from ioc.runtime.pipeline import Pipeline, RawRecord
from ioc.runtime.plan import plan_rules
from ioc.runtime.replay import partition_counts

RAW = "raw.cyber"
SPACE = "rekey.cyber.src_ip"
BRUTEFORCE = "t.auth.bruteforce"

# As rules/cyber.yaml's cyber.auth.bruteforce (3 failures instead of 8), plus a rule keyed by
# the sensor, which stays in the raw shards.
RULES = """\
rules:
  - id: t.auth.bruteforce
    stream: cyber
    kind: window
    key: [src_ip]
    where: "event_action in ('authentication', 'logon', 'login') and event_outcome == 'failure'"
    agg: count
    window: 2m
    condition: "value >= 3"
    severity: warning
  - id: t.sensor.failing
    stream: cyber
    kind: threshold
    where: "event_action == 'authentication'"
    condition: "event_outcome == 'failure'"
    for: 15s
    severity: info
"""

# Kafka's default partitioner, 2 partitions: soc-fw-01 -> raw 0, soc-fw-02 -> raw 1;
# 10.0.0.5 -> rekey 1, 203.0.113.7 -> rekey 0.
FW1, FW2 = "soc-fw-01", "soc-fw-02"
ATTACKER, OTHER = "10.0.0.5", "203.0.113.7"


def login(source: str, t: float, src_ip: str, outcome: str = "failure") -> dict[str, Any]:
    return {"source_id": source, "ts": T0 + t, "event_action": "authentication",
            "event_outcome": outcome, "src_ip": src_ip, "user": "admin"}


# Fetches in arrival order: (raw partition, events). Three failures from ATTACKER reach raw
# partition 0 first; the one that makes the count 3 at T0+10 comes from partition 1 (T0+5),
# whose watermark holds the key space back until its later records come.
STEPS: list[tuple[int, list[dict[str, Any]]]] = [
    (0, [login(FW1, 0, ATTACKER), login(FW1, 10, ATTACKER), login(FW1, 20, ATTACKER)]),
    (1, [login(FW2, 5, ATTACKER)]),
    (1, [login(FW2, 12, ATTACKER), login(FW2, 13, OTHER)]),
    (0, [login(FW1, 200, ATTACKER, "success")]),
    (1, [login(FW2, 210, OTHER, "success")]),
]


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    return make_rules(tmp_path, RULES, Reference())


class Worker:
    """One host holding every shard of raw.cyber and of the key space (2 partitions each);
    `deliver` carries frames to the key space's shards as the broker would (offsets per
    partition, in the order sent)."""

    def __init__(self, ruleset: RuleSet) -> None:
        plan = plan_rules(ruleset)
        assert list(plan.spaces) == ["cyber.src_ip"]
        self.counts = partition_counts(plan, 2)
        self.wall = 0.0
        # Idle sources keep their watermark (no wall clock), as at the end of a backtest.
        self.host = ShardHost(plan, Pipeline(), self.counts, settings=HostSettings(idle_after_s=5.0, idle_clock=False),
                              clock=lambda: 0.0, monotonic=lambda: self.wall)
        self.next_offset: dict[ShardKey, int] = {}
        self.keys = [(RAW, p) for p in range(self.counts[RAW])] + [(SPACE, p) for p in range(self.counts[SPACE])]
        for topic, partition in self.keys:
            self.host.open(topic, partition)

    def records(self, topic: str, partition: int, values: Sequence[bytes], key: bytes | None = None) -> list[RawRecord]:
        start = self.next_offset.get((topic, partition), 0)
        self.next_offset[(topic, partition)] = start + len(values)
        return [RawRecord(f"ioc.{topic}", partition, start + i, key, value, T0)
                for i, value in enumerate(values)]

    def fetch(self, partition: int, events: Iterable[dict[str, Any]]) -> Output:
        events = list(events)
        source = events[0]["source_id"].encode()
        return self.host.handle(RAW, partition, self.records(RAW, partition, [orjson.dumps(e) for e in events], source))

    def deliver(self, frames: Sequence[tuple[str, int, bytes]]) -> list[Alert]:
        alerts: list[Alert] = []
        for topic, partition in dict.fromkeys((topic, partition) for topic, partition, _ in frames):
            values = [value for t, p, value in frames if (t, p) == (topic, partition)]
            alerts.extend(self.host.handle(topic, partition, self.records(topic, partition, values)).alerts)
        return alerts

    def step(self, partition: int, events: Iterable[dict[str, Any]]) -> list[Alert]:
        out = self.fetch(partition, events)
        return out.alerts + self.deliver(out.frames)

    def finish(self) -> list[Alert]:
        """Every partition read to its end and silent: idle, so the key space releases all."""
        self.wall += 10.0
        out = self.host.tick(lambda key: True)
        return out.alerts + self.deliver(out.frames)

    def restart(self) -> None:
        """Close every shard and open it again from its checkpoint (as bytes)."""
        for topic, partition in self.keys:
            snapshot = self.host.close(topic, partition)
            assert snapshot is not None
            self.host.open(topic, partition, decode_checkpoint(encode_checkpoint(snapshot)))

    def snapshots(self) -> dict[ShardKey, Any]:
        return {key: orjson.loads(orjson.dumps(self.host.shards[key].snapshot())) for key in self.keys}


def brief(alerts: Iterable[Alert]) -> list[tuple[str, str, str, float, float | None]]:
    return sorted((a.rule_id, a.alert_id, a.status, a.starts_at, a.ends_at) for a in alerts)


def test_partitioning_of_the_scenario() -> None:
    raw, space = KeyPartitioner(2), KeyPartitioner(2)
    assert (raw((FW1,)), raw((FW2,))) == (0, 1)
    assert (space((OTHER,)), space((ATTACKER,))) == (0, 1)


def test_a_key_space_alerts_once_every_source_has_passed_the_events_and_equals_the_backtest(
    ruleset: RuleSet,
) -> None:
    worker = Worker(ruleset)
    attacker_shard = worker.host.shards[(SPACE, 1)]

    # Partition 0 alone holds three failures within 2 minutes: handed on, not yet evaluated.
    out = worker.fetch(*STEPS[0])
    frames = [(topic, partition, decode_frame(value)) for topic, partition, value in out.frames]
    assert {(topic, partition) for topic, partition, _ in frames} == {(SPACE, 0), (SPACE, 1)}
    [(_, _, carrying)] = [f for f in frames if f[2].events]
    assert (carrying.source, carrying.watermark, carrying.idle) == (("cyber", 0), T0 + 20, False)
    assert [e["ts"] for e in carrying.events] == [T0, T0 + 10, T0 + 20]
    assert [f[1] for f in frames if f[2] is carrying] == [1]  # ATTACKER's partition
    # The other space partition is told the watermark (a marker: no events).
    assert [(p, f.events, f.watermark) for _, p, f in frames if f is not carrying] == [(0, [], T0 + 20)]
    seen = out.alerts + worker.deliver(out.frames)
    assert [a.rule_id for a in seen] == ["t.sensor.failing"]  # in the raw shard: its own watermark
    assert attacker_shard.buffered == 3 and attacker_shard.frontier() == (NO_WATERMARK, False)

    # Partition 1's watermark (T0+5) passes only the first event.
    assert worker.step(*STEPS[1]) == []
    assert attacker_shard.released == T0 + 5
    assert attacker_shard.frontier() == (T0 + 5, False)
    assert attacker_shard.buffered == 3  # T0 released; T0+5 (from partition 1) buffered

    # Partition 1 moves to T0+13: T0+5 and T0+10 are released, the count reaches 3 at T0+10.
    alerts = worker.step(*STEPS[2])
    fired = [a for a in alerts if a.rule_id == BRUTEFORCE]
    assert [(a.status, a.key, a.starts_at, a.value) for a in fired] == [("firing", {"src_ip": ATTACKER}, T0 + 10, 3)]
    seen += alerts

    for step in STEPS[3:]:
        seen += worker.step(*step)
    seen += worker.finish()
    assert attacker_shard.buffered == 0 and worker.host.shards[(SPACE, 0)].buffered == 0

    rows = [RawEvent("cyber", copy.deepcopy(event), f"cyber.jsonl:{i}")
            for i, event in enumerate(e for _, events in STEPS for e in events)]
    backtest = run_backtest(ruleset, rows, partitions=2)
    assert brief(seen) == brief(backtest.alerts)
    assert {(a.rule_id, a.status) for a in seen} == {
        (BRUTEFORCE, "firing"), (BRUTEFORCE, "resolved"), ("t.sensor.failing", "firing"),
        ("t.sensor.failing", "resolved"),
    }


def run(ruleset: RuleSet, *, restart: bool) -> tuple[list[dict[str, Any]], dict[ShardKey, Any]]:
    """The scenario's alert records and final snapshots; with `restart`, every shard is closed
    and reopened from its checkpoint between fetching and delivering, and after delivering."""
    worker = Worker(ruleset)
    alerts: list[Alert] = []
    for partition, events in STEPS:
        out = worker.fetch(partition, events)
        alerts.extend(out.alerts)
        if restart:
            worker.restart()  # the frames are on the broker meanwhile
        alerts.extend(worker.deliver(out.frames))
        if restart:
            worker.restart()
    alerts.extend(worker.finish())
    return [a.to_record() for a in alerts], worker.snapshots()


def without_space_offsets(snapshots: dict[ShardKey, Any]) -> dict[ShardKey, Any]:
    # A reopened raw shard tells the key space its watermark again: more marker frames, so the
    # key space's offsets differ; nothing else may.
    return {key: {**data, "offset": None} if key[0] == SPACE else data for key, data in snapshots.items()}


def test_closing_and_reopening_from_the_checkpoint_goes_on_as_if_never_closed(ruleset: RuleSet) -> None:
    records, snapshots = run(ruleset, restart=False)
    assert len(records) == 6  # each sensor and the attacker: firing, then resolved
    restarted, restarted_snapshots = run(ruleset, restart=True)
    assert restarted == records
    assert without_space_offsets(restarted_snapshots) == without_space_offsets(snapshots)


def test_a_reopened_shard_skips_what_its_checkpoint_covers(ruleset: RuleSet) -> None:
    worker = Worker(ruleset)
    worker.step(*STEPS[0])
    snapshot = worker.host.close(RAW, 0)
    assert snapshot is not None and snapshot["offset"] == 3
    worker.host.open(RAW, 0, decode_checkpoint(encode_checkpoint(snapshot)))
    worker.next_offset[(RAW, 0)] = 0  # the same records again, as a consumer reading from 0 would
    assert not worker.fetch(*STEPS[0])
    assert worker.host.offsets()[(RAW, 0)] == 3


def test_a_closed_shard_leaves_nothing_behind(ruleset: RuleSet) -> None:
    worker = Worker(ruleset)
    host = worker.host
    for step in STEPS[:3]:
        worker.step(*step)
    gone: ShardKey = (RAW, 1)
    snapshot = host.close(*gone)
    assert snapshot is not None and snapshot["shard"] == "raw.cyber/1" and snapshot["offset"] == 3

    assert gone not in host.shards
    assert gone not in host._arrivals  # no wall-clock bookkeeping either
    assert gone not in host.offsets()
    assert host.close(*gone) is None
    assert not host.handle(RAW, 1, worker.records(RAW, 1, [orjson.dumps(login(FW2, 300, ATTACKER))]))

    asked: list[ShardKey] = []

    def caught_up(key: ShardKey) -> bool:
        asked.append(key)
        return True

    worker.wall += 60.0  # long silent: partition 0 becomes idle and tells the key space
    out = host.tick(caught_up)
    assert asked == [(RAW, 0)]
    sources = {decode_frame(value).source for _, _, value in out.frames}
    assert sources == {("cyber", 0)}
    worker.wall += 60.0
    assert not host.tick(caught_up)

    host.close(SPACE, 1)
    assert (SPACE, 1) not in host.shards
    frames = [(SPACE, 1, value) for _, partition, value in out.frames if partition == 1]
    assert frames and worker.deliver(frames) == []
    assert set(host.shards) == {(RAW, 0), (SPACE, 0)}


# -- a partition that only receives invalid records, and late events in a key space ------------


ONE_FAILURE_RULES = """\
rules:
  - {id: t.bf, stream: cyber, kind: window, key: [src_ip], where: "event_outcome == 'failure'",
     agg: count, window: 2m, condition: "value >= COUNT"}
"""


class TwoPartitionWorker(Brokerless):
    """Every shard of `raw.cyber` and `rekey.cyber.src_ip` (2 partitions each) in one host."""

    def __init__(self, tmp_path: Path, count: int, *, idle_clock: bool = True) -> None:
        from prometheus_client import CollectorRegistry

        from ioc.metrics import IocMetrics

        plan = plan_rules(make_rules(tmp_path, ONE_FAILURE_RULES.replace("COUNT", str(count)), Reference()))
        self.registry = CollectorRegistry()
        self.wall = [0.0]
        super().__init__(ShardHost(plan, Pipeline(IocMetrics(self.registry)), partition_counts(plan, 2),
                                   settings=HostSettings(idle_after_s=5.0, idle_clock=idle_clock),
                                   clock=lambda: 0.0, monotonic=lambda: self.wall[0]))
        for key in [(RAW, 0), (RAW, 1), (SPACE, 0), (SPACE, 1)]:
            self.host.open(*key)


def test_a_partition_that_receives_only_invalid_records_becomes_idle(tmp_path: Path) -> None:
    worker = TwoPartitionWorker(tmp_path, 3)
    worker.feed(RAW, 1, [orjson.dumps(login(FW2, 0, ATTACKER))])
    worker.feed(RAW, 0, [orjson.dumps(login(FW1, t, ATTACKER)) for t in (1, 2, 3, 4)])
    for second in range(60):
        worker.wall[0] = float(second)
        if second % 2 == 0:
            worker.feed(RAW, 1, [b"{garbage"])  # dead letters carry no time
        worker.deliver(worker.host.tick(lambda key: True))
    assert worker.host.shards[(RAW, 1)].idle
    assert [a.status for a in worker.alerts] == ["firing"]


def test_events_a_key_space_receives_after_its_watermark_are_counted_late(tmp_path: Path) -> None:
    worker = TwoPartitionWorker(tmp_path, 1, idle_clock=False)
    worker.feed(RAW, 0, [orjson.dumps(login(FW1, 100, OTHER))])
    worker.feed(RAW, 1, [orjson.dumps(login(FW2, 0, OTHER))])
    worker.wall[0] = 10.0
    worker.deliver(worker.host.tick(lambda key: True))  # both idle: the space releases up to T0+100
    worker.feed(RAW, 1, [orjson.dumps(login(FW2, 50, ATTACKER))])  # on time in raw.cyber/1, late in the space
    assert worker.host.shards[(RAW, 1)].engine.last_stats.late == 0
    assert worker.registry.get_sample_value("ioc_events_late_total", {"stream": "cyber"}) == 1.0
    assert ATTACKER not in {a.key.get("src_ip") for a in worker.alerts}


def test_a_frame_split_to_fit_the_record_limit_lets_no_piece_pass_the_events_of_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ioc.runtime.host as host_module

    monkeypatch.setattr(host_module, "MAX_FRAME_BYTES", 400)  # a few events a frame
    worker = TwoPartitionWorker(tmp_path, 3)
    events = [login(FW1, t, ATTACKER) for t in (0, 30, 10, 40, 20, 50, 60, 70)]  # one key: one target
    out = worker.host.handle(RAW, 0, [RawRecord("ioc.raw.cyber", 0, i, None, orjson.dumps(e), 0.0)
                                      for i, e in enumerate(events)])
    pieces = [decode_frame(value) for topic, _, value in out.frames if topic == SPACE and decode_frame(value).events]
    assert len(pieces) > 2
    for i, piece in enumerate(pieces[:-1]):
        later = [e["ts"] for p in pieces[i + 1:] for e in p.events]
        assert piece.watermark <= min(later)
    assert pieces[-1].watermark == T0 + 70
