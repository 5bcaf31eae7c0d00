"""The rule index returns exactly the rules a full scan would match: over random `where`
expressions (equalities, `in` lists, `and`/`or`/`not`, comparisons, functions) and random
events (missing fields, None, numbers that equal booleans, unhashable lists), the rules whose
`where` holds, in the rule set's order, are the same with the index as without."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.config import load_settings
from ioc.rules.expr import compile_expression
from ioc.rules.index import RouteIndex
from ioc.runtime.runner import load_ruleset

FIELDS = ["kind", "site", "n", "tags"]
LITERALS = ["'smoke'", "'crowd'", "'a'", "'b'", "0", "1", "1.0", "2", "True", "False", "None"]
VALUES: list[Any] = ["smoke", "crowd", "a", "b", 0, 1, 1.0, 2, True, False, None, ["a"], 2.5]

literal = st.sampled_from(LITERALS)
name = st.sampled_from(FIELDS)
term = st.one_of(
    st.builds(lambda f, v: f"{f} == {v}", name, literal),
    st.builds(lambda f, v: f"{v} == {f}", name, literal),
    st.builds(lambda f, vs: f"{f} in [{', '.join(vs)}]", name, st.lists(literal, min_size=1, max_size=3)),
    st.builds(lambda f, vs: f"{f} in ({', '.join(vs)},)", name, st.lists(literal, min_size=1, max_size=3)),
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


def _scan(wheres: list[Any], positions: tuple[int, ...], ev: dict[str, Any]) -> list[int]:
    return [i for i in positions if wheres[i] is None or wheres[i].test(ev)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), expression), min_size=1, max_size=40), st.lists(event, min_size=1, max_size=20))
def test_the_index_returns_exactly_the_rules_a_full_scan_matches(texts: list[str | None], events: list[dict]) -> None:
    wheres = [compile_expression(text, FIELDS) if text is not None else None for text in texts]
    index = RouteIndex.build([(i, dict(w.requires) if w is not None else {}) for i, w in enumerate(wheres)])
    everything = tuple(range(len(wheres)))
    for ev in events:
        selected = index.select(ev)
        assert list(selected) == sorted(selected)  # the rule set's order
        assert _scan(wheres, selected, ev) == _scan(wheres, everything, ev)


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
