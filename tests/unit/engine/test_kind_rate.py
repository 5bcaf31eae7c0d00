"""The `rate` kind in the engine: change of a field per unit time over a sliding window, per key.

Rules are YAML in tmp_path, loaded with the real loader and reference data; events are built
with `ioc.events.decode`. Examples follow docs/domain.md: a lake rising faster than 0.5 m/h, and a
release step (turbine + spill) of more than 500 m³/s within 1 h. Levels move in steps of
1/8 m so that the arithmetic is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    batching_settings,
    engine_of,
    per_fingerprint,
    records,
    replay,
    rule_error,
    run_batched,
    run_restored,
    summary_of,
)
from kindtest import brief_values as brief

from ioc.alerts import fingerprint
from ioc.events import decode
from ioc.refdata import Reference, load_reference
from ioc.rules.loader import RuleSet

REPO = Path(__file__).resolve().parents[3]
REFERENCE = load_reference(REPO / "config" / "reference")

RULE_ID = "test.level.rising"
A, B = "ta-trach", "binh-dien"
MIN = 60.0


# One rate rule (the lake rising faster than 0.5 m/h): `rule_yaml(**fields)` overrides, adds or (None) removes fields.
RULE: dict[str, Any] = {
    "id": RULE_ID,
    "stream": "reservoir",
    "kind": "rate",
    "field": "level_m",
    "window": "1h",
    "per": "1h",
    "condition": "value > 0.5",
    "severity": "warning",
    "labels": {"domain": "water"},
    "summary": "{name}: mực nước lên {value:.2f} m/h (hiện {level_m:.3f} m)",
    "sla": {"ack": "30m"},
}


# -- helpers --------------------------------------------------------------------------------

rule_yaml = partial(kindtest.rule_yaml, RULE)
make_rules = partial(kindtest.make_rules, reference=REFERENCE)
feed = partial(kindtest.feed, stream="reservoir")


def one_rule(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(**fields))


def load_error(tmp_path: Path, **fields: Any) -> str:
    return str(rule_error(tmp_path, rule_yaml(**fields), REFERENCE))


def ev(source: str, t: float, level: float | None = 40.0, id: str | None = None, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": T0 + t, "level_m": level}
    if id is not None:
        raw["id"] = id
    raw.update(extra)
    return decode("reservoir", raw)


def series(source: str, start: float, levels: Iterable[float], every: float = 10 * MIN) -> list[dict[str, Any]]:
    """Readings `every` seconds apart from `start`, ids "<source>@<minute>"."""
    return [ev(source, start + i * every, level, id=f"{source}@{(start + i * every) / MIN:g}")
            for i, level in enumerate(levels)]


def rising(source: str = A, n: int = 4, start: float = 0.0, step: float = 0.125) -> list[dict[str, Any]]:
    """`n` readings 10 min apart, rising `step` m each: 0.75 m/h with the default step."""
    return series(source, start, [40.0 + i * step for i in range(n)])


# -- firing -----------------------------------------------------------------------------------


def test_fires_when_rising_faster_than_half_a_metre_per_hour(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    events = rising(n=4)  # 40.0 at 0, 40.125, 40.25, 40.375 at 30 min
    assert feed(engine, events[:3]) == []  # span 20 min < min_span 30 min: undefined
    alerts = feed(engine, events[3:])
    assert brief(alerts) == [("firing", 1800.0, None, 0.75)]
    assert alerts[0].summary == "Hồ Tả Trạch: mực nước lên 0.75 m/h (hiện 40.375 m)"
    assert alerts[0].key == {"source_id": A}
    assert alerts[0].evidence == [f"{A}@30"]


def test_slow_rise_does_not_fire(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert feed(engine, rising(n=30, step=0.0625)) == []  # 0.375 m/h for 5 h
    assert engine.firing() == []


def test_single_sample_or_short_span_is_undefined(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    # +2 m in 10 min would be 12 m/h, but two samples 10 min apart span less than 30 min.
    assert feed(engine, [ev(A, 0, 40.0), ev(A, 600, 42.0)]) == []
    assert feed(engine, [ev(B, 0, 80.0)]) == []


def test_span_exactly_min_span_is_defined(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, min_span="20m"))
    alerts = feed(engine, rising(n=3))  # span 20 min at 20 min
    assert brief(alerts) == [("firing", 1200.0, None, 0.75)]


def test_value_exactly_at_threshold(tmp_path: Path) -> None:
    events = series(A, 0, [40.0, 40.0, 40.25], every=15 * MIN)  # 0.25 m in 30 min: 0.5 m/h
    assert feed(engine_of(one_rule(tmp_path)), events) == []
    alerts = feed(engine_of(one_rule(tmp_path, id="test.ge", condition="value >= 0.5")), events)
    assert brief(alerts) == [("firing", 1800.0, None, 0.5)]


def test_per_scales_the_value(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, per="1m", condition="value > 0.01", summary="{value:.4f} m/min"))
    alerts = feed(engine, rising(n=4))
    assert brief(alerts) == [("firing", 1800.0, None, 0.0125)]
    assert alerts[0].summary == "0.0125 m/min"


def test_falling_level(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, condition="value < -0.5"))
    alerts = feed(engine, rising(n=4, step=-0.25))
    assert brief(alerts) == [("firing", 1800.0, None, -1.5)]


def test_release_step_with_delta_over_an_expression(tmp_path: Path) -> None:
    # docs/domain.md: release step > 500 m³/s within 1 h; release = turbine + spill.
    rules = one_rule(tmp_path, id="test.release.step", field="turbine_m3s + spill_m3s", condition="delta > 500",
                     summary="{name}: xả tăng {value:.0f} m³/s mỗi giờ")
    engine = engine_of(rules)
    base = {"level_m": 84.0}
    events = [
        ev(B, 0, turbine_m3s=300.0, spill_m3s=100.0, **base),
        ev(B, 900, turbine_m3s=300.0, spill_m3s=100.0, **base),
        ev(B, 1200, turbine_m3s=300.0, **base),  # no spill reading: no sample
        ev(B, 1800, turbine_m3s=300.0, spill_m3s=700.0, **base),
    ]
    alerts = feed(engine, events)
    assert brief(alerts) == [("firing", 1800.0, None, 1200.0)]  # +600 m³/s in 30 min
    assert alerts[0].summary == "Thủy điện Bình Điền: xả tăng 1200 m³/s mỗi giờ"


def test_where_and_keys(tmp_path: Path) -> None:
    # Downstream gauges only (reference data gives them a BĐ2 level); each gauge its own window.
    engine = engine_of(one_rule(tmp_path, where="bd2_m is not None"))
    events = sorted(rising(A, 4) + series("kim-long", 0, [1.5, 1.625, 1.75, 1.875])
                    + series("phu-oc", 0, [2.0, 2.0, 2.0, 2.0]),
                    key=lambda e: e["ts"])
    alerts = feed(engine, events)
    assert [(a.status, a.key["source_id"]) for a in alerts] == [("firing", "kim-long")]
    assert (A,) not in engine.states[RULE_ID]


def test_events_without_a_number_add_nothing(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, field="inflow_m3s", condition="value > 1000"))
    events = [ev(A, 0, inflow_m3s=2000.0), ev(A, 600), ev(A, 1800, inflow_m3s=3000.0)]
    assert brief(feed(engine, events)) == [("firing", 1800.0, None, 2000.0)]
    assert engine.states[RULE_ID][(A,)]["v"] == [2000.0, 3000.0]


# -- resolution -------------------------------------------------------------------------------


def test_resolves_at_event_when_rise_slows(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    events = rising(n=4) + series(A, 2400, [40.375, 40.375])  # flat from 30 min
    alerts = feed(engine, events)
    # At 40 min: 0.375 m in 40 min = 0.5625 m/h; at 50 min: 0.375 in 50 min = 0.45 m/h.
    assert brief(alerts) == [("firing", 1800.0, None, 0.75), ("resolved", 1800.0, 3000.0, 0.75)]
    assert alerts[0].alert_id == alerts[1].alert_id


def test_resolves_by_expiry_when_sensor_falls_silent(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    assert brief(feed(engine, rising(n=4))) == [("firing", 1800.0, None, 0.75)]
    # At 3600 the sample at 0 leaves: 10..30 min span 20 min < 30 min, the rate is undefined.
    assert feed(engine, [ev(B, 3600, 80.0)]) == []  # the watermark reached 3600, not past it
    alerts = feed(engine, [ev(B, 3601, 80.0)])
    assert brief(alerts) == [("resolved", 1800.0, 3600.0, 0.75)]
    assert alerts[0].to_record()["ends_at"] == "2025-10-27T02:00:00Z"


def test_resolves_by_advance(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, rising(n=4))
    assert brief(engine.advance("reservoir", T0 + 7200)) == [("resolved", 1800.0, 3600.0, 0.75)]
    assert engine.states[RULE_ID][(A,)]["t"] == []  # all expired by 1800 + 1 h


def test_quiet_key_drops_its_samples(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, rising(B, n=3))  # 0, 600, 1200: never fires
    assert len(engine.states[RULE_ID][(B,)]["t"]) == 3
    feed(engine, [ev(A, 4800, 40.0)])  # the clean-up at 0 + 1 h drops the sample at 0, then waits
    assert len(engine.states[RULE_ID][(B,)]["t"]) == 2  # for the newest to expire (1200 + 1 h)
    feed(engine, [ev(A, 4801, 40.0)])
    assert engine.states[RULE_ID][(B,)]["t"] == engine.states[RULE_ID][(B,)]["v"] == []


def test_expiry_keeps_firing_while_rate_still_holds(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, min_span="10m"))
    feed(engine, rising(n=4))  # fires at 10 min already (min_span 10 min)
    # At 3600: samples 10..30 min, still 0.75 m/h; at 4200: 20..30 min; at 4800: one sample left.
    assert engine.advance("reservoir", T0 + 4500) == []
    assert brief(engine.advance("reservoir", T0 + 4801)) == [("resolved", 600.0, 4800.0, 0.75)]


def test_event_of_key_at_expiry_time_decides_first(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    feed(engine, rising(n=4))
    # At 3600 the sample at 0 leaves and 3600 enters: (40.5 - 40.125) over 50 min = 0.45 m/h.
    alerts = feed(engine, [ev(A, 3600, 40.5)])
    assert brief(alerts) == [("resolved", 1800.0, 3600.0, 0.75)]


def test_realert_holds_back_and_retries_with_original_start(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="2h"))
    first = feed(engine, rising(n=4) + series(A, 2400, [40.375, 40.375]))
    assert [a.status for a in first] == ["firing", "resolved"]  # resolved at 3000 (50 min)
    # Rising again from 2 h: holds at 2h30, inside realert (until 3000 s + 2 h = 10200 s).
    assert feed(engine, rising(n=5, start=7200)) == []  # 7200 .. 9600, 0.75 m/h
    assert engine.firing() == []
    # The runtime retries at 10200, once the watermark is past it (Bình Điền's reading).
    alerts = feed(engine, [ev(B, 10201, 80.0)])
    assert brief(alerts) == [("firing", 9000.0, None, 0.75)]
    # Rendered from the key's last held-back event (9600 s, 40.5 m).
    assert alerts[0].summary == "Hồ Tả Trạch: mực nước lên 0.75 m/h (hiện 40.500 m)"


def test_realert_retry_dropped_when_rate_stops_holding(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path, realert="2h"))
    feed(engine, rising(n=4) + series(A, 2400, [40.375, 40.375]))
    feed(engine, rising(n=4, start=7200))  # holds at 9000, held back
    # Flat from 9600: at 10200 (the retry time) 0.375 m in 50 min = 0.45 m/h; the event
    # at 10200 decides before the retry timer, which then finds nothing holding.
    feed(engine, series(A, 9600, [40.375] * 6))
    assert engine.firing() == []
    assert engine.advance("reservoir", T0 + 20_000) == []


# -- time edges -------------------------------------------------------------------------------


def test_out_of_order_within_lateness_uses_time_order(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=1800.0)
    assert feed(engine, [ev(A, 900, 40.25), ev(A, 1800, 40.5)]) == []  # span 15 min: undefined
    alerts = feed(engine, [ev(A, 0, 40.0, id="early")])  # watermark 0: not late
    assert engine.last_stats.late == 0
    # Samples in time order 0, 900, 1800: 0.5 m in 30 min; evaluated as of the key's clock.
    assert brief(alerts) == [("firing", 1800.0, None, 1.0)]
    assert alerts[0].evidence == ["early"]


def test_late_beyond_lateness_is_dropped(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=600.0)
    feed(engine, [ev(A, 900, 40.25), ev(A, 1800, 40.5)])  # watermark 1200
    assert feed(engine, [ev(A, 0, 40.0)]) == []
    assert engine.last_stats.late == 1
    assert engine.firing() == []


def test_out_of_order_older_than_key_window_is_ignored(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path), lateness_s=7200.0)
    feed(engine, [ev(A, 4000, 40.5), ev(A, 5800, 40.75)])
    assert feed(engine, [ev(A, 300, 30.0)]) == []  # not late, but outside (2200, 5800]
    assert engine.last_stats.late == 0
    assert engine.states[RULE_ID][(A,)]["v"] == [40.5, 40.75]


# -- the alert record ---------------------------------------------------------------------------


def test_alert_record(tmp_path: Path) -> None:
    engine = engine_of(one_rule(tmp_path))
    fired = feed(engine, rising(n=4))
    resolved = engine.advance("reservoir", T0 + 3601)
    record = fired[0].to_record()
    fp = fingerprint(RULE_ID, {"source_id": A})
    assert record["fingerprint"] == fp
    assert record["alert_id"] == f"{fp}-{round((T0 + 1800) * 1000)}"
    assert (record["rule_id"], record["kind"], record["stream"]) == (RULE_ID, "rate", "reservoir")
    assert record["status"] == "firing"
    assert record["key"] == {"source_id": A}
    assert record["labels"] == {"domain": "water"}
    assert record["value"] == 0.75
    assert record["starts_at"] == "2025-10-27T01:30:00Z"
    assert record["ends_at"] is None
    assert record["sla"] == {"ack_by": "2025-10-27T02:00:00Z"}
    assert orjson.loads(fired[0].to_json()) == record
    end = resolved[0].to_record()
    assert (end["status"], end["alert_id"], end["ends_at"]) == ("resolved", record["alert_id"], "2025-10-27T02:00:00Z")
    assert end["summary"] == record["summary"]


def test_snapshot_restore_mid_stream_same_alerts(tmp_path: Path) -> None:
    events = sorted(rising(A, 10) + rising(B, 8, start=300, step=-0.25) + series(A, 6000, [42.0] * 8),
                    key=lambda e: e["ts"])
    text = rule_yaml() + rule_yaml(id="test.falling", condition="value < -1").split("\n", 1)[1]
    whole = feed(engine_of(make_rules(tmp_path, text)), events)
    assert {a.rule_id for a in whole} == {RULE_ID, "test.falling"}
    for cut in (3, 9, 14, 20):
        again = make_rules(tmp_path, text, name="again.yaml")
        assert records(run_restored(feed, events, cut, make_rules(tmp_path, text), again)) == records(whole)


# -- build-time validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"field": None}, "field: required field is missing"),
        ({"window": None}, "window: required field is missing"),
        ({"condition": None}, "condition: required field is missing"),
        ({"field": "levl_m"}, "field: unknown field 'levl_m'"),
        ({"field": "source_id"},
         "field: 'source_id' is not a number field of stream 'reservoir'; kind 'rate' needs one (allowed: gates_open,"
         " inflow_m3s, level_m, piezo_kpa, rain_mm_1h, seepage_lps, spill_m3s, ts, turbidity_ntu, turbine_m3s)"),
        ({"window": "0s"}, "window: '0s' must be longer than 0s (e.g. 5m)"),
        ({"window": "an hour"}, "window: 'an hour' is not a duration"),
        ({"per": "0s"}, "per: '0s' must be longer than 0s (e.g. 5m)"),
        ({"min_span": "0s"}, "min_span: '0s' must be longer than 0s (e.g. 5m)"),
        ({"min_span": "1h"},
         "min_span: '1h' must be shorter than window '1h' (the samples of a window span less than the window)"),
        ({"min_span": "2h"}, "min_span: '2h' must be shorter than window '1h'"),
        ({"condition": "level_m > 3"}, "condition: unknown field 'level_m' (known: count, delta, span, value)"),
        ({"value": "level_m"}, "value: not used by kind 'rate': the alert's value is the rate per '1h'"),
        ({"resolve_after": "5m"}, "resolve_after: unknown key (allowed: "),
        ({"agg": "sum"}, "agg: unknown key"),
        ({"summary": "{delta}"}, "summary: unknown field 'delta'"),
    ],
)
def test_build_errors(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    error = load_error(tmp_path, **fields)
    assert f"rules.yaml:2: rule '{RULE_ID}': {message}" in error


def test_field_checked_even_when_schema_fails(tmp_path: Path) -> None:
    error = load_error(tmp_path, per="hourly", field="levl_m")
    assert "per: 'hourly' is not a duration" in error
    assert "field: unknown field 'levl_m'" in error


# -- batching does not change results (property) ----------------------------------------------

END = T0 + 1_000_000  # the property runs end by advancing both partitions to here
PROPERTY_RULES = """
defaults: {stream: reservoir, kind: rate, field: level_m, summary: '{source_id} {value}'}
rules:
  - {id: p.up, window: 30m, condition: 'value > 1'}
  - {id: p.down, window: 1h, min_span: 10m, condition: 'value < -1', realert: 1h}
  - {id: p.step, window: 20m, per: 1m, condition: 'abs(delta) >= 1 and count >= 3'}
