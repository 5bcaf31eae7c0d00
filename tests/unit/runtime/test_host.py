"""`ioc.runtime.host.ShardHost` over raw partitions: records in, alerts and dead letters out,
metrics counted, idle partitions; one shard per partition, no Kafka."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from kindtest import T0, make_rules
from prometheus_client import CollectorRegistry

from ioc.metrics import IocMetrics
from ioc.refdata import Reference, load_reference
from ioc.rules.loader import RuleSet
from ioc.runtime.host import HostSettings, Output, ShardHost, ShardKey
from ioc.runtime.pipeline import DeadLetter, Pipeline, RawRecord
from ioc.runtime.plan import plan_rules

REPO = Path(__file__).resolve().parents[3]
NOW = T0 + 10_000.0
RAW = "raw.reservoir"
TOPIC = "ioc.raw.reservoir"
RULE_ID = "pipe.level.near_nwl"

RULES = """\
rules:
  - id: pipe.level.near_nwl
    stream: reservoir
    kind: threshold
    where: "nwl_m is not None"
    condition: "level_m >= nwl_m - 0.5"
    for: 10m
    severity: warning
    labels: {domain: water, agency: "Sở NN&PTNT"}
    summary: "{name}: mực nước {level_m:.2f} m, MNDBT {nwl_m} m"
    sla: {ack: 15m, resolve: 6h}
"""

# Kafka's default partitioner puts ta-trach and huong-dien in partition 0 of 2, binh-dien in 1.
PARTITIONS = {RAW: 2}


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    return make_rules(tmp_path, RULES, load_reference(REPO / "config" / "reference"), name="reservoir.yaml")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def make_host(
    ruleset: RuleSet, registry: CollectorRegistry | None = None, *, partitions: int = 2,
    settings: HostSettings | None = None, monotonic: Callable[[], float] = lambda: 0.0, **pipeline: Any,
) -> ShardHost:
    """A host holding the shards of every partition of raw.reservoir; detected_at is always 0."""
    metrics = IocMetrics(registry) if registry is not None else None
    host = ShardHost(plan_rules(ruleset), Pipeline(metrics, **{"clock": lambda: NOW, **pipeline}),
                     {RAW: partitions}, settings=settings, clock=lambda: 0.0, monotonic=monotonic)
    for partition in range(partitions):
        host.open(RAW, partition)
    return host


@pytest.fixture
def host(ruleset: RuleSet, registry: CollectorRegistry) -> ShardHost:
    return make_host(ruleset, registry)


def handle(host: ShardHost, records: Sequence[RawRecord]) -> Output:
    """One fetch: each partition's records to its shard (partitions in order of first appearance)."""
    out = Output()
    for partition in dict.fromkeys(r.partition for r in records):
        out.extend(host.handle(RAW, partition, [r for r in records if r.partition == partition]))
    return out


def record(offset: int, payload: Any, *, partition: int = 0, key: bytes | None = b"ta-trach",
           received: float | None = None) -> RawRecord:
    if payload is None or isinstance(payload, bytes):
        value = payload
    else:
        value = orjson.dumps(payload)
    return RawRecord(TOPIC, partition, offset, key, value, received if received is not None else NOW - 1.0)


def reading(source: str, t: float, level: float, **extra: Any) -> dict[str, Any]:
    return {"source_id": source, "ts": T0 + t, "level_m": level, **extra}


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float | None:
    return registry.get_sample_value(name, labels or {})


def letter(dead: DeadLetter) -> dict[str, Any]:
    return json.loads(dead.value)


