"""Safe expression compiler for analyst-written rule conditions.

A rule's `where`/`condition` is a small subset of Python expression syntax: literals,
field names, `and/or/not`, arithmetic, comparisons (chained, `in`, `is`), `a if c else b`,
constant subscripts (`topics[0]`, `labels["x"]`) and calls of the documented functions in
`FUNCTIONS`. The text is parsed with `ast`, checked against that whitelist, its names are
rewritten into look-ups on the event and reference-data mappings, and the checked tree is
compiled once into a plain Python function (no builtins), so evaluating it per event costs
no more than a hand-written lambda.

>>> expr = compile_expression("level_m >= nwl_m - 0.5", fields=["level_m"], ref_fields=["nwl_m"])
>>> expr({"level_m": 12.0}, {"nwl_m": 12.3})
True
>>> sorted(expr.names)
['level_m', 'nwl_m']
>>> expr.test({}, {"nwl_m": 12.3})  # missing field: False instead of TypeError
False
>>> try:
...     compile_expression("levl_m > 1", fields=["level_m"])
... except ExpressionError as exc:
...     print(exc.message, "| column", exc.col)
unknown field 'levl_m' (known: level_m; did you mean 'level_m'?) | column 0

Name resolution: a bare name is the event field if it is in `fields`, else the
reference-data field if in `ref_fields`, else the constant from `extra_names`. A name
listed in more than one place resolves to the first of these (the event field wins).
A field missing from the event (or reference data) reads as None.

`previous.<field>` (only where the compiler is given `previous` fields: a threshold rule's
`condition` and `value`) reads a field of the key's previous event, passed as a third mapping:

>>> jump = compile_expression("distance_km(previous.lat, previous.lon, lat, lon) > 50",
...                           fields=["lat", "lon"], previous=["lat", "lon"])
>>> sorted(jump.previous), jump.fn({"lat": 16.6, "lon": 107.7}, {}, {"lat": 17.3, "lon": 107.7})
(['lat', 'lon'], True)
"""

from __future__ import annotations

import ast
import functools
import inspect
import math
import re
import types
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, cast

from ioc.exceptions import IocError
from ioc.rules.exceptions import did_you_mean, shorten
from ioc.rules.regex import Regex, RegexError, compile_regex
from ioc.rules.thresholds import comparison
from ioc.timeutil import EPOCH_MS_THRESHOLD, parse_ts

__all__ = [
    "EMPTY",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "PREVIOUS",
    "SOFT_ERRORS",
    "Expression",
    "ExpressionError",
    "compile_expression",
]

MAX_LENGTH = 2000
MAX_DEPTH = 50
MAX_EXPONENT = 100
# Even with a small literal exponent, nested powers grow without bound
# (((9**100)**100)**100...), so `**` on two ints is also checked at run time.
_MAX_POW_BITS = 100_000
_MAX_KNOWN_LISTED = 20

EMPTY: Mapping[str, Any] = MappingProxyType({})
# The name of the key's previous event in a threshold rule's condition (`previous.lat`).
PREVIOUS = "previous"

# Asia/Ho_Chi_Minh is UTC+7 all year (no DST), so local time is a fixed shift.
_LOCAL_OFFSET_S = 7 * 3600
_EARTH_RADIUS_KM = 6371.0088

# Errors that mean "this event does not fit the expression" (None >= 3, "a" < 1, x / 0).
SOFT_ERRORS = (TypeError, ValueError, ArithmeticError)


