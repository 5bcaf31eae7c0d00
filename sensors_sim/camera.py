"""Deterministic simulator of the traffic and urban AI cameras of Thừa Thiên Huế (`camera` stream).

Background traffic, per camera of `config/reference/camera.yaml` (docs/domain.md §3):

* a `heartbeat` every `heartbeat_s` (60 s) from every camera;
* violations (`no_helmet`, `red_light`, `wrong_lane`, `speeding`, `illegal_parking`, with
  plates, vehicle classes and recogniser scores) from AI cameras, as Poisson arrivals with an
  hour-of-day profile in Huế local time (UTC+7) that peaks in the rush hours 06:30-08:30 and
  16:30-18:30. Daily counts at a busy intersection follow docs/domain.md (no helmet 170-460, red
  light 13-320); other cameras see `QUIET_SHARE` of that; `rate_scale` scales every rate;
* `crowd` counts every `crowd_every_s` (60 s) at every camera with a `crowd_limit`, following a
  market (morning) or leisure (evening) profile and always below the limit;
* rare low-confidence `fire_smoke` detections (incense, cooking smoke: score < 0.8) at
  crowd sites, and, only when `wrong_way_per_day` > 0, wrong-way drivers at busy cameras.

Background alone does not fire the incident rules of `rules/camera.yaml`: heartbeats keep
every camera alive, crowds stay under their limit, fire/smoke false positives stay under score
0.8, a briefly stopped vehicle is re-sighted at most 4 min later, and wrong-way driving (which
the shipped rule alerts on at every detection) is off by default. The one exception is
camera.violations.spike after its 7-day history: Poisson tails of rush hours still reach its 3x
about once a day over the ~30 busy cameras (see `RUSH_PEAK`). Incidents are injected with
`add_incident`; each returns its ground truth (`Incident`).

>>> from ioc.timeutil import parse_ts
>>> t0 = parse_ts("2025-10-27T07:00:00+07:00")
>>> sim = CameraSimulator(seed=7, start=t0)
>>> incident = sim.add_incident("fire_smoke", at=t0 + 600, duration=60, source_id="cam-008")
>>> incident.rules, incident.keys
(('camera.fire.smoke_confirmed',), {'source_id': 'cam-008'})
>>> events = list(sim.events(t0 + 3600))
>>> sum(e["event_type"] == "heartbeat" for e in events)   # 54 cameras x 60 min
3240
>>> [e["source_id"] for e in events if e["event_type"] == "fire_smoke" and e["score"] >= 0.8]
['cam-008', 'cam-008', 'cam-008', 'cam-008']
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from sensors_sim.base import Incident

__all__ = [
    "DEFAULT_REFERENCE_PATH",
    "BUSY_DAILY_RATES",
    "HUE_UTC_OFFSET_S",
    "INCIDENT_RULES",
    "QUIET_SHARE",
    "RUSH_PEAK",
    "SPIKE_HISTORY_S",
    "Camera",
    "CameraSimulator",
    "load_cameras",
    "violation_profile",
]

DEFAULT_REFERENCE_PATH = Path(__file__).resolve().parent.parent / "config" / "reference" / "camera.yaml"
HUE_UTC_OFFSET_S = 7 * 3600

# Violations per day at a busy AI intersection, (low, high): a camera draws its own rate in the
# range (log-uniformly). no_helmet and red_light: docs/domain.md §3 (Hanoi pilot); the others are
# (unverified) plausible values.
BUSY_DAILY_RATES: dict[str, tuple[float, float]] = {
    "no_helmet": (170.0, 460.0),
    "red_light": (13.0, 320.0),
    "wrong_lane": (20.0, 80.0),
    "speeding": (10.0, 60.0),
    "illegal_parking": (5.0, 30.0),
}
# Share of those rates at AI cameras that are not busy intersections (unverified).
QUIET_SHARE = 0.2
# Rush-hour rate relative to the daily mean rate. camera.violations.spike compares an hour with
# the mean hour of the week before (ratio 3, min_count 20), so a Poisson rush hour fires it when
# its count reaches 3 / RUSH_PEAK times its expectation. Real peak hours carry ~8-10% of a day's
# traffic (2-2.4x the mean hour); 1.6 flattens that a little so the background stays quiet. What
# remains are Poisson tails at cameras whose hourly mean is near min_count / 3: in 14-day runs of
# all cameras, 4-11 spike alerts in the second week (seeds 0-2; 1.8 gave 10-22), none in runs
# shorter than the rule's 7-day history. No other rule fires on background.
RUSH_PEAK = 1.6
# camera.violations.spike judges a key once its history covers window + baseline (1h + 7d, less
# one 6 min bucket); a surge needs that much background before it (plus margin for the key's
# first event, which can come an hour after `start` at night).
SPIKE_HISTORY_S = 7 * 86400 + 2 * 3600
SPIKE_MIN_COUNT = 20  # min_count of camera.violations.spike

# Shipped rules (rules/camera.yaml) expected to catch each incident kind.
INCIDENT_RULES: dict[str, tuple[str, ...]] = {
    "plate_watchlist": ("camera.watchlist.plate",),
    "fire_smoke": ("camera.fire.smoke_confirmed",),
    "crowd": ("camera.crowd.over_limit",),
    "violation_surge": ("camera.violations.spike",),
    "camera_offline": ("camera.offline",),
    "wrong_way": ("camera.wrong_way.detected",),
    "illegal_parking": ("camera.parking.illegal_dwell",),
    "road_flooding": ("camera.flooding.gauge_bd2",),
}

# Event type codes of the generated arrays.
_TYPES: tuple[str, ...] = (
    "heartbeat", "crowd", "no_helmet", "red_light", "wrong_lane", "speeding", "illegal_parking",
    "wrong_way", "fire_smoke",
)
_HB, _CROWD, _FIRE, _WRONG_WAY, _PARKING, _SPEEDING = 0, 1, 8, 7, 6, 5
_CODE = {name: code for code, name in enumerate(_TYPES)}
_CLASSES: tuple[str, ...] = ("motorbike", "car", "truck", "bus")
# P(vehicle class) per event type (unverified: Huế traffic is mostly motorbikes).
_CLASS_P: dict[str, tuple[float, float, float, float]] = {
    "no_helmet": (1.0, 0.0, 0.0, 0.0),
    "red_light": (0.75, 0.2, 0.03, 0.02),
    "wrong_lane": (0.6, 0.3, 0.07, 0.03),
    "speeding": (0.35, 0.5, 0.1, 0.05),
    "illegal_parking": (0.15, 0.75, 0.08, 0.02),
    "wrong_way": (0.85, 0.13, 0.02, 0.0),
}
_CLASS_CUM = np.zeros((len(_TYPES), 4))
for _name, _p in _CLASS_P.items():
    _CLASS_CUM[_CODE[_name]] = np.cumsum(_p)
_CLASS_CUM[:, 3] = 1.0 + 1e-9  # rounding: every draw lands in some class
# Plates: province code (75 Thừa Thiên Huế; neighbours and national ones less often) and series.
_PROVINCES: tuple[str, ...] = ("75",) * 16 + ("43", "43", "74", "92", "29", "51")
_SERIES: dict[str, tuple[str, ...]] = {
    "motorbike": ("B1", "C1", "D1", "E1", "F1", "G1", "H1", "K1", "L1", "M1", "N1", "P1"),
    "car": ("A", "A", "A", "K", "H"),
    "truck": ("C", "C", "LD"),
    "bus": ("B", "B", "F"),
}
_FIRE_SMOKE_PER_DAY = 2.0  # false detections (incense, cooking) at a crowd site (unverified)
_PARKING_RESIGHT_P = 0.3  # a stopped vehicle seen a second time, 1-4 min later
_BBOX = (15.99, 16.74, 107.02, 108.22)


@dataclass(frozen=True)
class Camera:
    """Reference data of one camera (config/reference/camera.yaml)."""

    source_id: str
    name: str
    lat: float
    lon: float
    district: str
    kind: str
    ai: bool
    busy: bool
    crowd_limit: int | None
    flood_prone: bool
    gauge: str | None


def load_cameras(path: str | Path = DEFAULT_REFERENCE_PATH) -> list[Camera]:
    """Cameras of a reference file (`key: source_id`, `items: [...]`); ValueError lists every problem.

    >>> cams = load_cameras()
    >>> len(cams), cams[7].source_id, cams[7].crowd_limit
    (54, 'cam-008', 200)
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("key") != "source_id" or not isinstance(data.get("items"), list):
        raise ValueError(f"{path}: expected a mapping with `key: source_id` and `items: [...]`")
    cameras: list[Camera] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, item in enumerate(data["items"], start=1):
        where = f"{path.name}: item {number}"
        if not isinstance(item, dict):
            problems.append(f"{where}: not a mapping")
            continue
        sid = item.get("source_id")
        try:
            limit = item.get("crowd_limit")
            camera = Camera(
                source_id=str(sid),
                name=str(item["name"]),
                lat=float(item["cam_lat"]),
                lon=float(item["cam_lon"]),
                district=str(item["cam_district"]),
                kind=str(item.get("cam_kind", "ioc")),
                ai=bool(item.get("ai", False)),
                busy=bool(item.get("busy", False)),
                crowd_limit=None if limit is None else int(limit),
                flood_prone=bool(item.get("flood_prone", False)),
                gauge=item.get("gauge"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"{where} ({sid!r}): missing or bad field {exc}")
            continue
        if not isinstance(sid, str) or not sid.strip():
            problems.append(f"{where}: source_id {sid!r} is not a non-empty text")
        elif sid in seen:
            problems.append(f"{where}: source_id {sid!r} is a duplicate")
        if not (_BBOX[0] <= camera.lat <= _BBOX[1] and _BBOX[2] <= camera.lon <= _BBOX[3]):
            problems.append(f"{where} ({sid!r}): cam_lat/cam_lon outside the province")
        if camera.crowd_limit is not None and camera.crowd_limit < 1:
            problems.append(f"{where} ({sid!r}): crowd_limit must be a positive count or null")
        seen.add(str(sid))
        cameras.append(camera)
    if problems:
        raise ValueError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(problems))
    if not cameras:
        raise ValueError(f"{path}: no cameras")
    return cameras


