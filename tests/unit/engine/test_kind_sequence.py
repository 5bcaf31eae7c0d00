"""The `sequence` kind in the engine: ordered steps joined on a key, within a time, across streams.

Rules are YAML written to tmp_path and loaded with the real loader and the real reference data
(config/reference/reservoir.yaml: Tả Trạch NWL 45 m, Bình Điền NWL 85 m; Kim Long gauge BĐ2
2.0 m). Events are built with `ioc.events.decode`, as the pipeline does. docs/domain.md §1: heavy
rain → level rising → spill starts; §3: road flooding while Kim Long is above BĐ2.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import kindtest
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    Pairs,
    arrivals,
    batches,
    batching_settings,
    engine_of,
    only_problem,
    per_fingerprint,
    records,
    replay,
    rule_doc,
    rule_error,
    run_batched,
    run_restored,
    span,
    summary_of,
)

from ioc.alerts import Alert, fingerprint
from ioc.engine import Engine
from ioc.events import decode
from ioc.refdata import Reference, RefTable, load_reference
from ioc.rules.kinds import RULE_KINDS
from ioc.rules.kinds.sequence import MAX_PARTIALS, SequenceRule
from ioc.rules.loader import RuleSet, load_rules

REPO = Path(__file__).resolve().parents[3]
# Reservoirs and gauges from config/reference; three cameras as in config/reference/camera.yaml
# (`gauge`: the river gauge that matters for a flood-prone road), fixed here for stable tests.
CAMERAS = {
    "cam-026": {"source_id": "cam-026", "name": "Đường Kim Long", "flood_prone": True, "gauge": "kim-long"},
    "cam-041": {"source_id": "cam-041", "name": "QL1A – Tứ Hạ", "flood_prone": True, "gauge": "phu-oc"},
    "cam-025": {"source_id": "cam-025", "name": "Cầu An Hòa", "flood_prone": True, "gauge": "kim-long"},
    "cam-001": {"source_id": "cam-001", "name": "Ngã tư Lê Lợi – Hùng Vương", "flood_prone": False, "gauge": None},
}
REFERENCE = Reference({
    "reservoir": load_reference(REPO / "config" / "reference").tables["reservoir"],
    "camera": RefTable("camera", "source_id", CAMERAS, frozenset({"source_id", "name", "flood_prone", "gauge"})),
})

H = 3600.0
RULE_ID = "test.reservoir.rain_level_spill"
FLOOD_ID = "test.flood.gauge_then_camera"
A, B, C = "ta-trach", "binh-dien", "huong-dien"
HIGH = {A: 44.5, B: 84.5, C: 57.5}  # >= NWL - 1
LOW = {A: 40.0, B: 80.0, C: 50.0}


# The rain → level → spill sequence of docs/domain.md §1 (per reservoir, 12 h): `rule_yaml(**fields)` overrides,
# adds or (None) removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "kind": "sequence",
    "by": "source_id",
    "within": "12h",
    "steps": [
        {"name": "rain", "stream": "reservoir", "condition": "rain_mm_1h >= 50"},
        {"name": "level", "stream": "reservoir", "condition": "level_m >= nwl_m - 1"},
        {"name": "spill", "stream": "reservoir", "condition": "spill_m3s > 0"},
    ],
    "severity": "critical",
    "labels": {"domain": "water", "agency": "Sở NN&PTNT"},
    "summary": "{name}: mưa {rain_mm_1h} mm/h, mực nước {level_m:.2f} m, xả {spill_m3s} m³/s",
    "sla": {"ack": "15m", "resolve": "2h"},
}

# Kim Long above BĐ2, then a camera of a road that floods with it reports road flooding (docs/domain.md §3).
# The camera's gauge is reference data, not an event field: one global key.
FLOOD_RULE: dict[str, Any] = {
    "id": FLOOD_ID,
    "kind": "sequence",
    "by": None,
    "within": "2h",
    "steps": [
        {"name": "gauge", "stream": "reservoir",
         "condition": "source_id == 'kim-long' and level_m >= bd2_m"},
        {"name": "flooding", "stream": "camera",
         "condition": "event_type == 'road_flooding' and gauge == 'kim-long'"},
    ],
    "severity": "warning",
    "summary": "{name} {level_m:.2f} m trên BĐ2 {bd2_m}; camera {source_id} báo ngập",
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
make_rules = partial(kindtest.make_rules, reference=REFERENCE)
feed = partial(kindtest.feed, stream="reservoir")


def flood_yaml(**fields: Any) -> str:
    """The flood rule with `fields` overridden or added (None is kept: `by: null`)."""
    return rule_doc({**FLOOD_RULE, **fields})


def load_error(tmp_path: Path, text: str) -> str:
    return only_problem(rule_error(tmp_path, text, REFERENCE, name="bad.yaml"))


def res(source: str, t: float, level: float | None = None, id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A decoded reservoir event at T0 + t seconds (level low unless given)."""
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "level_m": LOW.get(source, 0.5) if level is None
                           else level}
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("reservoir", raw)


def rain(source: str, t: float, id: str | None = None, mm: float = 60.0) -> dict[str, Any]:
    return res(source, t, id=id, rain_mm_1h=mm)


def level(source: str, t: float, id: str | None = None) -> dict[str, Any]:
    return res(source, t, HIGH[source], id=id)


def spill(source: str, t: float, id: str | None = None, m3s: float = 250.0) -> dict[str, Any]:
    return res(source, t, HIGH[source] + 0.3, id=id, spill_m3s=m3s)


def gauge(t: float, lvl: float, id: str | None = None) -> dict[str, Any]:
    return res("kim-long", t, lvl, id=id)


def cam(source: str, t: float, event_type: str = "road_flooding", id: str | None = None, **extra: Any
        ) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "event_type": event_type}
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("camera", raw)


def brief(alerts: Sequence[Alert]) -> list[tuple[str, Any, float, float | None]]:
    """(status, key, starts_at - T0, ends_at - T0) of each alert."""
    return [(a.status, next(iter(a.key.values()), None), *span(a)) for a in alerts]


