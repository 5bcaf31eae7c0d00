"""The rule index returns exactly the rules a full scan would match: over random `where`
expressions (equalities, `in` lists, `and`/`or`/`not`, comparisons, functions) and random
events (missing fields, None, numbers that equal booleans, unhashable lists), the rules whose
`where` holds, in the rule set's order, are the same with the index as without."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.config import load_settings
from ioc.rules.expr import compile_expression
from ioc.rules.index import BUDGET_PER_RULE, RouteIndex
from ioc.runtime.runner import load_ruleset

FIELDS = ["kind", "site", "n", "tags"]
# Names that are not event fields must never be indexed: `zone` is reference data, `LIMIT` a
# constant, and `kind` is also a reference field (the event field wins, as in the engine).
REF_FIELDS = ["zone", "kind"]
CONSTANTS = {"LIMIT": 1}
LITERALS = ["'smoke'", "'crowd'", "'a'", "'b'", "'1'", "0", "1", "1.0", "0.0", "-0.0", "2", "True", "False", "None",
            "100000000000000000000", "1e20"]
VALUES: list[Any] = ["smoke", "crowd", "a", "b", "1", 0, 0.0, -0.0, 1, 1.0, 2, True, False, None, ["a"], {"a": 1},
                     2.5, 10**20, 1e20, float("nan")]

literal = st.sampled_from(LITERALS)
name = st.sampled_from([*FIELDS, "zone", "LIMIT"])
term = st.one_of(
    st.builds(lambda f, v: f"{f} == {v}", name, literal),
    st.builds(lambda f, v: f"{v} == {f}", name, literal),
    st.builds(lambda f, vs: f"{f} in [{', '.join(vs)}]", name, st.lists(literal, min_size=1, max_size=3)),
    st.builds(lambda f, vs: f"{f} in ({', '.join(vs)},)", name, st.lists(literal, min_size=1, max_size=3)),
    st.builds(lambda f, vs: f"{f} in {{{', '.join(vs)}}}", name, st.lists(literal, min_size=1, max_size=3)),
    st.builds(lambda f: f"{f} in []", name),
    st.builds(lambda f, g, v: f"{f} in [{v}, {g}]", name, name, literal),
    st.builds(lambda f, g: f"{f} == {g}", name, name),
    st.builds(lambda f, v: f"{f} != {v}", name, literal),
    st.builds(lambda f: f"{f} > 0", name),
    st.builds(lambda f: f"exists({f})", name),
    st.builds(lambda f, v: f"lower({f}) == {v}", name, literal),
)
expression = st.recursive(
    term,
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"{a} and {b}", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=5,
)
event = st.dictionaries(st.sampled_from(FIELDS), st.sampled_from(VALUES), max_size=len(FIELDS))
reference = st.dictionaries(st.sampled_from(REF_FIELDS), st.sampled_from(VALUES), max_size=len(REF_FIELDS))


def _scan(wheres: list[Any], positions: tuple[int, ...], ev: dict[str, Any], ref: dict[str, Any]) -> list[int]:
    return [i for i in positions if wheres[i] is None or wheres[i].test(ev, ref)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), expression), min_size=1, max_size=40),
       st.lists(st.tuples(event, reference), min_size=1, max_size=20))
def test_the_index_returns_exactly_the_rules_a_full_scan_matches(
        texts: list[str | None], events: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    wheres = [compile_expression(text, FIELDS, REF_FIELDS, CONSTANTS) if text is not None else None
              for text in texts]
    index = RouteIndex.build([(i, dict(w.requires) if w is not None else {}) for i, w in enumerate(wheres)])
    everything = tuple(range(len(wheres)))
    for ev, ref in events:
        selected = index.select(ev)
        assert list(selected) == sorted(selected)  # the rule set's order
        assert _scan(wheres, selected, ev, ref) == _scan(wheres, everything, ev, ref)


def test_names_that_are_not_event_fields_are_never_indexed() -> None:
    where = compile_expression("zone == 'a' and LIMIT == 1 and kind == 'smoke'", FIELDS, REF_FIELDS, CONSTANTS)
    assert where.requires == (("kind", frozenset({"smoke"})),)


def test_the_index_stays_within_its_budget_and_still_matches() -> None:
    """Many values times many rules free of the field: the buckets would copy the free rules
    into every value; past the budget the node stays a full scan."""
    items = [(i, {"site": {f"s{i}"}}) for i in range(5000)] + [(5000 + j, {}) for j in range(500)]
    index = RouteIndex.build(items)
    assert index.size() <= BUDGET_PER_RULE * len(items) + 100_000
    assert index.field is None  # not split: every event meets every rule, as without an index
    selected = index.select({"site": "s7"})
    assert list(selected) == sorted(selected) and {7, *range(5000, 5500)} <= set(selected)
    fewer_free = RouteIndex.build(items[:5000] + items[5000:5010])
    assert list(fewer_free.select({"site": "s7"})) == [7, *range(5000, 5010)]
    nested = RouteIndex.build([(i, {"a": set(range(30)), "b": set(range(30)), "c": set(range(30))})
                               for i in range(2)] + [(2, {})])
    assert nested.size() <= BUDGET_PER_RULE * 3 + 100_000


def test_alerts_are_the_same_with_and_without_the_index_over_the_default_scenario() -> None:
    from ioc.analysis.backtest import RawEvent, run_backtest
    from sensors_sim.scenario import build, load_scenario

    ruleset = load_ruleset(load_settings(env={}))
    plain = dataclasses.replace(ruleset, _indexes={})
    assert ruleset.index("camera") is not None and plain.index("camera") is None
    run = build(load_scenario("storm-day"), seed=0, start=1761498000.0)
    events = list(run.events())
    indexed = run_backtest(ruleset, (RawEvent(stream, event, "storm-day") for stream, event in events))
    scanned = run_backtest(plain, (RawEvent(stream, event, "storm-day") for stream, event in events))
    assert indexed.alerts and [a.alert_id for a in indexed.alerts] == [a.alert_id for a in scanned.alerts]


def test_the_shipped_rules_are_indexed_and_match_as_a_full_scan() -> None:
    ruleset = load_ruleset(load_settings(env={}))
    camera = ruleset.index("camera")
    assert camera is not None and camera.field == "event_type"
    smoke = camera.select({"event_type": "fire_smoke"})
    assert len(smoke) < len(ruleset.routes("camera"))
    for event_type in ("fire_smoke", "crowd", "heartbeat", "wrong_way", None):
        ev = {"event_type": event_type, "score": 0.9, "count": 500}
        every = [rule.id for rule, _ in ruleset.routes("camera") if rule.where is None or rule.where.test(ev)]
        picked = [rule.id for rule, _ in camera.select(ev) if rule.where is None or rule.where.test(ev)]
        assert picked == every