"""


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return make_rules(tmp_path_factory.mktemp("prop"), PROPERTY_RULES, reference=Reference())


@st.composite
def streams(draw: st.DrawFn, *, ordered: bool = True) -> Pairs:
    keys = ["g1", "g2", "g3"]
    steps = [0, 60, 300, 599, 600, 601, 900, 1800]
    level = dict.fromkeys(keys, 100.0)
    pairs = []
    for i, (part, key, t) in enumerate(arrivals(draw, keys, count=50, steps=steps, clamp=True,
                                                late=None if ordered else (-900, 1200))):
        level[key] += draw(st.sampled_from([-1.0, -0.5, 0.0, 0.0, 0.25, 0.5, 1.0]))
        raw = {"source_id": key, "ts": T0 + t, "level_m": level[key], "id": f"e{i}"}
        pairs.append((part, decode("reservoir", raw)))
    return pairs


@batching_settings(250)
@given(pairs=streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 600.0]))
def test_batching_does_not_change_alerts(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, _ = replay(property_rules, pairs, [len(pairs)], stream="reservoir", lateness=lateness, end=END)
    split, _ = replay(property_rules, pairs, sizes, stream="reservoir", lateness=lateness, end=END)
    single, _ = replay(property_rules, pairs, [1], stream="reservoir", lateness=lateness, end=END)
    assert per_fingerprint(split) == per_fingerprint(whole) == per_fingerprint(single)
    if len({part for part, _ in pairs}) == 1:
        assert summary_of(split) == summary_of(whole)


@batching_settings(200)
@given(pairs=streams(ordered=False), sizes=SIZES, lateness=st.sampled_from([0.0, 900.0, 3600.0]))
def test_batching_does_not_change_alerts_with_out_of_order_events(
    property_rules: RuleSet, pairs: Pairs, sizes: list[int], lateness: float
) -> None:
    whole, whole_engine = replay(property_rules, pairs, [len(pairs)], stream="reservoir", lateness=lateness, end=END)
    split, split_engine = replay(property_rules, pairs, sizes, stream="reservoir", lateness=lateness, end=END)
    assert per_fingerprint(split) == per_fingerprint(whole)
    assert whole_engine.states == split_engine.states


def test_property_rules_do_produce_alerts(property_rules: RuleSet) -> None:
    levels = [100.0, 100.5, 101.0, 101.5, 102.0, 101.0, 100.0, 99.0, 98.0]
    pairs = [(0, e) for e in series("g1", 0, levels, every=300)]
    alerts = run_batched(engine_of(property_rules), pairs, [1], stream="reservoir", end=END)
    assert {a.rule_id for a in alerts} == {"p.up", "p.down", "p.step"}