def test_bad_records_become_dead_letters_and_good_ones_are_evaluated(
    host: ShardHost, registry: CollectorRegistry
) -> None:
    non_utf8 = b'{"source_id": "ta-trach", "ts": 1, "level_m": 4\xff\xfe}'
    records = [
        record(0, reading("ta-trach", 0, 44.6)),                              # good, no id
        record(1, b"{not json"),                                               # bad JSON
        record(2, non_utf8),                                                   # bad encoding
        record(3, {"source_id": "ta-trach", "level_m": 44.0}),                 # no ts
        record(4, None, key=None),                                             # tombstone
        record(5, reading("ta-trach", 300, 44.7, id="tt-300")),                # good, with id
        record(6, reading("ta-trach", 600, 44.8, id="tt-600")),                # good: fires
        record(7, {"source_id": "ta-trach", "ts": T0, "level_m": 5000.0}),     # out of range
    ]
    result = host.handle(RAW, 0, records)

    assert result.frames == []  # the rule runs in the raw shard: nothing to re-key
    assert len(result.alerts) == 1
    alert = result.alerts[0]
    assert (alert.rule_id, alert.status, alert.starts_at) == (RULE_ID, "firing", T0)
    assert alert.key == {"source_id": "ta-trach"}
    assert alert.summary == "Hồ Tả Trạch: mực nước 44.80 m, MNDBT 45.0 m"
    # An event without an id is referred to by its position.
    assert alert.evidence == [f"{TOPIC}/0@0", "tt-300", "tt-600"]
    assert alert.received_at == NOW - 1.0

    letters = [letter(d) for d in result.dead_letters]
    assert [(x["offset"], x["reason"]) for x in letters] == [
        (1, "bad_json"), (2, "bad_encoding"), (3, "missing_field"), (4, "bad_json"), (7, "out_of_range"),
    ]
    for x in letters:
        assert x["topic"] == TOPIC
        assert x["partition"] == 0
        assert x["stream"] == "reservoir"
        assert isinstance(x["error"], str) and x["error"]
        assert x["rejected_at"] == NOW
    by_offset = {x["offset"]: x for x in letters}
    assert by_offset[1]["value"] == "{not json"
    assert by_offset[1]["value_encoding"] == "utf-8"
    assert by_offset[1]["key"] == "ta-trach"
    assert by_offset[2]["value_encoding"] == "base64"
    assert base64.b64decode(by_offset[2]["value"]) == non_utf8
    assert "UTF-8" in by_offset[2]["error"]
    assert "'ts'" in by_offset[3]["error"]
    assert by_offset[4]["value"] == ""
    assert by_offset[4]["key"] is None
    assert "level_m" in by_offset[7]["error"]
    assert [d.key for d in result.dead_letters] == [b"ta-trach", b"ta-trach", b"ta-trach", None, b"ta-trach"]

    assert sample(registry, "ioc_events_total", {"stream": "reservoir"}) == 3.0
    assert sample(registry, "ioc_events_invalid_total", {"stream": "reservoir", "reason": "bad_json"}) == 2.0
    assert sample(registry, "ioc_events_invalid_total", {"stream": "reservoir", "reason": "bad_encoding"}) == 1.0
    assert sample(registry, "ioc_events_invalid_total", {"stream": "reservoir", "reason": "missing_field"}) == 1.0
    assert sample(registry, "ioc_events_invalid_total", {"stream": "reservoir", "reason": "out_of_range"}) == 1.0
    assert sample(registry, "ioc_rule_evaluations_total", {"stream": "reservoir"}) == 3.0
    assert sample(registry, "ioc_events_late_total", {"stream": "reservoir"}) in (None, 0.0)
    assert sample(registry, "ioc_processing_seconds_count", {"stream": "reservoir"}) == 1.0
    assert sample(registry, "ioc_stream_last_event_timestamp_seconds", {"stream": "reservoir"}) == T0 + 600
    assert host.offsets() == {(RAW, 0): 8}


