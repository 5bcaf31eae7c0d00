"""The rule index: an event meets only the rules whose `where` it can satisfy.

A rule's `where` often says which events it is about with equalities: `event_type ==
'fire_smoke'`, `source_id == 'kim-long'`, `event_action in ('connection', 'network_flow')`
(`Expression.requires`). The index hashes them, as Esper and Siddhi index the filter
attributes of their statements: one dict look-up per level picks the routes of an event's
value, and every other rule (one with no equality on that field) is in every bucket. A rule an
event cannot satisfy is never evaluated, which is exactly what its `where` would have decided
(false: the rule is skipped, no state is made): the rules left are tested as before, in the
rule set's order, so alerts and their order do not change.

>>> idx = RouteIndex.build([("a", {"event_type": {"smoke"}}), ("b", {}), ("c", {"event_type": {"crowd", "smoke"}})])
>>> idx.select({"event_type": "smoke"}), idx.select({"event_type": "crowd"}), idx.select({"event_type": None})
(('a', 'b', 'c'), ('b', 'c'), ('b',))

Levels: the field most rules constrain is hashed first, then, within each bucket, the field
most of its rules still constrain, up to `MAX_DEPTH` levels, while at least `MIN_RULES` rules
constrain a field, and within a memory budget (`build`). An unhashable event value (a list)
matches no equality: it selects the bucket of the rules without one, as `==` against a literal
would have.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["RouteIndex", "MAX_DEPTH", "MIN_RULES", "BUDGET_PER_RULE"]

T = TypeVar("T")
Requirements = Mapping[str, "set[Any] | frozenset[Any]"]

MAX_DEPTH = 3
MIN_RULES = 2  # a field constrained by fewer rules than this is not worth a level
BUDGET_PER_RULE = 64  # routes held by all the buckets, per rule indexed (see `build`)
BUDGET_BASE = 100_000


@dataclass(frozen=True)
class RouteIndex(Generic[T]):
    """A node: `field` hashed (None: a leaf with its `routes`), a child per value, `rest` for any
    other value."""

    routes: tuple[T, ...]
    field: str | None = None
    children: Mapping[Hashable, RouteIndex[T]] | None = None
    rest: RouteIndex[T] | None = None

    @classmethod
    def build(cls, items: Sequence[tuple[T, Requirements]], depth: int = MAX_DEPTH,
              budget: list[int] | None = None) -> RouteIndex[T]:
        """The index of `items` (a route and the equalities its rule requires), in their order.
        Every bucket holds the rules free of its field too, so the routes held grow with values
        × free rules: past `BUDGET_PER_RULE` routes per rule (all levels together) a node is not
        split any further (it is then a full scan of its rules, as without an index)."""
        if budget is None:
            budget = [BUDGET_PER_RULE * len(items) + BUDGET_BASE]
        routes = tuple(item for item, _ in items)
        counts = Counter(name for _, needs in items for name in needs)
        best = max(counts.items(), key=lambda pair: (pair[1], pair[0]), default=None) if depth > 0 else None
        if best is None or best[1] < MIN_RULES:
            budget[0] -= len(routes)
            return cls(routes)
        field = best[0]
        # Positions of the items that accept each value, and of those with no equality on it:
        # a bucket is both merged in order (linear in the bucket, not in all the rules).
        by_value: dict[Hashable, list[int]] = {}
        free: list[int] = []
        for position, (_, needs) in enumerate(items):
            if field in needs:
                for value in needs[field]:
                    by_value.setdefault(value, []).append(position)
            else:
                free.append(position)

        held = sum(len(accepting) for accepting in by_value.values()) + (len(by_value) + 1) * len(free)
        if held > budget[0]:
            budget[0] -= len(routes)
            return cls(routes)

        def sub(positions: list[int] | tuple[int, ...]) -> RouteIndex[T]:
            return cls.build([(items[i][0], {n: v for n, v in items[i][1].items() if n != field})
                              if field in items[i][1] else items[i] for i in positions], depth - 1, budget)

        children = {value: sub(sorted(accepting + free)) for value, accepting in by_value.items()}
        return cls((), field, children, sub(free))

    def select(self, event: Mapping[str, Any]) -> tuple[T, ...]:
        """The routes an event may satisfy, in the order they were given."""
        node = self
        while node.field is not None:
            try:
                child = node.children.get(event.get(node.field))  # type: ignore[union-attr]
            except TypeError:  # an unhashable value equals no literal
                child = None
            node = child if child is not None else node.rest  # type: ignore[assignment]
        return node.routes

    def size(self) -> int:
        """Routes held over all leaves (for tests and the benchmark: the index's memory)."""
        if self.field is None:
            return len(self.routes)
        return sum(child.size() for child in (self.children or {}).values()) + (self.rest.size() if self.rest else 0)
