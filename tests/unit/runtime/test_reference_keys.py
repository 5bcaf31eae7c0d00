"""Keys read through reference data (ioc.rules.keys) in the runtime: a camera event re-keyed by
its camera's reference `gauge` goes to the key-space partition that owns that gauge (where the
gauge's own readings go), a camera whose gauge is null is not handed on, and the alerts do not
depend on how many partitions (workers) there are. A rule's version and meaning cover the
reference column it joins."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kindtest import make_rules
from reference_joins import BAD, EVENTS, EXPECTED, transitions

from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import DEFAULT_CONFIG_PATH, REPO_ROOT, load_settings
from ioc.engine.meaning import meaning
from ioc.events import decode
from ioc.refdata import Reference, load_reference
from ioc.rules.keys import RefKey
from ioc.runtime.partitioner import partition_of
from ioc.runtime.plan import is_local, plan_rules
from ioc.runtime.replay import partition_counts
from ioc.runtime.runner import load_ruleset
from ioc.runtime.shards import RawShard
from ioc.timeutil import format_ts

REFERENCE = load_reference(REPO_ROOT / "config" / "reference")
T0 = 1761526800.0  # 2025-10-27 08:00 in Huế
SPACE = "camera.gauge-reservoir.source_id"

RULES = """\
rules:
  - id: t.flooding
    kind: sequence
    by: {reservoir: source_id, camera: gauge}
    within: 1h
    steps:
      - {stream: reservoir, condition: "level_m >= bd2_m"}
      - {stream: camera, condition: "event_type == 'road_flooding'"}
  - {id: t.per_gauge, stream: camera, kind: window, key: [gauge], agg: count, window: 30m,
     where: "event_type == 'road_flooding'", condition: "value >= 2"}
  - {id: t.per_camera_gauge, stream: camera, kind: window, key: [source_id, gauge], agg: count, window: 30m,
     where: "event_type == 'road_flooding'", condition: "value >= 2"}
