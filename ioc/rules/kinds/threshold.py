"""`threshold`: a condition that must hold for `for` (event time) before it fires.

Pending/firing as in Prometheus alerting rules, in event time:

* the first event of a key where `condition` is true makes the key pending (`pending_since`);
* it fires when the condition has held without interruption for `for`, checked at each
  event of the key and when the watermark passes `pending_since + for` (the condition is
  taken to hold until an event of the key says otherwise); `starts_at = pending_since`;
* it resolves at the first event where the condition is false, or, with
  `keep_firing_for`, once it has been false that long (`ends_at` = the resolving time).

A key's state is forgotten (`expired`) once nothing is pending (not firing, no
`pending_since`, any `realert` over) and its latest event is at or before the watermark:
then the next event of the key is treated exactly as a never-seen key's first one.

In an engine with no allowed lateness (the default; every re-keyed shard), a key is tracked
from the first event where the condition is true: an event whose condition is false leaves a
key the rule holds no state for untracked. It would only remember the event's time, which no
on-time event of the key can be older than when the key's events come through one lane (as in
every shard of the runtime), so such keys take no memory and do not count against `max_keys`.
That is also what lets the engine skip such rules without evaluating them
(ioc.rules.thresholds).

`previous`: the condition (and `value`) may read the key's previous event, `previous.<field>`
(e.g. `distance_km(previous.lat, previous.lon, lat, lon) > 50`). The previous event is the
key's latest event evaluated before this one (it passed `where`, was not out of order); the
key's state keeps only the fields the rule reads of it (`prev`, plain data). The first event of
a key has no previous event: the condition is false for it. Such a rule tracks every key from
its first event (no `opener`, no sorted group), and a key's state is kept while the rule may
read it (`expired` is false; `key_ttl` and `max_keys` bound it): forgotten, the key's next
event would have no previous event.

>>> # rules/reservoir.yaml
>>> # - id: reservoir.level.near_nwl
>>> #   stream: reservoir
>>> #   kind: threshold
>>> #   condition: "level_m >= nwl_m - 0.5"
>>> #   for: 10m
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_origin

from pydantic import Field

from ioc.events.schemas import base_type
from ioc.rules.expr import SOFT_ERRORS, Expression
from ioc.rules.kinds.base import BuildContext, Key, Problems, RuleKind, Runtime, State, number_or_none
from ioc.rules.model import Duration, RuleSpec

__all__ = ["ThresholdSpec", "ThresholdRule"]


class ThresholdSpec(RuleSpec):
    kind: Literal["threshold"] = "threshold"
    condition: str
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0


class ThresholdRule(RuleKind):
    Spec = ThresholdSpec
    EXPRESSION_FIELDS = ("condition", "value")
    PREVIOUS_FIELDS = ("condition", "value")

    def __init__(self, spec: ThresholdSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            self.condition = ctx.expression("condition", spec.condition, previous=True)
        # `value` of the alert: an explicit expression, else the first field the condition reads
        # that can hold a number (`event_type == 'crowd' and count > 200` measures `count`).
        with found:
            if spec.value or not found.failed("condition"):
                value_text = spec.value or _first_name(spec.condition, self.condition.names - _not_numeric(ctx))
                self.value = ctx.expression("value", value_text, previous=True) if value_text else None
        found.raise_any()
        self.hold = spec.for_
        self.keep = spec.keep_firing_for
        # Fields of the previous event the rule reads (empty: the rule does not read `previous`).
        self.previous = tuple(sorted(self.condition.previous | (self.value.previous if self.value else frozenset())))

    @property
    def opener(self) -> Callable[[Mapping[str, Any], Mapping[str, Any]], bool] | None:
        # A false condition on a key with no state changes nothing but `last_ts`, and with no
        # allowed lateness no later event of the key's lane can be older than it (it would be
        # late): not tracked (see the module docstring). A rule reading `previous` must remember
        # every key's latest event.
        return None if self.previous else self.condition.test

    @property
    def bound(self) -> tuple[str, str, float] | None:
        return None if self.previous else self.condition.bound

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        last = state.get("last_ts")
        if last is not None and ts < last:
            return  # older than what the key already said (out of order within lateness)
        state["last_ts"] = ts
        prev = None
        if self.previous:
            prev = state.get("prev")
            state["prev"] = {name: event.get(name) for name in self.previous}
            holds = prev is not None and _holds(self.condition, event, ref, prev)
        else:
            holds = self.condition.test(event, ref)
        if holds:
            state["false_since"] = None
            if state.get("firing"):
                return
            value = _measure(self.value, event, ref, prev)
            pending = state.get("pending_since")
            if pending is None:
                pending = state["pending_since"] = ts
            rt.note(state, event)
            # Remember what the event said: a timer or a realert retry may fire later.
            state["last_value"] = value
            state["last_event"] = rt.project(event, ref)
            if ts - pending >= self.hold:
                rt.fire(key, state, starts_at=pending, value=value, event=event, ref=ref)
            else:
                rt.schedule(pending + self.hold, key)
            if state.get("firing"):
                _forget_pending(state)
            return
        if not state.get("firing"):
            if state.get("pending_since") is not None:
                _forget_pending(state)
                state.pop("_evidence", None)
            return
        if self.keep <= 0:
            rt.resolve(key, state, ends_at=ts)
            return
        false_since = state.get("false_since")
        if false_since is None:
            false_since = state["false_since"] = ts
        if ts - false_since >= self.keep:
            rt.resolve(key, state, ends_at=ts)
        else:
            rt.schedule(false_since + self.keep, key)

    def expired(self, state: State, watermark: float) -> bool:
        # Not pending: no timer would fire, nor is evidence held. A latest event after the
        # watermark would make events between the two "out of order" (ignored) for this
        # state but not for a new key.
        # A rule reading `previous` keeps each key's latest event (see the module docstring).
        last = state.get("last_ts")
        return not self.previous and state.get("pending_since") is None and (last is None or last <= watermark)

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if not state.get("firing"):
            pending = state.get("pending_since")
            if pending is not None and pending + self.hold <= deadline:
                rt.fire(
                    key, state, starts_at=pending, value=state.get("last_value"),
                    event=state.get("last_event"), ref={},
                )
                if state.get("firing"):
                    _forget_pending(state)
            return
        false_since = state.get("false_since")
        if false_since is not None and false_since + self.keep <= deadline:
            rt.resolve(key, state, ends_at=false_since + self.keep)


def _forget_pending(state: State) -> None:
    state["pending_since"] = None
    state.pop("last_event", None)
    state.pop("last_value", None)


def _first_name(text: str, names: frozenset[str]) -> str | None:
    """The field name that appears first in the expression text (the natural 'value')."""
    found = [(m.start(), name) for name in names if (m := re.search(rf"\b{re.escape(name)}\b", text))]
    return min(found)[1] if found else None


def _holds(condition: Expression, event: Mapping[str, Any], ref: Mapping[str, Any], prev: Mapping[str, Any]) -> bool:
    """Expression.test with the key's previous event."""
    try:
        return bool(condition.fn(event, ref, prev))  # type: ignore[call-arg]
    except SOFT_ERRORS:
        return False


def _measure(
    expr: Any, event: Mapping[str, Any], ref: Mapping[str, Any], prev: Mapping[str, Any] | None = None,
) -> Any:
    """The alert's value: what the value expression gives, if it is a number (else None)."""
    if expr is None:
        return None
    try:
        return number_or_none(expr.fn(event, ref, prev) if prev is not None and expr.previous else expr(event, ref))
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError):
        return None


def _not_numeric(ctx: BuildContext) -> frozenset[str]:
    """Names the condition may read that never hold a number: event fields declared as text,
    bools or lists, reference columns with no number in any row."""
    found = set()
    model = ctx.schemas.model(ctx.stream)
    for name, info in (model.model_fields.items() if model is not None else ()):
        annotation, _ = base_type(info.annotation)
        if annotation in (str, bool, list) or get_origin(annotation) in (list, Literal):
            found.add(name)
    rows = ctx.reference.rows(ctx.stream)
    for name in ctx.ref_fields:
        if not any(number_or_none(row.get(name)) is not None for row in rows.values()):
            found.add(name)
    return frozenset(found)
KIND = ThresholdRule
