"""`geofence`: a position (`lat`, `lon`) inside, outside, entering or leaving zones of a GeoJSON file.

>>> # rules/vessel.yaml
>>> # - id: vessel.foreign_waters
>>> #   stream: vessel
>>> #   kind: geofence
>>> #   zones: zones/hue_sea.geojson          # relative to config/
>>> #   zone_filter: "foreign == True"        # over zone properties only, applied once at load
>>> #   mode: inside                          # inside | outside | enters | exits
>>> #   severity: critical
>>> #   summary: "{source_id} trong vùng biển nước ngoài: {value}"
>>> # - id: vessel.zone.length
>>> #   stream: vessel
>>> #   kind: geofence
>>> #   zones: zones/hue_sea.geojson
>>> #   zone_filter: "zone_class in ['coastal', 'inshore', 'offshore']"
>>> #   mode: inside
>>> #   condition: "length_m < min_length_m or (max_length_m is not None and length_m >= max_length_m)"
>>> #   dwell: 2h
>>> # - id: vessel.port.enter
>>> #   stream: vessel
>>> #   kind: geofence
>>> #   zones: zones/hue_sea.geojson
>>> #   zone_filter: "zone_class == 'port'"
>>> #   mode: enters
>>> #   severity: info

Semantics, per key, in event time. A zone *matches* a position when it is selected by
`zone_filter`, contains the point (its boundary counts as inside) and `condition` (over the
event, reference data and that zone's properties) is true for it.

* `inside` holds while some zone matches, `outside` while none does. Both are continuous,
  like `threshold` with `for` = `dwell`: the first position where the mode holds makes the
  key pending; it fires once it has held for `dwell`, checked at each position of the key and
  when the watermark passes `pending_since + dwell` (`starts_at = pending_since`); it
  resolves at the first position where it no longer holds (`ends_at` = that position's ts).
* `enters` / `exits` are instant: a position matching a zone that the key's previous
  position did not match (`enters`), or the reverse (`exits`), is a match (`rt.match`);
  the episode resolves `resolve_after` after the last match. The first position of a key
  never counts as a crossing.
* The alert's zone is the first matching zone in file order (`exits`: the zone left;
  `outside`: the first selected zone containing the point, if any): `details.zone` is its
  `name` (else its id), `details.zone_id` its id (both also template names). `value` is the
  rule's `value` expression when it gives a number (e.g. `sog_kn`), else null; in templates
  a null `{value}` shows the zone, as it did when the value was the zone's name. The zone's
  properties are merged into the event the templates render from.
* Positions of a key older than its latest position (out of order, within the allowed
  lateness) are ignored: the geofence follows the latest position. Events without a position
  are ignored.

When a key's state is forgotten (`expired`), its episode being over and its latest position
at or before the watermark: `inside` / `outside`, once nothing is pending (the first position
of a key is judged like any other, so a key not pending behaves as a new one); `exits`, once
its latest position was in no zone (its next position can leave none, as a new key's first
cannot); `enters`, only once its latest position was in every selected zone. A key outside
(or in some zones only) is kept: forgotten, its next position would be a first position and
not count as entering, where it does for the key remembered.

Checked at load: the zones file (ioc.geo), `zone_filter` selecting at least one zone, zone
property names that are not event fields of the stream, and no read (condition, value,
templates) of a name that is both a zone property and a reference field.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from ioc.geo import Zone, ZoneError, ZoneSet, load_zones
from ioc.rules.expr import Expression
from ioc.rules.kinds.base import (
    BuildContext,
    InstantRule,
    InstantSpec,
    Key,
    KindProblem,
    Problems,
    Runtime,
    State,
    number_or_none,
)
from ioc.rules.model import Duration
from ioc.timeutil import format_duration

__all__ = ["GeofenceSpec", "GeofenceRule", "MODES"]

MODES = ("inside", "outside", "enters", "exits")
_SOFT_ERRORS = (TypeError, ValueError, ArithmeticError, KeyError, IndexError)
_FORMATTER = string.Formatter()


class GeofenceSpec(InstantSpec):
    kind: Literal["geofence"] = "geofence"
    zones: str
    mode: Literal["inside", "outside", "enters", "exits"]
    zone_filter: str | None = None
    condition: str | None = None
    dwell: Duration = 0.0
    lat_field: str = "lat"
    lon_field: str = "lon"


class GeofenceRule(InstantRule):
    Spec = GeofenceSpec
    VALUE_ALIAS = "zone"  # `{value}` in templates written when the value was the zone's name
    TEMPLATE_NAMES = frozenset({"value", "zone", "zone_id"})  # and the zones' properties
    # condition and value read zone properties, unknown until the zones load: checked in __init__.
    EXPRESSION_FIELDS = ()

    spec: GeofenceSpec

    def __init__(self, spec: GeofenceSpec, ctx: BuildContext) -> None:  # type: ignore[override]
        super().__init__(spec, ctx)
        found = Problems()
        with found:
            self._check_fields(spec, ctx)
        self.crossing = spec.mode in ("enters", "exits")
        with found:
            if self.crossing and spec.dwell:
                raise KindProblem("dwell", f"dwell '{format_duration(spec.dwell)}' applies to mode inside or outside"
                                           f" only (mode '{spec.mode}' fires at the crossing; for 'stays inside"
                                           " for a while' use mode inside with dwell)")
        with found:
            if not self.crossing and "resolve_after" in spec.model_fields_set:
                raise KindProblem("resolve_after", f"applies to mode enters or exits only (mode '{spec.mode}'"
                                                   " resolves at the first position where it no longer holds)")
        with found:
            self.zones = self._load(spec, ctx)
        # The zone filter, condition and value read zone properties: checked once the zones load.
        if not found.failed("zones"):
            names = self.zones.property_names
            with found:
                self.selected = self._select(spec, ctx, self.zones)
            scope = ctx.ref_fields | names
            with found:
                self.condition = ctx.compile("condition", spec.condition, ctx.fields, scope) if spec.condition else None
            with found:
                self.value = ctx.compile("value", spec.value, ctx.fields, scope) if spec.value else None
            if not found.failed("condition", "value"):
                with found:
                    self._check_ambiguous(spec, ctx, names)
        found.raise_any()
        # Zone properties are passed where reference fields go; merge only if real ones are read too.
        self.merge_ref = any(e is not None and e.names & ctx.ref_fields for e in (self.condition, self.value))
        self.dwell = spec.dwell
        self.lat = spec.lat_field
        self.lon = spec.lon_field
        self.enters = spec.mode == "enters"
        self.inside = spec.mode == "inside"
        self.selected_ids = frozenset(z.id for z, chosen in zip(self.zones.zones, self.selected, strict=True)
                                      if chosen)

    @property
    def template_names(self) -> frozenset[str]:
        return self.TEMPLATE_NAMES | self.zones.property_names

    # -- build ----------------------------------------------------------------------------------

    @staticmethod
    def _check_fields(spec: GeofenceSpec, ctx: BuildContext) -> None:
        found = Problems()
        for name in ("lat_field", "lon_field"):
            field_name = getattr(spec, name)
            with found:
                if field_name not in ctx.fields:
                    raise KindProblem(name, f"'{field_name}' is not a field of stream '{ctx.stream}'"
                                            f" (allowed: {', '.join(sorted(ctx.fields))})")
        with found:
            if spec.lat_field == spec.lon_field and not found:
                raise KindProblem("lon_field", f"'{spec.lon_field}' is also the lat_field (they must differ)")
        found.raise_any()

    @staticmethod
    def _load(spec: GeofenceSpec, ctx: BuildContext) -> ZoneSet:
        path = ctx.config_path("zones", spec.zones)
        try:
            zones = load_zones(path)
        except ZoneError as exc:
            raise KindProblem("zones", f"'{spec.zones}': {exc}") from None
        clash = sorted(zones.property_names & ctx.fields)
        if clash:
            shown = ", ".join(f"'{n}'" for n in clash)
            raise KindProblem("zones", f"'{spec.zones}': zone properties {shown} have the names of fields of"
                                       f" stream '{ctx.stream}' (rename them in the file: rules read zone"
                                       " properties and event fields by the same names)")
        return zones

    def _check_ambiguous(self, spec: GeofenceSpec, ctx: BuildContext, names: frozenset[str]) -> None:
        """A name that is both a zone property and a reference field may not be read by the rule."""
        shared = names & ctx.ref_fields
        if not shared:
            return
        reads = {
            "condition": self.condition.names if self.condition is not None else frozenset(),
            "value": self.value.names if self.value is not None else frozenset(),
            "summary": _template_names(spec.summary),
            "description": _template_names(spec.description),
        }
        for field_name, used in reads.items():
            ambiguous = sorted(shared & used)
            if ambiguous:
                shown = ", ".join(f"'{n}'" for n in ambiguous)
                raise KindProblem(field_name, f"{shown}: both a property of the zones in '{spec.zones}' and a"
                                              f" reference field of stream '{ctx.stream}' (rename the zone property)")

    @staticmethod
    def _select(spec: GeofenceSpec, ctx: BuildContext, zones: ZoneSet) -> tuple[bool, ...]:
        if not spec.zone_filter:
            return (True,) * len(zones)
        expr = ctx.compile("zone_filter", spec.zone_filter, zones.property_names)
        selected = tuple(expr.test(zone.properties) for zone in zones)
        if not any(selected):
            names = ", ".join(sorted(zones.property_names))
            raise KindProblem("zone_filter", f"{spec.zone_filter!r} selects none of the {len(zones)} zones of"
                                             f" '{spec.zones}' (zone properties: {names})")
        return selected

    # -- evaluation -----------------------------------------------------------------------------

    def on_event(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float
    ) -> None:
        lat = event.get(self.lat)
        lon = event.get(self.lon)
        if lat is None or lon is None:
            return
        last = state.get("last_ts")
        if last is not None and ts < last:
            return  # older than the key's latest position: stale
        state["last_ts"] = ts
        hits = self.zones.containing(lon, lat)
        if self.crossing:
            self._crossing(rt, key, state, event, ref, ts, hits)
        else:
            self._continuous(rt, key, state, event, ref, ts, hits)

    def meaning_data(self) -> Any:
        # The zones file may change under the same name: its zones are part of the meaning.
        digest = hashlib.sha256()
        for zone in self.zones.zones:
            digest.update(orjson.dumps([zone.id, zone.name, dict(zone.properties)], default=str,
                                       option=orjson.OPT_SORT_KEYS))
            digest.update(zone.geometry.wkb)
        return digest.hexdigest()[:16]

    def expired(self, state: State, watermark: float) -> bool:
        last = state.get("last_ts")
        if last is not None and last > watermark:
            return False  # positions between the two would be stale here, not for a new key
        if not self.crossing:
            return state.get("pending_since") is None
        previous = state.get("inside")
        if previous is None:
            return True
        # A key's first position is never a crossing: forgetting is exact only where the
        # remembered zones make the next position no crossing either, whatever it is.
        if self.enters:
            return self.selected_ids <= set(previous)
        return all(self.zones.get(zone_id) is None for zone_id in previous)

    def on_timer(self, rt: Runtime, key: Key, state: State, deadline: float) -> None:
        if self.crossing:
            rt.instant_timer(key, state, deadline, self.spec.resolve_after)
            return
        if state.get("firing"):
            return
        pending = state.get("pending_since")
        if pending is not None and pending + self.dwell <= deadline:
            zone = self.zones.get(state["last_zone"]) if state.get("last_zone") is not None else None
            event = state.get("last_event") or {}
            rt.fire(key, state, starts_at=pending, value=state.get("last_value"),
                    event={**event, **zone.properties} if zone is not None else event, ref={},
                    details=_zone_details(zone))
            if state.get("firing"):
                _forget_pending(state)

    def _continuous(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float,
        hits: tuple[int, ...],
    ) -> None:
        zones = self.zones.zones
        selected = self.selected
        found: Zone | None = None
        first: Zone | None = None
        for i in hits:
            if selected[i]:
                zone = zones[i]
                if first is None:
                    first = zone
                if self._holds(zone, event, ref):
                    found = zone
                    break
        if self.inside:
            holds = found is not None
        else:
            holds = found is None
            found = first  # outside: the zone the point is in without matching, if any
        if not holds:
            if state.get("firing"):
                rt.resolve(key, state, ends_at=ts)
            elif state.get("pending_since") is not None:
                _forget_pending(state)
                state.pop("_evidence", None)
            return
        if state.get("firing"):
            return
        pending = state.get("pending_since")
        if pending is None:
            pending = state["pending_since"] = ts
        rt.note(state, event)
        value = self._value(found, event, ref)
        if ts - pending >= self.dwell:
            rt.fire(key, state, starts_at=pending, value=value, event=_with_zone(event, found), ref=ref,
                    details=_zone_details(found))
            if state.get("firing"):
                _forget_pending(state)
                return
        else:
            rt.schedule(pending + self.dwell, key)
        # Remember what this position said: a timer (or a realert retry) may fire later.
        state["last_value"] = value
        state["last_event"] = rt.project(event, ref)
        state["last_zone"] = found.id if found is not None else None

    def _crossing(
        self, rt: Runtime, key: Key, state: State, event: Mapping[str, Any], ref: Mapping[str, Any], ts: float,
        hits: tuple[int, ...],
    ) -> None:
        zones = self.zones.zones
        selected = self.selected
        now = [zones[i].id for i in hits if selected[i] and self._holds(zones[i], event, ref)] if hits else []
        previous = state.get("inside")
        if previous == now:
            return
        state["inside"] = now
        if previous is None:
            return  # the key's first position is not a crossing
        if self.enters:
            crossed = next((z for z in now if z not in previous), None)
        else:
            crossed = next((z for z in previous if z not in now and self.zones.get(z) is not None), None)
        if crossed is None:
            return
        zone = self.zones.get(crossed)
        rt.match(key, state, ts=ts, value=self._value(zone, event, ref), event=_with_zone(event, zone), ref=ref,
                 resolve_after=self.spec.resolve_after, details=_zone_details(zone))

    def _holds(self, zone: Zone, event: Mapping[str, Any], ref: Mapping[str, Any]) -> bool:
        condition = self.condition
        if condition is None:
            return True
        return condition.test(event, {**ref, **zone.properties} if self.merge_ref else zone.properties)

    def _value(self, zone: Zone | None, event: Mapping[str, Any], ref: Mapping[str, Any]) -> Any:
        """The measured value: the rule's `value` expression if it has one and it gives a
        number; the zone is a detail (`_zone_details`)."""
        expr: Expression | None = self.value
        if expr is None:
            return None
        props: Mapping[str, Any] = zone.properties if zone is not None else {}
        try:
            return number_or_none(expr(event, {**ref, **props} if self.merge_ref else props))
        except _SOFT_ERRORS:
            return None


def _template_names(text: str) -> frozenset[str]:
    try:
        return frozenset(name for _, name, _, _ in _FORMATTER.parse(text) if name)
    except ValueError:
        return frozenset()  # a malformed template is reported by the loader


def _zone_details(zone: Zone | None) -> dict[str, Any]:
    """The record's `details` of a geofence alert: the zone's name (else its id) and id."""
    return {"zone": zone.name, "zone_id": zone.id} if zone is not None else {}


def _with_zone(event: Mapping[str, Any], zone: Zone | None) -> Mapping[str, Any]:
    """The event with the zone's properties, for the alert's templates and evidence."""
    return {**event, **zone.properties} if zone is not None else event


def _forget_pending(state: State) -> None:
    state["pending_since"] = None
    state.pop("last_event", None)
    state.pop("last_value", None)
    state.pop("last_zone", None)


KIND = GeofenceRule