"""


@pytest.fixture(scope="module")
def ruleset(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_rules(tmp_path_factory.mktemp("rules"), RULES, REFERENCE)


def camera(source_id: str, t: float, **extra: Any) -> dict[str, Any]:
    return {"source_id": source_id, "ts": format_ts(T0 + t), "event_type": "road_flooding", **extra}


def gauge(source_id: str, t: float, level_m: float) -> dict[str, Any]:
    return {"source_id": source_id, "ts": format_ts(T0 + t), "level_m": level_m}


def test_plan_keys_the_space_by_the_reference_field(ruleset: Any) -> None:
    plan = plan_rules(ruleset)
    assert not is_local(ruleset.by_id["t.per_gauge"]) and is_local(ruleset.by_id["t.per_camera_gauge"])
    assert plan.spaces[SPACE].fields == {"camera": ("gauge",), "reservoir": ("source_id",)}
    (export,) = [e for e in plan.exports["camera"] if e.target == SPACE]
    assert isinstance(export.fields, RefKey) and export.fields.names == ("gauge",)
    (reservoir,) = [e for e in plan.exports["reservoir"] if e.target == SPACE]
    assert reservoir.fields == ("source_id",) and not isinstance(reservoir.fields, RefKey)


@pytest.mark.parametrize("partitions", [2, 4, 7])
def test_a_camera_event_goes_to_the_partition_of_its_gauge(ruleset: Any, partitions: int) -> None:
    plan = plan_rules(ruleset)
    counts = partition_counts(plan, partitions)
    owner = partition_of(b"kim-long", partitions)
    phu_oc = partition_of(b"phu-oc", partitions)
    sent: dict[str, int] = {}
    for source_id in ("cam-026", "cam-032", "cam-041", "cam-001"):
        part = partition_of(source_id.encode(), partitions)
        shard = RawShard("camera", part, plan, counts)
        # A sensor that sends a `gauge` of its own (not a declared field) does not move its key:
        # the key is the reference row's, as the rule's conditions read it.
        _, exports = shard.process([decode("camera", camera(source_id, 60, gauge="forged"))])
        for (space, target), events in exports.items():
            if space == SPACE:
                sent[source_id] = target
                assert [e["source_id"] for e in events] == [source_id]
    assert sent == {"cam-026": owner, "cam-032": owner, "cam-041": phu_oc}  # cam-001: gauge null, not sent
    shard = RawShard("reservoir", partition_of(b"kim-long", partitions), plan, counts)
    _, exports = shard.process([decode("reservoir", gauge("kim-long", 0, 2.4))])
    assert [target for space, target in exports if space == SPACE] == [owner]


def test_alerts_do_not_depend_on_the_partitions(ruleset: Any) -> None:
    rows = [RawEvent("reservoir", gauge("kim-long", 0, 2.3), "g1"),
            RawEvent("reservoir", gauge("phu-oc", 60, 3.4), "g2"),
            RawEvent("camera", camera("cam-026", 600), "c1"),
            RawEvent("camera", camera("cam-041", 700), "c2"),
            RawEvent("camera", camera("cam-032", 800), "c3"),
            RawEvent("camera", camera("cam-001", 900), "c4"),
            RawEvent("camera", {**camera("cam-001", 9000), "event_type": "heartbeat"}, "c5")]
    results = [run_backtest(ruleset, copy.deepcopy(rows), partitions=n).alerts for n in (1, 2, 4)]
    seen = [sorted((a.alert_id, a.status, a.rule_id) for a in alerts) for alerts in results]
    assert seen[0] == seen[1] == seen[2]
    firing = {(a.rule_id, tuple(a.key.items()), a.starts_at) for a in results[0] if a.status == "firing"}
    assert firing == {
        ("t.flooding", (("key", "kim-long"),), T0),
        ("t.flooding", (("key", "phu-oc"),), T0 + 60),
        ("t.per_gauge", (("gauge", "kim-long"),), T0 + 800),  # cam-026, then cam-032: two kim-long roads
    }


def test_version_and_meaning_cover_the_joined_reference_column(tmp_path: Path, ruleset: Any) -> None:
    rule = ruleset.by_id["t.flooding"]
    moved = Reference({**REFERENCE.tables})
    table = REFERENCE.tables["camera"]
    rows = {key: dict(row) for key, row in table.rows.items()}
    rows["cam-001"]["gauge"] = "kim-long"
    moved.tables["camera"] = type(table)(table.stream, table.key, rows, table.fields)
    again = make_rules(tmp_path, RULES, moved).by_id["t.flooding"]
    assert again.version != rule.version and meaning(again) != meaning(rule)
    # A column the rule does not read is no part of its meaning.
    rows = {key: dict(row) for key, row in table.rows.items()}
    rows["cam-001"]["cam_lat"] = 16.0
    moved.tables["camera"] = type(table)(table.stream, table.key, rows, table.fields)
    same = make_rules(tmp_path, RULES, moved).by_id["t.flooding"]
    assert meaning(same) == meaning(rule)


# -- acceptance 3 of issue 18, in a backtest (the embedded-broker half: tests/integration/test_reference_joins.py)


@pytest.mark.parametrize("partitions", [1, 2, 4])
def test_the_shipped_joined_sequence_and_ward_rule_fire_exactly_as_expected(partitions: int) -> None:
    ruleset = load_ruleset(load_settings(DEFAULT_CONFIG_PATH))  # the shipped rules, config and reference data
    result = run_backtest(ruleset, [RawEvent(stream, dict(body), body["id"]) for stream, body in EVENTS],
                          partitions=partitions)
    records = [alert.to_record() for alert in result.alerts]
    assert transitions(records) == EXPECTED
    reasons = [line for line in result.invalid_examples if "c14-bad" in line]
    assert len(reasons) == 1 and BAD["c14-bad"][0] in reasons[0] and result.invalid[BAD["c14-bad"][1]] == 1
