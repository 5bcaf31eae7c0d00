"""Unit tests for the safe rule-expression compiler (ioc.rules.expr)."""

from __future__ import annotations

import math
import pickle
import types
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc.exceptions import IocError
from ioc.rules.expr import (
    EMPTY,
    FUNCTIONS,
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    ExpressionError,
    compile_expression,
)

FIELDS = ["a", "b", "s", "items", "labels", "ts", "lat", "lon", "level_m", "score", "event_type", "title"]

# 2025-10-27T08:00:00+07:00 (a Monday), as epoch seconds.
MONDAY_8AM = 1761526800.0


def ev(text: str, **event: Any) -> Any:
    return compile_expression(text, FIELDS)(event)


def fails(text: str, fields: Any = FIELDS, **kwargs: Any) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, fields, **kwargs)
    return info.value


# --- operators -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        ("a + b", {"a": 2, "b": 3}, 5),
        ("a - b", {"a": 2, "b": 3}, -1),
        ("a * b", {"a": 2, "b": 3}, 6),
        ("a / b", {"a": 3, "b": 2}, 1.5),
        ("a // b", {"a": 7, "b": 2}, 3),
        ("a % b", {"a": 7, "b": 4}, 3),
        ("a ** 2", {"a": 3}, 9),
        ("a ** -1", {"a": 4}, 0.25),
        ("a ** 0.5", {"a": 9}, 3.0),
        ("-a", {"a": 2}, -2),
        ("+a", {"a": 2}, 2),
        ("not a", {"a": 0}, True),
        ("a and b", {"a": 1, "b": 0}, 0),
        ("a or b", {"a": 0, "b": 7}, 7),
        ("a == b", {"a": 1, "b": 1}, True),
        ("a != b", {"a": 1, "b": 1}, False),
        ("a < b", {"a": 1, "b": 2}, True),
        ("a <= b", {"a": 2, "b": 2}, True),
        ("a > b", {"a": 1, "b": 2}, False),
        ("a >= b", {"a": 2, "b": 2}, True),
        ("1 < a < 3 <= b", {"a": 2, "b": 3}, True),
        ("1 < a < 3 <= b", {"a": 2, "b": 2}, False),
        ("a in [7, 8, 17, 18]", {"a": 17}, True),
        ("a in (7, 8)", {"a": 9}, False),
        ("a in {7, 8}", {"a": 8}, True),
        ("a not in [1, 2]", {"a": 3}, True),
        ('"x" in s', {"s": "xyz"}, True),
        ("a is None", {}, True),
        ("a is not None", {"a": 0}, True),
        ("a if b else 5", {"a": 1, "b": False}, 5),
        ("a if b else 5", {"a": 1, "b": True}, 1),
        ("items[0]", {"items": ["p", "q"]}, "p"),
        ("items[-1]", {"items": ["p", "q"]}, "q"),
        ('labels["zone"]', {"labels": {"zone": "hue"}}, "hue"),
        ("[a, b]", {"a": 1, "b": 2}, [1, 2]),
        ("(a, 1)", {"a": 1}, (1, 1)),
        ("True and not False", {}, True),
        ("level_m >= 12.5 - 0.5", {"level_m": 12.0}, True),
    ],
)
def test_operators(text: str, event: dict[str, Any], expected: Any) -> None:
    assert ev(text, **event) == expected


def test_operator_precedence_follows_python() -> None:
    assert ev("a + b * 2 ** 2", a=1, b=3) == 13
    assert ev("-a ** 2", a=3) == -9
    assert ev("not a == b", a=1, b=2) is True


def test_missing_subscript_reads_as_none() -> None:
    assert ev("items[5]", items=[1]) is None
    assert ev('labels["nope"]', labels={}) is None
    assert ev("items[0]") is None  # the field itself is missing
    assert ev('coalesce(labels["x"], "default")', labels={}) == "default"


