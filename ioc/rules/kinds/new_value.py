"""`new_value`: the first time a field takes a value for a key within a lookback.

>>> # rules/cyber.yaml
>>> # - id: cyber.login.new_src_ip
>>> #   stream: cyber
>>> #   kind: new_value
>>> #   key: [user]
>>> #   where: "event_action == 'logon' and event_outcome == 'success'"
>>> #   field: src_ip
>>> #   lookback: 30d
>>> #   learning: 7d
>>> #   summary: "Tài khoản {user} đăng nhập từ địa chỉ mới {new_value}"

Per key, in event time (an instant kind: see `InstantRule`):

* values are compared as text: `str(value)` (so the port `22` and the text `"22"` are the same
  value); an event whose `field` is missing (null) is ignored, but still counts as the key's
  first event for `learning`;
* a value is **new** at an event at `ts` when the key has not seen it, or last saw it more than
  `lookback` before `ts` (seen exactly `lookback` earlier is not new); an event that arrives out
  of order, before the value's last sighting, is never new;
* a new value **matches** unless the key is still learning: the key learns from its first event
  (the earliest `ts` seen) until `first + learning`; from `first + learning` on, new values
  match. A match fires an alert (`starts_at` = the event's `ts`, `value` null: nothing is
  measured; `details.new_value` = the value as the event had it), or extends the key's current
  episode; the episode resolves `resolve_after` (default 5m) after its last match. A match
  inside `realert` after the last episode is dropped (the value is still learned);
* every event with a value records `ts` as the value's last sighting (the latest one wins).

Bounded state per key: `first` (the key's first `ts`) and `seen`, a dict `{str(value):
last_seen_ts}` kept in order of sighting. When a value is added (first seen, or back after more
than `lookback`), sightings older than `lookback` at the front are dropped, and, with
`max_values` values kept, the least recently seen one (the front) is evicted: an evicted value
that comes back is new again.

A key's state is forgotten (`expired`) once every value it remembers was last seen more than
`lookback` before the watermark (each would be new again, as for a never-seen key) and its
episode is over; only without `learning`, since `first` ends a key's learning for ever and a
forgotten key would come back learning.

Templates may use `new_value` (the value; `{value}` shows it too, as in rule files written
when it was the alert's value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin

from ioc.rules.kinds.base import BuildContext, InstantRule, InstantSpec, Key, KindProblem, Problems, Runtime, State
from ioc.rules.model import Duration
from ioc.timeutil import format_duration

__all__ = ["MAX_VALUES", "NewValueSpec", "NewValueRule"]

MAX_VALUES = 100_000
_DAY = 86400.0


class NewValueSpec(InstantSpec):
    kind: Literal["new_value"] = "new_value"
    field: str
    lookback: Duration = 30 * _DAY
    learning: Duration = 0.0
    max_values: int = 1000


class NewValueRule(InstantRule):
    """Evaluates one `new_value` rule; see the module docstring for the exact semantics."""

    Spec = NewValueSpec
    VALUE_ALIAS = "new_value"  # `{value}` in templates written when the value was the new value
    TEMPLATE_NAMES = frozenset({"value", "new_value"})
    spec: NewValueSpec

    def __init__(self, spec: NewValueSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            if spec.value is not None:
                raise KindProblem("value", "is not used by kind 'new_value' (the new value of field is in the "
                                           "alert's details)")
        with found:
            if spec.field not in ctx.fields:
                raise KindProblem("field", f"unknown field '{spec.field}' of stream '{ctx.stream}'"
                                           f" (allowed: {', '.join(sorted(ctx.fields))})")
            if spec.field in spec.key:
                key = ", ".join(spec.key)
                raise KindProblem("field", f"'{spec.field}' is part of the key [{key}]: every value would be a new"
                                           " key (use a field outside the key)")
            if _is_list(ctx.schemas.model(ctx.stream), spec.field):
                raise KindProblem("field", f"'{spec.field}' holds a list; new_value needs a field with one value"
                                           " per event")
        with found:
            if spec.lookback <= 0:
                raise KindProblem("lookback", f"'{format_duration(spec.lookback)}' must be more than 0 (e.g. 30d)")
        with found:
            if not 1 <= spec.max_values <= MAX_VALUES:
                raise KindProblem("max_values", f"{spec.max_values!r} must be between 1 and {MAX_VALUES}")
        found.raise_any()
        self.field = spec.field
        self.lookback = spec.lookback
        self.learning = spec.learning
        self.max_values = spec.max_values
        self.resolve_after = spec.resolve_after

    @property
    def template_names(self) -> frozenset[str]:
        return self.TEMPLATE_NAMES

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        first = state.get("first")
        if first is None or ts < first:
            first = state["first"] = ts
        value = event.get(self.field)
        if value is None:
            return
        text = value if type(value) is str else str(value)
        seen = state.get("seen")
        if seen is None:
            seen = state["seen"] = {}
        last = seen.get(text)
        if last is None:
            new = True
            self._make_room(seen, ts)
            seen[text] = ts
        elif ts > last:
            new = ts - last > self.lookback
            # Re-insert: the dict's order is the order of sightings, least recent first.
            del seen[text]
            if new:
                # Back after more than lookback: added as if never seen, so that stale sightings
                # ahead of it go as they would for a key that forgot them (see `expired`).
                self._make_room(seen, ts)
            seen[text] = ts
        else:
            new = False
        if new and ts - first >= self.learning:
            # The templates read `new_value` with the event's fields.
            rt.match(key, state, ts=ts, value=None, event={**event, "new_value": value}, ref=ref,
                     resolve_after=self.resolve_after, details={"new_value": value})

    def expired(self, state: State, watermark: float) -> bool:
        if self.learning > 0:
            return False  # `first` ends the learning for ever; a new key would learn again
        # A value last seen more than lookback before any event still to come is new, and the
        # next value added drops it (it is at the front: no sighting after the watermark is
        # older): the same as never seen.
        cutoff = watermark - self.lookback
        return all(last < cutoff for last in (state.get("seen") or {}).values())

    def _make_room(self, seen: dict[str, float], ts: float) -> None:
        """Before adding a value: drop sightings older than lookback, then the least recent
        while the key is full."""
        cutoff = ts - self.lookback
        limit = self.max_values
        while seen:
            oldest = next(iter(seen))
            if seen[oldest] < cutoff or len(seen) >= limit:
                del seen[oldest]
            else:
                break


def _is_list(model: Any, name: str) -> bool:
    """Whether field `name` of the event model (the stream's, with its declared fields) holds a list."""
    info = model.model_fields.get(name)
    if info is None:
        return False
    annotation = info.annotation
    candidates = [annotation, *get_args(annotation)]
    return any(c is list or get_origin(c) is list for c in candidates)


KIND = NewValueRule