def partials(engine: Engine, key: tuple[Any, ...], rule_id: str = RULE_ID) -> list[list[Any]]:
    return list(engine.states[rule_id].get(key, {}).get("partials", []))


@pytest.fixture
def rules(tmp_path: Path) -> RuleSet:
    return make_rules(tmp_path, rule_yaml())


# -- the kind is registered and routed ----------------------------------------------------------


def test_registered_and_stream_defaults_to_first_step(tmp_path: Path) -> None:
    assert RULE_KINDS["sequence"] is SequenceRule
    ruleset = make_rules(tmp_path, flood_yaml())
    rule = ruleset.by_id[FLOOD_ID]
    assert rule.spec.stream == "reservoir"
    assert rule.streams == ("reservoir", "camera")
    assert [r.id for r in ruleset.for_stream("camera")] == [FLOOD_ID]
    assert [r.id for r in ruleset.for_stream("reservoir")] == [FLOOD_ID]
    assert ruleset.for_stream("vessel") == ()
    assert rule.key_names == ()
    assert [fields for _, fields in ruleset.routes("camera")] == [()]


def test_key_names_follow_by(tmp_path: Path) -> None:
    one = make_rules(tmp_path, rule_yaml(), name="one.yaml").by_id[RULE_ID]
    assert one.key_names == ("source_id",)
    assert one.kind.key_fields("reservoir") == ("source_id",)
    same = make_rules(tmp_path, rule_yaml(by=["source_id"] * 3), name="same.yaml").by_id[RULE_ID]
    assert same.key_names == ("source_id",)
    default = make_rules(tmp_path, rule_yaml(by=None), name="default.yaml").by_id[RULE_ID]
    assert default.kind.key_fields("reservoir") == ("source_id",)  # `by` left out: source_id


# -- firing and not firing --------------------------------------------------------------------


def test_fires_when_all_steps_happen_in_order(rules: RuleSet) -> None:
    engine = engine_of(rules)
    assert feed(engine, [rain(A, 0, "r1"), res(A, 1800), level(A, 2 * H, "l1")]) == []
    alerts = feed(engine, [spill(A, 3 * H, "s1")])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert alerts[0].details == {"steps": ["2025-10-27T01:00:00Z", "2025-10-27T03:00:00Z", "2025-10-27T04:00:00Z"]}
    assert alerts[0].evidence == ["r1", "l1", "s1"]
    assert partials(engine, (A,)) == []  # the completed partial match is consumed


def test_does_not_fire_with_a_step_missing(rules: RuleSet) -> None:
    engine = engine_of(rules)
    low_spill = [res(A, 60, spill_m3s=100.0), res(A, 180, spill_m3s=120.0)]  # level stays low
    assert feed(engine, [rain(A, 0), low_spill[0], res(A, 120), low_spill[1]]) == []
    assert [p[0] for p in partials(engine, (A,))] == [1]
    # A spill reading that also satisfies "level" advances the match one step only.
    assert feed(engine, [spill(A, 240)]) == []
    assert [p[0] for p in partials(engine, (A,))] == [2]


def test_steps_out_of_order_do_not_fire(rules: RuleSet) -> None:
    engine = engine_of(rules)
    assert feed(engine, [res(A, 0, HIGH[A], spill_m3s=0.0), spill(B, 10), rain(A, 60), rain(B, 70)]) == []
    assert engine.firing() == []


