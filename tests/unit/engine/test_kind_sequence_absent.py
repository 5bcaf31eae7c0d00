"""Sequence steps that are absences (`absent: true`): "a spill without a notice".

docs/domain.md §1: "spill starts without a notice event in the previous 4 h (unverified)";
"downstream sirens and river bans before spilling". Reservoir events with `event_type:
spill_notice` are the operator's notices. Rules are loaded with the real loader and reference
data; events are decoded as the pipeline does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import (
    SIZES,
    T0,
    batching_settings,
    engine_of,
    feed,
    make_rules,
    only_problem,
    per_fingerprint,
    replay,
    restored,
    rule_doc,
    rule_error,
)

from ioc.alerts import Alert
from ioc.config import REPO_ROOT
from ioc.events import decode
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet
from ioc.timeutil import format_ts

REFERENCE = load_reference(REPO_ROOT / "config" / "reference")
M = 60.0
H = 3600.0
NOTICE = "event_type == 'spill_notice'"

# Forward: a spill reading, then no notice within 2 h.
AFTER: dict[str, Any] = {
    "id": "t.after", "kind": "sequence", "within": "1h", "resolve_after": "1h",
    "steps": [{"name": "spill", "stream": "reservoir", "condition": "spill_m3s > 0"},
              {"name": "notice", "stream": "reservoir", "condition": NOTICE, "absent": True, "within": "2h"}],
    "summary": "{source_id}: xả {spill_m3s} m³/s",
}
# Look-back: a closed reading with no notice in the 4 h before it, then a spill within 15 min.
BEFORE: dict[str, Any] = {
    "id": "t.before", "kind": "sequence", "within": "15m", "resolve_after": "1h",
    "steps": [{"name": "notice", "stream": "reservoir", "condition": NOTICE, "absent": True, "within": "4h"},
              {"name": "closed", "stream": "reservoir", "condition": "spill_m3s == 0"},
              {"name": "spill", "stream": "reservoir", "condition": "spill_m3s > 0"}],
    "summary": "{source_id}: xả {spill_m3s} m³/s",
}
# Middle: rain, no notice within 1 h, then a spill within 3 h of the rain.
MIDDLE: dict[str, Any] = {
    "id": "t.middle", "kind": "sequence", "within": "3h",
    "steps": [{"name": "rain", "stream": "reservoir", "condition": "rain_mm_1h >= 50"},
              {"name": "notice", "stream": "reservoir", "condition": NOTICE, "absent": True, "within": "1h"},
              {"name": "spill", "stream": "reservoir", "condition": "spill_m3s > 0"}],
}


def rules(tmp_path: Path, rule: dict[str, Any]) -> RuleSet:
    return make_rules(tmp_path, rule_doc(rule), REFERENCE)


def ev(minutes: float, source: str = "ta-trach", *, spill: float | None = None, rain: float | None = None,
       notice: bool = False) -> dict[str, Any]:
    raw: dict[str, Any] = {"source_id": source, "ts": format_ts(T0 + minutes * M), "level_m": 44.6,
                           "id": f"{source}-{minutes:g}"}
    if spill is not None:
        raw["spill_m3s"] = spill
    if rain is not None:
        raw["rain_mm_1h"] = rain
    if notice:
        raw["event_type"] = "spill_notice"
    return decode("reservoir", raw)


def run(ruleset: RuleSet, events: list[dict[str, Any]]) -> list[Alert]:
    return feed(engine_of(ruleset), events, stream="reservoir")


def brief(alerts: list[Alert]) -> list[tuple[str, str, float, float | None, Any]]:
    return [(a.status, a.key["source_id"], (a.starts_at - T0) / M, None if a.ends_at is None else (a.ends_at - T0) / M,
             a.details) for a in alerts]


def steps(*minutes: float) -> dict[str, list[str]]:
    return {"steps": [format_ts(T0 + m * M) for m in minutes]}


# -- an absence after the previous step -----------------------------------------------------------

def test_forward_absence_completes_when_the_watermark_passes_the_window(tmp_path: Path) -> None:
    alerts = run(rules(tmp_path, AFTER), [ev(0, spill=100), ev(120, "kim-long"), ev(121, "kim-long")])
    # Decided only once the watermark is past 02:00 (the event at 02:00 could still be a notice).
    assert brief(alerts) == [("firing", "ta-trach", 0.0, None, steps(0, 120))]
    assert alerts[0].summary == "ta-trach: xả 100.0 m³/s"
    assert alerts[0].evidence == ["ta-trach-0"]


def test_forward_absence_not_decided_before_the_window_ends(tmp_path: Path) -> None:
    assert run(rules(tmp_path, AFTER), [ev(0, spill=100), ev(120, "kim-long")]) == []


@pytest.mark.parametrize("at", [0, 30, 120])
def test_a_notice_inside_the_window_cancels(tmp_path: Path, at: float) -> None:
    assert run(rules(tmp_path, AFTER), [ev(0, spill=100), ev(at, notice=True), ev(200, "kim-long")]) == []


def test_a_notice_of_another_key_or_after_the_window_does_not_cancel(tmp_path: Path) -> None:
    events = [ev(0, spill=100), ev(60, "binh-dien", notice=True), ev(121, notice=True), ev(200, "kim-long")]
    assert [a.status for a in run(rules(tmp_path, AFTER), events)] == ["firing", "resolved"]


def test_a_notice_at_the_same_time_that_arrives_first_cancels(tmp_path: Path) -> None:
    assert run(rules(tmp_path, AFTER), [ev(0, notice=True), ev(0, spill=100), ev(200, "kim-long")]) == []


def test_every_spill_reading_opens_its_own_window(tmp_path: Path) -> None:
    # The notice at 01:00 cancels the 00:00 and 00:30 windows; the 03:30 reading has none within 2 h.
    events = [ev(0, spill=100), ev(30, spill=200), ev(60, notice=True), ev(210, spill=300), ev(400, "kim-long")]
    assert brief(run(rules(tmp_path, AFTER), events)) == [
        ("firing", "ta-trach", 210.0, None, steps(210, 330)),
        ("resolved", "ta-trach", 210.0, 390.0, steps(210, 330)),
    ]


# -- an absence before the next step (the first step) ---------------------------------------------

def test_lookback_absence_fires_on_a_spill_with_no_notice_before(tmp_path: Path) -> None:
    alerts = run(rules(tmp_path, BEFORE), [ev(0, spill=0), ev(5, spill=0), ev(10, spill=150), ev(15, spill=300)])
    # The 00:05 closed reading had no notice in the 4 h before it; the spill at 00:10 completes it
    # (and the 00:00 one): starts_at is the earliest closed reading.
    assert brief(alerts) == [("firing", "ta-trach", 0.0, None, steps(0, 0, 10))]
    assert alerts[0].summary == "ta-trach: xả 150.0 m³/s"
    assert alerts[0].evidence == ["ta-trach-0", "ta-trach-10"]


def test_lookback_absence_a_notice_in_the_previous_4h_cancels(tmp_path: Path) -> None:
    events = [ev(0, notice=True), ev(235, spill=0), ev(240, spill=0), ev(245, spill=120)]
    # The 03:55 and 04:00 closed readings have the 00:00 notice within 4 h (boundary included).
    assert run(rules(tmp_path, BEFORE), events) == []
    late = [ev(0, notice=True), ev(241, spill=0), ev(245, spill=120), ev(250, "kim-long")]
    assert [a.status for a in run(rules(tmp_path, BEFORE), late)] == ["firing"]


def test_lookback_absence_a_notice_at_the_same_time_arriving_after_cancels(tmp_path: Path) -> None:
    events = [ev(0, spill=0), ev(0, notice=True), ev(5, spill=150), ev(30, "kim-long")]
    assert run(rules(tmp_path, BEFORE), events) == []


def test_lookback_with_lateness_an_out_of_order_notice_cancels(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, BEFORE)
    events = [ev(0, spill=0), ev(6, "binh-dien"), ev(-30, notice=True), ev(8, spill=150), ev(60, "kim-long")]
    assert feed(engine_of(ruleset, lateness_s=600), events, stream="reservoir") == []
    # Without lateness the notice is late (dropped) and the spill fires.
    assert [a.status for a in run(ruleset, events)] == ["firing"]


# -- an absence in the middle ---------------------------------------------------------------------

def test_middle_absence(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, MIDDLE)
    # Rain, no notice within 1 h, spill at 02:00: fires; the notice step's time is its window's end.
    assert brief(run(ruleset, [ev(0, rain=60), ev(120, spill=100)])) == [
        ("firing", "ta-trach", 0.0, None, steps(0, 60, 120))]
    # A notice 30 min after the rain cancels.
    assert run(ruleset, [ev(0, rain=60), ev(30, notice=True), ev(120, spill=100)]) == []
    # A spill before the absence is decided (00:30) does not complete; neither does one after `within`.
    assert run(ruleset, [ev(0, rain=60), ev(30, spill=100), ev(181, spill=100)]) == []


# -- state -----------------------------------------------------------------------------------------

def test_state_is_forgotten_and_restores(tmp_path: Path) -> None:
    ruleset = rules(tmp_path, BEFORE)
    engine = engine_of(ruleset)
    feed(engine, [ev(0, notice=True), ev(5, spill=0)], stream="reservoir")
    state = engine.states["t.before"][("ta-trach",)]
    assert state["seen"] == {"0": [T0]} and "partials" not in state
    other = restored(engine, ruleset)
    feed(other, [ev(10 * 60, "binh-dien")], stream="reservoir")
    other.sweep()
    assert ("ta-trach",) not in other.states["t.before"]


@pytest.mark.parametrize(("steps_", "expected"), [
    ([{"stream": "reservoir", "condition": NOTICE, "absent": True},
      {"stream": "reservoir", "condition": "spill_m3s > 0", "absent": True}],
     "steps: every step is `absent: true`; a sequence needs at least one present step"),
    ([{"stream": "reservoir", "condition": "spill_m3s > 0"},
      {"stream": "reservoir", "condition": NOTICE, "absent": True},
      {"stream": "reservoir", "condition": "level_m > 1", "absent": True}],
     "steps: steps 1 and 2 are both `absent: true` (allowed: a present step between two absence steps; merge"
     " their conditions with `or`)"),
    ([{"stream": "reservoir", "condition": "spill_m3s > 0", "within": "1h"},
      {"stream": "reservoir", "condition": NOTICE, "absent": True}],
     "steps.0.within: only an absence step (`absent: true`) has its own `within`; a present step is bounded by"
     " the rule's `within`"),
    ([{"stream": "reservoir", "condition": "spill_m3s > 0"},
      {"stream": "reservoir", "condition": NOTICE, "absent": True, "within": 0}],
     "steps.1.within: must be more than 0 (e.g. 2h)"),
])
def test_build_errors(tmp_path: Path, steps_: list[dict[str, Any]], expected: str) -> None:
    rule = {**AFTER, "steps": steps_, "summary": ""}
    assert only_problem(rule_error(tmp_path, rule_doc(rule), REFERENCE)) == \
        f"{tmp_path / 'rules.yaml'}:2: rule 't.after': {expected}"


# -- batching and lateness do not change results (property) ------------------------------------------

@st.composite
def reservoir_streams(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    """Readings (closed, spilling, rain) and notices of two reservoirs on partition 0, times moving on
    by 0..90 min, now and then back by 10 min (out of order)."""
    t, pairs = 0.0, []
    for _ in range(draw(st.integers(1, 40))):
        t = max(0.0, t + draw(st.sampled_from([-10.0, 0.0, 5.0, 5.0, 30.0, 90.0])))
        source = draw(st.sampled_from(["ta-trach", "binh-dien"]))
        what = draw(st.sampled_from(["closed", "spill", "spill", "notice", "rain"]))
        event = ev(t, source, spill={"closed": 0.0, "spill": 100.0}.get(what), rain=60.0 if what == "rain" else None,
                   notice=what == "notice")
        pairs.append((0, event))
    return pairs


@batching_settings(150)
@given(pairs=reservoir_streams(), sizes=SIZES, lateness=st.sampled_from([0.0, 600.0]),
       which=st.sampled_from([AFTER, BEFORE, MIDDLE]))
def test_batching_does_not_change_alerts(tmp_path_factory: pytest.TempPathFactory, pairs: list[Any],
                                         sizes: list[int], lateness: float, which: dict[str, Any]) -> None:
    ruleset = rules(tmp_path_factory.mktemp("r"), which)
    end = T0 + 40 * H
    one, _ = replay(ruleset, pairs, [1], stream="reservoir", lateness=lateness, end=end)
    batched, engine = replay(ruleset, pairs, sizes, stream="reservoir", lateness=lateness, end=end)
    assert per_fingerprint(batched) == per_fingerprint(one)
    engine.sweep()
    assert not engine.states[which["id"]]


def test_a_remembered_notice_is_kept_while_a_later_window_can_hold_it(tmp_path: Path) -> None:
    # Timers of the key (00:00, 00:15) fire before the 00:30 closed reading; the 00:01 notice must
    # still be remembered then: it is within the 4 h before 00:30.
    events = [ev(0, spill=0), ev(1, notice=True), ev(30, spill=0), ev(35, spill=200), ev(60, "kim-long")]
    assert run(rules(tmp_path, BEFORE), events) == []