class ExpressionError(IocError):
    """An expression that cannot be compiled: what is wrong and what is allowed.

    `col` is the 0-based character offset into the expression text (its column for a
    one-line expression) when known.
    """

    def __init__(self, message: str, col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.col = col

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep `col` when the error crosses a process boundary.
        return (type(self), (self.message, self.col))


@dataclass(frozen=True)
class Expression:
    """A compiled expression: call it with an event (and reference data).

    `fn(event, ref)` is the raw compiled function; hot loops may call it directly.

    >>> e = compile_expression("score >= 0.8", fields=["score"])
    >>> e({"score": 0.9}), e.test({"score": None})
    (True, False)
    """

    text: str
    names: frozenset[str]
    fn: Callable[[Mapping[str, Any], Mapping[str, Any]], Any] = field(repr=False, compare=False)
    # What an event must hold for the expression to be true: (event field, the values it must
    # equal), from `field == constant` and `field in [constants]` terms of a top-level `and`
    # (the rule index, ioc.rules.index, skips rules whose `where` these rule out).
    requires: tuple[tuple[str, frozenset[Any]], ...] = field(default=(), repr=False, compare=False)
    # (event field, op, number) when the whole expression is `field OP number` with OP one of
    # >= > <= < (ioc.rules.thresholds sorts such conditions of threshold rules by their number).
    bound: tuple[str, str, float] | None = field(default=None, repr=False, compare=False)
    # Fields read from the key's previous event (`previous.lat`): `fn` then takes that event as a
    # third argument (an empty mapping when left out). Empty for every other expression.
    previous: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    def __call__(self, event: Mapping[str, Any], ref: Mapping[str, Any] = EMPTY) -> Any:
        """Value of the expression; type errors and the like propagate."""
        return self.fn(event, ref)

    def test(self, event: Mapping[str, Any], ref: Mapping[str, Any] = EMPTY) -> bool:
        """Truth of the expression; a missing/None field or a type mismatch (None >= 3, "a" < 1)
        makes it False instead of raising."""
        try:
            return bool(self.fn(event, ref))
        except SOFT_ERRORS:
            return False


# --- the function whitelist -------------------------------------------------------------


def _f_abs(x: Any) -> Any:
    return None if x is None else abs(x)


def _non_none(args: tuple[Any, ...]) -> list[Any]:
    # min(xs) over one list, or min(a, b, ...) over the arguments, like the builtin.
    items: Iterable[Any] = args
    if len(args) == 1 and isinstance(args[0], (list, tuple, set, frozenset)):
        items = args[0]
    return [v for v in items if v is not None]


def _f_min(*args: Any) -> Any:
    values = _non_none(args)
    return min(values) if values else None


def _f_max(*args: Any) -> Any:
    values = _non_none(args)
    return max(values) if values else None


def _f_round(x: Any, ndigits: Any = None) -> Any:
    return None if x is None else round(x, ndigits)


def _f_len(x: Any) -> Any:
    return None if x is None else len(x)


def _f_int(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, str):
        try:
            return int(x)
        except ValueError:
            return int(float(x))  # "3.5" from a text payload
    return int(x)


def _f_float(x: Any) -> Any:
    return None if x is None else float(x)


def _f_str(x: Any) -> Any:
    # str(None) would be the text "None", which silently matches nothing useful.
    return None if x is None else str(x)


def _f_lower(x: Any) -> Any:
    if x is None:
        return None
    return x.lower() if isinstance(x, str) else str(x).lower()


def _f_upper(x: Any) -> Any:
    if x is None:
        return None
    return x.upper() if isinstance(x, str) else str(x).upper()


def _f_contains(haystack: Any, needle: Any) -> bool:
    if haystack is None or needle is None:
        return False
    if isinstance(haystack, str):
        return (needle if isinstance(needle, str) else str(needle)) in haystack
    if isinstance(haystack, (list, tuple, set, frozenset, dict)):
        try:
            return needle in haystack
        except TypeError:  # unhashable needle against a set
            return False
    return False


def _affix(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return tuple(str(v) for v in value)
    return value if isinstance(value, str) else str(value)


def _f_startswith(text: Any, prefix: Any) -> bool:
    if not isinstance(text, str) or prefix is None:
        return False
    return text.startswith(_affix(prefix))


def _f_endswith(text: Any, suffix: Any) -> bool:
    if not isinstance(text, str) or suffix is None:
        return False
    return text.endswith(_affix(suffix))


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Regex:
    try:
        return compile_regex(pattern)
    except RegexError as exc:
        # ValueError so that Expression.test treats a bad run-time pattern as no match.
        raise RegexError(f"invalid regular expression {shorten(pattern)}: {exc}") from None


def _f_matches(text: Any, pattern: Any) -> bool:
    if text is None or pattern is None:
        return False
    return _regex(pattern).search(text if isinstance(text, str) else str(text))


def _epoch_seconds(ts: Any) -> float:
    if isinstance(ts, float | int) and not isinstance(ts, bool) and 0 <= ts < EPOCH_MS_THRESHOLD:
        return float(ts)
    return parse_ts(ts)  # epoch ms or RFC 3339 text; ValueError otherwise


def _f_hour(ts: Any) -> Any:
    if ts is None:
        return None
    return int((_epoch_seconds(ts) + _LOCAL_OFFSET_S) // 3600 % 24)


def _f_weekday(ts: Any) -> Any:
    if ts is None:
        return None
    days = (_epoch_seconds(ts) + _LOCAL_OFFSET_S) // 86400
    return int((days + 3) % 7)  # 1970-01-01 was a Thursday (3)


def _f_distance_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return None
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp = p2 - p1
    dl = math.radians(float(lon2) - float(lon1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _f_coalesce(*args: Any) -> Any:
    for value in args:
        if value is not None:
            return value
    return None


def _f_exists(x: Any) -> bool:
    return x is not None


def _f_fold(text: Any) -> str | None:
    """Vietnamese-folded text: no diacritics, đ -> d, lowercase ("Xả lũ" -> "xa lu")."""
    if text is None:
        return None
    from ioc.text import fold

    if isinstance(text, list):
        return " ".join(fold(str(item)) for item in text)
    return fold(str(text))


def _f_normalize(text: Any) -> str | None:
    """NFC, new-style tone placement, lowercase, diacritics kept ("Hòa" -> "hoà")."""
    if text is None:
        return None
    from ioc.text import normalize

    return normalize(str(text))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "fold": _f_fold,
    "normalize": _f_normalize,
    "abs": _f_abs,
    "min": _f_min,
    "max": _f_max,
    "round": _f_round,
    "len": _f_len,
    "int": _f_int,
    "float": _f_float,
    "str": _f_str,
    "lower": _f_lower,
    "upper": _f_upper,
    "contains": _f_contains,
    "startswith": _f_startswith,
    "endswith": _f_endswith,
    "matches": _f_matches,
    "hour": _f_hour,
    "weekday": _f_weekday,
    "distance_km": _f_distance_km,
    "coalesce": _f_coalesce,
    "exists": _f_exists,
}


def _arity(fn: Callable[..., Any]) -> tuple[int, int | None]:
    params = inspect.signature(fn).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 1, None
    return sum(p.default is p.empty for p in params), len(params)


# (min, max) positional arguments, None = any number: checked at compile time so that a
# wrong call fails when the rule loads, not per event.
_ARITY: dict[str, tuple[int, int | None]] = {name: _arity(fn) for name, fn in FUNCTIONS.items()}


# --- run-time helpers the compiled code calls --------------------------------------------


def _pow(base: Any, exp: Any) -> Any:
    if isinstance(base, int) and isinstance(exp, int) and exp > 1 and base.bit_length() * exp > _MAX_POW_BITS:
        raise OverflowError(f"result of ** too large (more than {_MAX_POW_BITS} bits)")
    return base**exp


# Repetition of text or lists from event data (`title * n`) is bounded: a hostile or odd value
# must not make one event allocate gigabytes.
MAX_REPEAT_LENGTH = 100_000


def _mul(left: Any, right: Any) -> Any:
    if isinstance(left, str | list | tuple) and isinstance(right, int):
        if len(left) * right > MAX_REPEAT_LENGTH:
            raise OverflowError(f"result of * too long (more than {MAX_REPEAT_LENGTH} items)")
    elif isinstance(right, str | list | tuple) and isinstance(left, int):
        if len(right) * left > MAX_REPEAT_LENGTH:
            raise OverflowError(f"result of * too long (more than {MAX_REPEAT_LENGTH} items)")
    return left * right


def _item(obj: Any, key: Any) -> Any:
    # A missing key or index reads as None, like a missing field.
    if obj is None:
        return None
    try:
        return obj[key]
    except LookupError:
        return None


# --- checking ----------------------------------------------------------------------------

_BINOPS = ("+", "-", "*", "/", "//", "%", "**")
_REJECTED_BINOPS: dict[type[ast.operator], str] = {
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.MatMult: "@",
}
_CONSTANT_TYPES = (str, int, float, bool, type(None))
_SEQUENCE_NODES = (ast.List, ast.Tuple, ast.Set)
_REJECTED: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "starred arguments (*x) are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Dict: "dict displays are not allowed",
    ast.Slice: "slices are not allowed",
}


def _snippet(node: ast.AST, limit: int = 40) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listing(names: Iterable[str]) -> str:
    ordered = sorted(names)
    shown = ", ".join(ordered[:_MAX_KNOWN_LISTED])
    return shown + (", ..." if len(ordered) > _MAX_KNOWN_LISTED else "")


def _suggest(name: str, candidates: Iterable[str]) -> str:
    return did_you_mean(name, candidates)


class _Source:
    """Maps ast positions (line, UTF-8 byte column) to 0-based character offsets."""

    def __init__(self, text: str, lead: int) -> None:
        self._text = text
        self._lead = lead
        # The tokenizer ends lines at \r\n, \r and \n (not at the other str.splitlines breaks).
        self._starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]

    def line(self, lineno: int) -> tuple[int, str]:
        index = min(max(lineno, 1), len(self._starts)) - 1
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self._text)
        return start, self._text[start:end]

    def offset(self, lineno: int | None, char_col: int) -> int:
        start, line = self.line(lineno or 1)
        return self._lead + start + max(0, min(char_col, len(line)))

    def node_offset(self, node: ast.AST) -> int | None:
        lineno = getattr(node, "lineno", None)
        byte_col = getattr(node, "col_offset", None)
        if lineno is None or byte_col is None:
            return None
        _, line = self.line(lineno)
        char_col = len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))
        return self.offset(lineno, char_col)


