"""Kinds decided by one event or one silence: `absence`, `match` and `new_value`.

These kinds have no analyst condition to substitute (or not only one): each explanation writes
the kind's own test as an expression over what the replay measured (`silent_for >= timeout`,
`new not in recent`, `len(found) >= 1` with the patterns found again in the event's text), so
that it, too, re-evaluates.
"""

from __future__ import annotations

from ioc.analysis.explain.base import Case, Explainer, values_of
from ioc.analysis.explain.model import Detail, Explanation, check
from ioc.rules.render import names_of, show
from ioc.timeutil import format_duration, format_local

__all__ = ["AbsenceExplainer", "MatchExplainer", "NewValueExplainer"]


class AbsenceExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        kind = case.kind
        last = fire.before.get("last")
        last_step = None
        for step in case.events_before(case.fire):
            if last is not None and step.at == last:
                last_step = step
        if last_step is not None:
            ref = case.ref(last_step, "last seen")
            if ref is not None:
                out.events.append(ref)
        if isinstance(last, (int, float)):
            out.details.append(Detail("silence", f"last event at {format_local(last)} ICT, nothing for "
                                                 f"{format_duration(fire.at - last)} "
                                                 f"(timeout {format_duration(kind.timeout)})"))
            out.checks.append(check("timeout", "silent_for >= timeout", {"silent_for": fire.at - last,
                                                                          "timeout": kind.timeout},
                                    "seconds of silence when the watermark passed the deadline"))
        else:
            out.details.append(Detail("silence", f"expected from reference data, never heard from (timeout "
                                                 f"{format_duration(kind.timeout)})"))

    def resolved(self, case: Case, out: Explanation) -> None:
        super().resolved(case, out)
        res = out.resolution
        if res is not None and case.resolve is not None and case.steps[case.resolve].event is not None:
            res.text = f"resolved: the key was heard from again at {format_local(case.steps[case.resolve].at)} ICT"
            res.check = None


class MatchExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None or fire.event is None:
            super().fired(case, out)
            return
        spec, kind = case.spec, case.kind
        names = frozenset(spec.fields) | (names_of(spec.condition) if spec.condition else frozenset())
        ref = case.ref(fire, "trigger", names)
        if ref is not None:
            out.events.append(ref)
        texts = {name: fire.event.get(name) for name in spec.fields if fire.event.get(name) is not None}
        found = kind._search(kind._text(fire.event)) if kind._text(fire.event) else None  # noqa: SLF001
        found_list = list(found) if found is not None else []
        out.details.append(Detail("matched", f"{show(found_list)} in " +
                                  "; ".join(f"{name}: {show(text)}" for name, text in texts.items()),
                                  {"found": found_list, "text": texts}))
        out.checks.append(check("match", "len(found) >= 1", {"found": found_list},
                                "the patterns found again in the event's text"))
        if spec.condition:
            out.checks.append(check("condition", spec.condition, values_of(fire, names_of(spec.condition))))


class NewValueExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None or fire.event is None:
            super().fired(case, out)
            return
        spec, kind = case.spec, case.kind
        ref = case.ref(fire, "trigger", [spec.field])
        if ref is not None:
            out.events.append(ref)
        value = fire.event.get(spec.field)
        seen = fire.before.get("seen") or {}
        recent = [text for text, at in seen.items() if fire.at - at <= kind.lookback]
        first = fire.before.get("first", fire.at)
        out.details.append(Detail("new value", f"{spec.field} {show(value)}: not among the {len(recent)} values seen "
                                               f"for this key in the lookback of {format_duration(kind.lookback)}",
                                  {"value": value, "recent": recent}))
        out.checks.append(check("new", "new not in recent and since_first >= learning",
                                {"new": value if isinstance(value, str) else str(value), "recent": recent,
                                 "since_first": fire.at - min(first, fire.at), "learning": kind.learning},
                                "values are compared as text, as the kind compares them"))
