"""Sorted thresholds (ioc.rules.thresholds): one bisection finds exactly the rules whose
comparison an event's value makes true, for every comparison, and `comparison` recognises only
`field OP number`."""

from __future__ import annotations

import ast
import operator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ioc.rules.expr import compile_expression
from ioc.rules.thresholds import ThresholdGroup, comparison

OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
NUMBERS = st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | st.sampled_from([2**53 + 1, -0.0, 0.5, 1e300])


@given(op=st.sampled_from(sorted(OPS)), bounds=st.lists(NUMBERS, max_size=12), value=NUMBERS)
def test_crossed_is_every_rule_whose_comparison_holds(op: str, bounds: list[float], value: float) -> None:
    group = ThresholdGroup.build("x", op, ("k",), [(bound, position, f"r{position}") for position, bound in
                                                   enumerate(bounds)])
    crossed = group.crossed(value)
    assert crossed is not None
    assert sorted(position for position, _ in crossed) == [
        position for position, bound in enumerate(bounds) if OPS[op](value, bound)]


@pytest.mark.parametrize(("value", "expected"), [
    (None, ()), ("7", ()),                       # a comparison with a number is false (Expression.test)
    (True, None), (float("nan"), None), ([1], None),   # only testing each rule can say
])
def test_values_that_are_no_numbers(value: Any, expected: Any) -> None:
    group = ThresholdGroup.build("x", ">=", ("k",), [(1.0, 0, "a"), (2.0, 1, "b")])
    assert group.crossed(value) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("level_m >= 44.5", ("level_m", ">=", 44.5)),
    ("44.5 <= level_m", ("level_m", ">=", 44.5)),
    ("level_m < -3", ("level_m", "<", -3)),
    ("+3 > level_m", ("level_m", "<", 3)),
    ("level_m > 1e3", ("level_m", ">", 1000.0)),
    ("level_m >= nwl_m", None),                  # reference data
    ("level_m >= LIMIT", None),                  # a constant: no literal
    ("level_m == 3", None),
    ("level_m >= 3 and level_m < 5", None),
    ("level_m >= True", None),
    ("level_m >= '3'", None),
    ("1 < level_m < 3", None),
    ("abs(level_m) >= 3", None),
])
def test_comparison(text: str, expected: Any) -> None:
    assert comparison(ast.parse(text, mode="eval").body, {"level_m"}) == expected
    expression = compile_expression(text, ["level_m"], ["nwl_m"], {"LIMIT": 3})
    assert expression.bound == expected