def test_steps_must_share_the_key(rules: RuleSet) -> None:
    engine = engine_of(rules)
    assert feed(engine, [rain(A, 0), level(B, 60), spill(A, 120)]) == []
    assert feed(engine, [level(A, 180)]) == []
    alerts = feed(engine, [spill(A, 240)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


def test_one_event_matching_every_step_starts_but_does_not_complete(rules: RuleSet) -> None:
    engine = engine_of(rules)
    everything = res(A, 0, HIGH[A], rain_mm_1h=80.0, spill_m3s=100.0)
    assert feed(engine, [everything]) == []
    assert [p[0] for p in partials(engine, (A,))] == [1]
    # The next such event advances the first match (to step 2) and starts another.
    assert feed(engine, [res(A, 60, HIGH[A], rain_mm_1h=80.0, spill_m3s=100.0)]) == []
    assert [p[0] for p in partials(engine, (A,))] == [2, 1]
    alerts = feed(engine, [res(A, 120, HIGH[A], rain_mm_1h=80.0, spill_m3s=100.0)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


def test_steps_at_the_same_time_are_in_order(rules: RuleSet) -> None:
    engine = engine_of(rules)
    alerts = feed(engine, [rain(A, 0), level(A, 0), spill(A, 0)])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert alerts[0].details == {"steps": ["2025-10-27T01:00:00Z"] * 3}


def test_keys_are_independent(rules: RuleSet) -> None:
    engine = engine_of(rules)
    alerts = feed(engine, [rain(A, 0), rain(B, 100), level(B, 200), level(A, 300), spill(B, 400), res(A, 500)])
    assert brief(alerts) == [("firing", B, 100.0, None)]
    assert brief(feed(engine, [spill(A, 600)])) == [("firing", A, 0.0, None)]


def test_earliest_partial_gives_starts_at_when_several_complete(rules: RuleSet) -> None:
    engine = engine_of(rules)
    feed(engine, [rain(A, 0, "r0"), rain(A, 600, "r1"), level(A, 1200, "l"), rain(A, 1500, "r2")])
    assert [p[0] for p in partials(engine, (A,))] == [2, 2, 1]
    alerts = feed(engine, [spill(A, 1800, "s")])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert alerts[0].evidence == ["r0", "l", "s"]
    # Both waiting matches were consumed; the spill reading (level high too) advanced the third.
    assert [(p[0], p[1]) for p in partials(engine, (A,))] == [(2, [T0 + 1500, T0 + 1800])]


def test_partial_matches_are_bounded_dropping_the_oldest(rules: RuleSet) -> None:
    engine = engine_of(rules)
    feed(engine, [rain(A, 60 * i) for i in range(MAX_PARTIALS + 10)])
    kept = partials(engine, (A,))
    assert len(kept) == MAX_PARTIALS
    assert kept[0][1] == [T0 + 600]
    feed(engine, [level(A, 4000)])
    alerts = feed(engine, [spill(A, 4100)])
    assert brief(alerts) == [("firing", A, 600.0, None)]


# -- timing: within, watermark, lateness ------------------------------------------------------


def test_last_step_exactly_at_within_fires(rules: RuleSet) -> None:
    engine = engine_of(rules)
    alerts = feed(engine, [rain(A, 0), level(A, 6 * H), spill(A, 12 * H)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


def test_last_step_one_second_after_within_does_not_fire(rules: RuleSet) -> None:
    engine = engine_of(rules)
    assert feed(engine, [rain(A, 0), level(A, 6 * H), spill(A, 12 * H + 1)]) == []
    # The partial match is gone, not merely skipped.
    assert partials(engine, (A,)) == []


def test_middle_step_after_within_does_not_advance(rules: RuleSet) -> None:
    engine = engine_of(rules, lateness_s=2 * H)  # keeps the partial match alive past `within`
    assert feed(engine, [rain(A, 0), level(A, 12 * H + 1), spill(A, 12 * H + 2)]) == []
    assert [p[0] for p in partials(engine, (A,))] == [1]


def test_partial_is_pruned_when_the_watermark_passes_first_plus_within(rules: RuleSet) -> None:
    engine = engine_of(rules)
    feed(engine, [rain(A, 0), level(A, 60)])
    assert engine.advance("reservoir", T0 + 12 * H) == []
    assert len(partials(engine, (A,))) == 1  # an event at exactly 12 h could still complete it
    engine.advance("reservoir", T0 + 12 * H + 1)
    assert partials(engine, (A,)) == []
    assert "partials" not in engine.states[RULE_ID][(A,)]


def test_pruned_by_an_event_of_another_key(rules: RuleSet) -> None:
    engine = engine_of(rules)
    feed(engine, [rain(A, 0), level(A, 60), res(B, 12 * H + 1)])
    assert partials(engine, (A,)) == []


def test_out_of_order_within_lateness_completes(rules: RuleSet) -> None:
    engine = engine_of(rules, lateness_s=60.0)
    # B's event moves the watermark to 12h - 30s: A's spill at 12h - 10s is still accepted.
    alerts = feed(engine, [rain(A, 0), level(A, 100), res(B, 12 * H + 30), spill(A, 12 * H - 10)])
    assert brief(alerts) == [("firing", A, 0.0, None)]
    assert engine.last_stats.late == 0


def test_partial_kept_while_lateness_can_still_complete_it(rules: RuleSet) -> None:
    engine = engine_of(rules, lateness_s=600.0)
    # At B's event (12h + 300s) the watermark is 12h - 300s: A's match may still complete.
    feed(engine, [rain(A, 0), level(A, 100), res(B, 12 * H + 300)])
    assert len(partials(engine, (A,))) == 1
    alerts = feed(engine, [spill(A, 12 * H)])
    assert brief(alerts) == [("firing", A, 0.0, None)]


def test_late_beyond_lateness_is_not_evaluated(rules: RuleSet) -> None:
    engine = engine_of(rules, lateness_s=60.0)
    alerts = feed(engine, [rain(A, 0), level(A, 100), res(B, 5000), spill(A, 4900)])
    assert alerts == []
    assert engine.last_stats.late == 1
    assert brief(feed(engine, [spill(A, 5000)])) == [("firing", A, 0.0, None)]


def test_out_of_order_step_before_previous_step_does_not_advance(rules: RuleSet) -> None:
    engine = engine_of(rules, lateness_s=H)
    assert feed(engine, [rain(A, 0), level(A, 600), spill(A, 300)]) == []
    assert [p[0] for p in partials(engine, (A,))] == [2]
    assert brief(feed(engine, [spill(A, 600)])) == [("firing", A, 0.0, None)]


# -- resolution, dedupe, realert --------------------------------------------------------------


def test_resolves_resolve_after_the_last_completion(rules: RuleSet) -> None:
    engine = engine_of(rules)
    fired = feed(engine, [rain(A, 0), level(A, 60), spill(A, 120)])
    assert feed(engine, [res(B, 120 + 299)]) == []
    resolved = feed(engine, [res(B, 120 + 301)])
    assert brief(resolved) == [("resolved", A, 0.0, 420.0)]
    assert resolved[0].alert_id == fired[0].alert_id
    assert engine.firing() == []


def test_resolve_after_field_and_exact_deadline(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, rule_yaml(resolve_after="1h")))
    feed(engine, [rain(A, 0), level(A, 60), spill(A, 120)])
    # At the deadline itself a completion could still extend the episode: it resolves once the
    # watermark is past it.
    assert engine.advance("reservoir", T0 + 120 + H) == []
    assert brief(engine.advance("reservoir", T0 + 120 + H + 0.001)) == [("resolved", A, 0.0, 120 + H)]


def test_completion_at_the_resolve_deadline_extends(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, rule_yaml(resolve_after="1h")))
    fired = feed(engine, [rain(A, 0), level(A, 60), spill(A, 120)])
    assert feed(engine, [rain(A, 130), level(A, 140), spill(A, 120 + H)]) == []
    resolved = engine.advance("reservoir", T0 + 120 + 2 * H + 1)
    assert brief(resolved) == [("resolved", A, 0.0, 120 + 2 * H)]
    assert resolved[0].alert_id == fired[0].alert_id


def test_completion_while_firing_extends_the_episode(rules: RuleSet) -> None:
    engine = engine_of(rules)
    fired = feed(engine, [rain(A, 0, "r0"), level(A, 60, "l0"), spill(A, 120, "s0")])
    # A second full sequence inside the episode: no new record, the episode lasts longer.
    assert feed(engine, [rain(A, 200, "r1"), level(A, 250, "l1"), spill(A, 400, "s1")]) == []
    assert [a.alert_id for a in engine.firing()] == [fired[0].alert_id]
    assert engine.firing()[0].details["steps"][0] == "2025-10-27T01:03:20Z"
    resolved = engine.advance("reservoir", T0 + 400 + 301)
    assert brief(resolved) == [("resolved", A, 0.0, 700.0)]
    assert resolved[0].evidence == ["r0", "l0", "s0", "r1", "l1"]


def test_realert_drops_a_new_episode_too_soon_and_allows_it_later(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, rule_yaml(realert="2h")))
    first = feed(engine, [rain(A, 0), level(A, 60), spill(A, 120)])
    resolved = engine.advance("reservoir", T0 + 421)
    assert brief(resolved) == [("resolved", A, 0.0, 420.0)]
    # 420 + 2h = 7620: a sequence completing before that is dropped...
    assert feed(engine, [rain(A, 1000, "x0"), level(A, 1100, "x1"), spill(A, 7000, "x2")]) == []
    assert "_evidence" not in engine.states[RULE_ID][(A,)]
    # ...one completing after it is a new episode with its own id and evidence.
    again = feed(engine, [rain(A, 7500, "y0"), level(A, 7600, "y1"), spill(A, 7700, "y2")])
    assert brief(again) == [("firing", A, 7500.0, None)]
    assert again[0].alert_id != first[0].alert_id
    assert again[0].evidence == ["y0", "y1", "y2"]


# -- where ------------------------------------------------------------------------------------


def test_where_filters_every_step(tmp_path: Path) -> None:
    # Dam sensors send inflow; a reading without it (a partial feed) is ignored by the rule.
    engine = engine_of(make_rules(tmp_path, rule_yaml(where="inflow_m3s is not None")))
    assert feed(engine, [rain(A, 0), res(A, 60, HIGH[A], inflow_m3s=900.0), spill(A, 120)]) == []
    assert partials(engine, (A,)) == []
    events = [res(A, 200, rain_mm_1h=70.0, inflow_m3s=800.0), res(A, 260, HIGH[A], inflow_m3s=1500.0),
              spill(A, 300), res(A, 320, HIGH[A], spill_m3s=50.0, inflow_m3s=1600.0)]
    assert brief(feed(engine, events)) == [("firing", A, 200.0, None)]


def test_where_on_a_cross_stream_sequence_reads_common_fields(tmp_path: Path) -> None:
    # cam-025 is under maintenance: its detections are left out.
    engine = engine_of(make_rules(tmp_path, flood_yaml(where="source_id not in ['cam-025']")))
    feed(engine, [gauge(0, 2.3)])
    assert feed(engine, [cam("cam-025", 60)], stream="camera") == []
    assert engine.last_stats.evaluations == 0
    assert brief(feed(engine, [cam("cam-026", 120)], stream="camera")) == [("firing", None, 0.0, None)]


# -- across streams ---------------------------------------------------------------------------


def test_cross_stream_gauge_then_camera_fires(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, flood_yaml()))
    assert feed(engine, [gauge(0, 1.8, "g0"), res(A, 10, rain_mm_1h=90.0)]) == []
    assert feed(engine, [cam("cam-026", 60, id="c0")], stream="camera") == []  # gauge below BĐ2
    assert feed(engine, [gauge(600, 2.2, "g1")]) == []
    # A heartbeat, then flooding on roads that follow another gauge or none: no match.
    assert feed(engine, [cam("cam-026", 1200, "heartbeat"), cam("cam-041", 1300), cam("cam-001", 1400)],
                stream="camera") == []
    alerts = feed(engine, [cam("cam-026", 1800, id="c1")], stream="camera")
    assert brief(alerts) == [("firing", None, 600.0, None)]
    record = alerts[0].to_record()
    assert record["key"] == {}
    assert record["fingerprint"] == fingerprint(FLOOD_ID, {})
    assert record["stream"] == "reservoir"
    assert record["evidence"] == ["g1", "c1"]
    # Fields of the completing (camera) event win; the gauge's fill in what it lacks.
    assert record["summary"] == "Trạm Kim Long 2.20 m trên BĐ2 2.0; camera cam-026 báo ngập"
    assert record["details"] == {"steps": ["2025-10-27T01:10:00Z", "2025-10-27T01:30:00Z"]}


def test_cross_stream_camera_before_gauge_does_not_fire(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, flood_yaml()))
    assert feed(engine, [cam("cam-026", 0)], stream="camera") == []
    assert feed(engine, [gauge(60, 2.5)]) == []
    assert engine.firing() == []


def test_cross_stream_step_earlier_than_previous_step_does_not_advance(tmp_path: Path) -> None:
    # The camera stream lags: its event (10 min) is earlier than the gauge's (20 min).
    engine = engine_of(make_rules(tmp_path, flood_yaml()))
    feed(engine, [gauge(1200, 2.5)])
    assert feed(engine, [cam("cam-026", 600)], stream="camera") == []
    assert brief(feed(engine, [cam("cam-026", 1200)], stream="camera")) == [("firing", None, 1200.0, None)]


def test_cross_stream_within_boundary(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, flood_yaml())
    exact = engine_of(rules)
    feed(exact, [gauge(0, 2.5), gauge(10, 2.6)])
    assert brief(feed(exact, [cam("cam-026", 2 * H)], stream="camera")) == [("firing", None, 0.0, None)]
    # 2 h 5 s: the match started at 0 s is too old, the one started at 10 s completes.
    later = engine_of(rules)
    feed(later, [gauge(0, 2.5), gauge(10, 2.6)])
    assert brief(feed(later, [cam("cam-026", 2 * H + 5)], stream="camera")) == [("firing", None, 10.0, None)]
    too_late = engine_of(rules)
    feed(too_late, [gauge(0, 2.5)])
    assert feed(too_late, [cam("cam-026", 2 * H + 1)], stream="camera") == []


def test_cross_stream_resolves_on_the_camera_watermark(tmp_path: Path) -> None:
    engine = engine_of(make_rules(tmp_path, flood_yaml(resolve_after="30m")))
    feed(engine, [gauge(0, 2.5)])
    feed(engine, [cam("cam-026", 600)], stream="camera")
    assert feed(engine, [cam("cam-001", 600 + 1799, "heartbeat")], stream="camera") == []
    resolved = feed(engine, [cam("cam-001", 600 + 1801, "heartbeat")], stream="camera")
    assert brief(resolved) == [("resolved", None, 0.0, 2400.0)]


def test_by_list_joins_different_fields(tmp_path: Path) -> None:
    # SOC: a successful login on a camera's management host, then that camera reports a
    # watchlist plate (possibly injected). The cyber `host` joins the camera `source_id`.
    text = (
        "rules:\n"
        "  - id: test.cyber.camera_takeover\n"
        "    kind: sequence\n"
        "    by: [host, source_id]\n"
        "    within: 30m\n"
        "    steps:\n"
        "      - {name: login, stream: cyber, condition: \"event_action == 'login' and event_outcome == 'success'\"}\n"
        "      - {name: watchlist, stream: camera, condition: \"event_type == 'plate_watchlist'\"}\n"
        "    summary: 'camera {host}: đăng nhập rồi báo biển số {value}'\n"
    )
    ruleset = make_rules(tmp_path, text)
    rule = ruleset.by_id["test.cyber.camera_takeover"]
    assert rule.key_names == ("key",)
    assert rule.kind.key_fields("cyber") == ("host",)
    assert rule.kind.key_fields("camera") == ("source_id",)
    engine = engine_of(ruleset)
    login = decode("cyber", {"source_id": "soc-fw-1", "ts": T0, "event_action": "login", "event_outcome": "success",
                             "host": "cam-07", "src_ip": "10.1.2.3"})
    assert feed(engine, [login], stream="cyber") == []
    assert feed(engine, [cam("cam-08", 60, "plate_watchlist")], stream="camera") == []
    alerts = feed(engine, [cam("cam-07", 120, "plate_watchlist", plate="75A-123.45")], stream="camera")
    assert [a.key for a in alerts] == [{"key": "cam-07"}]
    assert alerts[0].starts_at == T0
    assert alerts[0].summary.startswith("camera cam-07: đăng nhập")


# -- the alert record -------------------------------------------------------------------------


def test_alert_record(rules: RuleSet) -> None:
    engine = engine_of(rules)
    alerts = feed(engine, [rain(A, 0, "r1", mm=72.5), level(A, 2 * H, "l1"), spill(A, 3 * H, "s1", m3s=400.0)])
    assert len(alerts) == 1
    record = alerts[0].to_record()
    fp = fingerprint(RULE_ID, {"source_id": A})
    assert record["fingerprint"] == fp
    assert record["alert_id"] == f"{fp}-1761526800000"
    assert record["rule_id"] == RULE_ID
    assert record["stream"] == "reservoir"
    assert record["kind"] == "sequence"
    assert record["severity"] == "critical"
    assert record["status"] == "firing"
    assert record["key"] == {"source_id": A}
    assert record["labels"] == {"domain": "water", "agency": "Sở NN&PTNT"}
    # rain from the first step's event (the spill reading has none), the rest from the spill event.
    assert record["summary"] == "Hồ Tả Trạch: mưa 72.5 mm/h, mực nước 44.80 m, xả 400.0 m³/s"
    assert record["starts_at"] == "2025-10-27T01:00:00Z"
    assert record["ends_at"] is None
    assert record["details"] == {"steps": ["2025-10-27T01:00:00Z", "2025-10-27T03:00:00Z", "2025-10-27T04:00:00Z"]}
    assert record["evidence"] == ["r1", "l1", "s1"]
    assert record["sla"] == {"ack_by": "2025-10-27T01:15:00Z", "resolve_by": "2025-10-27T03:00:00Z"}
    assert orjson.loads(alerts[0].to_json()) == record
    resolved = engine.advance("reservoir", T0 + 3 * H + 301)
    r = resolved[0].to_record()
    assert (r["status"], r["ends_at"], r["alert_id"]) == ("resolved", "2025-10-27T04:05:00Z", record["alert_id"])
    assert r["summary"] == record["summary"]


def test_evidence_falls_back_to_position(rules: RuleSet) -> None:
    engine = engine_of(rules)
    first = rain(A, 0)
    first["_pos"] = "ioc.raw.reservoir/0@41"
    alerts = feed(engine, [first, level(A, 60), spill(A, 120, "s")])
    assert alerts[0].evidence == ["ioc.raw.reservoir/0@41", "s"]


def test_state_is_plain_data_and_snapshot_restore_continues(tmp_path: Path, rules: RuleSet) -> None:
    events = [rain(A, 0, "a0"), rain(B, 30, "b0"), level(A, 60, "a1"), level(B, 90, "b1"), spill(A, 120, "a2"),
              res(C, 200), spill(B, 400, "b2"), res(C, 2000)]
    whole = feed(engine_of(rules), events)
    for cut in range(1, len(events)):
        again = make_rules(tmp_path, rule_yaml(), name=f"restored{cut}.yaml")
        assert records(run_restored(feed, events, cut, rules, again)) == records(whole)
    assert [a.status for a in whole] == ["firing", "firing", "resolved", "resolved"]


def test_worked_example_of_the_docs(tmp_path: Path) -> None:
    # docs/kinds/sequence.md: Tả Trạch, 27 Oct 2025, Huế time (T0 is 08:00 in Huế).
    ruleset = make_rules(tmp_path, rule_yaml(
        id="reservoir.sequence.rain_level_spill", resolve_after="1h",
        summary="{name}: mực nước {level_m:.2f} m (MNDBT {nwl_m} m), bắt đầu xả {spill_m3s} m³/s sau mưa lớn",
    ))
    engine = engine_of(ruleset)
    key = (A,)
    rule_id = "reservoir.sequence.rain_level_spill"
    assert feed(engine, [res(A, -6 * H, 41.8, rain_mm_1h=62.0)]) == []
    assert feed(engine, [res(A, -5 * H, 42.6, rain_mm_1h=75.0)]) == []
    assert [p[0] for p in partials(engine, key, rule_id)] == [1, 1]
    assert feed(engine, [res(A, -1.5 * H, 44.1, rain_mm_1h=20.0)]) == []
    assert [p[0] for p in partials(engine, key, rule_id)] == [2, 2]
    assert feed(engine, [res(A, -50 * 60, 44.5, spill_m3s=0.0)]) == []
    fired = feed(engine, [res(A, 0, 44.7, spill_m3s=600.0)])
    assert brief(fired) == [("firing", A, -6 * H, None)]
    assert fired[0].details == {"steps": ["2025-10-26T19:00:00Z", "2025-10-26T23:30:00Z", "2025-10-27T01:00:00Z"]}
    assert fired[0].summary == "Hồ Tả Trạch: mực nước 44.70 m (MNDBT 45.0 m), bắt đầu xả 600.0 m³/s sau mưa lớn"
    assert feed(engine, [res(A, 30 * 60, 44.8, spill_m3s=1200.0)]) == []
    assert brief(feed(engine, [res(B, H + 5 * 60, 80.2)])) == [("resolved", A, -6 * H, H)]


# -- build-time validation (analyst messages) --------------------------------------------------

RULE_HEAD = "rules:\n  - id: t.seq\n    kind: sequence\n"
TWO_STEPS = (
    "    steps:\n"
    "      - {stream: reservoir, condition: 'rain_mm_1h >= 50'}\n"
    "      - {stream: reservoir, condition: 'spill_m3s > 0'}\n"
)
FLOOD_STEPS = (
    "    steps:\n"
    "      - {stream: reservoir, condition: 'level_m >= bd2_m'}\n"
    "      - {stream: camera, condition: \"event_type == 'road_flooding'\"}\n"
)


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(
        "    within: 1h\n    steps:\n      - {stream: reservoir, condition: 'rain_mm_1h >= 50'}\n",
        "bad.yaml:5: rule 't.seq': steps: has 1 step; a sequence needs at least 2"
        " (for one condition use `threshold` or `match`)",
        id="one-step"),
    pytest.param(
        "    within: 1h\n    steps:\n      - {stream: rain, condition: 'x > 1'}\n"
        "      - {stream: reservoir, condition: 'spill_m3s > 0'}\n",
        "bad.yaml:6: rule 't.seq': steps.0.stream: 'rain' is not allowed"
        " (allowed: camera, reservoir, vessel, cyber, press)",
        id="unknown-stream"),
    pytest.param(
        "    within: 1h\n    steps:\n      - {stream: reservoir, conditon: 'rain_mm_1h >= 50'}\n"
        "      - {stream: reservoir, condition: 'spill_m3s > 0'}\n",
        "bad.yaml:5: rule 't.seq': steps: step 0: unknown key 'conditon' (allowed: absent, condition, name, stream,"
        " within;"
        " did you mean 'condition'?)",
        id="step-key-typo"),
    pytest.param(
        "    within: 1h\n    steps:\n      - {name: up, stream: reservoir, condition: 'rain_mm_1h >= 50'}\n"
        "      - {name: up, stream: reservoir, condition: 'spill_m3s > 0'}\n",
        "bad.yaml:5: rule 't.seq': steps: step name 'up' is used twice (step names must be unique)",
        id="duplicate-step-name"),
    pytest.param(
        TWO_STEPS,
        "bad.yaml:2: rule 't.seq': within: required field is missing",
        id="within-missing"),
    pytest.param(
        TWO_STEPS + "    within: 0\n",
        "bad.yaml:7: rule 't.seq': within: must be more than 0 (e.g. 12h)",
        id="within-zero"),
    pytest.param(
        TWO_STEPS + "    within: 12 hours\n",
        "bad.yaml:7: rule 't.seq': within: '12 hours' is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)",
        id="within-not-duration"),
    pytest.param(
        TWO_STEPS + "    within: 1h\n    by: district\n",
        "bad.yaml:8: rule 't.seq': by: unknown field 'district' of stream 'reservoir' (step 0; event fields:"
        " event_type, gates_open, id, inflow_m3s, level_m, piezo_kpa, rain_mm_1h, seepage_lps, source_id,"
        " spill_m3s, ts, turbidity_ntu, turbine_m3s; reference fields: bd1_m, bd2_m, bd3_m, dead_m, flood_wait_m,"
        " lat, lon, name, nwl_m, river, type)",
        id="by-unknown-field"),
    pytest.param(
        FLOOD_STEPS + "    within: 1h\n    by: {reservoir: source_id, camera: guage}\n",
        "bad.yaml:8: rule 't.seq': by.camera: unknown field 'guage' of stream 'camera' (event fields: count,"
        " district, event_type, id, lat, lon, plate, score, source_id, speed_kmh, ts, vehicle_class, ward;"
        " reference fields: flood_prone, gauge, name; did you mean 'gauge'?)",  # ward: declared in config/ioc.yaml
        id="by-mapping-unknown-field"),
    pytest.param(
        FLOOD_STEPS + "    within: 1h\n    by: {reservoir: source_id, camera: gauge, vessel: source_id}\n",
        "bad.yaml:8: rule 't.seq': by.vessel: no step is on stream 'vessel' (steps are on: reservoir, camera;"
        " name each step's stream once)",
        id="by-mapping-stream-without-step"),
    pytest.param(
        FLOOD_STEPS + "    within: 1h\n    by: {reservoir: source_id}\n",
        "bad.yaml:8: rule 't.seq': by: no join field for stream 'camera' (step 1; the mapping must name every"
        " step's stream: reservoir, camera)",
        id="by-mapping-step-stream-missing"),
    pytest.param(
        FLOOD_STEPS + "    within: 1h\n    by: {reservoir: source_id, camra: gauge}\n",
        "bad.yaml:8: rule 't.seq': by.camra: 'camra' is not a stream (allowed: reservoir, camera;"
        " did you mean 'camera'?)",
        id="by-mapping-not-a-stream"),
    pytest.param(
        TWO_STEPS + "    within: 1h\n    by: [source_id]\n",
        "bad.yaml:8: rule 't.seq': by: lists 1 field for 2 steps"
        " (allowed: one field name for all steps, or exactly one per step)",
        id="by-wrong-length"),
    pytest.param(
        "    within: 1h\n    by: [source_id, district]\n    steps:\n"
        "      - {stream: camera, condition: \"event_type == 'crowd'\"}\n"
        "      - {stream: camera, condition: \"event_type == 'fire_smoke'\"}\n",
        "bad.yaml:5: rule 't.seq': by: steps 0 and 1 are both on stream 'camera' but join on 'source_id' and"
        " 'district' (steps on one stream must join on the same field)",
        id="by-same-stream-different-fields"),
    pytest.param(
        TWO_STEPS + "    within: 1h\n    by: 5\n",
        "bad.yaml:8: rule 't.seq': by: 5 is not a join field (allowed: a field name, a list with one field name"
        " per step, a mapping stream: field name, or null for one global key)",
        id="by-not-a-name"),
    pytest.param(
        "    stream: camera\n" + TWO_STEPS + "    within: 1h\n",
        "bad.yaml:4: rule 't.seq': stream: 'camera' is not the first step's stream 'reservoir'"
        " (leave `stream` out: a sequence's stream is its first step's)",
        id="stream-not-first-step"),
    pytest.param(
        TWO_STEPS + "    within: 1h\n    key: [source_id]\n",
        "bad.yaml:8: rule 't.seq': key: a sequence is keyed by its join field: use `by`, not `key`",
        id="key-instead-of-by"),
    pytest.param(
        TWO_STEPS + "    within: 1h\n    value: level_m\n",
        "bad.yaml:8: rule 't.seq': value: a sequence measures nothing (its details are the time of each step); "
        "remove `value`",
        id="value-not-allowed"),
    pytest.param(
        "    within: 1h\n    by: null\n    where: 'level_m > 0'\n    steps:\n"
        "      - {stream: reservoir, condition: 'level_m > 2'}\n"
        "      - {stream: camera, condition: \"event_type == 'road_flooding'\"}\n",
        "bad.yaml:6: rule 't.seq': where: unknown field 'level_m' (known: event_type, id, source_id, ts) in"
        " 'level_m > 0':"
        " `where` is tested on the events of every step (reservoir, camera), so it may only read fields they all"
        " have; put stream-specific tests in the step conditions",
        id="cross-stream-where"),
    pytest.param(
        "    within: 1h\n    steps:\n      - {stream: reservoir, condition: 'rain_mm_1h >= '}\n"
        "      - {stream: reservoir, condition: 'spill_m3s > 0'}\n",
        "bad.yaml:5: rule 't.seq': steps.0.condition: invalid syntax at column 14: unexpected end of expression"
        " in 'rain_mm_1h >= '",
        id="condition-syntax"),
])
def test_build_errors_name_field_value_and_allowed(tmp_path: Path, body: str, expected: str) -> None:
    message = load_error(tmp_path, RULE_HEAD + body)
    assert message == f"{tmp_path / 'bad.yaml'}:{expected.removeprefix('bad.yaml:')}"


