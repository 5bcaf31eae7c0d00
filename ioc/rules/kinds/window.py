"""`window`: an aggregate of a field over a time window per key, compared by `condition`.

>>> # rules/cyber.yaml: SSH/VPN brute force (Wazuh/Elastic: >= 8 failures from one IP in 120 s)
>>> # - id: cyber.auth.bruteforce
>>> #   stream: cyber
>>> #   kind: window
>>> #   key: [src_ip]
>>> #   where: 'event_action == "authentication" and event_outcome == "failure"'
>>> #   agg: count
>>> #   window: 2m
>>> #   condition: "value >= 8"

Fields: `agg` (count | sum | avg | min | max | distinct | p95), `field` (what is aggregated:
an event field or an expression over the event; not with `count`), `window`, `type`
(sliding | tumbling | hopping), `step` (hopping only; divides `window`), `condition` over
`value` (the aggregate) and `count` (samples in the window), `resolve_after` (tumbling and
hopping only). An event whose `field` is missing (or not a number, for the numeric
aggregates) adds nothing, like an event where `where` is false. `distinct` compares values
by their text; `p95` is the nearest-rank percentile (the smallest sample with at least 95 %
of the samples at or below it).

Sliding (the default): continuous; see `ioc.rules.kinds.windowing` for the exact timing. The
window `(t - window, t]` is evaluated at each event of the key; the episode starts at the
first event where the condition holds (`starts_at` = its time) and resolves at the first
event, or window expiry passed by the watermark, where it no longer holds.

Tumbling and hopping: windows `[k*step, k*step + window)` aligned to the Unix epoch (UTC),
`step = window` for tumbling. An event is added to every window containing it (kept per
`step`-long pane, so adding costs the same for any hop count). A window that has events is
evaluated once, when the watermark passes its end; if the condition holds it is an instant
match (`starts_at` = window start, value = the aggregate, match time = window end): matches
within `resolve_after` (default 5m) of the last one extend the episode, which resolves
`resolve_after` after the last matching window's end.

A key's state is forgotten (`expired`) once nothing is left to evaluate: sliding, once its
window has emptied (see `ioc.rules.kinds.windowing`); tumbling and hopping, once every window
holding events of the key has been evaluated and the last evaluated window ended at or before
the watermark (so no event still to come falls into a window already evaluated), and its
episode is over. Its next event is then treated as a never-seen key's first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from ioc.rules.expr import EMPTY
from ioc.rules.kinds.base import (
    BuildContext,
    InstantRule,
    InstantSpec,
    Key,
    KindProblem,
    Problems,
    RuleKind,
    Runtime,
    State,
)
from ioc.rules.kinds.windowing import (
    SOFT_ERRORS,
    SlidingRule,
    check_positive,
    compile_condition,
    compile_field,
    is_number,
    reject_value,
)
from ioc.rules.model import Duration
from ioc.timeutil import format_duration

__all__ = ["WindowSpec", "WindowRule", "SlidingWindowRule", "TumblingWindowRule", "AGGREGATES", "MAX_HOPS"]

Aggregate = Literal["count", "sum", "avg", "min", "max", "distinct", "p95"]
AGGREGATES: tuple[str, ...] = ("count", "sum", "avg", "min", "max", "distinct", "p95")
NUMERIC = frozenset({"sum", "avg", "min", "max", "p95"})
# Hopping windows per event; beyond this a step is too fine for the window to be worth it.
MAX_HOPS = 1440
# Event ids kept per pane of a tumbling/hopping window, for the alert's evidence.
PANE_EVIDENCE = 5
CONDITION_NAMES = ("value", "count")


class WindowSpec(InstantSpec):
    kind: Literal["window"] = "window"
    agg: Aggregate
    field: str | None = None
    window: Duration
    type: Literal["sliding", "tumbling", "hopping"] = "sliding"
    step: Duration | None = None
    condition: str


def _text(x: Any) -> str:
    return x if x.__class__ is str else str(x)


def _p95(values: list[Any]) -> Any:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


class WindowRule(RuleKind):
    """The `window` kind; building one gives a SlidingWindowRule or a TumblingWindowRule."""

    Spec = WindowSpec
    # `condition` reads `value`/`count`, not event fields: the loader must not check it as one.
    EXPRESSION_FIELDS = ("field",)
    spec: WindowSpec

    def __new__(cls, spec: WindowSpec, ctx: BuildContext) -> WindowRule:
        if cls is WindowRule:
            chosen: type[WindowRule] = SlidingWindowRule if spec.type == "sliding" else TumblingWindowRule
            return super().__new__(chosen)
        return super().__new__(cls)

    def __init__(self, spec: WindowSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            reject_value(spec.value, "window", f"the aggregate ({spec.agg})")
        self.agg = spec.agg
        self.extract: Callable[[Mapping[str, Any], Mapping[str, Any]], Any] | None = None
        with found:
            if spec.agg == "count":
                if spec.field is not None:
                    raise KindProblem("field", "not used with agg 'count' (it counts the events that pass `where`)")
            else:
                if spec.field is None:
                    raise KindProblem("field", f"required with agg '{spec.agg}' (the event field to aggregate)")
                self.extract = compile_field(
                    ctx, spec.field, numeric=spec.agg in NUMERIC, purpose=f"agg '{spec.agg}'"
                ).fn
        with found:
            self.width = check_positive("window", spec.window)
        with found:
            if spec.type != "hopping" and spec.step is not None:
                raise KindProblem("step", f"only for type hopping (this window is {spec.type})")
        with found:
            if spec.type == "sliding" and "resolve_after" in spec.model_fields_set:
                raise KindProblem(
                    "resolve_after",
                    "only for type tumbling or hopping (a sliding window resolves when its condition stops holding)",
                )
        with found:
            self.condition = compile_condition(ctx, spec.condition, CONDITION_NAMES).fn
        found.raise_any()
        # Reused for every evaluation: the condition reads it like an event (no allocation).
        self.names: dict[str, Any] = {"value": None, "count": 0}

    def sample(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
        """What an event adds: 1 for count, a number for the numeric aggs, text for distinct."""
        extract = self.extract
        if extract is None:
            return 1
        try:
            x = extract(event, ref)
        except SOFT_ERRORS:
            return None
        if x is None:
            return None
        if self.agg == "distinct":
            return _text(x)
        return x if is_number(x) else None

    def holds(self, value: Any, count: int) -> bool:
        names = self.names
        names["value"] = value
        names["count"] = count
        try:
            return bool(self.condition(names, EMPTY))
        except SOFT_ERRORS:
            return False


class SlidingWindowRule(WindowRule, SlidingRule):
    """Continuous: the window `(t - window, t]` at each event of the key and at its expiries."""

    def __init__(self, spec: WindowSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        self.keep_values = spec.agg != "count"
        self.distinct = spec.agg == "distinct"
        self.aggregate: Callable[[State], Any] = _SLIDING[spec.agg]

    def measure(self, state: State) -> tuple[bool, Any]:
        value = self.aggregate(state)
        names = self.names
        names["value"] = value
        names["count"] = len(state["t"])
        try:
            return bool(self.condition(names, EMPTY)), value
        except SOFT_ERRORS:
            return False, value


_SLIDING: dict[str, Callable[[State], Any]] = {
    "count": lambda s: len(s["t"]),
    "sum": lambda s: sum(s["v"]),
    "avg": lambda s: sum(s["v"]) / len(s["v"]),
    "min": lambda s: min(s["v"]),
    "max": lambda s: max(s["v"]),
    "distinct": lambda s: len(s["c"]),
    "p95": lambda s: _p95(s["v"]),
}


# -- tumbling and hopping: panes of `step` seconds, each window the union of `hops` panes ------
# A pane is {"p": index, "n": samples, "a": accumulator, "lt": latest ts, "ev": that event's
# template fields, "ids": up to PANE_EVIDENCE event ids}.

_START: dict[str, Callable[[Any], Any]] = {
    "count": lambda x: None,
    "sum": lambda x: x,
    "avg": lambda x: x,
    "min": lambda x: x,
    "max": lambda x: x,
    "distinct": lambda x: {x: 1},
    "p95": lambda x: [x],
}


def _add_distinct(acc: dict[str, int], x: str) -> dict[str, int]:
    acc[x] = 1
    return acc


def _add_list(acc: list[Any], x: Any) -> list[Any]:
    acc.append(x)
    return acc


_ADD: dict[str, Callable[[Any, Any], Any]] = {
    "count": lambda acc, x: None,
    "sum": lambda acc, x: acc + x,
    "avg": lambda acc, x: acc + x,
    "min": lambda acc, x: x if x < acc else acc,
    "max": lambda acc, x: x if x > acc else acc,
    "distinct": _add_distinct,
    "p95": _add_list,
}


def _merge_distinct(accs: list[dict[str, int]], n: int) -> int:
    if len(accs) == 1:
        return len(accs[0])
    seen: set[str] = set()
    for acc in accs:
        seen.update(acc)
    return len(seen)


def _merge_p95(accs: list[list[Any]], n: int) -> Any:
    return _p95([x for acc in accs for x in acc])


_MERGE: dict[str, Callable[[list[Any], int], Any]] = {
    "count": lambda accs, n: n,
    "sum": lambda accs, n: sum(accs),
    "avg": lambda accs, n: sum(accs) / n,
    "min": lambda accs, n: min(accs),
    "max": lambda accs, n: max(accs),
    "distinct": _merge_distinct,
    "p95": _merge_p95,
}


def _hops(spec: WindowSpec, window_failed: bool) -> tuple[float, int]:
    """(step, windows per event) of a tumbling or hopping window; the step's problems as KindProblem.
    With `window_failed` (not more than 0), only the step's own problems are checked."""
    if spec.type != "hopping":
        return spec.window, 1
    if spec.step is None:
        raise KindProblem("step", "required with type hopping (e.g. window: 15m, step: 5m)")
    step = check_positive("step", spec.step)
    if window_failed:
        return step, 1
    hops = spec.window / step
    if step > spec.window or abs(hops - round(hops)) > 1e-9:
        raise KindProblem(
            "step",
            f"step '{format_duration(step)}' must divide window '{format_duration(spec.window)}'"
            " (e.g. window 15m, step 5m)",
        )
    if round(hops) > MAX_HOPS:
        raise KindProblem(
            "step",
            f"step '{format_duration(step)}' makes {round(hops)} windows per event"
            f" (at most {MAX_HOPS}: use a longer step)",
        )
    return step, round(hops)