def test_late_events_counted_per_partition_and_timers_fire_across_batches(
    host: ShardHost, registry: CollectorRegistry
) -> None:
    first = handle(host, [
        record(0, reading("ta-trach", 0, 44.6, id="a")),
        record(0, reading("binh-dien", 0, 84.8, id="b"), partition=1, key=b"binh-dien"),
        record(1, reading("ta-trach", 500, 44.6, id="c")),
    ])
    assert first.alerts == [] and first.dead_letters == []
    second = handle(host, [
        record(2, reading("ta-trach", 400, 44.0, id="late")),                        # late in partition 0
        record(1, reading("binh-dien", 300, 80.0, id="b2"), partition=1, key=b"binh-dien"),
        record(3, reading("huong-dien", 601, 50.0, id="h"), key=b"huong-dien"),       # passes 600 in p0
    ])
    # Partition 0's watermark passed ta-trach's deadline; binh-dien (partition 1) was interrupted.
    assert [(a.key["source_id"], a.status, a.starts_at) for a in second.alerts] == [("ta-trach", "firing", T0)]
    assert host.shards[(RAW, 0)].watermark == T0 + 601
    assert host.shards[(RAW, 1)].watermark == T0 + 300  # not moved by partition 0's events
    assert sample(registry, "ioc_events_total", {"stream": "reservoir"}) == 6.0
    assert sample(registry, "ioc_events_late_total", {"stream": "reservoir"}) == 1.0
    # a, b, c and b2; h (50.0, below the threshold) leaves its new key untracked.
    assert sample(registry, "ioc_rule_evaluations_total", {"stream": "reservoir"}) == 4.0
    # One observation per shard per fetch.
    assert sample(registry, "ioc_processing_seconds_count", {"stream": "reservoir"}) == 4.0


def test_published_counts_alerts_firing_gauge_and_latency(host: ShardHost, registry: CollectorRegistry) -> None:
    fired = host.handle(RAW, 0, [
        record(0, reading("ta-trach", 0, 44.6), received=NOW - 2.0),
        record(1, reading("ta-trach", 600, 44.6), received=NOW - 0.5),
    ]).alerts
    host.pipeline.published(fired)
    labels = {"rule_id": RULE_ID, "domain": "water", "severity": "warning", "status": "firing"}
    assert sample(registry, "ioc_alerts_total", labels) == 1.0
    assert sample(registry, "ioc_alerts_firing", {"rule_id": RULE_ID, "domain": "water", "severity": "warning"}) == 1.0
    assert sample(registry, "ioc_event_to_alert_seconds_count") == 1.0
    assert sample(registry, "ioc_event_to_alert_seconds_sum") == pytest.approx(0.5)

    resolved = host.handle(RAW, 0, [record(2, reading("ta-trach", 900, 40.0))]).alerts
    assert [a.status for a in resolved] == ["resolved"]
    host.pipeline.published(resolved)
    assert sample(registry, "ioc_alerts_total", {**labels, "status": "resolved"}) == 1.0
    assert sample(registry, "ioc_alerts_firing", {"rule_id": RULE_ID, "domain": "water", "severity": "warning"}) == 0.0


def test_the_firing_gauge_takes_an_alert_off_the_series_it_was_counted_in(
    host: ShardHost, registry: CollectorRegistry,
) -> None:
    fired = host.handle(RAW, 0, [record(0, reading("ta-trach", 0, 44.6)), record(1, reading("ta-trach", 600, 44.6))])
    host.pipeline.published(fired.alerts)
    host.pipeline.published(fired.alerts)  # published again (a round read again after a crash)
    warning = {"rule_id": RULE_ID, "domain": "water", "severity": "warning"}
    assert sample(registry, "ioc_alerts_firing", warning) == 1.0
    resolved = host.handle(RAW, 0, [record(2, reading("ta-trach", 900, 40.0))]).alerts
    resolved[0].severity = "critical"  # a reload changed the rule's severity while it fired
    host.pipeline.published(resolved)
    assert sample(registry, "ioc_alerts_firing", warning) == 0.0
    assert sample(registry, "ioc_alerts_firing", {**warning, "severity": "critical"}) is None


