"""The `proximity` kind: two vessels whose latest positions are close (real loader, real engine,
events decoded as the pipeline decodes them; the backtest through the runtime's key spaces)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    T0,
    batching_settings,
    engine_of,
    feed,
    make_rules,
    only_problem,
    per_fingerprint,
    rule_error,
    rule_yaml,
)

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.kinds.proximity import _DEGREE_KM
from ioc.rules.loader import RuleSet
from ioc.runtime.plan import GLOBAL_SPACE, plan_rules
from ioc.timeutil import format_ts

RULE: dict[str, Any] = {
    "id": "t.meet",
    "stream": "vessel",
    "kind": "proximity",
    "distance_km": 0.5,
    "within": "1h",
    "for": "30m",
    "condition": "sog_kn is None or sog_kn < 3",
    "summary": "{source_id} và {other_id} cách {value} km",
}
A, B, C = "TTH-90123-TS", "TTH-90003-TS", "TTH-90159-TS"   # sorted: B < A < C
P = (17.1, 107.9)
KM_LAT = 1 / _DEGREE_KM   # one km north, in degrees of latitude


def fix(sid: str, minutes: float, lat: float, lon: float = P[1], **extra: Any) -> dict[str, Any]:
    return decode("vessel", {"source_id": sid, "ts": T0 + minutes * 60, "lat": lat, "lon": lon,
                             "id": f"{sid}-{minutes:g}", **extra})


def rules(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(RULE, **fields))


def run(engine: Engine, events: list[dict[str, Any]]) -> list[Alert]:
    return feed(engine, events, stream="vessel")


def brief(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    return [(a.status, a.key["source_id"], a.key["other_id"], (a.starts_at - T0) / 60,
             None if a.ends_at is None else (a.ends_at - T0) / 60) for a in alerts]


def test_two_vessels_close_for_30_min_fire_with_the_sorted_pair_as_key(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path))
    alerts = run(engine, [fix(A, 0, P[0]), fix(B, 10, P[0] + 0.3 * KM_LAT), fix(A, 25, P[0]),
                          fix(B, 40, P[0] + 0.2 * KM_LAT), fix(A, 50, P[0] + 2 * KM_LAT), fix(C, 51, 16.8)])
    assert brief(alerts) == [("firing", B, A, 10.0, None), ("resolved", B, A, 10.0, 50.0)]
    assert alerts[0].value == 0.2 and alerts[0].summary == f"{B} và {A} cách 0.2 km"
    assert set(alerts[0].evidence) == {f"{A}-0", f"{B}-10", f"{A}-25", f"{B}-40"}


def test_fires_when_the_watermark_passes_since_plus_for(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path))
    alerts = run(engine, [fix(A, 0, P[0]), fix(B, 5, P[0] + 0.1 * KM_LAT), fix(C, 35, 16.8)])
    assert alerts == []  # the watermark is at the deadline, not past it
    alerts = run(engine, [fix(C, 36, 16.8)])
    assert brief(alerts) == [("firing", B, A, 5.0, None)]


def test_positions_reported_more_than_within_apart_are_not_close(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path))
    assert run(engine, [fix(A, 0, P[0]), fix(B, 61, P[0]), fix(C, 200, 16.8)]) == []
    assert [a.status for a in run(engine_of(rules(tmp_path)), [fix(A, 0, P[0]), fix(B, 60, P[0]),
                                                                 fix(C, 200, 16.8)])] == ["firing"]


def test_a_vessel_whose_latest_fix_fails_the_condition_pairs_with_none(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path))
    alerts = run(engine, [fix(A, 0, P[0], sog_kn=1.0), fix(B, 5, P[0], sog_kn=1.0), fix(B, 20, P[0], sog_kn=8.0),
                          fix(A, 40, P[0], sog_kn=1.0), fix(C, 120, 16.8)])
    assert alerts == []


def test_pairs_across_a_row_border_are_found(tmp_path: Path) -> None:
    ruleset = rules(tmp_path)
    row = ruleset.by_id["t.meet"].kind.row_deg  # type: ignore[attr-defined]
    border = (int(P[0] / row) + 1) * row
    engine = engine_of(ruleset)
    alerts = run(engine, [fix(A, 0, border - 0.2 * KM_LAT), fix(B, 5, border + 0.2 * KM_LAT), fix(C, 60, 16.8)])
    assert brief(alerts) == [("firing", B, A, 5.0, None)]


def test_exactly_at_the_distance_is_close_a_metre_more_is_not(tmp_path: Path) -> None:
    later = fix(C, 2, 16.8)  # a pair is judged once the watermark has passed its positions
    assert run(engine_of(rules(tmp_path, **{"for": "0s"})), [fix(A, 0, P[0]), fix(B, 1, P[0] + 0.499 * KM_LAT), later])
    assert run(engine_of(rules(tmp_path, **{"for": "0s"})), [fix(A, 0, P[0]), fix(B, 1, P[0] + 0.501 * KM_LAT),
                                                             later]) == []


def test_the_order_of_events_sharing_a_timestamp_does_not_matter(tmp_path: Path) -> None:
    # At 10 min A moves away and B comes close to where A was: judged together, never close.
    ruleset = rules(tmp_path, **{"for": "0s"})
    first = [fix(A, 0, P[0]), fix(B, 0, P[0] + 3 * KM_LAT)]
    moves = [fix(A, 10, P[0] + 6 * KM_LAT), fix(B, 10, P[0] + 0.2 * KM_LAT)]
    end = [fix(C, 20, 16.8)]
    assert run(engine_of(ruleset), first + moves + end) == []
    assert run(engine_of(ruleset), first + moves[::-1] + end) == []


def test_stale_vessels_are_forgotten_and_a_full_rule_ignores_new_vessels(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path, max_vessels=2))
    run(engine, [fix(A, 0, 16.9), fix(B, 0, 17.3), fix(C, 10, P[0])])
    fleet = engine.states["t.meet"][()]
    assert sorted(fleet["pos"]) == [B, A]       # C was refused: the rule holds 2 vessels
    run(engine, [fix(A, 130, 16.9), fix(C, 131, 16.9)])
    assert sorted(fleet["pos"]) == [A, C]       # B (last fix at 0) forgotten once no event can meet it
    assert sum(len(keys) for keys in fleet["rows"].values()) == 2


def test_a_firing_pair_whose_partner_was_forgotten_resolves_at_the_next_event(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path, **{"for": "3h"}))
    alerts = run(engine, [fix(A, 0, P[0]), fix(B, 5, P[0]), fix(C, 200, 16.8), fix(A, 201, P[0]), fix(C, 400, 16.8)])
    assert brief(alerts) == [("firing", B, A, 5.0, None), ("resolved", B, A, 5.0, 201.0)]
    assert B not in engine.states["t.meet"][()]["pos"]


def test_the_rule_runs_in_the_global_key_space(tmp_path: Path) -> None:
    plan = plan_rules(rules(tmp_path))
    assert [rule.id for rule in plan.spaces[GLOBAL_SPACE].rules] == ["t.meet"]
    assert plan.local["vessel"].rules == ()


@pytest.mark.parametrize(("fields", "message"), [
    ({"key": ["source_id", "mmsi"]}, "key: [source_id, mmsi]: a proximity rule names the one field that identifies "
                                     "a key (e.g. [source_id]); the alert key is the pair"),
    ({"value": "lat"}, "value: 'lat' is not allowed: a proximity's value is the distance in km"),
    ({"within": "0s"}, "within: '0s' must be more than 0 (e.g. 10m, 2h)"),
    ({"stream": "cyber", "condition": None}, "stream: stream 'cyber' has no field 'lat'"),
    ({"distance_km": 0}, "distance_km: 0 must be more than 0 (a distance in km, e.g. 0.5)"),
    ({"condition": "sog < 3"}, "condition: unknown field 'sog'"),
    ({"distnce_km": 1, "distance_km": None}, "distnce_km: unknown key (allowed:"),
])
def test_errors_name_the_field(tmp_path: Path, fields: dict[str, Any], message: str) -> None:
    # (no summary: a rule whose kind fails is checked against the common template names only)
    text = only_problem(rule_error(tmp_path, rule_yaml(RULE, summary=None, **fields)))
    assert f"rule 't.meet': {message}" in text


# -- batching, restarts, partitions ----------------------------------------------------------------


@st.composite
def fleets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Fixes of four vessels moving about a few spots 0-1.5 km apart, in time order."""
    events, minutes = [], 0.0
    for _ in range(draw(st.integers(2, 40))):
        minutes += draw(st.sampled_from([0, 5, 20, 45]))
        sid = draw(st.sampled_from([A, B, C, "TTH-94346-TS"]))
        lat = P[0] + draw(st.sampled_from([0.0, 0.3, 0.6, 1.5])) * KM_LAT
        events.append(fix(sid, minutes, lat, sog_kn=draw(st.sampled_from([1.0, 1.0, 5.0]))))
    return events