class TumblingWindowRule(WindowRule, InstantRule):
    """Instant: epoch-aligned windows, each evaluated once when the watermark passes its end."""

    spec: WindowSpec

    def __init__(self, spec: WindowSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        # The window's own problems (WindowRule) and the hopping step's are reported together.
        found = Problems()
        with found:
            super().__init__(spec, ctx)
        with found:
            self.step, self.hops = _hops(spec, found.failed("window"))
        found.raise_any()
        self.resolve_after = spec.resolve_after
        self.start = _START[spec.agg]
        self.add = _ADD[spec.agg]
        self.merge = _MERGE[spec.agg]

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        x = self.sample(event, ref)
        if x is None:
            return
        p = int(ts // self.step)
        done = state.get("done")
        if done is not None and p <= done:
            return  # its windows were evaluated (cannot happen for an event the engine accepts)
        panes: list[dict[str, Any]] | None = state.get("panes")
        if panes is None:
            panes = state["panes"] = []
        i = len(panes)
        while i and panes[i - 1]["p"] > p:
            i -= 1
        if i and panes[i - 1]["p"] == p:
            pane = panes[i - 1]
            pane["n"] += 1
            pane["a"] = self.add(pane["a"], x)
        else:
            pane = {"p": p, "n": 1, "a": self.start(x), "lt": ts, "ev": None, "ids": []}
            panes.insert(i, pane)
        if ts >= pane["lt"] or pane["ev"] is None:
            pane["lt"] = ts
            pane["ev"] = rt.project(event, ref)
        ids = pane["ids"]
        if len(ids) < PANE_EVIDENCE:
            ref_id = event.get("id") or event.get("_pos")
            if ref_id is not None:
                ids.append(str(ref_id))
        first = p - self.hops + 1
        if done is not None and first <= done:
            first = done + 1
        end = first * self.step + self.width
        due = state.get("due")
        if due is None or end < due:
            rt.schedule(end, key)
            state["due"] = end

    def expired(self, state: State, watermark: float) -> bool:
        # Panes left are windows still to evaluate. `done` (the last window evaluated) only
        # matters to an event inside it, which no event at or after the watermark is once that
        # window has ended by then.
        if state.get("panes"):
            return False
        done = state.get("done")
        return done is None or done * self.step + self.width <= watermark

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        due = state.get("due")
        if due is not None and due <= deadline:
            self._close(rt, key, state, deadline)
        rt.instant_timer(key, state, deadline, self.resolve_after)

    def _close(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        """Evaluate every window with events that ends at or before `deadline`, in order."""
        step, width, hops = self.step, self.width, self.hops
        last = math.floor((deadline - width) / step)  # the last window that has ended
        if (last + 1) * step + width <= deadline:
            last += 1
        elif last * step + width > deadline:
            last -= 1
        panes: list[dict[str, Any]] = state["panes"]
        done = state.get("done")
        k_next = -math.inf if done is None else done + 1
        j = 0
        for pane in panes:
            p = pane["p"]
            low = max(p - hops + 1, k_next)
            if low > last:
                break
            for k in range(int(low), min(p, last) + 1):
                while panes[j]["p"] < k:
                    j += 1
                members = []
                for other in panes[j:]:
                    if other["p"] >= k + hops:
                        break
                    members.append(other)
                self._evaluate(rt, key, state, k, members)
                k_next = k + 1
        state["done"] = last
        gone = 0
        while gone < len(panes) and panes[gone]["p"] <= last:
            gone += 1
        del panes[:gone]
        if panes:
            first = max(panes[0]["p"] - hops + 1, last + 1)
            end = first * step + width
            rt.schedule(end, key)
            state["due"] = end
        else:
            state["due"] = None

    def _evaluate(self, rt: Runtime, key: Key, state: State, k: int, members: list[dict[str, Any]]) -> None:
        count = 0
        for pane in members:
            count += pane["n"]
        value = self.merge([pane["a"] for pane in members], count)
        if not self.holds(value, count):
            return
        start = k * self.step
        firing = state.get("firing")
        for pane in members:
            for ref_id in pane["ids"]:
                rt.note(state, {"id": ref_id})
        rt.match(
            key, state, ts=start + self.width, value=value, event=members[-1]["ev"] or EMPTY, ref=EMPTY,
            resolve_after=self.resolve_after, starts_at=start,
        )
        if not firing and not state.get("firing"):
            state.pop("_evidence", None)  # held back by `realert`: the match is dropped


KIND = WindowRule
