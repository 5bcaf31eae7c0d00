"""`previous` in a threshold rule: the condition reads the key's previous event (a VMS position
jump: the distance between a vessel's two latest fixes). Real loader, real engine, events decoded
as the pipeline decodes them."""

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
from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.loader import RuleSet

RULE: dict[str, Any] = {
    "id": "t.jump",
    "stream": "vessel",
    "kind": "threshold",
    "condition": "distance_km(previous.lat, previous.lon, lat, lon) > 50",
    "value": "round(distance_km(previous.lat, previous.lon, lat, lon), 1)",
    "summary": "{source_id} nhảy {value} km",
}
A, B = "TTH-90123-TS", "TTH-90003-TS"
HOME = (17.10, 107.90)
FAR = (17.80, 107.90)  # ~78 km north of HOME


def fix(sid: str, minutes: float, lat: float, lon: float, **extra: Any) -> dict[str, Any]:
    return decode("vessel", {"source_id": sid, "ts": T0 + minutes * 60, "lat": lat, "lon": lon,
                             "id": f"{sid}-{minutes:g}", **extra})


def rules(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(RULE, **fields))


def run(engine: Engine, events: list[dict[str, Any]]) -> list[Alert]:
    return feed(engine, events, stream="vessel")


def brief(alerts: list[Alert]) -> list[tuple[str, str, float, float | None, Any]]:
    return [(a.status, a.key["source_id"], (a.starts_at - T0) / 60,
             None if a.ends_at is None else (a.ends_at - T0) / 60, a.value) for a in alerts]


def test_a_jump_fires_at_the_fix_after_it_and_resolves_at_the_next_close_fix(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path))
    alerts = run(engine, [fix(A, 0, *HOME), fix(A, 30, HOME[0] + 0.01, HOME[1]), fix(A, 60, *FAR),
                          fix(A, 90, FAR[0] + 0.01, FAR[1])])
    assert brief(alerts) == [("firing", A, 60.0, None, 76.7), ("resolved", A, 60.0, 90.0, 76.7)]
    assert alerts[0].summary == f"{A} nhảy 76.7 km"
    assert alerts[0].evidence == [f"{A}-60"]


def test_the_first_event_of_a_key_has_no_previous_event_and_its_condition_is_false(tmp_path: Path) -> None:
    # `previous.lat is None` would be true with an empty previous event: the first event still
    # does not hold, and later ones have a previous event with a latitude.
    engine = engine_of(rules(tmp_path, condition="previous.lat is None", value="lat"))
    assert run(engine, [fix(A, 0, *HOME), fix(B, 0, *FAR), fix(A, 10, *FAR)]) == []


def test_every_key_is_tracked_from_its_first_event(tmp_path: Path) -> None:
    # The first fix of each vessel is false (no previous): it must still be remembered, or the
    # jump at the second fix could not be seen (no `opener`, no sorted group for such rules).
    ruleset = rules(tmp_path)
    engine = engine_of(ruleset)
    assert ruleset.by_id["t.jump"].kind.opener is None and ruleset.by_id["t.jump"].kind.bound is None
    alerts = run(engine, [fix(A, 0, *HOME), fix(B, 5, *HOME), fix(B, 20, *FAR), fix(A, 30, *FAR)])
    assert [(s, k, start) for s, k, start, _, _ in brief(alerts)] == [("firing", B, 20.0), ("firing", A, 30.0)]
    assert engine.states["t.jump"][(A,)]["prev"] == {"lat": FAR[0], "lon": FAR[1]}


def test_state_keeps_only_the_fields_read_and_is_never_expired_while_it_may_be_read(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, condition="sog_kn - previous.sog_kn > 5 and distance_km(previous.lat, "
                                          "previous.lon, lat, lon) < 1", value=None)
    engine = engine_of(ruleset)
    run(engine, [fix(A, 0, *HOME, sog_kn=1.0, mmsi="574123456")])
    state = engine.states["t.jump"][(A,)]
    assert state["prev"] == {"lat": HOME[0], "lon": HOME[1], "sog_kn": 1.0}
    assert engine.sweep() == 0 and (A,) in engine.states["t.jump"]
    assert [a.status for a in run(engine, [fix(A, 600, *HOME, sog_kn=7.0)])] == ["firing"]


def test_where_false_events_are_not_the_previous_event(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path, where="device_status != 'weak_signal'"))
    alerts = run(engine, [fix(A, 0, *HOME), fix(A, 30, *FAR, device_status="weak_signal"),
                          fix(A, 60, HOME[0] + 0.01, HOME[1])])
    assert alerts == []