@batching_settings(80)
@given(events=fleets(), sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5), cut=st.integers(0, 40))
def test_batching_restarts_and_partitions_do_not_change_the_alerts(
        tmp_path_factory: pytest.TempPathFactory, events: list[dict[str, Any]], sizes: list[int], cut: int) -> None:
    ruleset = rules(tmp_path_factory.mktemp("r"), realert="20m")
    expected = run(engine_of(ruleset), events)
    engine, out, index, turn = engine_of(ruleset), [], 0, 0
    while index < len(events):
        size = sizes[turn % len(sizes)]
        if index <= cut < index + size:
            restarted = engine_of(ruleset)
            restarted.restore(json.loads(json.dumps(engine.snapshot())))
            engine = restarted
        out += engine.process("vessel", [dict(e) for e in events[index:index + size]])
        index, turn = index + size, turn + 1
    assert per_fingerprint(out) == per_fingerprint(expected)
    # The backtest runs the rule in the key space `all`, fed by 3 partitions of the raw topic.
    rows = [RawEvent("vessel", {**e, "ts": format_ts(e["ts"])}, "x") for e in events]
    backtest = run_backtest(ruleset, rows, partitions=3)
    assert per_fingerprint(backtest.alerts) == per_fingerprint(expected)


@pytest.mark.parametrize(("max_pairs", "pairs"), [(10, 3), (2, 2), (1, 1)])
def test_at_most_max_pairs_are_open_at_once(tmp_path: Path, max_pairs: int, pairs: int) -> None:
    # Three vessels alongside make three pairs; a bound lets the first ones open, in event order.
    engine = engine_of(rules(tmp_path, max_pairs=max_pairs))
    moored = [fix(sid, minutes, P[0]) for minutes in (0, 20, 40) for sid in (A, B, C)]
    alerts = run(engine, [*moored, fix(A, 41, P[0])])
    assert len({a.fingerprint for a in alerts if a.status == "firing"}) == pairs
    assert sum(len(keys) for keys in engine.states["t.meet"][()]["open"].values()) == 2 * pairs
