"""`rate`: change per unit time of a numeric field over a sliding window per key.

>>> # rules/reservoir.yaml: the lake rises faster than 0.5 m per hour
>>> # - id: reservoir.level.rising_fast
>>> #   stream: reservoir
>>> #   kind: rate
>>> #   field: level_m
>>> #   window: 1h
>>> #   per: 1h
>>> #   condition: "value > 0.5"

Over the samples of the key's window `(t - window, t]` (an event whose `field` is missing or
not a number adds none), with `first` and `last` the earliest and latest samples:

    value = (last - first) / (t_last - t_first) * per

defined only with at least two samples spanning at least `min_span` (default window/2);
otherwise the condition does not hold. `condition` reads `value`, `delta` (`last - first`,
in the field's unit), `span` (`t_last - t_first`, seconds) and `count` (samples). Episodes
are continuous, with the sliding-window timing of `ioc.rules.kinds.windowing`: fires at the
first event where the condition holds (`starts_at` = its time), resolves at the first event or
expiry (watermark past `oldest + window`) where it does not (`ends_at` = that time).

A key's state is forgotten (`expired`) as a sliding window's is: once its window has emptied
(the expiry of its newest sample passed), nothing is held back by `realert` and its episode is
over; its next event then starts afresh, as a never-seen key's would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from ioc.rules.expr import EMPTY
from ioc.rules.kinds.base import BuildContext, KindProblem, Problems, State
from ioc.rules.kinds.windowing import (
    SOFT_ERRORS,
    SlidingRule,
    check_positive,
    compile_condition,
    compile_field,
    is_number,
    reject_value,
)
from ioc.rules.model import Duration, RuleSpec
from ioc.timeutil import format_duration

__all__ = ["RateSpec", "RateRule", "CONDITION_NAMES"]

CONDITION_NAMES = ("value", "delta", "span", "count")


class RateSpec(RuleSpec):
    kind: Literal["rate"] = "rate"
    field: str
    window: Duration
    per: Duration = 3600.0
    min_span: Duration | None = None
    condition: str


class RateRule(SlidingRule):
    Spec = RateSpec
    # `condition` reads `value`/`delta`/`span`/`count`, not event fields.
    EXPRESSION_FIELDS = ("field",)
    spec: RateSpec

    def __init__(self, spec: RateSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            reject_value(spec.value, "rate", f"the rate per '{format_duration(spec.per)}'")
        with found:
            self.extract: Callable[[Mapping[str, Any], Mapping[str, Any]], Any] = compile_field(
                ctx, spec.field, numeric=True, purpose="kind 'rate'"
            ).fn
        with found:
            self.width = check_positive("window", spec.window)
        with found:
            self.per = check_positive("per", spec.per)
        min_span = spec.window / 2 if spec.min_span is None else spec.min_span
        with found:
            if spec.min_span is not None:
                check_positive("min_span", min_span)
            if min_span >= spec.window and not found.failed("window"):
                raise KindProblem(
                    "min_span",
                    f"'{format_duration(min_span)}' must be shorter than window '{format_duration(spec.window)}'"
                    " (the samples of a window span less than the window)",
                )
        self.min_span = min_span
        with found:
            self.condition = compile_condition(ctx, spec.condition, CONDITION_NAMES).fn
        found.raise_any()
        self.names: dict[str, Any] = {"value": None, "delta": None, "span": 0.0, "count": 0}

    def sample(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
        try:
            x = self.extract(event, ref)
        except SOFT_ERRORS:
            return None
        return x if x is not None and is_number(x) else None

    def measure(self, state: State) -> tuple[bool, Any]:
        times = state["t"]
        span = times[-1] - times[0]
        if span < self.min_span or span <= 0:
            return False, None
        values = state["v"]
        delta = values[-1] - values[0]
        value = delta / span * self.per
        names = self.names
        names["value"] = value
        names["delta"] = delta
        names["span"] = span
        names["count"] = len(times)
        try:
            return bool(self.condition(names, EMPTY)), value
        except SOFT_ERRORS:
            return False, value


KIND = RateRule