class _Checker:
    """Walks a parsed expression, rejects anything off the whitelist, records names."""

    def __init__(
        self,
        source: _Source,
        fields: frozenset[str],
        ref_fields: frozenset[str],
        constants: Mapping[str, Any],
        previous: frozenset[str] | None = None,
    ) -> None:
        self.source = source
        self.fields = fields
        self.ref_fields = ref_fields
        self.constants = constants
        # Fields `previous.<name>` may read; None: `previous` is not available here.
        self.previous = previous
        self.event_names: set[str] = set()
        self.ref_names: set[str] = set()
        self.constant_names: set[str] = set()
        self.previous_names: set[str] = set()

    def fail(self, node: ast.AST, message: str) -> ExpressionError:
        return ExpressionError(message, self.source.node_offset(node))

    def check(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            self.check_constant(node)
        elif isinstance(node, ast.Name):
            self.check_name(node)
        elif isinstance(node, ast.BoolOp):
            for value in node.values:
                self.check(value)
        elif isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Invert):
                raise self.fail(node, "operator '~' is not allowed (allowed: not, -, +)")
            self.check(node.operand)
        elif isinstance(node, ast.BinOp):
            self.check_binop(node)
        elif isinstance(node, ast.Compare):
            self.check(node.left)
            for comparator in node.comparators:
                self.check(comparator)
        elif isinstance(node, ast.IfExp):
            self.check(node.test)
            self.check(node.body)
            self.check(node.orelse)
        elif isinstance(node, _SEQUENCE_NODES):
            for element in node.elts:
                self.check(element)
        elif isinstance(node, ast.Subscript):
            self.check_subscript(node)
        elif isinstance(node, ast.Call):
            self.check_call(node)
        elif isinstance(node, ast.Attribute):
            self.check_attribute(node)
        elif type(node) in _REJECTED:
            raise self.fail(node, _REJECTED[type(node)])
        else:
            raise self.fail(node, f"{type(node).__name__} is not allowed in an expression")

    def check_constant(self, node: ast.Constant) -> None:
        if not isinstance(node.value, _CONSTANT_TYPES):
            raise self.fail(
                node, f"literal {_snippet(node)} is not allowed (allowed: numbers, text, True, False, None)"
            )

    def check_attribute(self, node: ast.Attribute) -> None:
        if not (isinstance(node.value, ast.Name) and node.value.id == PREVIOUS and PREVIOUS not in self.fields):
            raise self.fail(node, f"attribute access is not allowed ('{_snippet(node)}')")
        if self.previous is None:
            raise self.fail(node, f"'{_snippet(node)}': the previous event of a key can only be read in the "
                                  "condition and value of a threshold rule")
        name = node.attr
        if name not in self.previous:
            raise self.fail(node, f"unknown field '{name}' of the previous event (known: {_listing(self.previous)}"
                                  f"{_suggest(name, self.previous)})")
        self.previous_names.add(name)

    def check_name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            raise self.fail(node, f"names starting with '_' are not allowed ('{name}')")
        if name == PREVIOUS and name not in self.fields:
            where = "" if self.previous is not None else " (only in the condition and value of a threshold rule)"
            raise self.fail(node, f"'previous' is the key's previous event: read one of its fields, "
                                  f"e.g. previous.ts{where}")
        if name in self.fields:
            self.event_names.add(name)
        elif name in self.ref_fields:
            self.ref_names.add(name)
        elif name in self.constants:
            self.constant_names.add(name)
        else:
            known = self.fields | self.ref_fields | self.constants.keys()
            listed = f"known: {_listing(known)}" if known else "no fields are available here"
            hint = f"; '{name}' is a function, call it as {name}(...)" if name in FUNCTIONS else ""
            raise self.fail(node, f"unknown field '{name}' ({listed}{hint or _suggest(name, known)})")

    def check_binop(self, node: ast.BinOp) -> None:
        op = type(node.op)
        if op in _REJECTED_BINOPS:
            raise self.fail(
                node, f"operator '{_REJECTED_BINOPS[op]}' is not allowed (allowed: {' '.join(_BINOPS)})"
            )
        if op is ast.Pow:
            self.check_exponent(node.right)
        if op is ast.Mult and any(_is_sequence_literal(side) for side in (node.left, node.right)):
            # "x" * 10**9 would allocate gigabytes per event.
            raise self.fail(node, "repeating text or a list with '*' is not allowed")
        self.check(node.left)
        self.check(node.right)

    def check_exponent(self, node: ast.expr) -> None:
        value = _literal_number(node)
        if value is None:
            raise self.fail(node, f"exponent must be a literal number (max {MAX_EXPONENT})")
        if abs(value) > MAX_EXPONENT:
            raise self.fail(node, f"exponent too large (max {MAX_EXPONENT})")

    def check_subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Slice):
            raise self.fail(node.slice, "slices are not allowed")
        key = node.slice
        constant = _literal_number(key) if not isinstance(key, ast.Constant) else key.value
        if isinstance(constant, bool) or not isinstance(constant, int | str):
            raise self.fail(key, 'subscript must be a constant index or key (e.g. topics[0], labels["x"])')
        self.check(node.value)

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise self.fail(func, f"attribute access is not allowed ('{_snippet(func)}')")
        if not isinstance(func, ast.Name):
            raise self.fail(func, "only the documented functions can be called, by name (e.g. abs(x))")
        name = func.id
        if name.startswith("_"):
            raise self.fail(func, f"names starting with '_' are not allowed ('{name}')")
        if name not in FUNCTIONS:
            raise self.fail(
                func,
                f"function '{name}' is not allowed"
                f" (allowed: {_listing(FUNCTIONS)}{_suggest(name, FUNCTIONS)})",
            )
        for keyword in node.keywords:
            what = f"keyword argument '{keyword.arg}='" if keyword.arg else "**kwargs"
            raise self.fail(keyword.value, f"{what} is not allowed in a call to '{name}' (positional only)")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, f"starred arguments (*x) are not allowed in a call to '{name}'")
        low, high = _ARITY[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            raise self.fail(node, f"function '{name}' takes {_arity_text(low, high)} (got {count})")
        if name == "matches":
            pattern = node.args[1]
            if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
                try:
                    _regex(pattern.value)
                except ValueError as exc:
                    raise self.fail(pattern, str(exc)) from None
        for arg in node.args:
            self.check(arg)


def _arity_text(low: int, high: int | None) -> str:
    def plural(n: int) -> str:
        return f"{n} argument" + ("" if n == 1 else "s")

    if high is None:
        return f"at least {plural(low)}"
    if low == high:
        return plural(low)
    return f"{low} to {high} arguments"


def _literal_number(node: ast.AST) -> int | float | None:
    """The value of `3`, `-3`, `+2.5`; None for anything else."""
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return sign * node.value
    return None


def _is_sequence_literal(node: ast.AST) -> bool:
    return isinstance(node, (*_SEQUENCE_NODES, ast.JoinedStr)) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)
    )


