"""`spike`: a key's current window compared with its own baseline window just before it.

>>> # rules/camera.yaml
>>> # - id: camera.violations.spike
>>> #   stream: camera
>>> #   kind: spike
>>> #   where: "event_type in ['red_light', 'no_helmet', 'wrong_lane', 'wrong_way']"
>>> #   window: 1h
>>> #   baseline: 7d
>>> #   ratio: 3.0
>>> #   min_count: 20
>>> #   summary: "Camera {source_id}: {current} vi phạm/giờ, gấp {ratio:.1f} lần bình thường"

Windows are made of buckets of `bucket` seconds (default: `window / 10` or `1m`, whichever is
larger, never more than `window`; it must divide `window` and `baseline`). A bucket starts at a
multiple of `bucket` since the epoch. At time `t`, let `B` be the start of the bucket holding
`t`:

* the current window is the `window / bucket` buckets ending with `B`:
  `[B + bucket - window, B + bucket)`;
* the baseline window is the `baseline / bucket` buckets just before it:
  `[B + bucket - window - baseline, B + bucket - window)`.

Aggregates (`agg`): `count` of events, or `sum` / `avg` of `field` (an expression over the event;
events where it is missing or not a number are ignored by the rule). The baseline is normalised
to the current window's length: `baseline = baseline_agg * window / baseline` for `count` and
`sum`, the baseline average as is for `avg`.

The condition (`direction`):

* `up` (default): at least `min_count` events in the current window and
  `current >= ratio * baseline`. An empty baseline counts as 0 for `count`/`sum` (any
  `min_count` events spike); for `avg` it never holds;
* `down`: at least `min_count` events in the baseline window and
  `current <= baseline / ratio` (an empty current window is 0 for `count`/`sum`, no average
  for `avg`, which then does not hold).

History: a key is judged only once its history covers a baseline window, i.e. from the time
its first event's bucket is the first bucket of the baseline window (`window + baseline - bucket`
after that bucket's start); before that, a missing baseline would make every new key (or every
key after a restart without a snapshot) look like a spike. `alert_on_new_data: true` judges keys
at once, a short or empty history counting as it is (as ElastAlert's option of that name).

Timing, per key, in event time:

* the key's time is the largest `ts` of its events (an event that arrives out of order, within
  the allowed lateness, is added to its own bucket but evaluated at the key's time);
* at each event of the key the condition is evaluated at the key's time; it **fires** when the
  condition holds and the key is not firing (`starts_at` = the key's time, usually the event's
  `ts`); it never fires without an event (a key that falls silent is `absence`'s job), except
  when a `realert` interval held a firing back: then it fires at the interval's end if the
  condition still holds;
* while firing, it is also evaluated when the watermark passes the next bucket boundary where
  a bucket with events leaves the current window or the baseline; it **resolves** at the first
  event or boundary where the condition does not hold (`ends_at` = that time). At the latest
  that is when the current window has emptied (`up`) or the baseline has (`down`).

`value` = `ratio` = current / baseline (null when the baseline is 0 or empty), and `details` =
`{"current": ..., "baseline": ..., "ratio": ...}`; templates may also use `current`, `baseline`
and `ratio`.

Per-key state (plain data): `t` key time, `at` start of its current bucket, `since` start of
the bucket of its first event, `b` the buckets with events as `[start, count, sum]` in
ascending order (only those inside the baseline and current windows), `nb` how many of them are
baseline buckets, `cur`/`base` running `[count, sum]` of the two windows, `held`/`last_event`
while a realert interval holds a firing back.

When a key's state is forgotten (`expired`): only with `alert_on_new_data: true`, once every
bucket of the key is older than the baseline window of the watermark's bucket (the key's next
event slides them all out), nothing is held back by `realert`, the key's time is at or before
the watermark and its episode is over. Without `alert_on_new_data` a key is never forgotten:
`since` is what lets a key with history be judged at once, and a forgotten key would come back
as a new one, silent until its history covers a baseline again (an empty baseline after a
silence is a spike; for a new key it is not yet judged).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from operator import itemgetter
from typing import Any, Literal

from ioc.rules.expr import Expression
from ioc.rules.kinds.base import BuildContext, Key, KindProblem, Problems, RuleKind, Runtime, State
from ioc.rules.model import Duration, RuleSpec
from ioc.timeutil import format_duration

__all__ = ["MAX_BUCKETS", "SpikeSpec", "SpikeRule"]

# window + baseline in buckets: bounds per-key state and the work of one window slide.
MAX_BUCKETS = 20_000
_SOFT_ERRORS = (TypeError, ValueError, ArithmeticError, KeyError, IndexError)
_INF = math.inf
_START = itemgetter(0)


class SpikeSpec(RuleSpec):
    kind: Literal["spike"] = "spike"
    window: Duration
    baseline: Duration
    ratio: float
    agg: Literal["count", "sum", "avg"] = "count"
    field: str | None = None
    direction: Literal["up", "down"] = "up"
    min_count: int = 1
    bucket: Duration | None = None
    alert_on_new_data: bool = False


class SpikeRule(RuleKind):
    """Evaluates one `spike` rule; see the module docstring for the exact semantics."""

    Spec = SpikeSpec
    EXPRESSION_FIELDS = ("field",)
    TEMPLATE_NAMES = frozenset({"value", "current", "baseline", "ratio"})

    def __init__(self, spec: SpikeSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            if spec.value is not None:
                raise KindProblem("value", "is not used by kind 'spike' (the value is the ratio current/baseline)")
        with found:
            if spec.window <= 0:
                raise KindProblem("window", f"{_dur(spec.window)!r} must be more than 0 (e.g. 1h)")
        with found:
            if spec.baseline <= 0:
                raise KindProblem("baseline", f"{_dur(spec.baseline)!r} must be more than 0 (e.g. 7d)")
        with found:
            if not (math.isfinite(spec.ratio) and spec.ratio > 1):
                raise KindProblem("ratio", f"{spec.ratio!r} must be a number more than 1 (e.g. 3.0: three times the"
                                           " baseline, or a third of it for direction down)")
        with found:
            if spec.min_count < 1:
                raise KindProblem("min_count", f"{spec.min_count!r} must be at least 1")
        self.value_of: Expression | None = None
        with found:
            if spec.agg == "count":
                if spec.field is not None:
                    raise KindProblem("field", "is only used with agg sum or avg (agg is count)")
            else:
                if spec.field is None:
                    raise KindProblem("field", f"required with agg {spec.agg} (the event field or expression to"
                                               f" {spec.agg})")
                self.value_of = ctx.expression("field", spec.field)
        # The bucket divides window and baseline: checked when both are valid.
        if not found.failed("window", "baseline"):
            with found:
                self.bucket = _bucket(spec)
        found.raise_any()
        self.window = spec.window
        self.baseline = spec.baseline
        self.ratio = spec.ratio
        self.min_count = spec.min_count
        self.up = spec.direction == "up"
        self.avg = spec.agg == "avg"
        self.count = spec.agg == "count"
        # A key is judged once its first bucket is the first of a baseline window (at - history).
        self.history = 0.0 if spec.alert_on_new_data else spec.window + spec.baseline - self.bucket

    @property
    def template_names(self) -> frozenset[str]:
        return self.TEMPLATE_NAMES

    # -- evaluation ---------------------------------------------------------------------------

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        x: Any = 0
        if self.value_of is not None:
            try:
                x = self.value_of.fn(event, ref)
            except _SOFT_ERRORS:
                return
            if (type(x) is not float and type(x) is not int) or not -_INF < x < _INF:
                return
        bucket = self.bucket
        now = state.get("t")
        start = ts - ts % bucket
        if now is None:
            now = state["t"] = ts
            state.update(since=start, at=start, b=[], nb=0, cur=[0, 0], base=[0, 0])
        elif ts > now:
            now = state["t"] = ts
            if start != state["at"]:
                self._slide(state, start)
        elif start < state["since"]:
            state["since"] = start
        cur_first = state["at"] + bucket - self.window
        if start >= cur_first:
            total = state["cur"]
        elif start >= cur_first - self.baseline:
            total = state["base"]
        else:
            total = None  # out of order and older than the baseline: no longer counted
        if total is not None:
            buckets = state["b"]
            if buckets and buckets[-1][0] == start:
                entry = buckets[-1]
                entry[1] += 1
                entry[2] += x
            elif not buckets or buckets[-1][0] < start:
                buckets.append([start, 1, x])
                if start < cur_first:
                    state["nb"] += 1
            else:
                _insert(state, buckets, start, x, start < cur_first)
            total[0] += 1
            total[1] += x
        self._evaluate(rt, key, state, now, event, ref)

    def expired(self, state: State, watermark: float) -> bool:
        if self.history or state.get("held"):
            return False  # `since` matters for ever (see the module docstring); a retry is due
        now = state.get("t")
        if now is None:
            return True
        if now > watermark:
            return False  # an event before the key's time would be evaluated at that time
        buckets = state["b"]
        if not buckets:
            return True
        # Any event still to come is in the watermark's bucket or later: moving there drops
        # every bucket older than that bucket's baseline window, and the running totals with
        # them. (No timer evaluates a key that is neither firing nor held.)
        at = watermark - watermark % self.bucket
        return bool(buckets[-1][0] < at + self.bucket - self.window - self.baseline)

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        now = state.get("t")
        if now is None or deadline < now:
            return  # stale: a later evaluation of the key has scheduled its own timer
        if not state.get("firing") and not state.get("held"):
            return
        state["t"] = deadline
        at = deadline - deadline % self.bucket
        if at != state["at"]:
            self._slide(state, at)
        self._evaluate(rt, key, state, deadline, None, {})

    def _evaluate(
        self, rt: Runtime, key: Key, state: State, now: float, event: Mapping[str, Any] | None,
        ref: Mapping[str, Any],
    ) -> None:
        cn, cs = state["cur"]
        bn, bs = state["base"]
        holds = False
        if state["since"] + self.history > state["at"]:
            pass  # not enough history for a baseline yet
        elif self.avg:
            if cn and bn:
                current = cs / cn
                base = bs / bn
                if self.up:
                    holds = cn >= self.min_count and current >= self.ratio * base
                else:
                    holds = bn >= self.min_count and current * self.ratio <= base
        else:
            # Cross-multiplied (current * baseline vs ratio * base * window): exact for counts.
            current = cn if self.count else cs
            base = bn if self.count else bs
            if self.up:
                holds = cn >= self.min_count and current * self.baseline >= self.ratio * base * self.window
            else:
                holds = bn >= self.min_count and current * self.baseline * self.ratio <= base * self.window
        if not holds:
            if state.get("held"):
                state["held"] = False
                state.pop("last_event", None)
            if state.get("firing"):
                rt.resolve(key, state, ends_at=now)
            return
        if not state.get("firing"):
            if event is None:
                event = state.get("last_event")
            windows = self.value(state)
            # The templates read current/baseline/ratio with the event's fields; the record's value
            # is the ratio, the windows are its details.
            rt.fire(key, state, starts_at=now, value=windows["ratio"],
                    event={**event, **windows} if event else windows, ref=ref, details=windows)
            if not state.get("firing"):
                # A realert interval holds it back; the runtime retries at its end.
                state["held"] = True
                state["last_event"] = rt.project(event or {}, ref)
                return
            if state.get("held"):
                state["held"] = False
                state.pop("last_event", None)
        self._schedule_next(rt, key, state)

    def value(self, state: State) -> dict[str, Any]:
        """The alert value of a key's state: current, normalised baseline and their ratio."""
        cn, cs = state["cur"]
        bn, bs = state["base"]
        if self.avg:
            current: float | None = cs / cn if cn else None
            base: float | None = bs / bn if bn else None
        else:
            current = cn if self.count else cs
            base = (bn if self.count else bs) * self.window / self.baseline
        ratio = current / base if current is not None and base else None
        return {"current": current, "baseline": base, "ratio": ratio}

    # -- buckets ------------------------------------------------------------------------------

    def _slide(self, state: State, at: float) -> None:
        """Move the windows so that `at` is the current bucket: buckets pass from the current
        window to the baseline, and out of it; the running totals follow."""
        state["at"] = at
        cur_first = at + self.bucket - self.window
        base_first = cur_first - self.baseline
        buckets = state["b"]
        nb = state["nb"]
        cur = state["cur"]
        base = state["base"]
        n = len(buckets)
        while nb < n and buckets[nb][0] < cur_first:
            _, count, total = buckets[nb]
            cur[0] -= count
            cur[1] -= total
            base[0] += count
            base[1] += total
            nb += 1
        drop = 0
        while drop < nb and buckets[drop][0] < base_first:
            _, count, total = buckets[drop]
            base[0] -= count
            base[1] -= total
            drop += 1
        if drop:
            del buckets[:drop]
            nb -= drop
        state["nb"] = nb
        # Running float sums: an empty window is exactly 0, not a rounding residue.
        if not cur[0]:
            cur[1] = 0
        if not base[0]:
            base[1] = 0

    def _schedule_next(self, rt: Runtime, key: Key, state: State) -> None:
        """A timer at the next boundary where a bucket with events changes window."""
        buckets = state["b"]
        nb = state["nb"]
        deadline = _INF
        if nb < len(buckets):
            deadline = buckets[nb][0] + self.window
        if nb:
            deadline = min(deadline, buckets[0][0] + self.window + self.baseline)
        if deadline < _INF:
            rt.schedule(deadline, key)


