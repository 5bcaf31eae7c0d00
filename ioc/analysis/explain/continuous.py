"""Kinds that hold while each event of a key says so: `threshold` and `geofence`.

The triggering events are the key's events from the start of the pending period to the one
that fired (or, when `for`/`dwell` ran out between events, the last before the timer); the
condition is shown with the values of the event that fired it.
"""

from __future__ import annotations

from typing import Any

from ioc.analysis.explain.base import MAX_EVENTS, Case, Explainer, values_of
from ioc.analysis.explain.model import Detail, Explanation, check
from ioc.rules.render import names_of
from ioc.timeutil import format_duration, format_local

__all__ = ["ThresholdExplainer", "GeofenceExplainer"]


def _pending(case: Case, out: Explanation, names: frozenset[str]) -> Any:
    """List the events from the episode's start to the firing; return the step that triggered."""
    starts = case.record.get("_starts_at")
    fire = case.fire_step
    assert fire is not None  # noqa: S101 - callers check
    trigger = fire if fire.event is not None else case.last_event(case.fire)
    held = case.events_before(case.fire, since=starts if isinstance(starts, float) else fire.at)
    for step in held[-MAX_EVENTS:]:
        ref = case.ref(step, "trigger" if step is trigger else "held", names)
        if ref is not None:
            out.events.append(ref)
    if len(held) > MAX_EVENTS:
        out.details.append(Detail("events", f"{len(held) - MAX_EVENTS} earlier events of the period not listed"))
    return trigger


class ThresholdExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        text = case.spec.condition
        names = names_of(text)
        trigger = _pending(case, out, names)
        starts = case.record["_starts_at"]
        hold = case.spec.for_
        note = ""
        if hold:
            note = (f"held for {format_duration(fire.at - starts)} since {format_local(starts)} ICT "
                    f"(for: {format_duration(hold)})")
            if fire.event is None:
                note += f"; fired when the watermark passed {format_local(fire.at)} ICT"
        out.checks.append(check("condition", text, values_of(trigger, names), note))

    def resolved(self, case: Case, out: Explanation) -> None:
        super().resolved(case, out)
        res = out.resolution
        if res is None or case.resolve is None:
            return
        step = case.steps[case.resolve]
        keep = case.spec.keep_firing_for
        if step.event is None and keep:
            since = step.before.get("false_since")
            res.text = (f"resolved by keep_firing_for ({format_duration(keep)}): the condition was false from "
                        f"{format_local(since) if isinstance(since, float) else '?'} ICT on")
            last_false = case.last_event(case.resolve)
            if last_false is not None:
                names = names_of(case.spec.condition)
                res.event = case.ref(last_false, "resolving", names)
                res.check = check("condition", case.spec.condition, values_of(last_false, names))


class GeofenceExplainer(Explainer):
    def fired(self, case: Case, out: Explanation) -> None:
        fire = case.fire_step
        if fire is None:
            return
        kind, spec = case.kind, case.spec
        names = frozenset({spec.lat_field, spec.lon_field})
        if spec.condition:
            names |= names_of(spec.condition)
        if spec.mode in ("inside", "outside"):
            trigger = _pending(case, out, names)
        else:
            # A crossing: the position before (outside, or inside, the zone) and the one after.
            trigger = fire
            before = case.last_event(case.fire - 1) if case.fire else None
            for step, role in ((before, "before"), (fire, "trigger")):
                ref = case.ref(step, role, names)
                if ref is not None:
                    out.events.append(ref)
        if trigger is None or trigger.event is None:
            return
        lat, lon = trigger.event.get(spec.lat_field), trigger.event.get(spec.lon_field)
        here = [zone for zone in kind.zones.zones_at(lon, lat)] if lat is not None and lon is not None else []
        ids = [zone.id for zone in here]
        named = case.fired_details.get("zone_id") or case.fired_details.get("zone")
        zone = next((z for z in here if named in (z.name, z.id)), None)
        if zone is None and here:
            zone = here[0]
        out.details.append(Detail("position", f"({lat}, {lon}) at {format_local(trigger.at)} ICT, in zones: "
                                              f"{', '.join(ids) or 'none'}", {"lat": lat, "lon": lon, "zones": ids}))
        if zone is not None:
            out.details.append(Detail("zone", f"{zone.id} ({zone.name})", {"id": zone.id, "name": zone.name,
                                                                      "properties": dict(zone.properties)}))
        if spec.mode in ("inside", "enters") and zone is not None:
            out.checks.append(check("position", "zone in zones_here", {"zone": zone.id, "zones_here": ids},
                                    f"mode {spec.mode}: the point is inside the zone (from the zones' geometry)"))
        elif spec.mode == "exits":
            named = case.fired_details.get("zone_id") or case.fired_details.get("zone")
            gone = next((z for z in kind.zones if named in (z.name, z.id)), None)
            if gone is not None:
                out.checks.append(check("position", "zone not in zones_here", {"zone": gone.id, "zones_here": ids},
                                        "mode exits: the point is no longer inside the zone (zones' geometry)"))
        elif spec.mode == "outside":
            selected = {z.id for z, on in zip(kind.zones.zones, kind.selected, strict=False) if on}
            matching = [z.id for z in here
                        if z.id in selected and kind._holds(z, trigger.event, trigger.ref)]  # noqa: SLF001
            out.checks.append(check("position", "matching == []", {"matching": matching},
                                    "mode outside: no selected zone holds the point and meets the condition "
                                    "(from the zones' geometry)"))
        if spec.condition and zone is not None:
            values = values_of(trigger, names)
            values.update({k: v for k, v in zone.properties.items() if k in names})
            if spec.mode in ("inside", "enters"):
                out.checks.append(check("condition", spec.condition, values, f"with the properties of zone {zone.id}"))
            elif spec.mode == "outside":
                # Outside: the point's zone does not meet the condition, which is what fired.
                out.checks.append(check("condition", f"not ({spec.condition.strip()})", values,
                                        f"with the properties of zone {zone.id}, the zone the point is in"))
        if spec.dwell:
            starts = case.record["_starts_at"]
            out.details.append(Detail("dwell", f"{format_duration(fire.at - starts)} since {format_local(starts)} "
                                               f"ICT (dwell: {format_duration(spec.dwell)})"))