def test_condition_is_compiled_against_its_steps_stream(tmp_path: Path) -> None:
    message = load_error(tmp_path, RULE_HEAD + "    within: 1h\n    by: null\n    steps:\n"
                         "      - {stream: reservoir, condition: 'level_m > 2'}\n"
                         "      - {stream: camera, condition: 'level_m > 3'}\n")
    assert message.startswith(f"{tmp_path / 'bad.yaml'}:6: rule 't.seq': steps.1.condition: unknown field 'level_m'"
                              " (known: ")
    assert "event_type" in message
    assert message.endswith(" in 'level_m > 3'")


def test_steps_missing_is_one_error(tmp_path: Path) -> None:
    message = load_error(tmp_path, RULE_HEAD + "    within: 1h\n")
    assert message.endswith("rule 't.seq': steps: required field is missing")


def test_summary_may_use_fields_of_every_step_stream(tmp_path: Path) -> None:
    message = load_error(tmp_path, RULE_HEAD + "    by: null\n    within: 1h\n    summary: '{district} {no_such}'\n"
                         "    steps:\n      - {stream: reservoir, condition: 'level_m > 2'}\n"
                         "      - {stream: camera, condition: \"event_type == 'road_flooding'\"}\n")
    # `district` (a camera field) is known; only the made-up name is an error.
    assert "summary: unknown field 'no_such'" in message
    assert "'district'" not in message.split("known:")[0]


