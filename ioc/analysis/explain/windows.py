"""Kinds over a window of samples: `window` (sliding, tumbling, hopping), `rate` and `spike`.

The window's contents at the firing moment are the key's events inside it that gave a sample;
the condition is shown with the aggregate (`value`, `count`, and `delta`/`span` for a rate), and
a spike's test is written out as the expression the kind computes (cross-multiplied, exact).
"""

from __future__ import annotations

from typing import Any

from ioc.analysis.explain.base import MAX_EVENTS, Case, Explainer
from ioc.analysis.explain.model import Detail, Explanation, check
from ioc.analysis.explain.trace import Step
from ioc.rules.render import show
from ioc.timeutil import format_duration, format_local

__all__ = ["WindowExplainer", "RateExplainer", "SpikeExplainer"]


def _samples(case: Case, low: float, high: float, closed_low: bool, upto: int | None,
             sample: Any = None) -> list[tuple[Step, Any]]:
    """Event steps in the window (low, high] (or [low, high) when `closed_low`) with their samples."""
    sample_of = sample or case.kind.sample
    out = []
    for step in case.events_before(upto):
        inside = (low <= step.at < high) if closed_low else (low < step.at <= high)
        if not inside or step.event is None:
            continue
        value = sample_of(step.event, step.ref)
        if value is not None:
            out.append((step, value))
    return out


def _list(case: Case, out: Explanation, samples: list[tuple[Step, Any]], field: str | None) -> None:
    names = [field] if field else []
    for step, _ in samples[-MAX_EVENTS:]:
        ref = case.ref(step, "window", names)
        if ref is not None:
            out.events.append(ref)
    shown = ", ".join(f"{format_local(step.at)[11:]} {show(sample)}" for step, sample in samples[-MAX_EVENTS:])
    more = f" ({len(samples) - MAX_EVENTS} earlier not listed)" if len(samples) > MAX_EVENTS else ""
    out.details.append(Detail("window", f"{len(samples)} samples: {shown}{more}",
                              [[step.at, sample] for step, sample in samples]))


class WindowExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        spec, kind = case.spec, case.kind
        value = case.fired_value
        if spec.type == "sliding":
            now = fire.after.get("now", fire.at)
            samples = _samples(case, now - kind.width, now, False, case.fire)
            span = f"sliding window ({format_local(now - kind.width)}, {format_local(now)}] ICT"
            count = len(fire.after.get("t") or ()) or len(samples)
        else:
            start = case.record["_starts_at"]
            samples = _samples(case, start, start + kind.width, True, case.fire)
            span = f"{spec.type} window [{format_local(start)}, {format_local(start + kind.width)}) ICT"
            count = len(samples)
        what = spec.agg if spec.agg == "count" else f"{spec.agg} of {spec.field}"
        out.details.append(Detail("aggregate", f"{what} over the {span}: {show(value)}"))
        _list(case, out, samples, spec.field)
        out.checks.append(check("condition", spec.condition, {"value": value, "count": count}))


class RateExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        spec, kind = case.spec, case.kind
        times, values = fire.after.get("t") or [], fire.after.get("v") or []
        now = fire.after.get("now", fire.at)
        samples = _samples(case, now - kind.width, now, False, case.fire)
        _list(case, out, samples, spec.field)
        if len(times) >= 2:
            span = times[-1] - times[0]
            delta = values[-1] - values[0]
            names = {"value": delta / span * kind.per, "delta": delta, "span": span, "count": len(times)}
            out.details.append(Detail(
                "rate", f"{spec.field}: {show(values[0])} at {format_local(times[0])} -> {show(values[-1])} at "
                        f"{format_local(times[-1])} ICT: {show(delta)} in {format_duration(span)}, "
                        f"{show(names['value'])} per {format_duration(kind.per)}"))
            out.checks.append(check("condition", spec.condition, names))


class SpikeExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        spec, kind = case.spec, case.kind
        state = fire.after
        (cn, cs), (bn, bs) = state["cur"], state["base"]
        now = state.get("t", fire.at)
        samples = _samples(case, now - spec.window, now, False, case.fire,
                           lambda event, ref: _spike_sample(kind, event, ref))
        _list(case, out, samples, spec.field)
        value = case.fired_details
        out.details.append(Detail(
            "spike", f"current window {format_duration(spec.window)}: {show(value.get('current'))}, baseline "
                     f"{format_duration(spec.baseline)} (scaled to the window): {show(value.get('baseline'))}, "
                     f"ratio {show(value.get('ratio'))} ({spec.direction}, at least {spec.ratio})", value))
        if spec.agg == "avg":
            names = {"current": cs / cn if cn else None, "baseline": bs / bn if bn else None, "ratio": kind.ratio,
                     "current_count": cn, "baseline_count": bn, "min_count": kind.min_count}
            text = ("current_count >= min_count and current >= ratio * baseline" if spec.direction == "up" else
                    "baseline_count >= min_count and current * ratio <= baseline")
        else:
            current, base = (cn, bn) if spec.agg == "count" else (cs, bs)
            names = {"current": current, "baseline_total": base, "ratio": kind.ratio, "window_s": kind.window,
                     "baseline_s": kind.baseline, "current_count": cn, "baseline_count": bn,
                     "min_count": kind.min_count}
            text = ("current_count >= min_count and current * baseline_s >= ratio * baseline_total * window_s"
                    if spec.direction == "up" else
                    "baseline_count >= min_count and current * baseline_s * ratio <= baseline_total * window_s")
        out.checks.append(check("spike", text, names, "the kind's test, cross-multiplied as it computes it"))


def _spike_sample(kind: Any, event: Any, ref: Any) -> Any:
    if kind.value_of is None:
        return 1
    try:
        return kind.value_of(event, ref)
    except (TypeError, ValueError, ArithmeticError):
        return None
