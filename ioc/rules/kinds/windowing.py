"""Shared parts of the windowed kinds (`window`, `rate`): field checks and the sliding driver.

A sliding rule keeps, per key, the samples of its window `(now - window, now]` in event-time
order, where `now` is the key's clock: the largest time evaluated for the key (its latest
event, or a window-expiry timer the watermark has passed). The clock never goes back, so a
key's episodes never move back in time:

* an event newer than the clock moves it, drops the samples that left the window, adds its
  sample and evaluates the window as of its own time;
* an event older than the clock (possible with allowed lateness) is added if it is still
  inside the key's window, and the window is evaluated as of the clock; an event at or
  before `now - window` is ignored (the windows it belonged to were evaluated already);
* while an episode is firing (or waiting out `realert`), a timer at the expiry of the oldest
  sample (`oldest + window`) moves the clock to that time when the watermark passes it, so
  the condition is re-checked although no event arrives; otherwise one timer at the expiry
  of the newest sample drops the samples of a key that went quiet (state stays bounded).

An episode starts at an event where the condition holds (`starts_at` = the window's time);
it resolves at the first event or expiry where it no longer holds (`ends_at` = that time).
An empty window never holds. If `realert` holds the episode back, the key keeps "holding"
and the runtime's retry timer fires it (with the original start) if the condition still
holds then; an event or expiry where it does not cancels the retry.

Per-key state (plain JSON data): `t` sample times (sorted), `v` sample values (when the kind
needs them), `c` distinct-value counts (distinct windows), `now`, `holding`, `due` (the
pending expiry timer) and `last_event` (the template fields of the event a held-back episode
will render).

A key's state is forgotten (`expired`) once its window has emptied: the expiry timer of its
newest sample has fired (no samples, no `due`), nothing is held back by `realert`, and its
clock `now` is at or before the watermark. The next event then starts the window exactly as a
never-seen key's first event does.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel

from ioc.events.schemas import SCHEMAS
from ioc.rules.expr import EMPTY, Expression
from ioc.rules.kinds.base import BuildContext, Key, KindProblem, RuleKind, Runtime, State
from ioc.timeutil import format_duration

__all__ = [
    "SOFT_ERRORS",
    "SlidingRule",
    "check_positive",
    "compile_condition",
    "compile_field",
    "is_number",
    "number_fields",
    "reject_value",
]

# Errors that mean "this value does not fit" (None > 3, "a" + 1, x / 0): treated as false/absent.
SOFT_ERRORS = (TypeError, ValueError, ArithmeticError, KeyError, IndexError)
_NUMBER_TYPES = (int, float)


def _leaf_types(annotation: Any) -> set[Any]:
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        return _leaf_types(args[0])
    if not args:
        return {annotation}
    found: set[Any] = set()
    for arg in args:
        found |= _leaf_types(arg)
    return found


def number_fields(stream: str, model: type[BaseModel] | None = None) -> frozenset[str]:
    """Declared fields of `stream` (of `model`, its schema with a deployment's declared fields,
    if given) that hold numbers (int or float, never bool or text)."""
    names = set()
    for name, info in (SCHEMAS[stream] if model is None else model).model_fields.items():
        leaves = _leaf_types(info.annotation) - {type(None)}
        if leaves and leaves <= {int, float}:
            names.add(name)
    return frozenset(names)


def compile_field(ctx: BuildContext, text: str, *, numeric: bool, purpose: str) -> Expression:
    """Compile `field` (an event field name, or an expression over the event and reference data).

    With `numeric`, a bare field name must be a number field of the stream; `purpose` says why
    in the error ("agg 'sum'").
    """
    expr = ctx.expression("field", text)
    name = text.strip()
    if numeric and name.isidentifier() and name in ctx.fields:
        allowed = number_fields(ctx.stream, ctx.schemas.model(ctx.stream))
        if name not in allowed:
            raise KindProblem(
                "field",
                f"'{name}' is not a number field of stream '{ctx.stream}'; {purpose} needs one"
                f" (allowed: {', '.join(sorted(allowed))})",
            )
    return expr


def compile_condition(ctx: BuildContext, text: str, names: Iterable[str]) -> Expression:
    """Compile `condition` over the window's own names (`value`, `count`...), not event fields."""
    return ctx.compile("condition", text, frozenset(names))


def check_positive(field: str, seconds: float) -> float:
    if seconds <= 0:
        raise KindProblem(field, f"'{format_duration(seconds)}' must be longer than 0s (e.g. 5m)")
    return seconds


def reject_value(spec_value: str | None, kind: str, what: str) -> None:
    """The common `value:` expression does not apply: the alert's value is the window's."""
    if spec_value is not None:
        raise KindProblem("value", f"not used by kind '{kind}': the alert's value is {what}")


def is_number(x: Any) -> bool:
    return x.__class__ in _NUMBER_TYPES and math.isfinite(x)