# -- batching does not change results (property) ----------------------------------------------

PROPERTY_RULES = (
    "defaults: {kind: sequence, labels: {domain: water}}\n"
    "rules:\n"
    "  - id: p.three\n"
    "    within: 30m\n"
    "    realert: 20m\n"
    "    steps:\n"
    "      - {stream: reservoir, condition: 'rain_mm_1h >= 50'}\n"
    "      - {stream: reservoir, condition: 'level_m >= nwl_m - 1'}\n"
    "      - {stream: reservoir, condition: 'spill_m3s > 0'}\n"
    "    summary: '{name} {level_m}'\n"
    "  - id: p.two\n"
    "    within: 10m\n"
    "    resolve_after: 5m\n"
    "    where: 'inflow_m3s is not None'\n"
    "    steps:\n"
    "      - {stream: reservoir, condition: 'level_m >= nwl_m - 1'}\n"
    "      - {stream: reservoir, condition: 'level_m < nwl_m - 1'}\n"
)


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES)


@st.composite
def reservoir_streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    keys = draw(st.lists(st.sampled_from([A, B, C]), min_size=1, max_size=3, unique=True))
    steps = [0, 1, 60, 299, 300, 301, 600, 1800]
    pairs = []
    for i, (part, key, t) in enumerate(arrivals(draw, keys, count=40, steps=steps,
                                                late=None if ordered else (-400, 900))):
        raw: dict[str, Any] = {"source_id": key, "ts": T0 + 10_000 + t, "id": f"e{i}",
                               "level_m": draw(st.sampled_from([HIGH[key], LOW[key]]))}
        if draw(st.booleans()):
            raw["rain_mm_1h"] = draw(st.sampled_from([20.0, 60.0]))
        if draw(st.booleans()):
            raw["spill_m3s"] = draw(st.sampled_from([0.0, 120.0]))
        if draw(st.booleans()):
            raw["inflow_m3s"] = 900.0
        pairs.append((part, decode("reservoir", raw)))
    return pairs