def test_same_records_in_different_batches_give_same_alerts(ruleset: RuleSet) -> None:
    records = [
        record(i, reading(src, t, lvl, id=f"e{i}"), partition=p, key=src.encode())
        for i, (src, t, lvl, p) in enumerate([
            ("ta-trach", 0, 44.6, 0), ("binh-dien", 0, 84.9, 1), ("ta-trach", 300, 44.9, 0),
            ("binh-dien", 500, 84.9, 1), ("huong-dien", 650, 50.0, 0), ("binh-dien", 700, 80.0, 1),
            ("ta-trach", 900, 40.0, 0), ("binh-dien", 1500, 80.0, 1),
        ])
    ]

    def run(sizes: list[int]) -> list[tuple[str, str]]:
        host = make_host(ruleset)
        out, i = [], 0
        for size in sizes:
            out.extend(handle(host, records[i:i + size]).alerts)
            i += size
        return sorted((a.alert_id, a.status) for a in out)

    whole = run([len(records)])
    assert len(whole) == 4  # ta-trach and binh-dien each fire and resolve
    assert run([1] * len(records)) == whole
    assert run([3, 2, 3]) == whole


def _rules(tmp_path: Path, *lines: str) -> RuleSet:
    return make_rules(tmp_path, "rules:\n" + "".join(f"  - {line}\n" for line in lines), Reference(), name="r.yaml")


