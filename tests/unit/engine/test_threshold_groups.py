"""Sorted threshold groups in the engine: an engine that meets grouped threshold rules only when
an event crosses their number or their key holds state gives exactly the alerts, states and key
refusals of one that evaluates every rule on every event, over random rules and events, however
the events are batched, and across a snapshot and restore."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kindtest import SIZES, T0, batching_settings, engine_of, make_rules, restored, rule_doc, run_batched, summary_of

from ioc.engine import KeyLimits
from ioc.rules.loader import RuleSet
from ioc.rules.thresholds import GROUP_MIN

SENSORS = ["ta-trach", "binh-dien", "huong-dien"]
# Sweeps every 5 minutes of event time, and keys idle for 10 minutes forgotten.
SWEEPING = KeyLimits(key_idle_s=600.0, sweep_every_s=300.0)
LEVELS: list[Any] = [None, 1, 2.0, 2.5, 3, 3.5, 4.0, 5, -1.0]


@st.composite
def threshold_rules(draw: st.DrawFn) -> str:
    """4 to 10 threshold rules on `level_m`, most comparing it with their own number, mostly with
    one comparison (so that groups of at least GROUP_MIN rules form)."""
    rules = []
    main = draw(st.sampled_from([">=", ">", "<=", "<"]))
    for number in range(draw(st.integers(GROUP_MIN, 10))):
        op = draw(st.sampled_from([main, main, main, ">=", ">", "<=", "<"]))
        bound = draw(st.sampled_from([1, 2, 2.5, 3, 4, -1]))
        rule: dict[str, Any] = {
            "id": f"r{number}", "stream": "reservoir", "kind": "threshold",
            "condition": draw(st.sampled_from([f"level_m {op} {bound}", f"{bound} {op} level_m",
                                               f"level_m {op} {bound} and gates_open is None"])),
            "summary": "{source_id}",
        }
        for name, values in (("for", ["1m", "5m"]), ("keep_firing_for", ["2m"]), ("realert", ["10m"]),
                             ("max_keys", [1, 2])):
            if draw(st.integers(0, 3)) == 0:
                rule[name] = draw(st.sampled_from(values))
        if draw(st.integers(0, 4)) == 0:
            rule["where"] = draw(st.sampled_from(["source_id != 'binh-dien'", "source_id == 'ta-trach'"]))
        rules.append(rule_doc(rule).removeprefix("rules:\n"))
    return "rules:\n" + "".join(rules)


@st.composite
def readings(draw: st.DrawFn) -> list[tuple[int, dict[str, Any]]]:
    clock = 0.0
    out = []
    for number in range(draw(st.integers(1, 80))):
        clock += draw(st.sampled_from([0, 30, 60, 120, 400]))
        level = draw(st.sampled_from(LEVELS))
        event = {"source_id": draw(st.sampled_from(SENSORS)), "ts": T0 + clock, "id": f"e{number}",
                 "level_m": level, "gates_open": None}
        out.append((0, event))
    return out


def _load(text: str) -> RuleSet:
    with tempfile.TemporaryDirectory() as folder:
        return make_rules(Path(folder), text)


def _scanned(ruleset: RuleSet) -> RuleSet:
    """The same rules with no groups: every rule meets every event."""
    return dataclasses.replace(ruleset, _grouped={})


@batching_settings(300)
@given(text=threshold_rules(), pairs=readings(), sizes=SIZES | st.just([40]), cut=st.integers(0, 80),
       limits=st.sampled_from([None, SWEEPING]), middle=st.sampled_from(["restore", "swap"]))
def test_grouped_thresholds_meet_events_as_a_full_scan(
    text: str, pairs: list[tuple[int, dict[str, Any]]], sizes: list[int], cut: int, limits: KeyLimits | None,
    middle: str,
) -> None:
    """Batches of 1 to 8 events, and of 40; an engine that sweeps and forgets idle keys, or not;
    a restore or a change of rules (the same rules loaded again) in the middle."""
    ruleset = _load(text)
    scanned = _scanned(ruleset)
    full = engine_of(scanned, limits=limits)
    expected = run_batched(full, pairs, [1], stream="reservoir", end=T0 + 10**5)

    grouped = engine_of(ruleset, limits=limits)
    got = run_batched(grouped, pairs[:cut], sizes, stream="reservoir")
    if middle == "restore":
        grouped = restored(grouped, ruleset, limits=limits)
    else:
        got += grouped.swap_rules(_load(text))[0]
    got += run_batched(grouped, pairs[cut:], sizes, stream="reservoir", end=T0 + 10**5)

    assert summary_of(got) == summary_of(expected)
    assert grouped.states == full.states
    # The keys each group meets for its rules' state are exactly the keys they hold.
    held = {(group.field, position, key) for group, by_key in grouped._held.items()
            for key, positions in by_key.items() for position in positions}
    holding = {(group.field, position, key) for group, position, route in grouped._group_of.values()
               for key in grouped.states[route[0].id]}
    assert held == holding


def test_the_groups_are_used() -> None:
    rules = "".join(f"  - {{id: r{n}, stream: reservoir, kind: threshold, condition: 'level_m >= {n}'}}\n"
                    for n in range(8))
    ruleset = _load("rules:\n" + rules)
    layout = ruleset.layout("reservoir", grouped=True)
    assert layout.routes == () and [len(group.items) for group in layout.groups] == [8]
    assert ruleset.layout("reservoir", grouped=False).groups == ()
    engine = engine_of(ruleset)
    engine.process("reservoir", [{"source_id": "ta-trach", "ts": T0, "level_m": 2.5, "gates_open": None}])
    assert engine.last_stats.evaluations == 3        # r0, r1, r2: the others were not met
    assert sorted(rule_id for rule_id, keys in engine.states.items() if keys) == ["r0", "r1", "r2"]
    alerts = engine.process("reservoir", [{"source_id": "ta-trach", "ts": T0 + 60, "level_m": 0.5,
                                           "gates_open": None}])
    assert engine.last_stats.evaluations == 3        # r0 crossed; r1 and r2 hold state for the key: they resolve
    assert [(alert.rule_id, alert.status) for alert in alerts] == [("r1", "resolved"), ("r2", "resolved")]
    engine.process("reservoir", [{"source_id": "binh-dien", "ts": T0 + 60, "level_m": 0.5, "gates_open": None}])
    assert engine.last_stats.evaluations == 1        # a new key: r0 only


def test_allowed_lateness_evaluates_every_rule() -> None:
    rules = "".join(f"  - {{id: r{n}, stream: reservoir, kind: threshold, condition: 'level_m >= {n}'}}\n"
                    for n in range(8))
    engine = engine_of(_load("rules:\n" + rules), lateness_s=60.0)
    engine.process("reservoir", [{"source_id": "ta-trach", "ts": T0, "level_m": 2.5, "gates_open": None}])
    # A false condition still remembers the key's time: an event up to 60 s older is out of order.
    assert engine.last_stats.evaluations == 8
    assert all(engine.states[f"r{n}"] for n in range(8))