def _insert(state: State, buckets: list[list[Any]], start: float, x: Any, in_baseline: bool) -> None:
    """An out-of-order event into an older bucket (in its place, buckets stay sorted)."""
    i = bisect_left(buckets, start, key=_START)
    if buckets[i][0] == start:
        buckets[i][1] += 1
        buckets[i][2] += x
    else:
        buckets.insert(i, [start, 1, x])
        if in_baseline:
            state["nb"] += 1


def _bucket(spec: SpikeSpec) -> float:
    """The bucket length: given or default, whole seconds, dividing window and baseline."""
    default = spec.bucket is None
    bucket = min(spec.window, max(60.0, spec.window / 10)) if spec.bucket is None else spec.bucket
    shown = f"bucket {_dur(bucket)!r}" + (" (the default: window/10 or 1m, whichever is larger)" if default else "")
    hint = "; set bucket to a duration that divides both" if default else ""
    if bucket <= 0:
        raise KindProblem("bucket", f"{shown} must be more than 0 (e.g. 1m)")
    if not bucket.is_integer():
        raise KindProblem("bucket", f"{shown} must be a whole number of seconds{hint}")
    if spec.window % bucket:
        raise KindProblem("bucket", f"{shown} must divide window {_dur(spec.window)!r}{hint}")
    if spec.baseline % bucket:
        raise KindProblem("bucket", f"{shown} must divide baseline {_dur(spec.baseline)!r}{hint}")
    count = (spec.window + spec.baseline) / bucket
    if count > MAX_BUCKETS:
        raise KindProblem("bucket", f"{shown} makes window + baseline {int(count)} buckets (at most {MAX_BUCKETS}:"
                                    " use a larger bucket)")
    return bucket


def _dur(seconds: float) -> str:
    """A duration as analysts write it (exact for whole seconds)."""
    return format_duration(seconds) if float(seconds).is_integer() else f"{seconds:g}s"


KIND = SpikeRule