def _too_deep(tree: ast.AST) -> ast.AST | None:
    """The first expression node deeper than MAX_DEPTH, found without recursion."""
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            depth += 1
            if depth > MAX_DEPTH:
                return node
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    return None


# --- rewriting and compiling -------------------------------------------------------------


class _Rewriter(ast.NodeTransformer):
    """Turns checked names into look-ups on the lambda's `_e` / `_r` parameters."""

    def __init__(self, event_names: set[str], ref_names: set[str]) -> None:
        self.event_names = event_names
        self.ref_names = ref_names

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.event_names:
            return _get_call("_e", node.id, node)
        if node.id in self.ref_names:
            return _get_call("_r", node.id, node)
        return ast.copy_location(ast.Name(id="_c_" + node.id, ctx=ast.Load()), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        # _Checker allowed only `previous.<field>`: a look-up on the previous event `_p`.
        return _get_call("_p", node.attr, node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        args = [self.visit(arg) for arg in node.args]
        name = cast(ast.Name, node.func).id  # _Checker allowed only calls by name
        func = ast.Name(id="_f_" + name, ctx=ast.Load())
        return ast.copy_location(ast.Call(func=func, args=args, keywords=[]), node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        guard = {ast.Pow: "_pow", ast.Mult: "_mul"}.get(type(node.op))
        if guard is not None:
            args = [self.visit(node.left), self.visit(node.right)]
            call = ast.Call(func=ast.Name(id=guard, ctx=ast.Load()), args=args, keywords=[])
            return ast.copy_location(call, node)
        return self.generic_visit(node)  # type: ignore[return-value]

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        args = [self.visit(node.value), node.slice]
        call = ast.Call(func=ast.Name(id="_item", ctx=ast.Load()), args=args, keywords=[])
        return ast.copy_location(call, node)


def _get_call(param: str, name: str, where: ast.AST) -> ast.expr:
    getter = ast.Attribute(value=ast.Name(id=param, ctx=ast.Load()), attr="get", ctx=ast.Load())
    return ast.copy_location(ast.Call(func=getter, args=[ast.Constant(name)], keywords=[]), where)


def _parse(text: str, source: _Source) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            # Invalid escapes in regex literals ("\d") warn; the pattern still means what it says.
            warnings.simplefilter("ignore")
            return ast.parse(text, mode="eval")
    except SyntaxError as exc:
        msg = exc.msg or "invalid syntax"
        if exc.offset:
            col = source.offset(exc.lineno, exc.offset - 1)
        else:  # the parser ran out of input ("x +"): point past the end
            col = source.offset(exc.lineno, len(text))
            msg = "unexpected end of expression" if msg == "invalid syntax" else msg
        if "too many nested" in msg or "too complex" in msg:
            raise ExpressionError(f"expression nested too deeply (max depth {MAX_DEPTH})", col) from None
        raise ExpressionError(f"invalid syntax at column {col + 1}: {msg}", col) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"expression nested too deeply (max depth {MAX_DEPTH})") from None
    except ValueError as exc:  # e.g. null bytes on some Python versions
        raise ExpressionError(f"invalid expression: {exc}") from None


def compile_expression(
    text: str,
    fields: Iterable[str],
    ref_fields: Iterable[str] = (),
    extra_names: Mapping[str, Any] | None = None,
    previous: Iterable[str] | None = None,
) -> Expression:
    """Check and compile `text` into an `Expression`; raise ExpressionError if it is not allowed.

    `fields` are the event's field names, `ref_fields` the reference data's, and
    `extra_names` constants baked into the compiled code (e.g. zone properties). `previous`: the
    fields `previous.<field>` may read (None: `previous` is refused).

    >>> e = compile_expression('hour(ts) in [7, 8, 17, 18] and lower(kind) == "car"', ["ts", "kind"])
    >>> e.test({"ts": 1761526800.0, "kind": "CAR"})   # 08:00 in Hue
    True
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression too long (max {MAX_LENGTH} characters)")
    body = text.strip()
    if not body:
        raise ExpressionError("expression is empty")
    # Leading blanks would be an "unexpected indent" for the parser; keep columns true anyway.
    source = _Source(body, lead=len(text) - len(text.lstrip()))
    tree = _parse(body, source)

    deep = _too_deep(tree)
    if deep is not None:
        raise ExpressionError(
            f"expression nested too deeply (max depth {MAX_DEPTH})", source.node_offset(deep)
        )

    constants = dict(extra_names or {})
    checker = _Checker(source, frozenset(fields), frozenset(ref_fields), constants,
                       None if previous is None else frozenset(previous))
    checker.check(tree.body)

    requires = _requirements(tree.body, checker.event_names)  # before the rewriter changes the tree
    bound = comparison(tree.body, checker.event_names)
    rewritten = _Rewriter(checker.event_names, checker.ref_names).visit(tree.body)
    params = [ast.arg(arg="_e"), ast.arg(arg="_r")]
    if checker.previous_names:
        params.append(ast.arg(arg="_p"))
    lambda_node = ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=params, kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=rewritten,
    )
    module = ast.fix_missing_locations(ast.Expression(body=lambda_node))
    namespace: dict[str, Any] = {"__builtins__": {}, "_pow": _pow, "_mul": _mul, "_item": _item}
    namespace.update({"_f_" + name: fn for name, fn in FUNCTIONS.items()})
    namespace.update({"_c_" + name: constants[name] for name in checker.constant_names})
    try:
        with warnings.catch_warnings():
            # `x is 1` warns at compile time; it is legal and means identity as in Python.
            warnings.simplefilter("ignore")
            code = compile(module, f"<expression {_snippet(ast.Constant(body), 60)}>", "eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise ExpressionError(f"cannot compile expression: {exc}") from None
    # The function is built straight from the lambda's code object (no eval/exec anywhere):
    # it runs the checked tree, with no builtins and only the whitelisted functions in scope.
    lambda_code = next(const for const in code.co_consts if isinstance(const, types.CodeType))
    # An expression reading `previous` takes the previous event as a third argument (empty when
    # left out); any other keeps the two-argument function.
    defaults = (EMPTY,) if checker.previous_names else None
    fn = types.FunctionType(lambda_code, namespace, None, defaults)
    return Expression(text=text, names=frozenset(checker.event_names | checker.ref_names), fn=fn,
                      requires=requires, bound=bound, previous=frozenset(checker.previous_names))


def _indexable(node: ast.AST) -> bool:
    """A literal whose `==` agrees with hashing against any event value (not NaN)."""
    return isinstance(node, ast.Constant) and isinstance(node.value, _CONSTANT_TYPES) and not (
        isinstance(node.value, float) and math.isnan(node.value))


def _requirements(node: ast.AST, event_names: set[str]) -> tuple[tuple[str, frozenset[Any]], ...]:
    """Necessary equalities of an expression's truth: the `field == literal` and `field in
    [literals]` terms of its top-level `and` (both sides of `==` either way round), one entry per
    field (the values it may take: their intersection when a field is named twice).

    >>> tree = ast.parse("event_type == 'smoke' and score >= 0.8 and camera in ('a', 'b')", mode="eval")
    >>> sorted((name, sorted(values)) for name, values in _requirements(tree.body, {"event_type", "camera", "score"}))
    [('camera', ['a', 'b']), ('event_type', ['smoke'])]
    """
    terms = node.values if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) else [node]
    found: dict[str, frozenset[Any]] = {}
    for term in terms:
        if isinstance(term, ast.BoolOp) and isinstance(term.op, ast.And):
            pairs = list(_requirements(term, event_names))
        elif not (isinstance(term, ast.Compare) and len(term.ops) == 1):
            continue
        else:
            left, op, right = term.left, term.ops[0], term.comparators[0]
            if isinstance(op, ast.Eq) and isinstance(right, ast.Name) and _indexable(left):
                left, right = right, left
            if not (isinstance(left, ast.Name) and left.id in event_names):
                continue
            if isinstance(op, ast.Eq) and _indexable(right):
                pairs = [(left.id, frozenset([right.value]))]  # type: ignore[attr-defined]
            elif isinstance(op, ast.In) and isinstance(right, _SEQUENCE_NODES) \
                    and all(_indexable(element) for element in right.elts):
                pairs = [(left.id, frozenset(element.value for element in right.elts))]  # type: ignore[attr-defined]
            else:
                continue
        for name, values in pairs:
            found[name] = found[name] & values if name in found else values
    return tuple(sorted(found.items()))
