"""Kinds whose alert is about a group, not one key's events: `near_duplicate` (a story: items of
one key with nearly the same text) and `proximity` (a pair of keys close to each other).

Both keep their state by a shorter key than the alert's (the story's key, the whole stream), so
the trace holds every event of that key (ioc.analysis.explain.trace); the explanation picks the
story's items or the pair's latest positions out of it and measures them again: the text
similarity of each item to the one that fired, the number of items or sources, the distance of
the two positions and how long the pair was close.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ioc.analysis.explain.base import Case, Explainer, values_of
from ioc.analysis.explain.model import Detail, Explanation, check
from ioc.analysis.explain.trace import Step
from ioc.rules.kinds.near_duplicate import shingles, similarity
from ioc.rules.render import names_of, show
from ioc.timeutil import format_duration, format_local

__all__ = ["NearDuplicateExplainer", "ProximityExplainer"]


def _ident(step: Step) -> str | None:
    event = step.event or {}
    found = event.get("id") or event.get("_pos")
    return None if found is None else str(found)


class NearDuplicateExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None or fire.event is None:
            super().fired(case, out)
            return
        spec, kind = case.spec, case.kind
        evidence = [str(item) for item in case.record.get("evidence") or ()]
        trigger = shingles(kind._text(fire.event), spec.shingle)  # noqa: SLF001 - the kind's own text
        items = [step for step in case.events_before(case.fire, since=fire.at - spec.within)
                 if step is fire or _ident(step) in evidence]
        shown_names = [*spec.fields, *([spec.distinct] if spec.distinct else [])]
        lines = []
        for step in items:
            ref = case.ref(step, "trigger" if step is fire else "story item", shown_names)
            if ref is not None:
                out.events.append(ref)
            near = similarity(trigger, shingles(kind._text(step.event or {}), spec.shingle))  # noqa: SLF001
            who = (step.event or {}).get(spec.distinct) if spec.distinct else None
            lines.append(f"{format_local(step.at)} ICT {show(who) + ' ' if who is not None else ''}"
                         f"similarity to the trigger {near:.2f}")
        if spec.distinct:
            count = len({str(v) for s in items if (v := (s.event or {}).get(spec.distinct)) is not None})
            what = f"distinct {spec.distinct}"
        else:
            count, what = len(items), "items"
        story = (case.record.get("key") or {}).get("story")
        out.details.append(Detail("story", f"story {show(story)}: {count} {what} within "
                                           f"{format_duration(spec.within)} (similarity at least {spec.similarity}); "
                                  + "; ".join(lines), {"story": story, "count": count}))
        out.checks.append(check("count", "count >= min_count", {"count": count, "min_count": spec.min_count},
                                f"{what} of the story's items in the {format_duration(spec.within)} up to the trigger"))


class ProximityExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        spec, kind = case.spec, case.kind
        key = case.record.get("key") or {}
        ids = [key.get(name) for name in kind.key_names]
        latest: dict[Any, Step] = {}
        for step in case.events_before(case.fire):
            who = (step.event or {}).get(kind.id_field)
            if who in ids:
                latest[who] = step
        if len(latest) < 2:
            super().fired(case, out)
            return
        first, second = latest[ids[0]], latest[ids[1]]
        cond_names = names_of(spec.condition) if spec.condition else frozenset()
        for step in (first, second):
            ref = case.ref(step, "latest position", ["lat", "lon", *sorted(cond_names)])
            if ref is not None:
                out.events.append(ref)
        a, b = first.event or {}, second.event or {}
        values: dict[str, Any] = {"lat_a": a.get("lat"), "lon_a": a.get("lon"), "lat_b": b.get("lat"),
                                  "lon_b": b.get("lon"), "limit": kind.limit}
        out.checks.append(check("distance", "distance_km(lat_a, lon_a, lat_b, lon_b) <= limit", values,
                                f"km between the two latest positions (distance_km: {spec.distance_km})"))
        out.checks.append(check("within", "abs(ts_a - ts_b) <= within",
                                {"ts_a": first.at, "ts_b": second.at, "within": kind.within},
                                "seconds between the two positions"))
        starts = float(case.record.get("_starts_at") or fire.at)
        out.checks.append(check("for", "held >= hold", {"held": fire.at - starts, "hold": kind.hold},
                                f"seconds close, since {format_local(starts)} ICT"))
        if spec.condition:
            for step in (first, second):
                out.checks.append(check(f"condition ({step.event.get(kind.id_field) if step.event else ''})",
                                        spec.condition, values_of(step, cond_names)))
        out.details.append(Detail("pair", f"{show(ids[0])} at ({a.get('lat')}, {a.get('lon')}) "
                                          f"{format_local(first.at)} ICT and {show(ids[1])} at ({b.get('lat')}, "
                                          f"{b.get('lon')}) {format_local(second.at)} ICT",
                                  {"ids": ids, "positions": _positions(a, b)}))


def _positions(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[list[Any]]:
    return [[a.get("lat"), a.get("lon")], [b.get("lat"), b.get("lon")]]
