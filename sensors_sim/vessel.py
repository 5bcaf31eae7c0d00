"""Deterministic VMS positions of the Thua Thien Hue fishing fleet, with labelled incidents.

The fleet is `config/reference/vessel.yaml` (registration, MMSI, length, home port); the sea
is `config/zones/hue_sea.geojson` (coastal / inshore / offshore bands, port boxes, the
illustrative foreign-waters box). Each vessel cycles between its home port (Thuận An, Tư
Hiền, Chân Mây) and a fishing ground inside the band its length allows (docs/domain.md §2:
< 12 m coastal, 12-15 m inshore, >= 15 m offshore):

* in port: moored at the port's anchorage (sog ~0), still reporting;
* transit out and back at 5-8 kn (< 12 m), 7.5-10 kn (12-15 m), 9.5-11.5 kn (>= 15 m),
  port -> a gate ~2 nm off the port -> the nearest point of its band -> the fishing ground
  (the port-to-band stretch at up to 11.8 kn where it is long, e.g. ~28 nm from Tư Hiền);
* fishing: a wandering walk of 20-40 min legs around the ground, 2.4-4 kn beyond the
  coastal band (the shipped loitering rule watches < 2 kn there), 1-3 kn with drift in it;
* small boats go out around 02:30-05:00 or 14:30-16:30 local time for 5-10 h; 12-15 m
  vessels stay out 12-40 h, >= 15 m vessels 3-10 days.

Positions come every 30-60 min (VMS-like; ~8 % of intervals are longer, up to 100 min,
never 2 h: Decree 26/2019). A vessel crossing bands its length does not allow (a >= 15 m
vessel crossing the 24 nm coastal + inshore strip takes ~2.3 h) reports there at most once,
in the last ~45 min of the crossing, so the shipped `vessel.zone.length_not_allowed` rule
(dwell 1 h) stays quiet for normal trips. Background alone, over 100 fleet-days (10 seeds x
10 days, ~181,000 positions), fires none of the incident rules; only the info record
`vessel.port.enter` (~32 returns to port a day) remains, as it should. `cog_deg` is the bearing of the movement,
`sog_kn` its speed (+3 % noise).

Incident kinds (see `add_incident`): `vms_loss`, `foreign_waters`, `wrong_zone`,
`loitering`, `storm_recall`, `position_jump`, `rendezvous`, `ban_violation`. Every incident vessel sails there without
teleporting, except `foreign_waters` with `approach="report"` (positions simply reported in the
box) and `position_jump` (positions reported far away: the jump is the incident).

>>> sim = VesselSimulator(seed=1, start=1761526800.0)            # 2025-10-27 08:00 +07
>>> lost = sim.add_incident("vms_loss", at=1761526800.0 + 6 * 3600, duration=3 * 3600)
>>> lost.rules, lost.keys["source_id"] in sim.vessel_ids
(('vessel.vms.late',), True)
>>> events = list(sim.events(1761526800.0 + 24 * 3600))         # ts-ordered, deterministic
>>> sorted(events[0])
['cog_deg', 'device_status', 'id', 'lat', 'length_m', 'lon', 'mmsi', 'sog_kn', 'source_id', 'ts']
"""

from __future__ import annotations

import bisect
import functools
import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import yaml
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points, unary_union

from ioc.geo import load_zones
from ioc.timeutil import format_ts
from sensors_sim.base import Incident

__all__ = [
    "DEFAULT_REFERENCE_PATH",
    "DEFAULT_ZONES_PATH",
    "MAX_REPORT_GAP_S",
    "Vessel",
    "VesselSimulator",
    "load_fleet",
]

_REPO = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE_PATH = _REPO / "config" / "reference" / "vessel.yaml"
DEFAULT_ZONES_PATH = _REPO / "config" / "zones" / "hue_sea.geojson"

LOCAL_OFFSET_S = 7 * 3600.0          # Indochina time, UTC+7 (no DST)
MAX_REPORT_GAP_S = 110 * 60.0        # background never goes 2 h without a position (Decree 26/2019)
_DWELL_SAFE_S = 55 * 60.0            # a crossing of a band not allowed stays under the rules' 1 h dwell
_HOUR = 3600.0
_MIN = 60.0

# Rule ids of rules/vessel.yaml that catch each kind.
RULE_LATE = "vessel.vms.late"
RULE_LOST_6H = "vessel.vms.lost_6h"
RULE_LOST_10D = "vessel.vms.lost_10d"
RULE_FOREIGN = "vessel.zone.foreign_waters"
RULE_LENGTH = "vessel.zone.length_not_allowed"
RULE_LOITERING = "vessel.behaviour.loitering"
RULE_JUMP = "vessel.vms.position_jump"
RULE_ENCOUNTER = "vessel.behaviour.encounter"
RULE_BAN = "vessel.storm_ban.at_sea"
_STATION_KN = 2.2                     # a vessel holding station alongside another (above loitering's 2 kn)
_STATION_KM = 0.3                     # ... shuttling along this much of a line through the meeting point

# Track segment modes.
_PORT, _TRANSIT, _FISH, _LOITER = 0, 1, 2, 3


@dataclass(frozen=True)
class Vessel:
    """One registered vessel (reference data) as the simulator uses it."""

    source_id: str
    mmsi: str
    length_m: float
    home_port: str
    vms_required: bool


def load_fleet(path: str | Path = DEFAULT_REFERENCE_PATH) -> list[Vessel]:
    """Vessels of the reference file, in file order; raises ValueError naming a bad item.

    >>> fleet = load_fleet()
    >>> len(fleet), sorted({v.home_port for v in fleet})
    (60, ['chan-may', 'thuan-an', 'tu-hien'])
    """
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("items"), list) or not data["items"]:
        raise ValueError(f"{path}: expected a mapping with a non-empty `items` list")
    fleet: list[Vessel] = []
    for number, item in enumerate(data["items"], start=1):
        try:
            fleet.append(Vessel(
                source_id=str(item["source_id"]),
                mmsi=str(item["mmsi_ref"]),
                length_m=float(item["vessel_length_m"]),
                home_port=str(item["home_port"]),
                vms_required=bool(item["vms_required"]),
            ))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: item {number}: missing or bad field ({exc})") from None
    if len({v.source_id for v in fleet}) != len(fleet):
        raise ValueError(f"{path}: duplicate source_id")
    return fleet


