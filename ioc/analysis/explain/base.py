"""The shared part of every kind's explanation, and the fallback for kinds without their own.

A `Case` is one alert and the trace of its key (ioc.analysis.explain.trace); an `Explainer`
turns it into events, checks and details. Kinds register theirs in
ioc.analysis.explain.registry; a kind without one gets `Explainer` itself: the firing event,
the events of the record's evidence, and the rule's `condition` (if it has one) at firing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ioc.analysis.explain.model import Check, Detail, EventRef, Explanation, check
from ioc.analysis.explain.trace import WHERE, Step, Trace
from ioc.rules.render import names_of
from ioc.timeutil import format_duration, format_local

__all__ = ["Case", "Explainer", "MAX_EVENTS"]

MAX_EVENTS = 50  # events listed per role; the rest are counted


@dataclass
class Case:
    """One alert being explained: its record, the trace of its key, where it fired and resolved."""

    record: Mapping[str, Any]
    trace: Trace
    fire: int | None             # index in trace.steps of the step that fired the alert
    resolve: int | None          # ... and of the one that resolved it

    @property
    def rule(self) -> Any:
        return self.trace.rule

    @property
    def spec(self) -> Any:
        return self.trace.rule.spec

    @property
    def kind(self) -> Any:
        return self.trace.rule.kind

    @property
    def fired_value(self) -> Any:
        """The alert's value when it fired (a resolved record carries the last one)."""
        step = self.fire_step
        alert_id = self.record.get("alert_id")
        for alert in step.alerts if step is not None else ():
            if alert.alert_id == alert_id and alert.status == "firing":
                return alert.value
        return self.record.get("value")

    @property
    def fired_details(self) -> dict[str, Any]:
        """What the kind found besides the value when it fired (`details` of the record)."""
        step = self.fire_step
        alert_id = self.record.get("alert_id")
        for alert in step.alerts if step is not None else ():
            if alert.alert_id == alert_id and alert.status == "firing":
                return dict(alert.details)
        details = self.record.get("details")
        return dict(details) if isinstance(details, dict) else {}

    @property
    def steps(self) -> list[Step]:
        return self.trace.steps

    @property
    def fire_step(self) -> Step | None:
        return self.steps[self.fire] if self.fire is not None else None

    def events_before(self, index: int | None, since: float = float("-inf"), inclusive: bool = True) -> list[Step]:
        """Event steps up to step `index` (included), at or after `since`."""
        if index is None:
            return []
        end = index + 1 if inclusive else index
        return [s for s in self.steps[:end] if s.event is not None and s.at >= since]

    def last_event(self, index: int | None) -> Step | None:
        """The last event step at or before step `index`."""
        found = self.events_before(index)
        return found[-1] if found else None

    def ref(self, step: Step | None, role: str, names: Iterable[str] = ()) -> EventRef | None:
        """An EventRef for the event of `step`, with the fields in `names` (and the key's)."""
        if step is None or step.event is None:
            return None
        return event_ref(role, step.stream, step.event, names, self.rule.key_names)


def event_ref(role: str, stream: str, event: Mapping[str, Any], names: Iterable[str],
              key_names: Iterable[str] = ()) -> EventRef:
    where = event.get(WHERE) or event.get("_pos") or ""
    wanted = [*key_names, *names]
    fields = {name: event.get(name) for name in dict.fromkeys(wanted) if name in event}
    ident = event.get("id")
    return EventRef(role, stream, float(event["ts"]), str(where), str(ident) if ident is not None else None, fields)


def values_of(step: Step | None, names: Iterable[str]) -> dict[str, Any]:
    """The values of `names` an event step saw: the event's field, else the reference row's."""
    if step is None or step.event is None:
        return {}
    out: dict[str, Any] = {}
    before = step.before.get("prev") or {}  # the key's previous event (`previous.lat`), as the threshold kept it
    for name in names:
        if name.startswith("previous."):
            out[name] = before.get(name.removeprefix("previous."))
            continue
        value = step.event.get(name)
        out[name] = value if value is not None else step.ref.get(name)
    return out


class Explainer:
    """The generic explanation (any kind): subclasses refine `fired` and `resolved`."""

    def fired(self, case: Case, out: Explanation) -> None:
        step = case.fire_step
        if step is None:
            return
        text = getattr(case.spec, "condition", None)
        names = names_of(text) if isinstance(text, str) else frozenset()
        trigger = step if step.event is not None else case.last_event(case.fire)
        if step.event is None:
            out.details.append(Detail("timer", f"fired by a timer at {format_local(step.at)} ICT"))
        evidence = set(case.record.get("evidence") or ())
        listed = 0
        for earlier in case.events_before(case.fire):
            ident = earlier.event.get("id") or earlier.event.get("_pos") if earlier.event else None
            if earlier is trigger or (ident is not None and str(ident) in evidence):
                if listed < MAX_EVENTS:
                    ref = case.ref(earlier, "trigger" if earlier is trigger else "evidence", names)
                    if ref is not None:
                        out.events.append(ref)
                listed += 1
        if isinstance(text, str) and trigger is not None:
            out.checks.append(check("condition", text, values_of(trigger, names)))

    def resolved(self, case: Case, out: Explanation) -> None:
        """Fill `out.resolution` from the step that resolved the alert."""
        if case.resolve is None:
            return
        step = case.steps[case.resolve]
        res = out.resolution
        if res is None:
            return
        if step.event is not None:
            text = getattr(case.spec, "condition", None)
            names = names_of(text) if isinstance(text, str) else frozenset()
            res.event = case.ref(step, "resolving", names)
            where = res.event.where if res.event else "?"
            res.text = f"resolved at {format_local(step.at)} ICT by the event at {where}"
            if isinstance(text, str):
                res.check = check("condition", text, values_of(step, names))
                res.text += f": the condition was {'true' if res.check.holds else 'false'}"
        else:
            res.text = f"resolved by a timer at {format_local(step.at)} ICT"
            after = getattr(case.spec, "resolve_after", None)
            if isinstance(after, (int, float)):
                res.text += f" (resolve_after {format_duration(after)} after the last match)"


def check_of(label: str, text: str, values: dict[str, Any], note: str = "") -> Check:
    return check(label, text, values, note)