# --- functions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "event", "expected"),
    [
        ("abs(a)", {"a": -2.5}, 2.5),
        ("min(a, b, 3)", {"a": 5, "b": 4}, 3),
        ("max(a, b, 3)", {"a": 5, "b": 4}, 5),
        ("min(items)", {"items": [4, 2, 9]}, 2),
        ("max(items)", {"items": [4, 2, 9]}, 9),
        ("min(a, b)", {"a": 5}, 5),  # None arguments are skipped
        ("round(a)", {"a": 2.6}, 3),
        ("round(a, 1)", {"a": 2.66}, 2.7),
        ("len(s)", {"s": "abcd"}, 4),
        ("len(items)", {"items": [1, 2]}, 2),
        ("int(s)", {"s": "42"}, 42),
        ("int(s)", {"s": "3.9"}, 3),
        ("int(a)", {"a": 3.9}, 3),
        ("float(s)", {"s": "2.5"}, 2.5),
        ("str(a)", {"a": 12}, "12"),
        ("lower(s)", {"s": "XẢ Lũ"}, "xả lũ"),
        ("upper(s)", {"s": "xả"}, "XẢ"),
        ("lower(a)", {"a": 12}, "12"),
        ('contains(lower(title), "xả lũ")', {"title": "Thủy điện XẢ LŨ khẩn cấp"}, True),
        ('contains(title, "xả lũ")', {"title": "Thủy điện XẢ LŨ"}, False),  # case-sensitive
        ('contains(items, "vms")', {"items": ["ais", "vms"]}, True),
        ("contains(items, 3)", {"items": [1, 2]}, False),
        ("contains(s, 12)", {"s": "port 1234"}, True),
        ('startswith(s, "10.")', {"s": "10.0.0.1"}, True),
        ('startswith(s, ["192.", "10."])', {"s": "10.0.0.1"}, True),
        ('endswith(s, ".vn")', {"s": "hue.gov.vn"}, True),
        ('endswith(s, ".vn")', {"s": 5}, False),
        (r'matches(s, "^\\d{2}[A-Z]-\\d+$")', {"s": "75A-12345"}, True),
        ('matches(s, "lũ")', {"s": "cảnh báo lũ quét"}, True),  # search, not full match
        ('matches(s, "^lũ")', {"s": "cảnh báo lũ"}, False),
        ('matches(s, "(?i)xả")', {"s": "XẢ"}, True),
        ("hour(ts)", {"ts": MONDAY_8AM}, 8),
        ("weekday(ts)", {"ts": MONDAY_8AM}, 0),
        ("hour(ts) in [7, 8, 17, 18]", {"ts": MONDAY_8AM}, True),
        ("coalesce(a, b, 3)", {"b": 0}, 0),
        ("coalesce(a, b)", {}, None),
        ("exists(a)", {"a": 0}, True),
        ("exists(a)", {}, False),
    ],
)
def test_functions(text: str, event: dict[str, Any], expected: Any) -> None:
    assert ev(text, **event) == expected


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("abs(a)", None),
        ("min(a)", None),
        ("max(a, b)", None),
        ("round(a)", None),
        ("len(a)", None),
        ("int(a)", None),
        ("float(a)", None),
        ("str(a)", None),
        ("lower(a)", None),
        ("upper(a)", None),
        ('contains(a, "x")', False),
        ('contains("x", a)', False),
        ('startswith(a, "x")', False),
        ('endswith(a, "x")', False),
        ('matches(a, "x")', False),
        ("matches(s, a)", False),
        ("hour(a)", None),
        ("weekday(a)", None),
        ("distance_km(a, 1, 2, 3)", None),
        ("coalesce(a)", None),
        ("exists(a)", False),
    ],
)
def test_functions_return_none_or_false_for_a_missing_field(call: str, expected: Any) -> None:
    assert ev(call, s="text") is expected


def test_function_table_is_the_documented_set() -> None:
    assert set(FUNCTIONS) == {
        "abs", "min", "max", "round", "len", "int", "float", "str", "lower", "upper", "contains",
        "startswith", "endswith", "matches", "hour", "weekday", "distance_km", "coalesce", "exists",
        "fold", "normalize",
    }  # fmt: skip


