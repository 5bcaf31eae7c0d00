"""Sorted thresholds: the rules on one field whose threshold an event's value crosses, in one look-up.

Analysts write many `threshold` rules that compare one field with their own number and have
no equality to hash (`level_m >= 44.0`, `level_m >= 45.5`, ... for every reservoir at once).
Such rules of a stream are grouped by field, comparison and key (`ThresholdGroup`), their
numbers kept sorted: one bisection finds every rule whose condition an event's value makes
true (`crossed`). A rule of the group whose condition is false meets the event only if it holds
state for the event's key (the engine keeps those keys, see Engine.process): a key that holds no
state and whose condition is false has nothing to remember (ioc.rules.kinds.threshold), so
skipping the rule is exactly what evaluating it would have done.

>>> group = ThresholdGroup.build("level_m", ">=", ("source_id",), [(5.0, 0, "a"), (2.0, 1, "b"), (9.0, 2, "c")])
>>> [route for _, route in group.crossed(5.0)], group.crossed(1.0), group.crossed(None), group.crossed(True) is None
(['b', 'a'], [], [], True)
"""

from __future__ import annotations

import ast
import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["ThresholdGroup", "comparison", "GROUP_MIN"]

T = TypeVar("T")

GROUP_MIN = 4  # fewer rules on one field and comparison are tested one by one, as before

_OPS = {ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Lt: "<"}
_MIRROR = {">=": "<=", ">": "<", "<=": ">=", "<": ">"}
_NO_VALUE = (type(None), str)  # a comparison with a number is false (Expression.test)


def comparison(node: ast.AST, event_names: set[str] | frozenset[str]) -> tuple[str, str, float] | None:
    """(field, op, number) when an expression's tree is just `field OP number` (either way round,
    OP one of >= > <= <, the number an int or a finite float literal, the field an event field);
    otherwise None (`Expression.bound`).

    >>> names = {"level_m"}
    >>> comparison(ast.parse("level_m >= 44.5", mode="eval").body, names)
    ('level_m', '>=', 44.5)
    >>> comparison(ast.parse("-3 < level_m", mode="eval").body, names)
    ('level_m', '>', -3)
    >>> comparison(ast.parse("level_m >= nwl_m", mode="eval").body, names) is None
    True
    """
    if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _OPS):
        return None
    op = _OPS[type(node.ops[0])]  # type: ignore[index]
    left, right = node.left, node.comparators[0]
    if isinstance(right, ast.Name):
        left, right, op = right, left, _MIRROR[op]
    number = _number(right)
    if not (isinstance(left, ast.Name) and left.id in event_names) or number is None:
        return None
    return left.id, op, number


def _number(node: ast.AST) -> float | None:
    sign = 1
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        sign = -1 if isinstance(node.op, ast.USub) else 1
        node = node.operand
    if not isinstance(node, ast.Constant):
        return None
    value = node.value
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return sign * value  # type: ignore[operator]
    return None


@dataclass(frozen=True, eq=False)
class ThresholdGroup(Generic[T]):
    """Rules of one stream testing `field OP number`, with the same key: `items` (rule-set
    position, route) sorted by their numbers, `bounds`."""

    field: str
    op: str
    key_fields: tuple[str, ...]
    bounds: tuple[float, ...]
    items: tuple[tuple[int, T], ...]

    @classmethod
    def build(cls, field: str, op: str, key_fields: tuple[str, ...],
              members: Sequence[tuple[float, int, T]]) -> ThresholdGroup[T]:
        """A group of (number, position, route), in any order."""
        ordered = sorted(members, key=lambda member: (member[0], member[1]))
        return cls(field, op, key_fields, tuple(number for number, _, _ in ordered),
                   tuple((position, route) for _, position, route in ordered))

    def crossed(self, value: Any) -> Sequence[tuple[int, T]] | None:
        """The items whose condition `value` makes true; None when only testing each can say
        (a value that is no number: a boolean, NaN, a list...)."""
        kind = type(value)
        if kind is not float and kind is not int:
            return () if kind in _NO_VALUE else None
        if value != value:  # NaN: every comparison is false, but bisection cannot tell
            return None
        op = self.op
        if op == ">=":
            return self.items[:bisect_right(self.bounds, value)]
        if op == ">":
            return self.items[:bisect_left(self.bounds, value)]
        if op == "<=":
            return self.items[bisect_left(self.bounds, value):]
        return self.items[bisect_right(self.bounds, value):]
