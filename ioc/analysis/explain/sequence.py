"""`sequence`: the events that made each step, in order, within `within`, and each step's
condition with the values of its event."""

from __future__ import annotations

from ioc.analysis.explain.base import Case, Explainer, values_of
from ioc.analysis.explain.model import Detail, Explanation, check
from ioc.rules.render import names_of
from ioc.timeutil import format_duration, format_local, parse_ts

__all__ = ["SequenceExplainer"]


class SequenceExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None or fire.event is None:
            super().fired(case, out)
            return
        spec = case.spec
        value = case.fired_details
        times = [parse_ts(text) for text in value.get("steps") or ()]
        evidence = {str(item) for item in case.record.get("evidence") or ()}
        candidates = case.events_before(case.fire)
        used: set[int] = set()
        for index, (step_spec, at) in enumerate(zip(spec.steps, times, strict=False)):
            condition = getattr(step_spec, "condition", None)
            if not isinstance(condition, str):
                # A step without a condition (an absence step, say): the generic listing covers it.
                out.details.append(Detail(step_spec.name or f"step {index + 1}", f"at {format_local(at)} ICT"))
                continue
            names = names_of(condition)
            label = step_spec.name or f"step {index + 1}"
            chosen = fire if index == len(spec.steps) - 1 else None
            if chosen is None:
                here = [s for s in candidates if s.at == at and s.stream == step_spec.stream and id(s) not in used]
                marked = [s for s in here if s.event is not None
                          and str(s.event.get("id") or s.event.get("_pos")) in evidence]
                holding = [s for s in (marked or here) if check("", condition, values_of(s, names)).holds]
                ranked = holding or marked or here
                chosen = ranked[0] if ranked else None
            if chosen is None:
                out.details.append(Detail(label, f"no event of {step_spec.stream} at {format_local(at)} ICT "
                                                 "in the replay"))
                continue
            used.add(id(chosen))
            ref = case.ref(chosen, label, names)
            if ref is not None:
                out.events.append(ref)
            out.checks.append(check(label, condition, values_of(chosen, names),
                                    f"{step_spec.stream} at {format_local(chosen.at)} ICT"))
        if times:
            out.details.append(Detail("within", f"{len(times)} steps from {format_local(times[0])} to "
                                                f"{format_local(times[-1])} ICT: "
                                                f"{format_duration(times[-1] - times[0])}"
                                                f" (within {format_duration(spec.within)})"))
