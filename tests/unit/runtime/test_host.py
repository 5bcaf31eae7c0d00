"""`ioc.pipeline.Pipeline.handle`: raw records in, alerts and dead letters out, metrics counted."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from kindtest import T0, engine_of, make_rules
from prometheus_client import CollectorRegistry

from ioc.engine import Engine
from ioc.metrics import IocMetrics
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet
from ioc.runtime.pipeline import DeadLetter, Pipeline, RawRecord

REPO = Path(__file__).resolve().parents[3]
NOW = T0 + 10_000.0
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


@pytest.fixture
def ruleset(tmp_path: Path) -> RuleSet:
    return make_rules(tmp_path, RULES, load_reference(REPO / "config" / "reference"), name="reservoir.yaml")


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def pipeline(ruleset: RuleSet, registry: CollectorRegistry) -> Pipeline:
    engine = engine_of(ruleset)
    return Pipeline(engine, IocMetrics(registry), clock=lambda: NOW)


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
    pipeline: Pipeline, registry: CollectorRegistry
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
    result = pipeline.handle("reservoir", records)

    assert result.valid == 3
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


def test_late_events_counted_per_partition_and_timers_fire_across_batches(
    pipeline: Pipeline, registry: CollectorRegistry
) -> None:
    first = pipeline.handle("reservoir", [
        record(0, reading("ta-trach", 0, 44.6, id="a")),
        record(0, reading("binh-dien", 0, 84.8, id="b"), partition=1, key=b"binh-dien"),
        record(1, reading("ta-trach", 500, 44.6, id="c")),
    ])
    assert first.alerts == [] and first.dead_letters == []
    second = pipeline.handle("reservoir", [
        record(2, reading("ta-trach", 400, 44.0, id="late")),                        # late in partition 0
        record(1, reading("binh-dien", 300, 80.0, id="b2"), partition=1, key=b"binh-dien"),
        record(3, reading("huong-dien", 601, 50.0, id="h"), key=b"huong-dien"),       # passes 600 in p0
    ])
    # Partition 0's watermark passed ta-trach's deadline; binh-dien (partition 1) was interrupted.
    assert [(a.key["source_id"], a.status, a.starts_at) for a in second.alerts] == [("ta-trach", "firing", T0)]
    assert second.valid == 3
    assert sample(registry, "ioc_events_total", {"stream": "reservoir"}) == 6.0
    assert sample(registry, "ioc_events_late_total", {"stream": "reservoir"}) == 1.0
    assert sample(registry, "ioc_rule_evaluations_total", {"stream": "reservoir"}) == 5.0
    assert sample(registry, "ioc_processing_seconds_count", {"stream": "reservoir"}) == 2.0


def test_published_counts_alerts_firing_gauge_and_latency(
    pipeline: Pipeline, registry: CollectorRegistry
) -> None:
    fired = pipeline.handle("reservoir", [
        record(0, reading("ta-trach", 0, 44.6), received=NOW - 2.0),
        record(1, reading("ta-trach", 600, 44.6), received=NOW - 0.5),
    ]).alerts
    pipeline.published(fired)
    labels = {"rule_id": RULE_ID, "severity": "warning", "status": "firing"}
    assert sample(registry, "ioc_alerts_total", labels) == 1.0
    assert sample(registry, "ioc_alerts_firing", {"domain": "water", "severity": "warning"}) == 1.0
    assert sample(registry, "ioc_event_to_alert_seconds_count") == 1.0
    assert sample(registry, "ioc_event_to_alert_seconds_sum") == pytest.approx(0.5)

    resolved = pipeline.handle("reservoir", [record(2, reading("ta-trach", 900, 40.0))]).alerts
    assert [a.status for a in resolved] == ["resolved"]
    pipeline.published(resolved)
    assert sample(registry, "ioc_alerts_total", {**labels, "status": "resolved"}) == 1.0
    assert sample(registry, "ioc_alerts_firing", {"domain": "water", "severity": "warning"}) == 0.0


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
        pipeline = Pipeline(Engine(ruleset, clock=lambda: 0.0), None, clock=lambda: NOW)
        out, i = [], 0
        for size in sizes:
            out.extend(pipeline.handle("reservoir", records[i:i + size]).alerts)
            i += size
        return sorted((a.alert_id, a.status) for a in out)

    whole = run([len(records)])
    assert len(whole) == 4  # ta-trach and binh-dien each fire and resolve
    assert run([1] * len(records)) == whole
    assert run([3, 2, 3]) == whole


def test_a_rule_that_raises_is_skipped_for_that_event_and_counted(tmp_path, caplog):
    """One failing rule never stops the batch: other rules and later events still run."""
    from prometheus_client import CollectorRegistry

    from ioc.engine import Engine
    from ioc.metrics import IocMetrics
    from ioc.refdata import Reference
    from ioc.rules.loader import load_rules
    from ioc.runtime.pipeline import Pipeline, RawRecord

    path = tmp_path / "r.yaml"
    path.write_text(
        "rules:\n"
        "  - {id: t.ok, stream: reservoir, kind: threshold, condition: 'level_m > 1'}\n"
        "  - {id: t.boom, stream: reservoir, kind: threshold, condition: 'level_m > 1'}\n",
        encoding="utf-8",
    )
    ruleset = load_rules([path], Reference())

    def explode(*args, **kwargs):  # a kind with a bug
        raise ZeroDivisionError("division by zero")

    ruleset.by_id["t.boom"].kind.on_event = explode  # type: ignore[method-assign]
    registry = CollectorRegistry()
    pipeline = Pipeline(Engine(ruleset), IocMetrics(registry))
    body = b'{"source_id": "a", "ts": %d, "level_m": 5}'
    records = [RawRecord("ioc.raw.reservoir", 0, n, b"a", body % (1761526800 + n), 0.0) for n in range(3)]
    result = pipeline.handle("reservoir", records)
    assert [a.rule_id for a in result.alerts] == ["t.ok"]
    assert registry.get_sample_value("ioc_rule_errors_total", {"rule_id": "t.boom"}) == 3.0
    assert "rule t.boom failed on reservoir event ioc.raw.reservoir/0@0: ZeroDivisionError" in caplog.text


def _reservoir_pipeline(tmp_path, **kwargs):  # type: ignore[no-untyped-def]
    from prometheus_client import CollectorRegistry

    from ioc.engine import Engine
    from ioc.metrics import IocMetrics
    from ioc.refdata import Reference
    from ioc.rules.loader import load_rules
    from ioc.runtime.pipeline import Pipeline

    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - {id: t.high, stream: reservoir, kind: threshold, condition: 'level_m > 1'}\n",
                    encoding="utf-8")
    registry = CollectorRegistry()
    return Pipeline(Engine(load_rules([path], Reference())), IocMetrics(registry), **kwargs), registry


def test_events_stamped_far_in_the_future_are_dead_lettered_not_evaluated(tmp_path):
    import orjson

    from ioc.runtime.pipeline import RawRecord

    now = 1761526800.0
    pipeline, registry = _reservoir_pipeline(tmp_path, clock=lambda: now, max_future_s=3600.0)
    future = b'{"source_id": "kim-long", "ts": "2099-01-01T00:00:00Z", "level_m": 9}'
    on_time = b'{"source_id": "ta-trach", "ts": %d, "level_m": 45.5}' % int(now - 60)
    result = pipeline.handle("reservoir", [RawRecord("t", 0, 0, b"kim-long", future, now),
                                            RawRecord("t", 0, 1, b"ta-trach", on_time, now)])
    assert [a.key for a in result.alerts] == [{"source_id": "ta-trach"}]  # not made late by 2099
    [letter] = [orjson.loads(d.value) for d in result.dead_letters]
    assert letter["reason"] == "bad_ts" and letter["offset"] == 0
    assert letter["error"].startswith("ts 2099-01-01T00:00:00Z is more than 1h ahead of the worker's clock")
    assert registry.get_sample_value("ioc_events_invalid_total", {"stream": "reservoir", "reason": "bad_ts"}) == 1.0


def test_idle_advance_keeps_a_grace_for_events_delivered_a_little_late(tmp_path):
    from ioc.runtime.pipeline import RawRecord

    clock = [1000.0]
    pipeline, _ = _reservoir_pipeline(tmp_path, clock=lambda: clock[0])
    t0 = 1761526800
    pipeline.handle("reservoir", [RawRecord("t", 0, 0, b"a", b'{"source_id": "a", "ts": %d, "level_m": 0}' % t0, 0)])
    clock[0] += 8.0  # 8 s of silence, then the idle advance with a 5 s grace
    pipeline.advance_idle(clock[0], 5.0)
    late_by_jitter = b'{"source_id": "b", "ts": %d, "level_m": 5}' % (t0 + 6)
    result = pipeline.handle("reservoir", [RawRecord("t", 0, 1, b"b", late_by_jitter, clock[0])])
    assert pipeline.engine.last_stats.late == 0
    assert [a.key for a in result.alerts] == [{"source_id": "b"}]