def test_an_out_of_order_event_is_ignored_and_is_not_the_previous_event(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path), lateness_s=3600)
    alerts = run(engine, [fix(A, 0, *HOME), fix(A, 60, HOME[0] + 0.01, HOME[1]), fix(A, 30, *FAR),
                          fix(A, 90, HOME[0] + 0.02, HOME[1])])
    assert alerts == []


def test_state_survives_a_json_snapshot_between_two_fixes(tmp_path: Path) -> None:
    ruleset = rules(tmp_path)
    first = engine_of(ruleset)
    run(first, [fix(A, 0, *HOME)])
    second = engine_of(ruleset)
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert [a.status for a in run(second, [fix(A, 30, *FAR)])] == ["firing"]


def test_implied_speed_from_two_fixes(tmp_path: Path) -> None:
    # 78 km in 30 min is 156 km/h; the same jump after 4 h is 19.5 km/h.
    condition = ("distance_km(previous.lat, previous.lon, lat, lon) / max((ts - previous.ts) / 3600, 1 / 60) > 40")
    engine = engine_of(rules(tmp_path, condition=condition, value=None))
    alerts = run(engine, [fix(A, 0, *HOME), fix(A, 30, *FAR), fix(B, 0, *HOME), fix(B, 240, *FAR)])
    assert [(a.status, a.key["source_id"]) for a in alerts] == [("firing", A)]


@pytest.mark.parametrize(("fields", "message"), [
    ({"condition": "previous.lta > 50"},
     "condition: unknown field 'lta' of the previous event (known: cog_deg, device_status, id, lat, length_m, "
     "lon, mmsi, sog_kn, source_id, ts; did you mean 'lat'?) in 'previous.lta > 50'"),
    ({"condition": "previous > 50"},
     "condition: 'previous' is the key's previous event: read one of its fields, e.g. previous.ts in "
     "'previous > 50'"),
    ({"where": "previous.lat > 17"},
     "where: 'previous.lat': the previous event of a key can only be read in the condition and value of a "
     "threshold rule in 'previous.lat > 17'"),
    ({"kind": "window", "agg": "max", "field": "previous.sog_kn", "window": "1h", "condition": "value > 3",
      "value": None},
     "field: 'previous.sog_kn': the previous event of a key can only be read in the condition and value of a "
     "threshold rule in 'previous.sog_kn'"),
    ({"condition": "previous.lat.real > 1"},
     "condition: attribute access is not allowed ('previous.lat.real') in 'previous.lat.real > 1'"),
])
def test_previous_errors_name_the_field_and_what_is_allowed(tmp_path: Path, fields: dict[str, Any],
                                                            message: str) -> None:
    text = only_problem(rule_error(tmp_path, rule_yaml(RULE, **fields)))
    assert text.endswith(f"rule 't.jump': {message}")


# -- batching and restarts ---------------------------------------------------------------------


@st.composite
def tracks(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Fixes of two vessels, now and then jumping between two far-apart grounds."""
    events, minutes = [], 0.0
    for _ in range(draw(st.integers(2, 30))):
        minutes += draw(st.sampled_from([0, 10, 30, 60]))
        sid = draw(st.sampled_from([A, B]))
        lat, lon = draw(st.sampled_from([HOME, FAR]))
        events.append(fix(sid, minutes, lat + draw(st.integers(0, 5)) / 1000, lon))
    return events


@batching_settings(80)
@given(events=tracks(), sizes=st.lists(st.integers(1, 6), min_size=1, max_size=5), cut=st.integers(0, 30))
def test_batching_and_a_restart_do_not_change_the_alerts(tmp_path_factory: pytest.TempPathFactory,
                                                          events: list[dict[str, Any]], sizes: list[int],
                                                          cut: int) -> None:
    ruleset = rules(tmp_path_factory.mktemp("r"))
    expected = run(engine_of(ruleset), events)
    engine, out, index, turn = engine_of(ruleset), [], 0, 0
    while index < len(events):
        if index >= cut > index - sizes[turn % len(sizes)]:
            restarted = engine_of(ruleset)
            restarted.restore(json.loads(json.dumps(engine.snapshot())))
            engine = restarted
        size = sizes[turn % len(sizes)]
        out += engine.process("vessel", [dict(e) for e in events[index:index + size]])
        index, turn = index + size, turn + 1
    assert per_fingerprint(out) == per_fingerprint(expected)