# --- geometry ---------------------------------------------------------------------------


def _nm(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    """Distance in nautical miles (equirectangular: exact enough over tens of miles)."""
    dx = (lon1 - lon0) * 60.0 * math.cos(math.radians((lat0 + lat1) / 2.0))
    dy = (lat1 - lat0) * 60.0
    return math.hypot(dx, dy)


def _bearing(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    dx = (lon1 - lon0) * math.cos(math.radians((lat0 + lat1) / 2.0))
    return math.degrees(math.atan2(dx, lat1 - lat0)) % 360.0


def _move(lat: float, lon: float, heading_deg: float, dist_nm: float) -> tuple[float, float]:
    h = math.radians(heading_deg)
    lat1 = lat + dist_nm * math.cos(h) / 60.0
    lon1 = lon + dist_nm * math.sin(h) / (60.0 * math.cos(math.radians(lat)))
    return lat1, lon1


@dataclass(frozen=True)
class _Port:
    anchor: tuple[float, float]   # (lat, lon) inside the port box and the coastal band (not on land)
    gate: tuple[float, float]     # ~2 nm seaward, inside the coastal band


class _Sea:
    """The zones of the file, prepared for the simulator: bands, ports, regions, doors."""

    BAND_MARGIN = {"coastal": 0.015, "inshore": 0.03, "offshore": 0.03}   # degrees kept off band edges

    def __init__(self, path: Path) -> None:
        zones = load_zones(path)
        self.bands: dict[str, BaseGeometry] = {}
        self.limits: dict[str, tuple[float, float]] = {}
        self.ports: dict[str, BaseGeometry] = {}
        foreign: list[BaseGeometry] = []
        for zone in zones:
            cls = zone.properties.get("zone_class")
            if cls in ("coastal", "inshore", "offshore"):
                self.bands[cls] = zone.geometry
                hi = zone.properties.get("max_length_m")
                self.limits[cls] = (float(zone.properties.get("min_length_m") or 0.0),
                                    math.inf if hi is None else float(hi))
            elif cls == "port":
                self.ports[zone.id.removeprefix("port-")] = zone.geometry
            if zone.properties.get("foreign") is True:
                foreign.append(zone.geometry)
        missing = {"coastal", "inshore", "offshore"} - set(self.bands)
        if missing or not self.ports or not foreign:
            raise ValueError(f"{path}: needs coastal/inshore/offshore bands, ports and a foreign zone")
        self.foreign = unary_union(foreign)
        self.sea = unary_union(list(self.bands.values()))
        self.shrunk = {c: g.buffer(-self.BAND_MARGIN[c]) for c, g in self.bands.items()}
        for geom in (*self.shrunk.values(), self.sea, self.foreign):
            shapely.prepare(geom)
        self.port_points: dict[str, _Port] = {}
        for key, box in self.ports.items():
            anchor = box.intersection(self.bands["coastal"]).centroid
            toward = nearest_points(self.bands["inshore"], anchor)[0]
            gate = (anchor.y + 0.35 * (toward.y - anchor.y), anchor.x + 0.35 * (toward.x - anchor.x))
            self.port_points[key] = _Port((anchor.y, anchor.x), gate)
        self._allowed: dict[str, BaseGeometry] = {}

    def band_of(self, length_m: float) -> str:
        for cls, (lo, hi) in self.limits.items():
            if lo <= length_m < hi:
                return cls
        raise ValueError(f"no band of the zones file admits a {length_m} m vessel")

    def allowed(self, band: str) -> BaseGeometry:
        """Band plus every port (as the length rule's condition: ports are always allowed)."""
        if band not in self._allowed:
            geom = unary_union([self.bands[band], *self.ports.values()])
            shapely.prepare(geom)
            self._allowed[band] = geom
        return self._allowed[band]

    def door(self, port: str, band: str) -> tuple[float, float]:
        """The point of the band (kept off its edges) nearest to the port's gate."""
        gate = self.port_points[port].gate
        return self._inside_near(self.shrunk[band], gate)

    def _inside_near(self, region: BaseGeometry, point: tuple[float, float]) -> tuple[float, float]:
        p = Point(point[1], point[0])
        if shapely.intersects_xy(region, p.x, p.y):
            return point
        q = nearest_points(region, p)[0]
        dlat, dlon = q.y - point[0], q.x - point[1]
        norm = math.hypot(dlat, dlon) or 1.0
        lat, lon = q.y + 0.004 * dlat / norm, q.x + 0.004 * dlon / norm   # a little further in
        return (lat, lon) if shapely.intersects_xy(region, lon, lat) else (q.y, q.x)

    def foreign_points(self) -> tuple[tuple[float, float], tuple[float, float]]:
        """(north edge of the offshore band facing the foreign box, a point inside the box)."""
        centre = self.foreign.centroid
        target = (centre.y, centre.x)
        return self._inside_near(self.shrunk["offshore"], target), target


@functools.lru_cache(maxsize=4)
def _sea(path: str) -> _Sea:
    return _Sea(Path(path))


# --- per-class behaviour ----------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    transit_kn: tuple[float, float]
    fish_kn: tuple[float, float]
    reach_nm: float          # fishing grounds within this distance of the home port
    ground_nm: float         # wandering radius around a ground
    trip_h: tuple[float, float]
    stay_h: tuple[float, float]
    sea_share: float         # share of the fleet class at sea at the start


_PROFILES = {
    "coastal": _Profile((5.0, 8.0), (1.0, 3.0), 14.0, 2.0, (5.0, 10.0), (6.0, 20.0), 0.35),
    "inshore": _Profile((7.5, 10.0), (2.4, 4.0), 35.0, 3.0, (12.0, 40.0), (8.0, 30.0), 0.55),
    "offshore": _Profile((9.5, 11.5), (2.4, 4.0), 70.0, 5.0, (72.0, 240.0), (12.0, 60.0), 0.7),
}


@dataclass
class _Window:
    """An incident on one vessel: what its track and reports do between `ws` and `we`."""

    kind: str
    ws: float
    we: float                          # end of the incident (ground truth)
    rendezvous: tuple[float, float]    # where the vessel is at `ws`
    target: tuple[float, float] = (0.0, 0.0)
    speed_kn: float = 10.0
    approach: str = ""
    owned_until: float = 0.0           # set by the track: when the vessel is back to normal


@dataclass
class _Track:
    """Piecewise-linear track: segments (t0, t1, lat0, lon0, lat1, lon1, mode)."""

    t: float
    lat: float
    lon: float
    segs: list[tuple[float, float, float, float, float, float, int]] = field(default_factory=list)

    def stay(self, until: float) -> None:
        if until > self.t:
            self.segs.append((self.t, until, self.lat, self.lon, self.lat, self.lon, _PORT))
            self.t = until

    def go(self, lat: float, lon: float, speed_kn: float, mode: int) -> None:
        dist = _nm(self.lat, self.lon, lat, lon)
        dt = max(1.0, dist / speed_kn * _HOUR)
        self.segs.append((self.t, self.t + dt, self.lat, self.lon, lat, lon, mode))
        self.t, self.lat, self.lon = self.t + dt, lat, lon

    def go_for(self, lat: float, lon: float, dt: float, mode: int) -> None:
        self.segs.append((self.t, self.t + dt, self.lat, self.lon, lat, lon, mode))
        self.t, self.lat, self.lon = self.t + dt, lat, lon

    def jump(self, lat: float, lon: float) -> None:
        self.lat, self.lon = lat, lon   # no segment: no position is ever reported "in between"


class VesselSimulator:
    """VMS positions of the registered fleet; incidents of `incident_kinds` injected on request.

    Knobs: `report_interval_min` (usual gap between two positions of a vessel, minutes),
    `missed_report_rate` (share of gaps that are longer, 60-100 min, as when a report is
    lost). `events()` replays from the seed: each call yields the same list.
    """

    stream = "vessel"
    incident_kinds = ("vms_loss", "foreign_waters", "wrong_zone", "loitering", "storm_recall", "position_jump",
                      "rendezvous", "ban_violation")

    def __init__(
        self,
        *,
        seed: int = 0,
        start: float,
        reference_path: str | Path = DEFAULT_REFERENCE_PATH,
        zones_path: str | Path = DEFAULT_ZONES_PATH,
        report_interval_min: tuple[float, float] = (30.0, 60.0),
        missed_report_rate: float = 0.08,
    ) -> None:
        lo, hi = report_interval_min
        if not 5.0 <= lo <= hi <= 100.0:
            raise ValueError(f"report_interval_min {report_interval_min} must satisfy 5 <= low <= high <= 100")
        if not 0.0 <= missed_report_rate <= 0.5:
            raise ValueError(f"missed_report_rate {missed_report_rate} must be within 0..0.5")
        self.seed = int(seed)
        self.start = float(start)
        self.report_interval_s = (lo * _MIN, hi * _MIN)
        self.missed_report_rate = float(missed_report_rate)
        self.fleet = load_fleet(reference_path)
        self.sea = _sea(str(Path(zones_path).resolve()))
        for v in self.fleet:
            if v.home_port not in self.sea.port_points:
                raise ValueError(f"vessel {v.source_id}: home port {v.home_port!r} has no port zone")
        self.vessel_ids = tuple(v.source_id for v in self.fleet)
        self._by_id = {v.source_id: v for v in self.fleet}
        self._band = {v.source_id: self.sea.band_of(v.length_m) for v in self.fleet}
        # Per vessel: (shrunk band within reach of the home port, its bounding box).
        self._regions: dict[tuple[str, str], tuple[BaseGeometry, tuple[float, float, float, float]]] = {}
        self._windows: dict[str, list[_Window]] = {}
        self._recalls: list[tuple[float, float]] = []
        self._count: dict[str, int] = {}

    # --- incidents ------------------------------------------------------------------------

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
        """Schedule an incident; returns its ground truth. Raises ValueError for an unknown
        kind, an unknown parameter or vessel, or a duration the rules cannot catch.

        * `vms_loss` (`source_id`, `hours`): a VMS vessel (>= 15 m) reports at `at`, then
          nothing for `hours` (default: `duration`; must be > 2), fishing on. Rules: late
          (> 2 h), lost_6h (> 6 h), lost_10d (> 10 d).
        * `foreign_waters` (`source_id`, `approach`): a vessel goes into the foreign box.
          `approach="sail"`: from the north edge of the offshore band at `at` it sails at
          10 kn to the box (~10 h), fishes there until `at + duration`, then sails back;
          `"report"`: its positions simply are in the box from `at` to `at + duration`
          (a jump: a stand-in when the scenario is shorter than the voyage); `"auto"`
          (default): sail when `duration` leaves >= 1 h in the box, else report.
        * `wrong_zone` (`source_id`, `zone`): the vessel leaves its band at `at` and fishes
          in `zone` (default: coastal for >= 12 m, inshore for < 12 m) until `at +
          duration` (> 1 h there), then returns to its band.
        * `loitering` (`source_id`): a vessel >= 12 m drifts at < 2 kn in its band from
          `at` for `duration` (> 1 h).
        * `storm_recall`: from `at` every vessel at sea heads home (within 45 min) and no
          vessel leaves port until `at + duration` (but the vessels with an incident within a
          day of it). The recall is no ban: the ban the rules watch is a calendar
          (config/calendars/storm-bans.yaml, rule storm_ban.at_sea): rules ().
        * `position_jump` (`source_id`, `km`): spoofing or a transponder moved to another vessel
          (docs/domain.md §2: "position jump > 50 km between fixes"): from `at` the vessel's
          positions are reported `km` (default 80, at least 60) to `km` + 40 km away (or, where
          the band has no such point, as far as it goes, at least 65 km), in its own band,
          until `at + duration`, then back where it was: two jumps, at `at` and at `at +
          duration` (both reported at those times). Rule: position_jump.
        * `rendezvous` (`source_id`, `other_id`): two vessels >= 15 m meet at a point of the first
          one's fishing ground (docs/domain.md §2: "encounter of two vessels <= 500 m for >= 2 h",
          e.g. a catch transfer): they sail there for `at`, then until `at + duration` (>= 4 h)
          the one whose id sorts first drifts (< 0.1 km in all) and the other holds station
          alongside, shuttling 0.3 km across the point at 2.2 kn. Rules: encounter (the pair,
          keyed {source_id: first, other_id: second}) and loitering (the drifting one; the
          other keeps above 2 kn). The ground truth names the first vessel (`keys`) and the
          other in `params`.
        * `ban_violation` (`source_id`): a vessel >= 15 m stays at sea, fishing, from `at` until
          `at + duration`, ignoring a storm recall that covers that time (the other vessels go
          home). The shipped rule watches the periods of config/calendars/storm-bans.yaml: the
          scenario must put the incident inside one. Rule: storm_ban.at_sea.
        """
        if kind not in self.incident_kinds:
            raise ValueError(f"unknown vessel incident {kind!r} (allowed: {', '.join(self.incident_kinds)})")
        if not duration > 0:
            raise ValueError(f"duration {duration} must be positive")
        if at < self.start:
            raise ValueError("an incident cannot start before the simulation")
        allowed = {"vms_loss": {"source_id", "hours"}, "foreign_waters": {"source_id", "approach"},
                   "wrong_zone": {"source_id", "zone"}, "loitering": {"source_id"}, "storm_recall": set(),
                   "position_jump": {"source_id", "km"}, "rendezvous": {"source_id", "other_id"},
                   "ban_violation": {"source_id"}}[kind]
        unknown = set(params) - allowed
        if unknown:
            raise ValueError(f"{kind}: unknown parameter(s) {', '.join(sorted(unknown))}"
                             f" (allowed: {', '.join(sorted(allowed)) or 'none'})")
        number = self._count.get(kind, 0) + 1
        incident_id = f"vessel-{kind}-{number}"
        if kind == "storm_recall":
            for rs, re in self._recalls:
                if at < re and rs < at + duration:
                    raise ValueError("storm_recall overlaps another storm_recall")
            self._recalls.append((at, at + duration))
            self._recalls.sort()
            self._count[kind] = number
            return Incident(incident_id, self.stream, kind, {}, at, at + duration, (),
                            {"ports": sorted({v.home_port for v in self.fleet}), "ban_hours": duration / _HOUR})
        vessel = self._pick(kind, params.get("source_id"), at, duration)
        sid = vessel.source_id
        band = self._band[sid]
        rng = np.random.default_rng([self.seed, 7919, len(self._windows.get(sid, [])), number,
                                     self.incident_kinds.index(kind)])
        out_params: dict[str, Any] = {"source_id": sid, "length_m": vessel.length_m}
        if kind == "vms_loss":
            hours = float(params.get("hours", duration / _HOUR))
            if not hours > 2.0:
                raise ValueError(f"vms_loss: hours {hours:g} must be > 2 (the late rule's timeout)")
            end = at + hours * _HOUR
            rules: tuple[str, ...] = (RULE_LATE,)
            rules += (RULE_LOST_6H,) if hours > 6.0 else ()
            rules += (RULE_LOST_10D,) if hours > 240.0 else ()
            window = _Window(kind, at, end, self._ground(vessel, rng))
            out_params["hours"] = hours
        elif kind == "loitering":
            if band == "coastal":
                raise ValueError(f"loitering: {sid} ({vessel.length_m} m) fishes in the coastal band,"
                                 " where the loitering rule does not look: pick a vessel >= 12 m")
            if duration <= 65 * _MIN:
                raise ValueError("loitering: duration must exceed 65 min (the rule's dwell is 1 h)")
            end = at + duration
            rules = (RULE_LOITERING,)
            window = _Window(kind, at, end, self._ground(vessel, rng))
        elif kind == "ban_violation":
            end = at + duration
            rules = (RULE_BAN,)
            window = _Window(kind, at, end, self._ground(vessel, rng))
        elif kind == "rendezvous":
            if duration < 4 * _HOUR:
                raise ValueError("rendezvous: duration must be >= 4 h (the encounter rule needs 2 h alongside, "
                                 "after sailing there and with fixes up to 100 min apart)")
            if str(params.get("other_id")) == sid:
                raise ValueError(f"rendezvous: other_id must be another vessel than {sid}")
            self._windows.setdefault(sid, []).append(_Window(kind, at, at + duration, (0.0, 0.0)))
            try:
                partner = self._pick(kind, params.get("other_id"), at, duration)
            finally:
                self._windows[sid].pop()
            if partner.source_id == sid or self._band[partner.source_id] != band:
                raise ValueError(f"rendezvous: {partner.source_id} must be another vessel of the {band} band")
            first, second = sorted((sid, partner.source_id))
            meet = self._ground(self._by_id[first], rng)
            heading = float(rng.uniform(0.0, 360.0))
            drift_to = _move(*meet, heading, 0.08 / 1.852)
            end = at + duration
            for vessel_id in (first, second):
                approach = "drift" if vessel_id == first else "station"
                self._windows.setdefault(vessel_id, []).append(_Window(kind, at, end, meet, drift_to, 0.0, approach))
                self._windows[vessel_id].sort(key=lambda w: w.ws)
            self._count[kind] = number
            return Incident(incident_id, self.stream, kind, {"source_id": first}, at, end,
                            (RULE_ENCOUNTER, RULE_LOITERING),
                            {"source_id": first, "other_id": second,
                             "length_m": self._by_id[first].length_m})
        elif kind == "position_jump":
            km = float(params.get("km", 80.0))
            if not km >= 60.0:
                raise ValueError(f"position_jump: km {km:g} must be >= 60 (the rule looks for > 50 km)")
            ground = self._ground(vessel, rng)
            end = at + duration
            rules = (RULE_JUMP,)
            window = _Window(kind, at, end, ground, self._far_point(band, ground, km, rng))
            out_params["km"] = km
        elif kind == "wrong_zone":
            zone = str(params.get("zone", "inshore" if band == "coastal" else "coastal"))
            if zone not in self.sea.bands or zone == band:
                others = sorted(set(self.sea.bands) - {band})
                raise ValueError(f"wrong_zone: zone {zone!r} must be a band not allowed for {sid}"
                                 f" ({vessel.length_m} m): one of {', '.join(others)}")
            rendezvous = self.sea.door(vessel.home_port, band)
            target = self.sea.door(vessel.home_port, zone)
            speed = _PROFILES[band].transit_kn[1]
            travel = _nm(*rendezvous, *target) / speed * _HOUR
            if duration < travel + 75 * _MIN:
                raise ValueError(f"wrong_zone: duration must be >= {(travel + 75 * _MIN) / _HOUR:.1f} h"
                                 f" ({travel / _HOUR:.1f} h to reach the {zone} band, then > 1 h there)")
            end = at + duration
            rules = (RULE_LENGTH,)
            window = _Window(kind, at, end, rendezvous, target, speed)
            out_params["zone"] = zone
        else:  # foreign_waters
            approach = str(params.get("approach", "auto"))
            if approach not in ("auto", "sail", "report"):
                raise ValueError(f"foreign_waters: approach {approach!r} (allowed: auto, sail, report)")
            rendezvous, target = self.sea.foreign_points()
            speed = 10.0
            travel = _nm(*rendezvous, *target) / speed * _HOUR
            if approach == "auto":
                approach = "sail" if duration >= travel + _HOUR else "report"
            if approach == "sail" and duration < travel + _HOUR:
                raise ValueError(f"foreign_waters: sailing there takes {travel / _HOUR:.1f} h: duration must be"
                                 f" >= {(travel + _HOUR) / _HOUR:.1f} h, or use approach='report'")
            end = at + duration
            rules = (RULE_FOREIGN, RULE_LENGTH) if approach == "sail" or duration > 65 * _MIN else (RULE_FOREIGN,)
            window = _Window(kind, at, end, rendezvous, target, speed, approach)
            out_params["approach"] = approach
        self._windows.setdefault(sid, []).append(window)
        self._windows[sid].sort(key=lambda w: w.ws)
        self._count[kind] = number
        return Incident(incident_id, self.stream, kind, {"source_id": sid}, at, window.we, rules, out_params)

    def _pick(self, kind: str, source_id: Any, at: float, duration: float) -> Vessel:
        """The named vessel, or the first free suitable one (register order, rotated per kind)."""
        def free(v: Vessel) -> bool:
            margin = 24 * _HOUR
            return all(not (at - margin < w.we + margin and w.ws - margin < at + duration + margin)
                       for w in self._windows.get(v.source_id, []))

        if source_id is not None:
            vessel = self._by_id.get(str(source_id))
            if vessel is None:
                raise ValueError(f"{kind}: unknown vessel {source_id!r} (not in the register)")
            if kind == "vms_loss" and not vessel.vms_required:
                raise ValueError(f"vms_loss: {vessel.source_id} ({vessel.length_m} m) needs no VMS:"
                                 " no rule watches its silence; pick a vessel >= 15 m")
            if not free(vessel):
                raise ValueError(f"{kind}: {vessel.source_id} already has an incident within a day of this one")
            return vessel
        if kind in ("vms_loss", "foreign_waters", "wrong_zone", "loitering", "position_jump", "rendezvous",
                    "ban_violation"):
            candidates = [v for v in self.fleet if self._band[v.source_id] == "offshore" and v.vms_required]
        else:  # pragma: no cover - storm_recall takes no vessel
            candidates = list(self.fleet)
        shift = (self.incident_kinds.index(kind) * 5) % len(candidates)
        for vessel in candidates[shift:] + candidates[:shift]:
            if free(vessel):
                return vessel
        raise ValueError(f"{kind}: every suitable vessel already has an incident near this time")

    def _ground(self, vessel: Vessel, rng: np.random.Generator) -> tuple[float, float]:
        return self._fishing_centre(vessel, self._band[vessel.source_id], rng)

    def _far_point(self, band: str, origin: tuple[float, float], km: float,
                   rng: np.random.Generator) -> tuple[float, float]:
        """A point of `band` (kept off its edges, not in foreign waters) `km` to `km` + 40 km
        from `origin`."""
        region = self.sea.shrunk[band]
        x0, y0, x1, y1 = region.bounds
        farthest, best = 0.0, origin
        for _ in range(2000):
            lon, lat = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
            if not shapely.intersects_xy(region, lon, lat) or shapely.intersects_xy(self.sea.foreign, lon, lat):
                continue
            away = _nm(*origin, lat, lon) * 1.852
            if km <= away <= km + 40.0:
                return lat, lon
            if away > farthest:
                farthest, best = away, (lat, lon)
        if farthest >= 65.0:
            # A ground near the middle of the band: the farthest point found (>= 65 km, so that
            # with the real fixes up to ~9 km from the ground and the spoofed ones ~2 km from the
            # point, every jump stays > 50 km).
            return best
        raise ValueError(f"position_jump: no point of the {band} band {km:g}-{km + 40:g} km from the vessel's ground")

    # --- background -----------------------------------------------------------------------

    def _region(self, vessel: Vessel, band: str) -> tuple[BaseGeometry, tuple[float, float, float, float]]:
        key = (vessel.home_port, band)
        if key not in self._regions:
            anchor = self.sea.port_points[vessel.home_port].anchor
            reach = _PROFILES[band].reach_nm / 60.0
            disc = Point(anchor[1], anchor[0]).buffer(reach / math.cos(math.radians(anchor[0])))
            region = self.sea.shrunk[band].intersection(disc)
            if region.is_empty:
                region = self.sea.shrunk[band]
            shapely.prepare(region)
            self._regions[key] = (region, region.bounds)
        return self._regions[key]

    def _fishing_centre(self, vessel: Vessel, band: str, rng: np.random.Generator) -> tuple[float, float]:
        region, (x0, y0, x1, y1) = self._region(vessel, band)
        door = self.sea.door(vessel.home_port, band)
        allowed = self.sea.allowed(band)
        for _ in range(200):
            lon, lat = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
            if shapely.intersects_xy(region, lon, lat) and (
                door == (lat, lon) or allowed.covers(LineString([(door[1], door[0]), (lon, lat)]))
            ):
                return lat, lon
        return door

    def _departure(self, band: str, after: float, rng: np.random.Generator) -> float:
        """Next departure from port for a vessel that arrived at `after`."""
        prof = _PROFILES[band]
        if band != "coastal":
            return after + float(rng.uniform(*prof.stay_h)) * _HOUR
        # Small boats leave before dawn (most) or mid-afternoon, at least 3 h after arriving.
        hour = float(rng.uniform(2.5, 5.0)) if rng.random() < 0.7 else float(rng.uniform(14.5, 16.5))
        local = after + LOCAL_OFFSET_S + 3 * _HOUR
        day = math.floor(local / 86400.0) * 86400.0
        t = day + hour * _HOUR
        if t < local:
            t += 86400.0
        return t - LOCAL_OFFSET_S

    def _plan(self, index: int, vessel: Vessel, horizon: float, rng: np.random.Generator) -> _Track:
        """The vessel's track from `start` to `horizon`."""
        sid = vessel.source_id
        band = self._band[sid]
        prof = _PROFILES[band]
        port = self.sea.port_points[vessel.home_port]
        region, _ = self._region(vessel, band)
        door = self.sea.door(vessel.home_port, band)
        windows = list(self._windows.get(sid, []))
        # Crossing bands it may not fish in (port -> door of its band) must fit in ~2.5 h: the
        # reports then keep every stretch there under the 1 h dwell and every gap under 2 h.
        cross_nm = _nm(*port.anchor, *port.gate) + _nm(*port.gate, *door)
        cross_kn = min(11.8, cross_nm / 2.5) if band != "coastal" else 0.0
        # An incident vessel keeps to its script: it ignores a recall within a day of one of its
        # incidents (a recall further away brings it home like the others).
        ignored = [any(w.ws - 24 * _HOUR < re and rs < w.we + 24 * _HOUR for w in windows) for rs, re in self._recalls]
        delays = [float(rng.uniform(0.0, 45.0)) * _MIN for _ in self._recalls]
        recall_at = [rs + d for (rs, _), d in zip(self._recalls, delays, strict=True)]

        def lead(w: _Window) -> float:
            return _nm(*port.anchor, *w.rendezvous) / prof.transit_kn[0] * _HOUR + 1.5 * _HOUR

        def banned(t: float) -> float:
            for rs, re in self._recalls:
                if rs <= t < re:
                    return re + float(rng.uniform(1.0, 4.0)) * _HOUR
            return t

        start = self.start
        at_sea = rng.random() < prof.sea_share
        if windows and windows[0].ws - start < lead(windows[0]) + 2 * _HOUR:
            at_sea = True
        if at_sea:
            if windows and windows[0].ws - start < lead(windows[0]) + 2 * _HOUR:
                centre = windows[0].rendezvous
            else:
                centre = self._fishing_centre(vessel, band, rng)
            track = _Track(start, *centre)
            fish_until = start + float(rng.uniform(0.1, 1.0)) * prof.trip_h[1] * _HOUR
        else:
            track = _Track(start, *port.anchor)
            centre = port.anchor
            fish_until = start
        heading = float(rng.uniform(0.0, 360.0))
        in_port = not at_sea
        depart = (self._departure(band, start - float(rng.uniform(0.0, 12.0)) * _HOUR, rng)
                  if band == "coastal" else start + float(rng.uniform(0.0, prof.stay_h[1])) * _HOUR)
        depart = banned(max(depart, start))

        while track.t < horizon:
            w = windows[0] if windows else None
            if in_port:
                if w is not None:
                    depart = max(track.t, min(depart, w.ws - lead(w)))
                if depart >= horizon:
                    track.stay(horizon)
                    break
                track.stay(depart)
                speed = float(rng.uniform(*prof.transit_kn))
                crossing = max(speed, cross_kn)
                if w is not None and w.ws - track.t < lead(w) + prof.trip_h[1] * _HOUR:
                    centre = w.rendezvous
                else:
                    centre = self._fishing_centre(vessel, band, rng)
                track.go(*port.gate, crossing, _TRANSIT)
                if door != port.gate:
                    track.go(*door, crossing, _TRANSIT)
                track.go(*centre, speed, _TRANSIT)
                fish_until = track.t + float(rng.uniform(*prof.trip_h)) * _HOUR
                in_port = False
                continue
            # At sea.
            if w is not None and track.t >= w.ws - 1.0:
                self._script(w, vessel, band, track, rng)
                windows.pop(0)
                fish_until = max(fish_until, track.t + float(rng.uniform(1.0, 4.0)) * _HOUR)
                centre = (track.lat, track.lon) if band == self._zone_at(track.lat, track.lon) else w.rendezvous
                continue
            if w is not None and centre != w.rendezvous and (
                    w.ws - track.t <= _nm(track.lat, track.lon, *w.rendezvous) / prof.transit_kn[0] * _HOUR + _HOUR):
                centre = w.rendezvous
                track.go(*centre, float(rng.uniform(*prof.transit_kn)), _TRANSIT)
                continue
            recalled = any(not skip and ra <= track.t < re
                           for ra, (_, re), skip in zip(recall_at, self._recalls, ignored, strict=True))
            going_home = recalled or (track.t >= fish_until and (
                w is None or w.ws - track.t > 2 * lead(w) + 6 * _HOUR))
            if going_home:
                speed = float(rng.uniform(*prof.transit_kn))
                crossing = max(speed, cross_kn)
                if door != port.gate:
                    track.go(*door, speed, _TRANSIT)
                track.go(*port.gate, crossing, _TRANSIT)
                track.go(*port.anchor, crossing, _TRANSIT)
                in_port = True
                depart = banned(self._departure(band, track.t, rng))
                continue
            # One fishing leg of 20-40 min, cut at the next decision time.
            stop = track.t + float(rng.uniform(20.0, 40.0)) * _MIN
            if w is not None:
                stop = min(stop, max(w.ws, track.t + _MIN))
            stop = min([stop] + [ra for ra, skip in zip(recall_at, ignored, strict=True) if ra > track.t and not skip])
            heading = self._wander(track, centre, heading, prof.ground_nm, rng)
            self._fish_leg(track, region, centre, heading, float(rng.uniform(*prof.fish_kn)), stop - track.t,
                           _FISH)
        return track

    @staticmethod
    def _wander(track: _Track, centre: tuple[float, float], heading: float, radius_nm: float,
                rng: np.random.Generator) -> float:
        if _nm(track.lat, track.lon, *centre) > radius_nm:
            return (_bearing(track.lat, track.lon, *centre) + float(rng.normal(0.0, 20.0))) % 360.0
        return (heading + float(rng.normal(0.0, 40.0))) % 360.0

    @staticmethod
    def _fish_leg(track: _Track, region: BaseGeometry, centre: tuple[float, float], heading: float,
                  speed_kn: float, dt: float, mode: int) -> None:
        """Move for dt at speed_kn on heading; where that leaves the region, turn (towards the
        centre first, then ever wider), so the speed reported stays the speed sailed."""
        dist = speed_kn * dt / _HOUR
        to_centre = _bearing(track.lat, track.lon, *centre)
        for h in (heading, to_centre, heading + 45.0, heading - 45.0, heading + 90.0, heading - 90.0,
                  heading + 135.0, heading - 135.0, heading + 180.0):
            lat, lon = _move(track.lat, track.lon, h % 360.0, dist)
            if shapely.intersects_xy(region, lon, lat):
                break
        else:
            lat, lon = track.lat, track.lon   # boxed in (never seen with the shipped zones): hold
        track.go_for(lat, lon, dt, mode)

    def _zone_at(self, lat: float, lon: float) -> str:
        for cls, geom in self.sea.shrunk.items():
            if shapely.intersects_xy(geom, lon, lat):
                return cls
        return ""

    def _script(self, w: _Window, vessel: Vessel, band: str, track: _Track, rng: np.random.Generator) -> None:
        """The vessel's movements from `w.ws`; sets `w.owned_until` (its reports follow the incident)."""
        prof = _PROFILES[band]
        if w.kind in ("vms_loss", "ban_violation"):
            region, _ = self._region(vessel, band)
            centre, heading = (track.lat, track.lon), float(rng.uniform(0.0, 360.0))
            while track.t < w.we + _HOUR:
                heading = self._wander(track, centre, heading, prof.ground_nm, rng)
                self._fish_leg(track, region, centre, heading, float(rng.uniform(*prof.fish_kn)),
                               float(rng.uniform(20.0, 40.0)) * _MIN, _FISH)
        elif w.kind == "loitering":
            region, _ = self._region(vessel, band)
            centre = (track.lat, track.lon)
            while track.t < w.we:
                dt = min(float(rng.uniform(15.0, 30.0)) * _MIN, w.we - track.t)
                self._fish_leg(track, region, centre, float(rng.uniform(0.0, 360.0)),
                               float(rng.uniform(0.3, 1.5)), max(dt, 1.0), _LOITER)
        elif w.kind == "wrong_zone":
            zone = self._zone_at(*w.target) or "coastal"
            target_region = self.sea.shrunk[zone]
            track.go(*w.target, w.speed_kn, _TRANSIT)
            heading = float(rng.uniform(0.0, 360.0))
            while track.t < w.we:
                heading = self._wander(track, w.target, heading, 2.0, rng)
                dt = min(float(rng.uniform(20.0, 40.0)) * _MIN, w.we - track.t)
                self._fish_leg(track, target_region, w.target, heading, float(rng.uniform(2.4, 4.0)),
                               max(dt, 1.0), _FISH)
            track.go(*w.rendezvous, w.speed_kn, _TRANSIT)
        elif w.kind == "rendezvous":
            track.go(*w.rendezvous, prof.transit_kn[1], _TRANSIT)
            if w.approach == "drift":
                if track.t < w.we:
                    track.go_for(*w.target, w.we - track.t, _LOITER)
            else:  # hold station: shuttle across the meeting point (north-south), above 2 kn
                half = _STATION_KM / 2 / 1.852
                ends = [_move(*w.rendezvous, 0.0, half), _move(*w.rendezvous, 180.0, half)]
                leg = _STATION_KM / 1.852 / _STATION_KN * _HOUR
                track.go(*ends[0], _STATION_KN, _FISH)
                turn = 1
                while track.t < w.we:
                    dt = min(leg, w.we - track.t)
                    a, b = ends[1 - turn], ends[turn]
                    f = dt / leg
                    track.go_for(a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1]), max(dt, 1.0), _FISH)
                    turn = 1 - turn
        elif w.kind == "position_jump":
            # The reports jump (no track between): spoofed positions wander around the far point.
            region = self.sea.shrunk[band]
            back = (track.lat, track.lon)
            track.jump(*w.target)
            heading = float(rng.uniform(0.0, 360.0))
            while track.t < w.we:
                heading = self._wander(track, w.target, heading, 1.0, rng)
                dt = min(float(rng.uniform(10.0, 20.0)) * _MIN, w.we - track.t)
                self._fish_leg(track, region, w.target, heading, float(rng.uniform(*prof.fish_kn)), max(dt, 1.0),
                               _FISH)
            track.jump(*back)
        else:  # foreign_waters
            box = self.sea.foreign.buffer(-0.05)
            shapely.prepare(box)
            back = (track.lat, track.lon)
            if w.approach == "sail":
                track.go(*w.target, w.speed_kn, _TRANSIT)
            else:
                track.jump(*w.target)
            heading = float(rng.uniform(0.0, 360.0))
            while track.t < w.we:
                heading = self._wander(track, w.target, heading, 6.0, rng)
                dt = min(float(rng.uniform(20.0, 40.0)) * _MIN, w.we - track.t)
                self._fish_leg(track, box, w.target, heading, float(rng.uniform(2.4, 4.0)), max(dt, 1.0), _FISH)
            if w.approach == "sail":
                track.go(*back, w.speed_kn, _TRANSIT)
            else:
                track.jump(*back)
        w.owned_until = track.t

    # --- reports --------------------------------------------------------------------------

    def _crossings(self, track: _Track, band: str, owned: list[tuple[float, float]]) -> list[tuple[float, float]]:
        """(first time outside, first time back inside) of each stretch of a transit leg in a
        zone not allowed for the band, sampled every 30 s; stretches of incidents excluded."""
        allowed = self.sea.allowed(band)
        times: list[np.ndarray] = []
        ok: list[np.ndarray] = []
        for t0, t1, la0, lo0, la1, lo1, mode in track.segs:
            if mode != _TRANSIT:
                times.append(np.array([t0, t1]))
                ok.append(np.array([True, True]))
                continue
            n = max(2, int((t1 - t0) / 30.0) + 1)
            f = np.linspace(0.0, 1.0, n)
            times.append(t0 + f * (t1 - t0))
            ok.append(shapely.intersects_xy(allowed, lo0 + f * (lo1 - lo0), la0 + f * (la1 - la0)))
        if not times:
            return []
        ts, inside = np.concatenate(times), np.concatenate(ok)
        out: list[tuple[float, float]] = []
        i, n = 0, len(ts)
        while i < n:
            if inside[i]:
                i += 1
                continue
            j = i
            while j < n and not inside[j]:
                j += 1
            o, back = float(ts[i]), float(ts[j]) if j < n else math.inf
            if not any(a - _HOUR <= back and o <= b + _HOUR for a, b in owned):
                out.append((o, back))
            i = j
        return out

    def _report_times(self, track: _Track, vessel: Vessel, end: float,
                      rng: np.random.Generator) -> list[tuple[float, str]]:
        """(time, device_status) of each position the vessel sends before `end`."""
        band = self._band[vessel.source_id]
        windows = self._windows.get(vessel.source_id, [])
        owned = [(w.ws, max(w.we, w.owned_until)) for w in windows]
        crossings = self._crossings(track, band, owned)
        lo, hi = self.report_interval_s
        miss = self.missed_report_rate

        def gap() -> float:
            if rng.random() < miss:
                return float(rng.uniform(hi, max(hi, 100.0 * _MIN)))
            return float(rng.uniform(lo, hi))

        # A jump is reported when it happens, both ways.
        forced = sorted([w.ws for w in windows] + [w.we for w in windows if w.kind == "position_jump"])
        reconnect = {w.we: w for w in windows if w.kind == "vms_loss"}
        forced = sorted(forced + list(reconnect))
        out: list[float] = []
        t = self.start + float(rng.uniform(0.0, lo))
        ci = fi = 0
        while t < end:
            if fi < len(forced) and forced[fi] <= t:
                t = forced[fi]
                fi += 1
                out.append(t)
                t += gap()
                continue
            if ci < len(crossings) and t >= crossings[ci][0] - 15 * _MIN:
                o, back = crossings[ci]
                ci += 1
                last = out[-1] if out else -math.inf
                pre = o - float(rng.uniform(1.0, 3.0)) * _MIN
                if pre > last + 2 * _MIN and pre >= self.start:
                    out.append(pre)
                    last = pre
                elif last < o - 15 * _MIN and t < o:
                    out.append(t)
                    last = t
                if math.isinf(back):
                    break
                post = back + float(rng.uniform(1.0, 3.0)) * _MIN
                if post - last > MAX_REPORT_GAP_S:
                    mid = back - float(rng.uniform(42.0, 50.0)) * _MIN
                    mid = max(mid, post - _DWELL_SAFE_S, o + _MIN)
                    mid = min(mid, last + MAX_REPORT_GAP_S)
                    out.append(mid)
                out.append(post)
                t = post + gap()
                continue
            if fi < len(forced) and forced[fi] - t < 2 * _MIN:
                t = forced[fi]
                continue
            out.append(t)
            t += gap()
        silences = [(w.ws, w.we) for w in windows if w.kind == "vms_loss"]
        result: list[tuple[float, str]] = []
        for t in out:
            if t >= end or any(a < t < b for a, b in silences):
                continue
            t = float(round(t))
            if result and t <= result[-1][0]:
                continue
            status = "reconnected" if t in reconnect else ("weak_signal" if rng.random() < 0.02 else "ok")
            result.append((t, status))
        return result

    def _vessel_events(self, index: int, vessel: Vessel, end: float) -> list[tuple[float, int, dict[str, Any]]]:
        rng = np.random.default_rng([self.seed, index])
        track = self._plan(index, vessel, end + 6 * _HOUR, rng)
        reports = self._report_times(track, vessel, end, rng)
        segs = track.segs
        starts = [s[0] for s in segs]
        sid, mmsi, length = vessel.source_id, vessel.mmsi, vessel.length_m
        fast_fishing = self._band[sid] != "coastal"
        normal = rng.standard_normal(len(reports) * 3).tolist()
        out: list[tuple[float, int, dict[str, Any]]] = []
        cog = float(rng.uniform(0.0, 360.0))
        k = 0
        for n, (t, status) in enumerate(reports):
            k = max(0, min(bisect.bisect_right(starts, t, lo=k) - 1, len(segs) - 1))
            t0, t1, la0, lo0, la1, lo1, mode = segs[k]
            f = min(1.0, max(0.0, (t - t0) / (t1 - t0))) if t1 > t0 else 1.0
            lat, lon = la0 + f * (la1 - la0), lo0 + f * (lo1 - lo0)
            e0, e1, e2 = normal[3 * n], normal[3 * n + 1], normal[3 * n + 2]
            if mode == _PORT or t1 <= t0:
                lat += 0.0002 * e0
                lon += 0.0002 * e1
                sog = min(0.4, abs(0.1 * e2))
            else:
                speed = _nm(la0, lo0, la1, lo1) / ((t1 - t0) / _HOUR)
                sog = speed * (1.0 + 0.03 * e0)
                if mode == _LOITER:
                    sog = min(sog, 1.9)
                elif mode == _FISH and fast_fishing:
                    sog = max(sog, 2.1)
                cog = (_bearing(la0, lo0, la1, lo1) + 2.0 * e1) % 360.0
            out.append((t, index, {
                "source_id": sid, "ts": format_ts(t), "id": f"{sid}-{n:06d}",
                "lat": round(lat, 5), "lon": round(lon, 5),
                "sog_kn": round(min(12.0, max(0.0, sog)), 1), "cog_deg": round(cog, 1),
                "length_m": length, "mmsi": mmsi, "device_status": status,
            }))
        return out

    def events(self, end: float) -> Iterator[dict[str, Any]]:
        """Every position from `start` until before `end` (event time), in ts order."""
        per_vessel = [self._vessel_events(i, v, end) for i, v in enumerate(self.fleet)]
        for _, _, event in heapq.merge(*per_vessel, key=lambda item: (item[0], item[1])):
            yield event

    def tracks(self, end: float) -> dict[str, Sequence[tuple[float, float, float, float, float, float, int]]]:
        """The planned track segments of every vessel (for plots and tests)."""
        return {v.source_id: self._plan(i, v, end + 6 * _HOUR, np.random.default_rng([self.seed, i])).segs
                for i, v in enumerate(self.fleet)}