def run_streams(engine: Engine, pairs: Sequence[tuple[str, dict[str, Any]]], sizes: Sequence[int]) -> list[Alert]:
    """(stream, event) pairs in `batches` of `sizes`, each grouped by stream (partition 0)."""
    return [alert for stream, batch in batches(pairs, sizes) for alert in engine.process(stream, batch)]


def test_property_rules_fire_on_a_known_case(property_rules: RuleSet) -> None:
    events = [res(A, 0, rain_mm_1h=60.0), res(A, 60, HIGH[A], inflow_m3s=900.0),
              res(A, 120, LOW[A], spill_m3s=80.0, inflow_m3s=900.0), res(A, 2 * H)]
    pairs = [(0, event) for event in events]
    alerts = run_batched(engine_of(property_rules), pairs, [len(pairs)], stream="reservoir")
    assert [(a.rule_id, a.status, a.starts_at - T0, a.ends_at and a.ends_at - T0) for a in alerts] == [
        ("p.three", "firing", 0.0, None), ("p.two", "firing", 60.0, None),
        ("p.three", "resolved", 0.0, 420.0), ("p.two", "resolved", 60.0, 420.0),
    ]


@batching_settings(300)
@given(pairs=reservoir_streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 120.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="reservoir", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="reservoir", lateness=lateness)
    single, _ = replay(property_rules, pairs, [1], stream="reservoir", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    assert whole_engine.states == split_engine.states


@batching_settings(200)
@given(pairs=reservoir_streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 300.0, 900.0]))
def test_batching_does_not_change_alerts_with_out_of_order_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="reservoir", lateness=lateness)
    split, split_engine = replay(property_rules, pairs, sizes, stream="reservoir", lateness=lateness)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states
    assert whole_engine.watermarks == split_engine.watermarks