def _interpolate(knots: Sequence[tuple[float, float]]) -> np.ndarray:
    """Weights per local minute of the day (1440) from (hour, weight) knots."""
    hours, weights = zip(*knots, strict=True)
    return np.interp(np.arange(1440) / 60.0, hours, weights)


def violation_profile(rush_peak: float = RUSH_PEAK) -> np.ndarray:
    """Relative violation rate per minute of the local (UTC+7) day: mean 1, `rush_peak` at the
    rush hours 06:30-08:30 and 16:30-18:30, quiet at night.

    >>> p = violation_profile()
    >>> round(float(p.mean()), 6), round(float(p[7 * 60]), 2), float(p[3 * 60]) < 0.2
    (1.0, 1.6, True)
    """
    def shape(peak: float) -> np.ndarray:
        knots = [
            (0, 0.15), (4, 0.12), (5, 0.4), (6, 0.9), (6.5, peak), (8.5, peak), (9, 1.0), (11, 0.95),
            (12, 1.0), (13, 0.75), (14, 0.85), (16, 1.0), (16.5, peak), (18.5, peak), (19, 1.1),
            (20, 0.9), (21, 0.6), (22, 0.35), (23, 0.2), (24, 0.15),
        ]
        w = _interpolate(knots)
        return w / w.mean()

    if not 1.5 <= rush_peak <= 4.0:
        raise ValueError(f"rush_peak ({rush_peak}) must be 1.5..4 (lower: the day would peak outside the rush hours)")
    lo, hi = 1.0, 20.0  # peak knot, solved so the normalised peak is rush_peak
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if shape(mid).max() < rush_peak else (lo, mid)
    return shape((lo + hi) / 2)