def test_a_rule_that_raises_is_skipped_for_that_event_and_counted(
    tmp_path: Path, registry: CollectorRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """One failing rule never stops the batch: other rules and later events still run."""
    ruleset = _rules(tmp_path, "{id: t.ok, stream: reservoir, kind: threshold, condition: 'level_m > 1'}",
                     "{id: t.boom, stream: reservoir, kind: threshold, condition: 'level_m > 1'}")

    def explode(*args: Any, **kwargs: Any) -> None:  # a kind with a bug
        raise ZeroDivisionError("division by zero")

    ruleset.by_id["t.boom"].kind.on_event = explode  # type: ignore[method-assign]
    host = make_host(ruleset, registry, partitions=1)
    body = b'{"source_id": "a", "ts": %d, "level_m": 5}'
    records = [RawRecord(TOPIC, 0, n, b"a", body % (1761526800 + n), 0.0) for n in range(3)]
    result = host.handle(RAW, 0, records)
    assert [a.rule_id for a in result.alerts] == ["t.ok"]
    assert registry.get_sample_value("ioc_rule_errors_total", {"rule_id": "t.boom"}) == 3.0
    assert "rule t.boom failed on reservoir event ioc.raw.reservoir/0@0: ZeroDivisionError" in caplog.text
    assert registry.get_sample_value("ioc_events_total", {"stream": "reservoir"}) == 3.0


HIGH = "{id: t.high, stream: reservoir, kind: threshold, condition: 'level_m > 1'}"


def test_events_stamped_far_in_the_future_are_dead_lettered_not_evaluated(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    now = 1761526800.0
    host = make_host(_rules(tmp_path, HIGH), registry, partitions=1, clock=lambda: now, max_future_s=3600.0)
    future = b'{"source_id": "kim-long", "ts": "2099-01-01T00:00:00Z", "level_m": 9}'
    on_time = b'{"source_id": "ta-trach", "ts": %d, "level_m": 45.5}' % int(now - 60)
    result = host.handle(RAW, 0, [RawRecord(TOPIC, 0, 0, b"kim-long", future, now),
                                  RawRecord(TOPIC, 0, 1, b"ta-trach", on_time, now)])
    assert [a.key for a in result.alerts] == [{"source_id": "ta-trach"}]  # not made late by 2099
    assert host.shards[(RAW, 0)].watermark == now - 60
    [dead] = [orjson.loads(d.value) for d in result.dead_letters]
    assert dead["reason"] == "bad_ts" and dead["offset"] == 0
    assert dead["error"].startswith("ts 2099-01-01T00:00:00Z is more than 1h ahead of the worker's clock")
    assert registry.get_sample_value("ioc_events_invalid_total", {"stream": "reservoir", "reason": "bad_ts"}) == 1.0


def _level(source: str, ts: float, level: float) -> bytes:
    return orjson.dumps({"source_id": source, "ts": ts, "level_m": level})


def test_idle_advance_keeps_a_grace_for_events_delivered_a_little_late(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    wall = [1000.0]  # the host's monotonic clock
    host = make_host(_rules(tmp_path, HIGH), registry, partitions=1,
                     settings=HostSettings(idle_after_s=5.0), monotonic=lambda: wall[0])
    shard = host.shards[(RAW, 0)]
    t0 = 1761526800.0
    host.handle(RAW, 0, [RawRecord(TOPIC, 0, 0, b"a", _level("a", t0, 0), 0)])
    wall[0] += 4.0
    host.tick(lambda key: True)
    assert not shard.idle and shard.watermark == t0  # not silent for long enough yet

    wall[0] += 4.0  # 8 s of silence: idle, the watermark follows the clock minus the 5 s grace
    host.tick(lambda key: True)
    assert shard.idle and shard.watermark == t0 + 3.0
    wall[0] += 1.0
    host.tick(lambda key: True)
    assert shard.watermark == t0 + 4.0

    late_by_jitter = _level("b", t0 + 6, 5)
    result = host.handle(RAW, 0, [RawRecord(TOPIC, 0, 1, b"b", late_by_jitter, 0)])
    assert shard.engine.last_stats.late == 0
    assert [a.key for a in result.alerts] == [{"source_id": "b"}]
    assert not shard.idle  # records came: no longer idle
    assert registry.get_sample_value("ioc_events_late_total", {"stream": "reservoir"}) is None

    # What the idle advance did pass is late: stamped before the watermark it had reached.
    wall[0] += 10.0
    host.tick(lambda key: True)
    assert shard.idle and shard.watermark == t0 + 6 + 10 - 5
    host.handle(RAW, 0, [RawRecord(TOPIC, 0, 2, b"c", _level("c", t0 + 10, 5), 0)])
    assert registry.get_sample_value("ioc_events_late_total", {"stream": "reservoir"}) == 1.0


def test_a_partition_that_is_behind_never_becomes_idle_however_long_it_is_silent(
    ruleset: RuleSet, registry: CollectorRegistry
) -> None:
    """Idle needs silence *and* a consumer that has read all there is: a partition whose
    consumer is behind keeps its watermark, so its pending timers wait for its records."""
    wall = [0.0]
    host = make_host(ruleset, registry, settings=HostSettings(idle_after_s=5.0), monotonic=lambda: wall[0])
    # Both near their NWL: a 10-minute `for` timer pending in each partition.
    handle(host, [record(0, reading("ta-trach", 0, 44.6)),
                  record(0, reading("binh-dien", 0, 84.8), partition=1, key=b"binh-dien")])
    behind: set[ShardKey] = {(RAW, 1)}
    asked: list[ShardKey] = []

    def caught_up(key: ShardKey) -> bool:
        asked.append(key)
        return key not in behind

    alerts = []
    for _ in range(100):  # 1000 s of silence on both
        wall[0] += 10.0
        alerts.extend(host.tick(caught_up).alerts)
    caught, lagging = host.shards[(RAW, 0)], host.shards[(RAW, 1)]
    assert caught.idle and caught.watermark == T0 + 1000 - 5
    assert not lagging.idle and lagging.watermark == T0
    assert (RAW, 1) in asked
    assert [(a.key["source_id"], a.status) for a in alerts] == [("ta-trach", "firing")]

    behind.clear()  # its consumer caught up: silent since long, it is idle at once
    wall[0] += 0.1
    alerts = host.tick(caught_up).alerts
    assert lagging.idle and lagging.watermark == pytest.approx(T0 + 1000.1 - 5)
    assert [(a.key["source_id"], a.status, a.starts_at) for a in alerts] == [("binh-dien", "firing", T0)]