@st.composite
def flood_streams(draw: st.DrawFn) -> list[tuple[str, dict[str, Any]]]:
    """Gauge readings and camera events interleaved, each stream roughly in time order."""
    clock = {"reservoir": 0.0, "camera": 0.0}
    pairs = []
    for i in range(draw(st.integers(1, 40))):
        stream = draw(st.sampled_from(["reservoir", "camera"]))
        clock[stream] += draw(st.sampled_from([0, 60, 600, 1800, 3600, -120]))
        t = 10_000 + clock[stream]
        if stream == "reservoir":
            event = gauge(t, draw(st.sampled_from([1.5, 2.0, 2.6])), id=f"g{i}")
        else:
            kind = draw(st.sampled_from(["road_flooding", "heartbeat"]))
            event = cam(draw(st.sampled_from(["cam-026", "cam-041"])), t, kind, id=f"c{i}")
        pairs.append((stream, event))
    return pairs


@pytest.fixture(scope="module")
def flood_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("flood"), flood_yaml(resolve_after="20m", realert="30m"))


def test_flood_fixture_fires_on_a_known_case(flood_rules: RuleSet) -> None:
    pairs = [("reservoir", gauge(0, 2.6)), ("camera", cam("cam-026", 60)), ("camera", cam("cam-026", 5000))]
    alerts = run_streams(engine_of(flood_rules), pairs, [len(pairs)])
    assert brief(alerts) == [("firing", None, 0.0, None), ("resolved", None, 0.0, 1260.0)]