class SlidingRule(RuleKind):
    """A continuous kind over a per-key sliding window; subclasses say what a sample is and
    whether the window's condition holds."""

    width: float
    keep_values: bool = True  # store a value per sample (count windows need only the times)
    distinct: bool = False  # keep counts of each value's text in `c` (distinct windows)

    @abstractmethod
    def sample(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
        """What the event adds to the window; None: the event is ignored."""

    @abstractmethod
    def measure(self, state: State) -> tuple[bool, Any]:
        """(condition holds, the alert value) for the window in `state` (never empty)."""

    def expired(self, state: State, watermark: float) -> bool:
        # An empty window with no expiry timer (`due`) due and no held-back episode. A clock
        # after the watermark would still matter: an event between the two is evaluated as of
        # the clock (or ignored, if a window older) here, but as of its own time for a new key.
        now = state.get("now")
        return (not state.get("t") and state.get("due") is None and state.get("holding") is None
                and (now is None or now <= watermark))

    # -- the two hooks -------------------------------------------------------------------------

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        sample = self.sample(event, ref)
        if sample is None:
            return
        times: list[float] | None = state.get("t")
        if times is None:
            times = state["t"] = []
            if self.keep_values:
                state["v"] = []
            if self.distinct:
                state["c"] = {}
            now = state["now"] = ts
        else:
            now = state["now"]
            if ts >= now:
                now = state["now"] = ts
                if times and times[0] <= ts - self.width:
                    self._evict(state, ts - self.width)
            elif ts <= now - self.width:
                return
        if not times or ts >= times[-1]:
            times.append(ts)
            if self.keep_values:
                state["v"].append(sample)
        else:
            at = bisect_right(times, ts)
            times.insert(at, ts)
            if self.keep_values:
                state["v"].insert(at, sample)
        if self.distinct:
            counts = state["c"]
            counts[sample] = counts.get(sample, 0) + 1
        holds, value = self.measure(state)
        if holds or state.get("firing") or state.get("holding") is not None:
            self._settle(rt, key, state, holds, value, now, event, ref)
        if state.get("due") is None:
            # An idle key must not keep its samples forever: drop them once all have expired.
            expiry = times[-1] + self.width
            rt.schedule(expiry, key)
            state["due"] = expiry

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        now = state.get("now")
        if now is None:
            return
        if deadline > now:
            # The watermark passed `deadline`: no event of the key can be older, move the clock.
            now = state["now"] = deadline
            self._evict(state, deadline - self.width)
        due = state.get("due")
        if due is not None and due <= deadline:
            state["due"] = None
        times = state["t"]
        if state.get("firing") or state.get("holding") is not None:
            holds, value = self.measure(state) if times else (False, None)
            self._settle(rt, key, state, holds, value, now, None, EMPTY)
        if times and state.get("due") is None:
            expiry = times[-1] + self.width
            rt.schedule(expiry, key)
            state["due"] = expiry

    # -- episodes ---------------------------------------------------------------------------

    def _settle(
        self, rt: Runtime, key: Key, state: State, holds: bool, value: Any, now: float,
        event: Mapping[str, Any] | None, ref: Mapping[str, Any],
    ) -> None:
        if state.get("firing"):
            if not holds:
                rt.resolve(key, state, ends_at=now)
                return
            if event is not None:
                rt.note(state, event)
            self._arm(rt, key, state, now)
            return
        since = state.get("holding")
        if not holds:
            if since is not None:
                state["holding"] = None
                state.pop("last_event", None)
            return
        if event is None:
            if since is None:
                return  # an episode starts at an event, never at an expiry
            event, ref = state.get("last_event") or EMPTY, EMPTY
        elif since is None:
            since = now
        rt.fire(key, state, starts_at=since, value=value, event=event, ref=ref)
        if state.get("firing"):
            state["holding"] = None
            state.pop("last_event", None)
        else:
            # Held back by `realert`: the runtime retries at the end of the interval.
            state["holding"] = since
            state["last_event"] = rt.project(event, ref)
        self._arm(rt, key, state, now)

    def _arm(self, rt: Runtime, key: Key, state: State, now: float) -> None:
        """Make sure a timer is due when the oldest sample leaves the window."""
        times = state["t"]
        if not times:
            return
        expiry = times[0] + self.width
        due = state.get("due")
        if due is None or expiry < due or due <= now:
            rt.schedule(expiry, key)
            state["due"] = expiry

    def _evict(self, state: State, cutoff: float) -> None:
        """Drop samples at or before `cutoff` (the window is open on the left)."""
        times = state["t"]
        n = bisect_right(times, cutoff)
        if not n:
            return
        if self.keep_values:
            values = state["v"]
            if self.distinct:
                counts = state["c"]
                for gone in values[:n]:
                    left = counts[gone] - 1
                    if left:
                        counts[gone] = left
                    else:
                        del counts[gone]
            del values[:n]
        del times[:n]
