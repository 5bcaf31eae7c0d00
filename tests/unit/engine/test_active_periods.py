"""`active:` periods: a rule applies only inside them (event time), for every kind alike; a firing
alert resolves when its period ends. Real loader, real engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kindtest import T0, engine_of, feed, make_rules, only_problem, rule_error, rule_yaml

from ioc.alerts import Alert
from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.loader import RuleSet
from ioc.rules.periods import Periods, load_periods
from ioc.timeutil import format_ts, parse_ts

# T0 is 08:00 ICT; the period is 09:00-10:00 ICT.
PERIOD = {"from": "2025-10-27T09:00", "to": "2025-10-27T10:00"}
RULE: dict[str, Any] = {"id": "t.fast", "stream": "vessel", "kind": "threshold", "condition": "sog_kn > 5",
                        "for": "10m", "active": PERIOD}
A, B = "TTH-90123-TS", "TTH-90003-TS"


def fix(sid: str, minutes: float, sog: float) -> dict[str, Any]:
    return decode("vessel", {"source_id": sid, "ts": T0 + minutes * 60, "lat": 17.0, "lon": 108.0, "sog_kn": sog,
                             "id": f"{sid}-{minutes:g}"})


def rules(tmp_path: Path, **fields: Any) -> RuleSet:
    return make_rules(tmp_path, rule_yaml(RULE, **fields))


def run(engine: Engine, events: list[dict[str, Any]]) -> list[Alert]:
    return feed(engine, events, stream="vessel")


def brief(alerts: list[Alert]) -> list[tuple[Any, ...]]:
    return [(a.status, a.key["source_id"], (a.starts_at - T0) / 60,
             None if a.ends_at is None else (a.ends_at - T0) / 60) for a in alerts]


def test_events_outside_the_period_are_ignored_and_the_episode_resolves_at_its_end(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path))
    alerts = run(engine, [fix(A, 30, 8), fix(A, 50, 8), fix(A, 60, 8), fix(A, 75, 8), fix(A, 119, 8),
                          fix(A, 120, 8), fix(A, 130, 8)])
    # 08:30 and 08:50 are before the period: pending starts at 09:00; fires at 09:15 (held 10 min
    # since 09:00, seen at 09:15); 10:00 is outside ([from, to)); the watermark passes 10:00 at
    # 10:10: resolved with ends_at = the period's end.
    assert brief(alerts) == [("firing", A, 60.0, None), ("resolved", A, 60.0, 120.0)]
    assert engine.states["t.fast"] == {}


def test_a_pending_for_is_not_carried_into_the_next_period(tmp_path: Path) -> None:
    active = [PERIOD, {"from": "2025-10-27T10:30", "to": "2025-10-27T12:00"}]
    engine = engine_of(rules(tmp_path, active=active))
    alerts = run(engine, [fix(A, 115, 8), fix(B, 125, 1), fix(A, 150, 8), fix(A, 155, 8), fix(A, 160, 8)])
    # A pending from 09:55: its `for` would end at 10:05, outside: no alert. From 10:30 again.
    assert brief(alerts) == [("firing", A, 150.0, None)]


def test_an_instant_kind_resolves_at_the_period_end_not_resolve_after(tmp_path: Path) -> None:
    rule = {"id": "t.weak", "stream": "vessel", "kind": "new_value", "field": "sog_kn", "lookback": "1d",
            "resolve_after": "1h", "active": PERIOD}
    engine = engine_of(make_rules(tmp_path, rule_yaml(rule)))
    alerts = run(engine, [fix(A, 90, 3), fix(B, 125, 1)])
    assert brief(alerts) == [("firing", A, 90.0, None), ("resolved", A, 90.0, 120.0)]


def test_the_period_end_survives_a_json_snapshot(tmp_path: Path) -> None:
    ruleset = rules(tmp_path)
    first = engine_of(ruleset)
    assert [a.status for a in run(first, [fix(A, 60, 8), fix(A, 75, 8)])] == ["firing"]
    second = engine_of(ruleset)
    second.restore(json.loads(json.dumps(first.snapshot())))
    assert brief(run(second, [fix(B, 121, 1)])) == [("resolved", A, 60.0, 120.0)]


def test_rules_without_periods_cost_nothing(tmp_path: Path) -> None:
    engine = engine_of(rules(tmp_path, active=None))
    assert engine._periods == {} and engine.ruleset.by_id["t.fast"].where is None
    assert [a.status for a in run(engine, [fix(A, 0, 8), fix(A, 10, 8)])] == ["firing"]


def test_times_are_ict_unless_an_offset_is_written(tmp_path: Path) -> None:
    ict = load_periods({"from": "2025-10-27T09:00", "to": "2025-10-28"}, tmp_path)
    assert ict.spans == ((parse_ts("2025-10-27T02:00:00Z"), parse_ts("2025-10-27T17:00:00Z")),)
    utc = load_periods([{"from": "2025-10-27T09:00:00Z", "to": "2025-10-27T10:00:00+00:00"}], tmp_path)
    assert [format_ts(t) for t in utc.spans[0]] == ["2025-10-27T09:00:00Z", "2025-10-27T10:00:00Z"]
    assert Periods.of([(1.0, 2.0), (2.0, 3.0)]).spans == ((1.0, 3.0),)


@pytest.mark.parametrize(("active", "message"), [
    ("storm-ban", "active: no calendar of periods named 'storm-ban' in config/calendars/ (allowed: storm-bans; "
                  "did you mean 'storm-bans'?)"),
    ({"from": "2025-10-27T09:00", "to": "2025-10-27T08:00"}, "active: period: 'to' must be after 'from'"),
    ([PERIOD, {"from": "soon", "to": "2025-10-27T08:00"}],
     "active: period 2: from: 'soon' is not a time (e.g. 2025-10-28T06:00, ICT unless an offset is written)"),
    ({"from": "2025-10-27T09:00", "unti": "x"}, "active: period: needs from and to (e.g. {from: 2025-10-28T06:00, "
                                                "to: 2025-10-28T18:00}; allowed keys: from, name, to)"),
    ({"from": "2025-10-27T09:00", "to": "2025-10-27T10:00", "nam": "x"},
     "active: period: unknown key 'nam' (allowed: from, name, to; did you mean 'name'?)"),
    (3, "active: 3 is not a period (allowed: a calendar name from config/calendars/, {from, to}, or a list of them)"),
])
def test_errors_name_the_field_and_what_is_allowed(tmp_path: Path, active: Any, message: str) -> None:
    text = only_problem(rule_error(tmp_path, rule_yaml(RULE, active=active)))
    assert text.endswith(f"rule 't.fast': {message}")


def test_the_shipped_calendar_loads(tmp_path: Path) -> None:
    from ioc.config import REPO_ROOT

    bans = load_periods("storm-bans", REPO_ROOT / "config")
    assert bans.spans == ((parse_ts("2025-10-29T06:00:00+07:00"), parse_ts("2025-10-29T18:00:00+07:00")),)


def test_timers_due_outside_the_periods_do_nothing(tmp_path: Path) -> None:
    # An absence rule expects the registered vessels from the stream's first watermark (08:00),
    # before the period: their silences are due at 08:30, outside it, and raise nothing.
    from ioc.config import REPO_ROOT
    from ioc.refdata import load_reference

    rule = {"id": "t.silent", "stream": "vessel", "kind": "absence", "timeout": "30m", "expect": "reference",
            "active": PERIOD}
    ruleset = make_rules(tmp_path, rule_yaml(rule), load_reference(REPO_ROOT / "config" / "reference"))
    engine = engine_of(ruleset)
    assert run(engine, [fix(A, 0, 1), fix(A, 40, 1), fix(A, 50, 1)]) == []


def test_a_reload_that_changes_the_periods_ends_them_where_the_new_rule_does(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    longer = {"from": "2025-10-27T09:00", "to": "2025-10-27T12:00"}
    engine = engine_of(rules(tmp_path / "old"))
    run(engine, [fix(A, 65, 8)])  # holds state: the old period's end (10:00) is armed
    engine.swap_rules(rules(tmp_path / "new", active=longer))
    later = [fix(A, 70, 8), fix(A, 90, 8), fix(A, 125, 8), fix(A, 130, 8)]
    fresh = engine_of(rules(tmp_path / "new", active=longer))
    # The old 10:00 end is no end of the new rule: it fires from 09:10 and goes on, as a backtest
    # with the new rule (a fresh engine) says.
    assert brief(run(engine, later)) == brief(run(fresh, later)) == [("firing", A, 70.0, None)]
