"""An expression with values put in for its names: to check it, to read it, and as alerts show it.

`ioc explain` shows the condition of a rule at the moment it fired with the values the rule
saw. Three forms of one expression text and the values of its names (fields, reference data,
a window's `value`...):

* `substitute`: valid expression text with every name replaced by its value as a literal.
  `compile_expression` evaluates it to what the expression gave for those values (what the
  explain tests check: a firing condition re-evaluates to true);
* `readable`: for people, each name followed by its value and each compound operand of a
  comparison by what it came to;
* `with_threshold`: the names that are not in `keep` (reference fields, constants) replaced
  and what is then constant folded, the others kept by name: the `condition` of alert records.

>>> values = {"level_m": 44.62, "nwl_m": 45.0}
>>> substitute("level_m >= nwl_m - 0.5", values)
'44.62 >= 45.0 - 0.5'
>>> readable("level_m >= nwl_m - 0.5", values)
'level_m 44.62 >= nwl_m - 0.5 = 44.5'
>>> with_threshold("level_m >= nwl_m - 0.5", values, keep={"level_m"})
'level_m >= 44.5'

Only names are replaced; function names stay (`len(url) > 7900` becomes `len('...') > 7900`).
A value that is no literal of the expression language (a dict, a float NaN) keeps its name in
`with_threshold` and reads as `float('nan')`-free text in `readable`; `substitute` raises
RenderError for it, since no literal of the language means it.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ioc.exceptions import IocError
from ioc.rules.expr import PREVIOUS, SOFT_ERRORS, ExpressionError, compile_expression

__all__ = ["RenderError", "names_of", "substitute", "readable", "with_threshold", "show", "evaluate"]

# Readable forms cut long texts and lists (a URL of 8,000 characters is shown by its length).
SHOWN_TEXT = 80
SHOWN_ITEMS = 10


class RenderError(IocError):
    """A value that no literal of the expression language stands for."""


@functools.lru_cache(maxsize=1024)
def _tree(text: str) -> ast.expr:
    return ast.parse(text.strip(), mode="eval").body


def names_of(text: str) -> frozenset[str]:
    """The names an expression reads (not its function names).

    >>> sorted(names_of("len(url) > limit and x"))
    ['limit', 'url', 'x']
    >>> sorted(names_of("distance_km(previous.lat, previous.lon, lat, lon) > 50"))
    ['lat', 'lon', 'previous.lat', 'previous.lon']
    """
    tree = _tree(text)
    calls = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    previous = {id(node.value): f"{PREVIOUS}.{node.attr}" for node in ast.walk(tree)
                if isinstance(node, ast.Attribute) and _is_previous(node)}
    return frozenset(previous.get(id(node), node.id) for node in ast.walk(tree)
                     if isinstance(node, ast.Name) and id(node) not in calls)


def _is_previous(node: ast.AST) -> bool:
    """`previous.lat`: a field of the key's previous event (a threshold's condition), named
    `previous.lat` in `values`."""
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == PREVIOUS


def _literal(value: Any) -> ast.expr:
    """An ast literal meaning `value` exactly (negative numbers as `-x`, so `(-3) ** 2` stays)."""
    if value is None or isinstance(value, (bool, str)):
        return ast.Constant(value)
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise RenderError(f"{value!r} has no literal in a rule expression")
        if value < 0 or (isinstance(value, float) and math.copysign(1.0, value) < 0):
            return ast.UnaryOp(ast.USub(), ast.Constant(-value))
        return ast.Constant(value)
    if isinstance(value, (list, tuple)):
        return ast.List([_literal(item) for item in value], ast.Load())
    if isinstance(value, (set, frozenset)):  # only `in` reads one: a list means the same
        return ast.List([_literal(item) for item in sorted(value, key=repr)], ast.Load())
    raise RenderError(f"a {type(value).__name__} has no literal in a rule expression")


class _Replace(ast.NodeTransformer):
    def __init__(self, values: Mapping[str, Any], skip: Iterable[str] = (), strict: bool = True) -> None:
        self.values = values
        self.skip = frozenset(skip)
        self.strict = strict

    def visit_Call(self, node: ast.Call) -> ast.expr:
        node.args = [self.visit(arg) for arg in node.args]
        return node

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self._put(node, node.id)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        return self._put(node, f"{PREVIOUS}.{node.attr}") if _is_previous(node) else node

    def _put(self, node: ast.expr, name: str) -> ast.expr:
        if name in self.skip:
            return node
        if name not in self.values:
            if self.strict:
                raise RenderError(f"no value for {name!r}")
            return node
        try:
            return ast.copy_location(_literal(self.values[name]), node)
        except RenderError:
            if self.strict:
                raise
            return node


def _copy(text: str) -> ast.expr:
    return ast.parse(text.strip(), mode="eval").body  # a fresh tree: the transformers change it


def substitute(text: str, values: Mapping[str, Any]) -> str:
    """`text` with every name replaced by the literal of its value (a name missing from `values`
    reads as None, as a missing field does); RenderError for a value with no literal.

    >>> substitute("x ** 2 > 8 and name == 'a'", {"x": -3, "name": "a"})
    "(-3) ** 2 > 8 and 'a' == 'a'"
    """
    full = {name: values.get(name) for name in names_of(text)}
    return ast.unparse(_Replace(full).visit(_copy(text)))


def evaluate(text: str, values: Mapping[str, Any] | None = None) -> Any:
    """The value of `substitute(text, values)` as the rule engine computes it (functions and all);
    raises ExpressionError if it does not compile, and the soft errors (None >= 3) as they come."""
    literal = substitute(text, values or {})
    return compile_expression(literal, ())({}, {})


def _value_of(node: ast.expr, values: Mapping[str, Any]) -> tuple[bool, Any]:
    # Evaluated with the values as fields (not literals): a long text stays within MAX_LENGTH.
    text = ast.unparse(node)
    prefix = f"{PREVIOUS}."
    plain = {name: value for name, value in values.items() if not name.startswith(prefix)}
    before = {name[len(prefix):]: value for name, value in values.items() if name.startswith(prefix)}
    try:
        if not names_of(text) <= values.keys():
            return False, None
        if not before:
            return True, compile_expression(text, plain.keys())(plain, {})
        compiled = compile_expression(text, plain.keys(), previous=before.keys())
        return True, compiled.fn(plain, {}, before)  # type: ignore[call-arg]
    except (ExpressionError, SyntaxError, *SOFT_ERRORS):
        return False, None


def show(value: Any) -> str:
    """A value for people: numbers without float noise (44.32000000000001 -> 44.32), long texts
    and lists shortened.

    >>> show(44.32000000000001), show("x" * 100)[:12], show([1, 2])
    ('44.32', "'xxxxxxxxxxx", '[1, 2]')
    """
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        rounded = round(value, 6)
        return repr(int(rounded)) + ".0" if rounded == int(rounded) and abs(rounded) < 1e15 else repr(rounded)
    if isinstance(value, str):
        if len(value) > SHOWN_TEXT:
            return repr(value[:SHOWN_TEXT - 20]) + f"... ({len(value):,} characters)"
        return repr(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value) if not isinstance(value, (set, frozenset)) else sorted(value, key=repr)
        shown = ", ".join(show(item) for item in items[:SHOWN_ITEMS])
        more = f", ... ({len(items)} in all)" if len(items) > SHOWN_ITEMS else ""
        return f"[{shown}{more}]"
    return repr(value)


_PRECEDENCE_WRAP = (ast.BoolOp, ast.IfExp)


def readable(text: str, values: Mapping[str, Any]) -> str:
    """`text` for people: a name reads `name value`, a computed operand of a comparison reads
    `its text = its value`, `and`/`or`/`not` keep their shape.

    >>> readable("count > crowd_limit and not closed", {"count": 420, "crowd_limit": 400, "closed": False})
    'count 420 > crowd_limit 400 and not closed False'
    """
    full = {name: values.get(name) for name in names_of(text)}
    return _readable(_tree(text), full)


def _readable(node: ast.expr, values: Mapping[str, Any]) -> str:
    if isinstance(node, ast.BoolOp):
        word = " and " if isinstance(node.op, ast.And) else " or "
        parts = [_readable(value, values) for value in node.values]
        parts = [f"({part})" if isinstance(value, _PRECEDENCE_WRAP) else part
                 for part, value in zip(parts, node.values, strict=True)]
        return word.join(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _readable(node.operand, values)
        return f"not ({inner})" if isinstance(node.operand, _PRECEDENCE_WRAP) else f"not {inner}"
    if isinstance(node, ast.Compare):
        parts = [_operand(node.left, values)]
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(_OPS.get(type(op), "?"))
            parts.append(_operand(right, values))
        return " ".join(parts)
    return _operand(node, values, whole=True)


_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def _operand(node: ast.expr, values: Mapping[str, Any], whole: bool = False) -> str:
    if isinstance(node, ast.Name):
        return f"{node.id} {show(values.get(node.id))}"
    if _is_previous(node):
        name = ast.unparse(node)
        return f"{name} {show(values.get(name))}"
    if isinstance(node, ast.Constant) or (isinstance(node, ast.UnaryOp) and isinstance(node.operand, ast.Constant)):
        return ast.unparse(node)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and all(isinstance(e, ast.Constant) for e in node.elts):
        return ast.unparse(node)
    known, value = _value_of(node, values)
    text = ast.unparse(node)
    if isinstance(node, (ast.BoolOp, ast.IfExp, ast.Compare)) and not whole:
        text = f"({text})"
    return f"{text} = {show(value) if known else '?'}"


class _Fold(ast.NodeTransformer):
    """Replace every subtree without names (but function calls' names) by its value."""

    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        if isinstance(node, ast.expr) and not isinstance(node, (ast.Constant, ast.Name, ast.List, ast.Tuple,
                                                                 ast.Set, ast.Compare, ast.BoolOp)) \
                and not _has_names(node) and not (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
                                                  and isinstance(node.operand, ast.Constant)):
            known, value = _value_of(node, {})
            if known and (isinstance(value, bool) or (isinstance(value, (int, float)) and math.isfinite(value))):
                return ast.copy_location(_literal(_tidy(value)), node)
        return node


def _tidy(value: int | float) -> int | float:
    # 45.0 - 0.3 is 44.7 to people (44.699999999999996 to the machine): a threshold as written.
    return round(value, 9) if isinstance(value, float) and not isinstance(value, bool) else value


def _has_names(node: ast.AST) -> bool:
    calls = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return any((isinstance(n, ast.Name) and id(n) not in calls) or _is_previous(n) for n in ast.walk(node))


def with_threshold(text: str, values: Mapping[str, Any], keep: Iterable[str]) -> str:
    """`text` with the names not in `keep` that `values` has replaced by their values, and each
    part left without names computed (`nwl_m - 0.5` with nwl_m 45.0 -> `44.5`).

    >>> with_threshold("count > crowd_limit", {"crowd_limit": 400}, keep={"count"})
    'count > 400'
    >>> with_threshold("level_m >= bd2_m", {}, keep={"level_m"})
    'level_m >= bd2_m'
    """
    keep = frozenset(keep)
    present = {name: values[name] for name in names_of(text) if name not in keep and name in values}
    if not present:
        return text.strip()
    tree = _Replace(present, skip=keep, strict=False).visit(_copy(text))
    return ast.unparse(_Fold().visit(tree))