def test_hour_and_weekday_use_hue_local_time_across_midnight() -> None:
    # 2025-10-26T17:30Z is 00:30 on Monday 27 October in Hue (UTC+7, no DST).
    utc_sunday_evening = MONDAY_8AM - 7.5 * 3600
    assert ev("hour(ts)", ts=utc_sunday_evening) == 0
    assert ev("weekday(ts)", ts=utc_sunday_evening) == 0
    assert ev("weekday(ts)", ts=utc_sunday_evening - 3600) == 6  # 23:30 Sunday
    assert ev("hour(ts)", ts=0) == 7  # the epoch was 07:00 on a Thursday in Hue
    assert ev("weekday(ts)", ts=0) == 3


def test_hour_accepts_milliseconds_and_rfc3339_text() -> None:
    assert ev("hour(ts)", ts=int(MONDAY_8AM * 1000)) == 8
    assert ev("hour(ts)", ts="2025-10-27T03:15:00+00:00") == 10


def test_distance_km_is_haversine_on_the_mean_earth_radius() -> None:
    one_degree = 6371.0088 * math.pi / 180
    assert ev("distance_km(lat, lon, 17.46, 107.59)", lat=16.46, lon=107.59) == pytest.approx(one_degree)
    assert ev("distance_km(lat, lon, 16.46, 107.59)", lat=16.46, lon=107.59) == 0.0
    one_degree_at_equator = ev("distance_km(0, 0, 0, 1)")
    assert one_degree_at_equator == pytest.approx(one_degree)
    assert ev("distance_km(0, 0, 0, 180)") == pytest.approx(one_degree * 180)  # antipodes, no domain error
    assert ev("distance_km(lat, lon, 16.46, 107.59) < 5", lat=16.47, lon=107.60) is True


def test_matches_with_a_bad_literal_pattern_fails_at_compile_time() -> None:
    err = fails('matches(s, "(unclosed")')
    assert "invalid regular expression" in err.message
    assert err.col == len("matches(s, ")


def test_matches_with_a_bad_runtime_pattern_is_false_in_test_and_raises_in_call() -> None:
    expr = compile_expression("matches(title, s)", FIELDS)
    assert expr.test({"title": "x", "s": "("}) is False
    with pytest.raises(ValueError, match="invalid regular expression"):
        expr({"title": "x", "s": "("})


def test_function_arity_is_checked_at_compile_time() -> None:
    assert fails("hour(ts, 1)").message == "function 'hour' takes 1 argument (got 2)"
    assert fails("distance_km(1, 2, 3)").message == "function 'distance_km' takes 4 arguments (got 3)"
    assert fails("round(a, 1, 2)").message == "function 'round' takes 1 to 2 arguments (got 3)"
    assert fails("coalesce()").message == "function 'coalesce' takes at least 1 argument (got 0)"


# --- Expression.test and None handling -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("level_m >= 3", {}),  # missing field
        ("level_m >= 3", {"level_m": None}),
        ("s < 1", {"s": "a"}),
        ("a / b > 1", {"a": 1, "b": 0}),
        ("int(s) > 1", {"s": "abc"}),
        ("-s", {"s": "x"}),
        ("len(a) > 0", {"a": 3}),
        ("float(a) > 0", {"a": 10**400}),
        ("hour(ts) == 1", {"ts": "yesterday"}),
    ],
)
def test_test_is_false_on_missing_fields_and_type_errors_where_call_raises(
    text: str, event: dict[str, Any]
) -> None:
    expr = compile_expression(text, FIELDS)
    assert expr.test(event) is False
    with pytest.raises((TypeError, ValueError, ArithmeticError)):
        expr(event)


def test_test_returns_a_bool() -> None:
    expr = compile_expression("a or s", FIELDS)
    assert expr.test({"s": "x"}) is True
    assert expr({"s": "x"}) == "x"
    assert expr.test({"s": ""}) is False


def test_none_compares_equal_only_to_none() -> None:
    assert ev("a == None") is True
    assert ev("a != 3") is True
    assert compile_expression("a == 3", FIELDS).test({}) is False


# --- names, reference data, constants -----------------------------------------------------


def test_reference_fields_resolve_from_the_second_mapping() -> None:
    expr = compile_expression("level_m >= nwl_m - 0.5", ["level_m"], ref_fields=["nwl_m"])
    assert expr({"level_m": 12.0}, {"nwl_m": 12.3}) is True
    assert expr({"level_m": 11.0}, {"nwl_m": 12.3}) is False
    assert expr.names == frozenset({"level_m", "nwl_m"})
    assert expr.test({"level_m": 12.0}) is False  # ref defaults to EMPTY: nwl_m reads as None
    assert len(EMPTY) == 0