@batching_settings(300)
@given(pairs=flood_streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 300.0]))
def test_cross_stream_batching_does_not_change_alerts(
    flood_rules: RuleSet, pairs: list[tuple[str, dict[str, Any]]], sizes: list[int], lateness: float
) -> None:
    # Batches never reorder the two streams: a batch is a run of one stream's events.
    runs: list[list[tuple[str, dict[str, Any]]]] = []
    for pair in pairs:
        if runs and runs[-1][0][0] == pair[0]:
            runs[-1].append(pair)
        else:
            runs.append([pair])

    def run(cut: Sequence[int]) -> tuple[list[tuple[str, str, float, float | None]], Engine]:
        engine = engine_of(flood_rules, lateness_s=lateness)
        out: list[Alert] = []
        for run_pairs in runs:
            out.extend(run_streams(engine, run_pairs, cut))
        return summary_of(out), engine

    whole, whole_engine = run([len(pairs)])
    split, split_engine = run(sizes)
    single, _ = run([1])
    assert split == whole == single
    assert whole_engine.states == split_engine.states


def test_a_leftover_partial_match_never_reuses_the_previous_alert_id(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "rules:\n  - id: s.seq\n    stream: cyber\n    kind: sequence\n    by: src_ip\n    within: 20m\n"
        "    resolve_after: 5m\n    steps:\n"
        "      - {stream: cyber, condition: \"event_outcome == 'failure'\"}\n"
        "      - {stream: cyber, condition: \"event_outcome == 'failure'\"}\n"
        "      - {stream: cyber, condition: \"event_outcome == 'success'\"}\n",
        encoding="utf-8",
    )
    engine = Engine(load_rules([path]), clock=lambda: 0.0)
    out = []
    for t, outcome in [(0, "failure"), (0, "failure"), (0, "success"), (400, "unknown"), (500, "failure"),
                       (600, "success"), (1000, "unknown")]:
        out += engine.process("cyber", [decode("cyber", {
            "source_id": "fw", "ts": T0 + t, "src_ip": "192.0.2.1", "event_action": "authentication",
            "event_outcome": outcome, "user": "u"})])
    firing = [a for a in out if a.status == "firing"]
    assert len(firing) == 2
    assert firing[0].alert_id != firing[1].alert_id
    resolved_first = next(a for a in out if a.status == "resolved" and a.alert_id == firing[0].alert_id)
    assert firing[1].starts_at >= resolved_first.ends_at  # the second episode starts after the first ended