# Crowd size as a share of a site's usual daily peak, by local hour (unverified).
_MARKET_CROWD = _interpolate([(0, 0.02), (4, 0.05), (5, 0.4), (6, 0.8), (8, 1.0), (10, 0.7), (12, 0.4),
                              (15, 0.4), (17, 0.6), (19, 0.3), (21, 0.05), (24, 0.02)])
_LEISURE_CROWD = _interpolate([(0, 0.1), (6, 0.15), (9, 0.35), (12, 0.3), (15, 0.35), (17, 0.6), (19, 0.9),
                               (20.5, 1.0), (22, 0.6), (23, 0.3), (24, 0.1)])
_FLAT = np.ones(1440)


def _seconds_prefix(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _rng(seed: int, child: int) -> np.random.Generator:
    """Child `child` of default_rng(seed): 0 the background, 1 + i the i-th incident."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(child,)))


def _plate(rng: np.random.Generator, vehicle_class: str) -> str:
    series = _SERIES.get(vehicle_class, _SERIES["car"])
    number = int(rng.integers(0, 100000))
    return f"75{series[int(rng.integers(len(series)))]}-{number // 100:03d}.{number % 100:02d}"


class CameraSimulator:
    """Background traffic of the Huế cameras plus labelled incidents (see the module docstring).

    Knobs: `heartbeat_s` heartbeat period; `crowd_every_s` period of crowd counts; `rate_scale`
    multiplies every violation rate; `wrong_way_per_day` background wrong-way drivers per busy
    camera and day (docs/domain.md: 1-3; default 0 because the shipped rule alerts on each one);
    `cameras` restricts the simulation to some source ids (default: the whole reference list).
    """

    stream = "camera"
    incident_kinds: tuple[str, ...] = tuple(INCIDENT_RULES)

    def __init__(
        self,
        *,
        seed: int = 0,
        start: float,
        reference_path: str | Path = DEFAULT_REFERENCE_PATH,
        heartbeat_s: float = 60.0,
        crowd_every_s: float = 60.0,
        rate_scale: float = 1.0,
        wrong_way_per_day: float = 0.0,
        rush_peak: float = RUSH_PEAK,
        cameras: Sequence[str] | None = None,
    ) -> None:
        if not math.isfinite(start) or start < 0:
            raise ValueError(f"start ({start!r}) must be an epoch time in seconds")
        if not 1.0 <= heartbeat_s <= 300.0:
            raise ValueError(f"heartbeat_s ({heartbeat_s}) must be 1..300 s (camera.offline fires after 10 min)")
        if not 1.0 <= crowd_every_s <= 120.0:
            raise ValueError(f"crowd_every_s ({crowd_every_s}) must be 1..120 s (crowd rule: 5 min)")
        if not (math.isfinite(rate_scale) and 0.0 <= rate_scale <= 100.0):
            raise ValueError(f"rate_scale ({rate_scale}) must be 0..100")
        if not (math.isfinite(wrong_way_per_day) and wrong_way_per_day >= 0.0):
            raise ValueError(f"wrong_way_per_day ({wrong_way_per_day}) must be >= 0")
        if not (math.isfinite(rush_peak) and 1.5 <= rush_peak <= 4.0):
            raise ValueError(f"rush_peak ({rush_peak}) must be 1.5..4 (rush-hour rate / mean rate)")
        every = load_cameras(reference_path)
        if cameras is not None:
            by_id = {c.source_id: c for c in every}
            unknown = [s for s in cameras if s not in by_id]
            if unknown or not cameras:
                raise ValueError(f"cameras: unknown or empty {unknown} (known: {', '.join(by_id)})")
            every = [by_id[s] for s in dict.fromkeys(cameras)]
        self.cameras: list[Camera] = every
        self.seed = int(seed)
        self.start = float(start)
        self.heartbeat_s = float(heartbeat_s)
        self.crowd_every_s = float(crowd_every_s)
        self.rate_scale = float(rate_scale)
        self.wrong_way_per_day = float(wrong_way_per_day)
        self.rush_peak = float(rush_peak)
        self.incidents: list[Incident] = []
        self._index = {c.source_id: i for i, c in enumerate(self.cameras)}
        self._incident_events: list[tuple[int, int, dict[str, Any]]] = []  # (ts_ms, order, body)
        self._silences: list[tuple[int, int, int]] = []  # (camera, from ms, to ms): offline
        self._crowd_overrides: list[tuple[int, int, int]] = []  # background crowd replaced
        self._kind_counts: Counter[str] = Counter()
        self._rates_cache: np.ndarray | None = None

    # --- reference-derived, per-camera data --------------------------------------------------

    def _speed_limit(self, camera: Camera) -> float:
        return 70.0 if ("QL1A" in camera.name or "Hầm" in camera.name) else 50.0

    def daily_rates(self) -> dict[tuple[str, str], float]:
        """Expected events per day by (source_id, event_type) of the background violations (and
        false fire/smoke detections), drawn from the seed; the same for every call.

        >>> sim = CameraSimulator(seed=1, start=0.0)
        >>> 170 <= sim.daily_rates()[("cam-001", "no_helmet")] <= 460
        True
        """
        rates = self._rates()
        return {
            (self.cameras[int(c)].source_id, _TYPES[int(t)]): float(r)
            for c, t, r, _ in rates
        }

    def _rates(self) -> np.ndarray:
        """Rows (camera, type code, events/day, profile 0 traffic | 1 flat) of the Poisson arrivals."""
        if self._rates_cache is not None:
            return self._rates_cache
        rng = _rng(self.seed, 0)
        rows: list[tuple[int, int, float, int]] = []
        for c, camera in enumerate(self.cameras):
            # One draw per camera and type, in a fixed order, whether or not the camera uses it.
            draws = rng.random(len(BUSY_DAILY_RATES))
            if camera.ai:
                share = 1.0 if camera.busy else QUIET_SHARE
                for u, (name, (low, high)) in zip(draws, BUSY_DAILY_RATES.items(), strict=True):
                    per_day = math.exp(math.log(low) + float(u) * (math.log(high) - math.log(low)))
                    if self.rate_scale * share * per_day > 0:
                        rows.append((c, _CODE[name], self.rate_scale * share * per_day, 0))
                if camera.crowd_limit is not None:
                    rows.append((c, _FIRE, _FIRE_SMOKE_PER_DAY, 1))
                if camera.busy and self.wrong_way_per_day > 0:
                    rows.append((c, _WRONG_WAY, self.wrong_way_per_day, 0))
        self._rates_cache = np.array(rows, dtype=float).reshape(-1, 4)
        return self._rates_cache

    # --- incidents ---------------------------------------------------------------------------

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
        """Schedule an incident; returns its ground truth. Raises ValueError for an unknown kind,
        an unknown or unsuitable camera, an unknown parameter or a duration too short for the
        rule to catch it. Parameters per kind (all optional):

        * plate_watchlist: source_id (cam-001), plate, vehicle_class (car), every_s (60): a wanted
          vehicle sighted at `at` and every `every_s` while it waits within `duration`.
        * fire_smoke: source_id (cam-008), every_s (20, < 60): detections with score 0.82-0.97.
        * crowd: source_id (cam-008, needs a crowd_limit), peak (1.4 x crowd_limit): counts over
          the limit every crowd_every_s; duration > 5 min + 2 reports.
        * violation_surge: source_id (cam-001, an AI camera), event_type (red_light; or no_helmet,
          wrong_lane, speeding), factor (5: extra violations per hour as a multiple of the
          camera's mean hourly rate, at least 40/h); needs `at` >= start + 7d2h (the spike rule's
          7-day baseline) and duration >= 45 min.
        * camera_offline: source_id (cam-026): no event at all during `duration` (>= 11 min).
        * wrong_way: source_id (cam-017), vehicles (1): wrong-way drivers spread over `duration`.
        * illegal_parking: source_id (cam-013), plate, vehicle_class (car), every_s (120, <= 300):
          one parked vehicle re-sighted; duration must let two sightings lie > 5 min apart.
        * road_flooding: source_id (cam-026, flood-prone), every_s (600): road flooding reports.
          The shipped rule (camera.flooding.gauge_bd2) also needs the camera's gauge (its
          reference `gauge`: kim-long or phu-oc) >= its BĐ2 (reservoir stream) within 2 h before
          a report; its alert is keyed {"key": <gauge>} and its starts_at is the earliest such
          reading within 2 h before the report, i.e. up to 2 h *before* the incident's start:
          scoring with a 1 h slack only counts it when the first report comes within 1 h of the
          gauge reaching BĐ2.
        """
        if kind not in INCIDENT_RULES:
            raise ValueError(f"unknown camera incident kind {kind!r} (allowed: {', '.join(self.incident_kinds)})")
        if not (math.isfinite(at) and at >= self.start):
            raise ValueError(f"at ({at!r}) must be at or after the simulation start ({self.start})")
        if not (math.isfinite(duration) and duration >= 0):
            raise ValueError(f"duration ({duration!r}) must be >= 0 seconds")
        number = len(self.incidents)
        rng = _rng(self.seed, 1 + number)
        allowed, defaults = _PARAMS[kind]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValueError(f"{kind}: unknown parameter(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})")
        p = {**defaults, **params}
        sid = p["source_id"]
        if sid not in self._index:
            raise ValueError(f"{kind}: source_id {sid!r} is not a simulated camera")
        c = self._index[sid]
        camera = self.cameras[c]
        at_ms = round(at * 1000)
        end_ms = round((at + duration) * 1000)
        bodies: list[tuple[int, dict[str, Any]]] = []
        keys: dict[str, Any] = {"source_id": sid}
        rules = INCIDENT_RULES[kind]
        where = {"lat": camera.lat, "lon": camera.lon, "district": camera.district, "ward": camera.district}

        def every(name: str, low: float, high: float) -> int:
            value = float(p[name])
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{kind}: {name} ({p[name]!r}) must be {low:g}..{high:g} s")
            return round(value * 1000)

        if kind in ("plate_watchlist", "illegal_parking"):
            vclass = str(p["vehicle_class"])
            if vclass not in _CLASSES:
                raise ValueError(f"{kind}: vehicle_class {vclass!r} (allowed: {', '.join(_CLASSES)})")
            plate = p["plate"] if p["plate"] is not None else _plate(rng, vclass)
            if not isinstance(plate, str) or not any(ch.isalnum() for ch in plate):
                raise ValueError(f"{kind}: plate {plate!r} must be a readable plate text")
            p.update(plate=plate)
            keys["plate"] = plate
            step = every("every_s", 10, 300) if kind == "illegal_parking" else every("every_s", 1, 3600)
            if kind == "illegal_parking" and (duration * 1000 // step) * step <= 300_000 + 2000:
                raise ValueError(f"{kind}: duration ({duration:g} s) must let two sightings every {step / 1000:g} s"
                                 " lie more than 5 min apart (e.g. 10 min)")
            for t in range(at_ms, end_ms + 1, step):
                jitter = int(rng.integers(0, 2000)) if t > at_ms else 0
                bodies.append((t + jitter, {
                    "event_type": kind, "plate": plate, "vehicle_class": vclass,
                    "score": round(float(rng.uniform(0.9, 0.99)), 2), **where,
                }))
        elif kind == "fire_smoke":
            step = every("every_s", 1, 59)
            if duration * 1000 < step:
                raise ValueError(f"{kind}: duration ({duration:g} s) must allow two detections (>= every_s)")
            for t in range(at_ms, end_ms + 1, step):
                bodies.append((t, {"event_type": "fire_smoke", "score": round(float(rng.uniform(0.82, 0.97)), 2),
                                   **where}))
        elif kind == "crowd":
            limit = camera.crowd_limit
            if limit is None:
                with_limit = [x.source_id for x in self.cameras if x.crowd_limit is not None]
                raise ValueError(f"crowd: camera {sid} has no crowd_limit (cameras with one: {', '.join(with_limit)})")
            peak = float(p["peak"])
            if not (math.isfinite(peak) and 1.05 <= peak <= 10):
                raise ValueError(f"crowd: peak ({p['peak']!r}) must be 1.05..10 (times the crowd_limit)")
            step = round(self.crowd_every_s * 1000)
            if duration * 1000 < 300_000 + 2 * step:
                raise ValueError(f"crowd: duration ({duration:g} s) must exceed 5 min plus two reports"
                                 f" ({300 + 2 * self.crowd_every_s:g} s)")
            p["crowd_limit"] = limit
            self._crowd_overrides.append((c, at_ms, end_ms + 1))
            span = max(end_ms - at_ms, 1)
            for t in range(at_ms, end_ms + 1, step):
                x = (t - at_ms) / span
                level = 1.05 + (peak - 1.05) * math.sin(math.pi * x) ** 0.5
                count = max(limit + 1, int(limit * level * (1 + 0.02 * float(rng.standard_normal()))))
                bodies.append((t, {"event_type": "crowd", "count": count,
                                   "score": round(float(rng.uniform(0.85, 0.95)), 2), **where}))
        elif kind == "violation_surge":
            vtype = p["event_type"]
            if vtype not in ("red_light", "no_helmet", "wrong_lane", "speeding"):
                raise ValueError(f"violation_surge: event_type {vtype!r} (allowed: red_light, no_helmet,"
                                 " wrong_lane, speeding)")
            if not camera.ai:
                raise ValueError(f"violation_surge: camera {sid} is not an AI camera (no violations to surge)")
            if at < self.start + SPIKE_HISTORY_S:
                raise ValueError(
                    f"violation_surge: at must be >= start + 7d2h: camera.violations.spike compares an hour with"
                    f" the 7 days before and judges a key only once it has that history (at is"
                    f" {(at - self.start) / 3600:.1f} h after start)")
            if duration < 2700:
                raise ValueError(f"violation_surge: duration ({duration:g} s) must be >= 45 min (the spike"
                                 " rule needs 3x the mean hour and 20 events within its 1 h window)")
            factor = float(p["factor"])
            if not (math.isfinite(factor) and 3.0 <= factor <= 100.0):
                raise ValueError(f"violation_surge: factor ({p['factor']!r}) must be 3..100")
            per_day = self.daily_rates().get((sid, vtype), 0.0)
            per_hour = max(factor * per_day / 24.0, 2.0 * SPIKE_MIN_COUNT)
            n = max(2, round(per_hour * duration / 3600.0))
            p.update(extra_per_hour=round(per_hour, 1), baseline_per_hour=round(per_day / 24.0, 2))
            keys["event_type"] = vtype
            width = (end_ms - at_ms) / n
            vcum = _CLASS_CUM[_CODE[vtype]]
            for k in range(n):
                t = at_ms if k == 0 else at_ms + int((k + float(rng.random())) * width)
                vclass = _CLASSES[int(np.searchsorted(vcum, float(rng.random()), side="right"))]
                bodies.append((min(t, end_ms), {
                    "event_type": vtype, "plate": _plate(rng, vclass), "vehicle_class": vclass,
                    "score": round(float(rng.uniform(0.7, 0.98)), 2), **where,
                }))
        elif kind == "camera_offline":
            if duration < 660:
                raise ValueError(f"camera_offline: duration ({duration:g} s) must be >= 11 min (the rule waits 10 min)")
            self._silences.append((c, at_ms, end_ms))
        elif kind == "wrong_way":
            vehicles = int(p["vehicles"])
            if not 1 <= vehicles <= 100:
                raise ValueError(f"wrong_way: vehicles ({p['vehicles']!r}) must be 1..100")
            vcum = _CLASS_CUM[_CODE["wrong_way"]]
            for k in range(vehicles):
                t = at_ms if k == 0 else at_ms + int(float(rng.random()) * (end_ms - at_ms))
                vclass = _CLASSES[int(np.searchsorted(vcum, float(rng.random()), side="right"))]
                bodies.append((t, {"event_type": "wrong_way", "plate": _plate(rng, vclass), "vehicle_class": vclass,
                                   "score": round(float(rng.uniform(0.85, 0.97)), 2), **where}))
            bodies.sort(key=lambda item: item[0])
        elif kind == "road_flooding":
            if not camera.flood_prone:
                prone = [x.source_id for x in self.cameras if x.flood_prone]
                raise ValueError(f"road_flooding: camera {sid} is not flood prone (flood-prone: {', '.join(prone)})")
            step = every("every_s", 60, 7200)
            p["gauge"] = camera.gauge
            # camera.flooding.gauge_bd2 joins a report to readings of the camera's gauge (its
            # reference `gauge`): one alert per gauge, keyed {"key": gauge}.
            keys = {"key": camera.gauge}
            p["needs"] = f"reservoir: {camera.gauge} level_m >= bd2_m within 2 h before a report"
            for t in range(at_ms, end_ms + 1, step):
                bodies.append((t, {"event_type": "road_flooding",
                                   "score": round(float(rng.uniform(0.75, 0.95)), 2), **where}))
        self._kind_counts[kind] += 1
        order = len(self._incident_events)
        for i, (t, body) in enumerate(bodies):
            self._incident_events.append((t, order + i, {"source_id": sid, "ts": "", "id": "", **body}))
        first = bodies[0][0] / 1000 if bodies else at
        last = max(t for t, _ in bodies) / 1000 if bodies else at + duration
        incident = Incident(
            id=f"camera-{kind}-{self._kind_counts[kind]}",
            stream=self.stream,
            kind=kind,
            keys=keys,
            start=first,
            end=last,
            rules=rules,
            params={k: v for k, v in p.items() if v is not None},
        )
        self.incidents.append(incident)
        return incident

    # --- events ------------------------------------------------------------------------------

    def events(self, end: float) -> Iterator[dict[str, Any]]:
        """Every event with start <= ts < end, in ts order (ties: camera, then type; an incident's
        event after the background's at the same millisecond)."""
        background = _Background(self)
        cam_ids = [c.source_id for c in self.cameras]
        where = [(c.lat, c.lon, c.district) for c in self.cameras]
        plate_series = [_SERIES[v] for v in _CLASSES]
        start_ms = background.start_ms
        end_ms = math.ceil(end * 1000 - 1e-6)
        incident_events = sorted(self._incident_events, key=lambda item: (item[0], item[1]))
        counters = [0] * len(self.cameras)
        last_second = -1
        prefix = ""
        inc_pos = 0
        for a in range(start_ms, max(end_ms, start_ms), _CHUNK_MS):
            b = min(a + _CHUNK_MS, end_ms)
            ts_l, cam_l, type_l, cls_l, prov_l, ser_l, num_l, score_l, speed_l, count_l = background.chunk(a, b)
            inc_from = inc_pos
            while inc_pos < len(incident_events) and incident_events[inc_pos][0] < b:
                inc_pos += 1
            pending = incident_events[inc_from:inc_pos]
            pi = 0
            for i in range(len(ts_l)):
                ts = ts_l[i]
                while pi < len(pending) and pending[pi][0] < ts:
                    yield self._emit_incident(pending[pi], counters)
                    pi += 1
                c = cam_l[i]
                n = counters[c]
                counters[c] = n + 1
                second = ts // 1000
                if second != last_second:
                    last_second = second
                    prefix = _seconds_prefix(second)
                ms = ts % 1000
                sid = cam_ids[c]
                t = type_l[i]
                event: dict[str, Any] = {
                    "source_id": sid,
                    "ts": f"{prefix}.{ms:03d}Z" if ms else prefix + "Z",
                    "id": f"{sid}-{n}",
                    "event_type": _TYPES[t],
                }
                if t == _HB:
                    yield event
                    continue
                if t == _CROWD:
                    event["count"] = count_l[i]
                elif t != _FIRE:
                    vc = cls_l[i]
                    series = plate_series[vc]
                    num = num_l[i]
                    event["plate"] = (
                        f"{_PROVINCES[prov_l[i]]}{series[ser_l[i] % len(series)]}-{num // 100:03d}.{num % 100:02d}"
                    )
                    event["vehicle_class"] = _CLASSES[vc]
                    if t == _SPEEDING:
                        event["speed_kmh"] = speed_l[i]
                event["score"] = score_l[i]
                event["lat"], event["lon"], event["district"] = where[c]
                # `ward`: a field this deployment declares (config/ioc.yaml `fields:`); the
                # reference's cam_district is the camera's ward.
                event["ward"] = where[c][2]
                yield event
            while pi < len(pending):
                yield self._emit_incident(pending[pi], counters)
                pi += 1

    def _emit_incident(self, item: tuple[int, int, dict[str, Any]], counters: list[int]) -> dict[str, Any]:
        ts_ms, _, body = item
        event = dict(body)
        c = self._index[event["source_id"]]
        n = counters[c]
        counters[c] = n + 1
        second, ms = divmod(ts_ms, 1000)
        event["ts"] = f"{_seconds_prefix(second)}.{ms:03d}Z" if ms else _seconds_prefix(second) + "Z"
        event["id"] = f"{event['source_id']}-{n}"
        return event


_CHUNK_MS = 3_600_000  # background is generated an hour of event time at a time


class _Background:
    """One replay of a simulator's background: per-camera data precomputed once, then arrays of
    events an hour at a time. All randomness comes from the simulator's child generator 0."""

    def __init__(self, sim: CameraSimulator) -> None:
        cams = sim.cameras
        rng = self.rng = _rng(sim.seed, 0)
        rates = sim._rates()
        # The reference-rate draws come first from the same generator (sim._rates): skip them.
        rng.random(len(cams) * len(BUSY_DAILY_RATES))
        self.sim = sim
        self.n_cam = len(cams)
        self.start_ms = round(sim.start * 1000)
        self.hb_ms = round(sim.heartbeat_s * 1000)
        self.crowd_ms = round(sim.crowd_every_s * 1000)
        self.hb_phase = rng.integers(0, self.hb_ms, self.n_cam)
        self.crowd_phase = rng.integers(0, self.crowd_ms, self.n_cam)
        self.limits = np.array([c.crowd_limit or 0 for c in cams], dtype=np.int64)
        self.speed_limit = np.array([sim._speed_limit(c) for c in cams])
        self.crowd_cams = np.array([i for i, c in enumerate(cams) if c.crowd_limit is not None], dtype=np.int64)
        self.market = np.array(["Chợ" in cams[i].name for i in self.crowd_cams], dtype=bool)
        self.crowd_peak = rng.uniform(0.45, 0.7, len(self.crowd_cams))
        self.crowd_wave = rng.uniform(0, 2 * math.pi, (len(self.crowd_cams), 2))
        self.profiles = np.stack([violation_profile(sim.rush_peak), _FLAT])
        self.pair_cam = rates[:, 0].astype(np.int64)
        self.pair_type = rates[:, 1].astype(np.int64)
        self.pair_rate = rates[:, 2] / 1440.0  # per minute
        self.pair_prof = rates[:, 3].astype(np.int64)

    def chunk(self, a: int, b: int) -> tuple[list[Any], ...]:
        """Background events with a <= ts < b (ms) as columns sorted by (ts, camera, type)."""
        rng, start_ms, hb_ms, crowd_ms = self.rng, self.start_ms, self.hb_ms, self.crowd_ms
        hb_phase, n_cam = self.hb_phase, self.n_cam
        # Heartbeats: start + phase + k * period, with a jitter under a second.
        # The jitter is a function of (camera, k), so a heartbeat near a chunk boundary lands in
        # exactly one chunk.
        k0 = -(-(a - start_ms - hb_phase) // hb_ms) - 1  # ceil, one step back for the jitter
        steps = (b - a) // hb_ms + 3
        ks = k0[:, None] + np.arange(steps)[None, :]
        jitter = (ks * 7919 + np.arange(n_cam)[:, None] * 104_729) % 800
        grid = start_ms + hb_phase[:, None] + ks * hb_ms + jitter
        hb_ok = (grid >= a) & (grid < b)
        hb_cam = np.broadcast_to(np.arange(n_cam)[:, None], grid.shape)[hb_ok]
        hb_ts = grid[hb_ok]
        # Crowd counts.
        crowd_cams = self.crowd_cams
        if len(crowd_cams):
            ph = self.crowd_phase[crowd_cams]
            k0 = -(-(a - start_ms - ph) // crowd_ms)
            steps = (b - a) // crowd_ms + 2
            cgrid = start_ms + ph[:, None] + (k0[:, None] + np.arange(steps)[None, :]) * crowd_ms
            c_ok = (cgrid >= a) & (cgrid < b)
            minute = ((cgrid // 1000 + HUE_UTC_OFFSET_S) // 60) % 1440
            shape = np.where(self.market[:, None], _MARKET_CROWD[minute], _LEISURE_CROWD[minute])
            hours = cgrid / 3_600_000.0
            wave = 1.0 + 0.08 * np.sin(2 * math.pi * hours / 5.0 + self.crowd_wave[:, :1]) + 0.05 * np.sin(
                2 * math.pi * hours / 1.3 + self.crowd_wave[:, 1:])
            lim = self.limits[crowd_cams][:, None]
            level = lim * self.crowd_peak[:, None] * shape * wave * (1.0 + 0.05 * rng.standard_normal(cgrid.shape))
            counts = np.clip(np.rint(level), 0, np.floor(0.9 * lim)).astype(np.int64)
            cr_cam = np.broadcast_to(crowd_cams[:, None], cgrid.shape)[c_ok]
            cr_ts = cgrid[c_ok]
            cr_count = counts[c_ok]
        else:
            cr_cam = cr_ts = cr_count = np.zeros(0, dtype=np.int64)
        # Poisson arrivals per minute bin (violations, false fire/smoke, wrong way).
        bins = np.arange(a, b, 60_000, dtype=np.int64)
        bin_minute = ((bins // 1000 + HUE_UTC_OFFSET_S) // 60) % 1440
        lam = self.pair_rate[:, None] * self.profiles[self.pair_prof][:, bin_minute]
        lam[:, -1] *= (b - bins[-1]) / 60_000  # a short last bin
        n = rng.poisson(lam)
        pair_idx, bin_idx = np.nonzero(n)
        reps = n[pair_idx, bin_idx]
        pair_idx = np.repeat(pair_idx, reps)
        v_ts = np.repeat(bins[bin_idx], reps) + rng.integers(0, 60_000, reps.sum())
        v_cam = self.pair_cam[pair_idx]
        v_type = self.pair_type[pair_idx]
        keep = v_ts < b
        v_ts, v_cam, v_type = v_ts[keep], v_cam[keep], v_type[keep]
        m = len(v_ts)
        v_cls = (rng.random(m)[:, None] > _CLASS_CUM[v_type]).sum(axis=1)
        v_prov = rng.integers(0, len(_PROVINCES), m)
        v_ser = rng.integers(0, 60, m)
        v_num = rng.integers(0, 100_000, m)
        v_score = np.where(v_type == _FIRE, rng.uniform(0.3, 0.79, m), rng.uniform(0.62, 0.99, m))
        v_speed = self.speed_limit[v_cam] + 5.0 + rng.exponential(8.0, m)
        # A stopped vehicle is sometimes sighted again 1-4 min later (same plate): no 5 min dwell.
        again = (v_type == _PARKING) & (rng.random(m) < _PARKING_RESIGHT_P)
        later = v_ts + rng.integers(60_000, 240_000, m)
        again &= later < b
        if again.any():
            v_ts = np.concatenate([v_ts, later[again]])
            v_cam, v_type, v_cls, v_prov, v_ser, v_num, v_speed = (
                np.concatenate([x, x[again]]) for x in (v_cam, v_type, v_cls, v_prov, v_ser, v_num, v_speed)
            )
            v_score = np.concatenate([v_score, rng.uniform(0.62, 0.99, int(again.sum()))])
        m = len(v_ts)
        # All columns together, sorted by (ts, camera, type).
        n_hb, n_cr = len(hb_ts), len(cr_ts)
        ts = np.concatenate([hb_ts, cr_ts, v_ts])
        cam = np.concatenate([hb_cam, cr_cam, v_cam])
        typ = np.concatenate([np.full(n_hb, _HB), np.full(n_cr, _CROWD), v_type])
        cls = np.concatenate([np.zeros(n_hb + n_cr, dtype=np.int64), v_cls])
        prov = np.concatenate([np.zeros(n_hb + n_cr, dtype=np.int64), v_prov])
        ser = np.concatenate([np.zeros(n_hb + n_cr, dtype=np.int64), v_ser])
        num = np.concatenate([np.zeros(n_hb + n_cr, dtype=np.int64), v_num])
        score = np.concatenate([np.zeros(n_hb), rng.uniform(0.8, 0.95, n_cr), v_score]).round(2)
        speed = np.concatenate([np.zeros(n_hb + n_cr), v_speed]).round(1)
        count = np.concatenate([np.zeros(n_hb, dtype=np.int64), cr_count, np.zeros(m, dtype=np.int64)])
        keep = np.ones(len(ts), dtype=bool)
        for c, lo, hi in self.sim._silences:
            if lo < b and hi > a:
                keep &= ~((cam == c) & (ts >= lo) & (ts < hi))
        for c, lo, hi in self.sim._crowd_overrides:
            if lo < b and hi > a:
                keep &= ~((cam == c) & (typ == _CROWD) & (ts >= lo) & (ts < hi))
        order = np.lexsort((typ, cam, ts))
        order = order[keep[order]]
        return tuple(x[order].tolist() for x in (ts, cam, typ, cls, prov, ser, num, score, speed, count))



# kind -> (allowed parameters, defaults)
_PARAMS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "plate_watchlist": (("source_id", "plate", "vehicle_class", "every_s"),
                        {"source_id": "cam-001", "plate": None, "vehicle_class": "car", "every_s": 60.0}),
    "fire_smoke": (("source_id", "every_s"), {"source_id": "cam-008", "every_s": 20.0}),
    "crowd": (("source_id", "peak"), {"source_id": "cam-008", "peak": 1.4}),
    "violation_surge": (("source_id", "event_type", "factor"),
                        {"source_id": "cam-001", "event_type": "red_light", "factor": 5.0}),
    "camera_offline": (("source_id",), {"source_id": "cam-026"}),
    "wrong_way": (("source_id", "vehicles"), {"source_id": "cam-017", "vehicles": 1}),
    "illegal_parking": (("source_id", "plate", "vehicle_class", "every_s"),
                        {"source_id": "cam-013", "plate": None, "vehicle_class": "car", "every_s": 120.0}),
    "road_flooding": (("source_id", "every_s"), {"source_id": "cam-026", "every_s": 600.0}),
}