def test_a_name_in_both_event_and_reference_fields_reads_the_event() -> None:
    expr = compile_expression("name", ["name"], ref_fields=["name"])
    assert expr({"name": "event"}, {"name": "ref"}) == "event"
    assert expr({}, {"name": "ref"}) is None  # no fallback: the name is bound to one place


def test_extra_names_are_baked_in_constants() -> None:
    expr = compile_expression(
        "distance_km(lat, lon, zone_lat, zone_lon) < radius_km",
        ["lat", "lon"],
        extra_names={"zone_lat": 16.46, "zone_lon": 107.59, "radius_km": 5, "unused": 1},
    )
    assert expr({"lat": 16.47, "lon": 107.60}) is True
    assert expr.names == frozenset({"lat", "lon"})  # constants are not fields


def test_event_field_wins_over_a_constant_of_the_same_name() -> None:
    expr = compile_expression("x", ["x"], extra_names={"x": "constant"})
    assert expr({"x": "event"}) == "event"


def test_a_field_can_share_a_function_name() -> None:
    expr = compile_expression("hour(ts) == hour", ["ts", "hour"])
    assert expr({"ts": MONDAY_8AM, "hour": 8}) is True


def test_names_lists_only_the_fields_read() -> None:
    expr = compile_expression('event_type == "plate_watchlist" and score >= 0.8', FIELDS)
    assert expr.names == frozenset({"event_type", "score"})
    assert expr.text == 'event_type == "plate_watchlist" and score >= 0.8'
    assert expr({"event_type": "plate_watchlist", "score": 0.9}) is True


def test_unknown_field_lists_the_known_names_sorted_with_a_suggestion() -> None:
    err = fails("levl_m > 1", ["level_m", "inflow_m3s"], ref_fields=["nwl_m"])
    expected = "unknown field 'levl_m' (known: inflow_m3s, level_m, nwl_m; did you mean 'level_m'?)"
    assert err.message == expected
    assert err.col == 0


def test_unknown_field_list_is_truncated_after_twenty_names() -> None:
    names = [f"f{i:02d}" for i in range(30)]
    err = fails("zzz", names)
    assert err.message == f"unknown field 'zzz' (known: {', '.join(names[:20])}, ...)"


def test_unknown_field_with_no_fields_at_all() -> None:
    assert fails("x", []).message == "unknown field 'x' (no fields are available here)"


def test_a_bare_function_name_is_explained() -> None:
    assert "'contains' is a function, call it as contains(...)" in fails("contains").message


def test_unknown_function_lists_the_allowed_ones() -> None:
    err = fails("lowr(title)")
    assert err.message.startswith("function 'lowr' is not allowed (allowed: abs, coalesce, contains, ")
    assert err.message.endswith("; did you mean 'lower'?)")


# --- security: everything off the whitelist fails at compile time --------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "names starting with '_' are not allowed ('__import__')"),
        ("().__class__.__bases__", "attribute access is not allowed ('().__class__.__bases__')"),
        ("a.__class__", "attribute access is not allowed ('a.__class__')"),
        ("s.upper()", "attribute access is not allowed ('s.upper')"),
        ("open('f')", "function 'open' is not allowed (allowed: abs, "),
        ("eval('1')", "function 'eval' is not allowed (allowed: abs, "),
        ("getattr(a, 'y')", "function 'getattr' is not allowed (allowed: abs, "),
        ("type(a)", "function 'type' is not allowed"),
        ("a(1)", "function 'a' is not allowed"),
        ("(lambda: 1)()", "only the documented functions can be called, by name"),
        ("lambda: 1", "lambda is not allowed"),
        ("[x for x in items]", "comprehensions are not allowed"),
        ("{x for x in items}", "comprehensions are not allowed"),
        ("{x: 1 for x in items}", "comprehensions are not allowed"),
        ("any(x for x in items)", "function 'any' is not allowed"),
        ("(x for x in items)", "generator expressions are not allowed"),
        ("(a := 1)", "assignment expressions (:=) are not allowed"),
        ("f'{a}'", "f-strings are not allowed"),
        ("2 ** 1000000", "exponent too large (max 100)"),
        ("a ** -101", "exponent too large (max 100)"),
        ("9 ** 9 ** 9", "exponent must be a literal number (max 100)"),
        ("a ** b", "exponent must be a literal number (max 100)"),
        ("_secret", "names starting with '_' are not allowed ('_secret')"),
        ("_e.get('x')", "attribute access is not allowed"),
        ("abs(_r)", "names starting with '_' are not allowed ('_r')"),
        ("round(a, ndigits=1)", "keyword argument 'ndigits=' is not allowed in a call to 'round'"),
        ("abs(**labels)", "**kwargs is not allowed in a call to 'abs'"),
        ("abs(*items)", "starred arguments (*x) are not allowed in a call to 'abs'"),
        ("[*items]", "starred arguments (*x) are not allowed"),
        ("{'a': 1}", "dict displays are not allowed"),
        ("items[0:2]", "slices are not allowed"),
        ("items[a]", "subscript must be a constant index or key"),
        ("await a", "await is not allowed"),
        ("(yield a)", "yield is not allowed"),
        ("~a", "operator '~' is not allowed"),
        ("a << 10000", "operator '<<' is not allowed"),
        ("a | b", "operator '|' is not allowed"),
        ("'x' * 1000000000", "repeating text or a list with '*' is not allowed"),
        ("[0] * a", "repeating text or a list with '*' is not allowed"),
        ("b'raw'", "literal b'raw' is not allowed"),
        ("1j", "literal 1j is not allowed"),
        ("a = 1", "invalid syntax"),
        ("import os", "invalid syntax"),
    ],
)
def test_unsafe_constructs_are_rejected_with_a_clear_message(text: str, message: str) -> None:
    assert message in fails(text).message


def test_compiled_code_has_no_builtins_and_is_a_plain_function() -> None:
    expr = compile_expression("a + 1", FIELDS)
    assert isinstance(expr.fn, types.FunctionType)
    assert expr.fn.__globals__["__builtins__"] == {}
    assert not any(name in expr.fn.__globals__ for name in ("open", "eval", "__import__", "getattr"))


def test_nested_powers_are_stopped_at_run_time() -> None:
    expr = compile_expression("((9 ** 100) ** 100) ** 100 > 0", FIELDS)
    with pytest.raises(OverflowError, match="too large"):
        expr({})
    assert expr.test({}) is False
    assert compile_expression("(a ** 2 + b ** 2) ** 0.5", FIELDS)({"a": 3, "b": 4}) == 5.0


def test_too_long_text_is_rejected() -> None:
    err = fails("(" * 10_000 + "1" + ")" * 10_000)
    assert err.message == f"expression too long (max {MAX_LENGTH} characters)"
    assert "too long" in fails("a + " * 600 + "a").message
    longest = "a in [" + "1, " * ((MAX_LENGTH - 7) // 3) + "]"
    assert MAX_LENGTH - 3 < len(longest) <= MAX_LENGTH
    assert compile_expression(longest, FIELDS)({"a": 1}) is True


@pytest.mark.parametrize(
    "text",
    [
        "-(" * 600 + "a" + ")" * 600,  # past the parser's own paren limit
        "-" * 1999 + "a",
        "-(" * (MAX_DEPTH + 5) + "a" + ")" * (MAX_DEPTH + 5),
        "not " * 400 + "a",
        "[" * 100 + "]" * 100,
        "abs(" * 60 + "a" + ")" * 60,
    ],
)
def test_deep_nesting_is_rejected(text: str) -> None:
    assert fails(text).message == f"expression nested too deeply (max depth {MAX_DEPTH})"


def test_depth_just_within_the_limit_compiles() -> None:
    depth = MAX_DEPTH - 1
    expr = compile_expression("-" * depth + "a", FIELDS)
    assert expr({"a": 1}) == -1
    assert compile_expression("(" * 150 + "a" + ")" * 150, FIELDS)({"a": 2}) == 2  # parens add no depth


# --- error details -------------------------------------------------------------------------


def test_syntax_error_names_the_column() -> None:
    err = fails("level_m >= @ 3")
    assert err.message == "invalid syntax at column 12: invalid syntax"
    assert err.col == 11
    end = fails("level_m >=")
    assert end.message == "invalid syntax at column 11: unexpected end of expression"


def test_columns_count_characters_not_utf8_bytes() -> None:
    text = 'contains(title, "xả lũ") and title.x'
    err = fails(text)
    assert err.col == text.index("title.x")
    assert fails('"xả" + @').col == 7


def test_columns_account_for_leading_blanks() -> None:
    text = "   a > 1 and s.x"
    assert fails(text).col == text.index("s.x")


def test_empty_and_non_text_expressions() -> None:
    assert fails("   ").message == "expression is empty"
    assert fails(cast(Any, True)).message == "expression must be text, not bool"


def test_expression_error_is_an_ioc_error_and_pickles_with_its_column() -> None:
    err = fails("a.b")
    assert isinstance(err, IocError)
    assert str(err) == err.message
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message, copy.col) == (err.message, err.col)
    assert (err.message, err.col) == ("attribute access is not allowed ('a.b')", 0)


def test_expression_is_frozen() -> None:
    expr = compile_expression("a", FIELDS)
    assert isinstance(expr, Expression)
    with pytest.raises(AttributeError):
        expr.text = "b"  # type: ignore[misc]


# --- property: compile never fails with anything but ExpressionError -----------------------

_EXPR_ALPHABET = st.sampled_from(
    list("abst_xy019.,:;()[]{}+-*/%<>=!~&|^@'\"\\ \n\t#$?λả\x00")
    + "and or not in is if else lambda ** // __class__ hour( ts contains( matches( 1e308".split()
    + "None True f' b' :=".split()
)


def _compile_or_expression_error(text: str) -> None:
    try:
        expr = compile_expression(text, ["a", "b", "s", "ts"], ref_fields=["x"], extra_names={"y": 2})
    except ExpressionError as err:
        assert err.message
        assert err.col is None or 0 <= err.col <= len(text)
    else:
        assert expr.names <= {"a", "b", "s", "ts", "x"}


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=40))
def test_random_text_never_raises_anything_but_expression_error(text: str) -> None:
    _compile_or_expression_error(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(_EXPR_ALPHABET, max_size=25).map("".join))
def test_random_expression_like_text_never_raises_anything_but_expression_error(text: str) -> None:
    _compile_or_expression_error(text)


def test_fold_and_normalize_make_vietnamese_comparable():
    from ioc.rules.expr import compile_expression

    folded = compile_expression('contains(fold(title), "xa lu")', {"title"})
    assert folded.test({"title": "Thủy điện XẢ LŨ khẩn cấp"})
    assert folded.test({"title": "Thuỷ điện xa\u0309 lu\u0303"})  # NFD input
    assert not folded.test({"title": "Hoà bình"})
    assert not folded.test({"title": None})
    normalized = compile_expression('normalize(title) == "hoà bình"', {"title"})
    assert normalized.test({"title": "Hoà Bình"})
    assert normalized.test({"title": "Hòa Bình"})  # old and new tone placement compare equal


def test_repetition_of_event_text_is_bounded_at_run_time():
    from ioc.rules.expr import compile_expression

    expr = compile_expression("len(str(level_m) * n) > 3", {"level_m", "n"})
    assert expr.test({"level_m": 1.5, "n": 2})
    assert not expr.test({"level_m": 1.5, "n": 99_999_999})  # refused, not allocated
    assert compile_expression("level_m * 2", {"level_m"})({"level_m": 1.5}) == 3.0


def test_no_eval_or_exec_anywhere_in_the_engine():
    """Expressions become functions from the checked AST's code object, never by eval/exec."""
    import ast as python_ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    calls = []
    for path in [*root.glob("ioc/**/*.py"), *root.glob("streams/**/*.py"), *root.glob("sensors_sim/**/*.py")]:
        for node in python_ast.walk(python_ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, python_ast.Call) and getattr(node.func, "id", None) in ("eval", "exec"):
                calls.append(f"{path.relative_to(root)}:{node.lineno}")
    assert calls == []
