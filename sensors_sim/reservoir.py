"""Deterministic, rain-driven simulator of the Hương-basin reservoirs and downstream gauges.

Every `step_s` seconds of event time each station emits one event. Reservoirs report level,
inflow, releases, rain (`rain_mm_1h`: depth fallen in the trailing hour) and dam-safety
sensors; gauges report `level_m` only. A flood episode starting `flood_at_s` after `start`
brings heavy rain, rising inflow, lakes filling to NWL, spill, and gauges over BĐ1..BĐ3.
The same seed and parameters always give the same event sequence.

>>> sim = ReservoirSimulator(load_stations(), seed=7, start=1761411600.0)  # 2025-10-26 00:00 +07
>>> events = list(sim.events(3600.0))
>>> len(events)  # 12 steps of 5 minutes x 6 stations
72
>>> events[0]["source_id"], events[0]["ts"], events[0]["id"]
('ta-trach', '2025-10-25T17:00:00Z', 'ta-trach-000000')
>>> sorted(events[4])  # a gauge
['id', 'level_m', 'source_id', 'ts']
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeGuard

import numpy as np
import yaml

from ioc.exceptions import IocError
from ioc.timeutil import format_ts

__all__ = [
    "DEFAULT_STATIONS_PATH",
    "SPILL_BAND_M",
    "ReservoirSimulator",
    "Station",
    "StationConfigError",
    "load_stations",
]

DEFAULT_STATIONS_PATH = Path(__file__).resolve().parent.parent / "config" / "reference" / "reservoir.yaml"

# Operators open spill gates only within this many metres below NWL (and above NWL).
SPILL_BAND_M = 1.0

StationType = Literal["reservoir", "gauge"]
_BBOX = (15.99, 16.74, 107.02, 108.22)  # province: lat min/max, lon min/max (docs/domain.md)
_RESERVOIR_LEVELS = ("nwl_m", "dead_m", "flood_wait_m")
_GAUGE_LEVELS = ("bd1_m", "bd2_m", "bd3_m")


class StationConfigError(IocError, ValueError):
    """The station file did not load; `problems` lists every error as `file:line: ...`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} error(s) in the station file\n" + "\n".join(problems))


@dataclass(frozen=True)
class Station:
    """Reference data of one reservoir or gauge (levels in metres, None where not applicable)."""

    source_id: str
    name: str
    type: StationType
    lat: float
    lon: float
    nwl_m: float | None = None
    dead_m: float | None = None
    flood_wait_m: float | None = None
    bd1_m: float | None = None
    bd2_m: float | None = None
    bd3_m: float | None = None
    river: str | None = None


_KEYS = tuple(f.name for f in fields(Station))


def load_stations(path: str | Path = DEFAULT_STATIONS_PATH) -> list[Station]:
    """Stations of a reference file (`key: source_id`, `items: [...]`), validated.

    Raises StationConfigError naming file, line, station, field and what is allowed.

    >>> [s.source_id for s in load_stations() if s.type == "gauge"]
    ['kim-long', 'phu-oc']
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise StationConfigError([f"{path.name}:{mark.line + 1 if mark else 1}: not valid YAML"]) from None
    if root is None or not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise StationConfigError(
            [f"{path.name}:1: expected a mapping with `key: source_id` and `items: [...]`"]
        )
    problems: list[str] = []
    top_lines = {k.value: k.start_mark.line + 1 for k, _ in root.value}
    if data.get("key") != "source_id":
        problems.append(
            f"{path.name}:{top_lines.get('key', 1)}: key: {data.get('key')!r} is not allowed (only source_id)"
        )
    item_nodes = next(v for k, v in reversed(root.value) if k.value == "items").value
    stations: list[Station] = []
    seen: set[str] = set()
    for item, node in zip(data["items"], item_nodes, strict=True):
        lines: dict[str, int] = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else []:
            if key_node.value in lines:  # safe_load would silently keep the last one
                problems.append(
                    f"{path.name}:{key_node.start_mark.line + 1}: {key_node.value}: duplicate key"
                )
            lines.setdefault(key_node.value, key_node.start_mark.line + 1)
        where = f"{path.name}:{node.start_mark.line + 1}"
        found = _check_item(item, lines, where, problems)
        if found is not None and found.source_id in seen:
            problems.append(f"{where}: station '{found.source_id}': source_id: duplicate")
        elif found is not None:
            seen.add(found.source_id)
            stations.append(found)
    if problems:
        raise StationConfigError(problems)
    return stations


def _check_item(item: Any, lines: dict[str, int], where: str, problems: list[str]) -> Station | None:
    """One validated Station, or None after appending every problem of the item."""
    if not isinstance(item, dict):
        problems.append(f"{where}: each item must be a mapping of {', '.join(_KEYS)}")
        return None
    sid = item.get("source_id")
    label = f"station '{sid}'"
    before = len(problems)

    def bad(key: str, message: str) -> None:
        line = where.rsplit(":", 1)[0] + f":{lines[key]}" if key in lines else where
        problems.append(f"{line}: {label}: {key}: {message}")

    for key in sorted(set(_KEYS) - set(item)):
        bad(key, "missing (every item has the same keys; use null where not applicable)")
    for key in sorted(set(item) - set(_KEYS)):
        bad(key, f"unknown field (allowed: {', '.join(_KEYS)})")
    for key in ("source_id", "name"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            bad(key, f"{item.get(key)!r} is not a non-empty text")
    if item.get("river") is not None and not isinstance(item["river"], str):
        bad("river", f"{item['river']!r} is not text or null")
    kind = item.get("type")
    if kind not in ("reservoir", "gauge"):
        bad("type", f"{kind!r} is not allowed (reservoir | gauge)")
    for key, lo, hi in (("lat", _BBOX[0], _BBOX[1]), ("lon", _BBOX[2], _BBOX[3])):
        value = item.get(key)
        if not _is_number(value) or not lo <= value <= hi:
            bad(key, f"{value!r} is not a number in the province ({lo}..{hi})")
    required = _RESERVOIR_LEVELS[:2] if kind == "reservoir" else _GAUGE_LEVELS
    forbidden = _GAUGE_LEVELS if kind == "reservoir" else _RESERVOIR_LEVELS
    for key in _RESERVOIR_LEVELS + _GAUGE_LEVELS:
        value = item.get(key)
        if value is not None and not _is_number(value):
            bad(key, f"{value!r} is not a number of metres or null")
        elif value is None and key in required:
            bad(key, f"is required for a {kind} (metres)")
        elif value is not None and key in forbidden:
            bad(key, f"must be null for a {kind}")
    if len(problems) > before:
        return None
    levels = {k: None if item[k] is None else float(item[k]) for k in _RESERVOIR_LEVELS + _GAUGE_LEVELS}
    order = (
        [levels["dead_m"], levels["flood_wait_m"], levels["nwl_m"]]
        if kind == "reservoir"
        else [levels["bd1_m"], levels["bd2_m"], levels["bd3_m"]]
    )
    present = [v for v in order if v is not None]
    if any(a >= b for a, b in zip(present, present[1:], strict=False)):
        first = "dead_m" if kind == "reservoir" else "bd1_m"
        bad(first, "levels must increase: dead_m < flood_wait_m < nwl_m, bd1_m < bd2_m < bd3_m")
        return None
    return Station(
        source_id=item["source_id"].strip(),
        name=item["name"],
        type=kind,  # type: ignore[arg-type]  # checked above
        lat=float(item["lat"]),
        lon=float(item["lon"]),
        river=item["river"],
        **levels,  # type: ignore[arg-type]
    )


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- Simulator tuning. These are knobs of a plausible model, not reference data: real
# catchment areas/storages are only approximate (unverified), then calibrated so the flood
# reproduces the 27 Oct 2025 inflow peaks and the BĐ crossings of docs/domain.md.


@dataclass(frozen=True)
class _Basin:
    """Catchment, storage curve and plant of one reservoir."""

    area_km2: float  # catchment upstream of the dam
    runoff: float  # share of the rain that becomes inflow (wet season)
    lag_h: float  # catchment response time constant
    base_m3s: float  # dry-weather inflow
    rain_factor: float  # orographic: how much wetter than the basin average
    volume_mm3: float  # storage at NWL, million m3
    bed_m: float  # level where the storage curve V(h) reaches zero
    turbine_m3s: float  # plant capacity
    spill_m3s: float  # spillway capacity
    gates: int
    ramp_m3s_h: float  # largest release change per hour (procedure: gradual changes)
    gauge: str | None  # downstream gauge the release reaches
    travel_h: float  # travel time of the release to that gauge
    spill_to_gauge: bool = True  # False: the spillway drains into another river


@dataclass(frozen=True)
class _Reach:
    """River reach above a gauge: uncontrolled local catchment and a stage-discharge curve."""

    area_km2: float
    runoff: float
    lag_h: float
    base_m3s: float
    rating: tuple[float, float, float, float]  # (Q low, level low, Q high, level high)


_SHAPE = 2.5  # V ~ (h - bed)^2.5: lakes widen upwards in V-shaped valleys
_BASINS: dict[str, _Basin] = {
    # Tả Trạch: 717 km2 catchment and 646 Mm3 total storage (dam-safety handbook, 2021); the
    # storage is shrunk to 240 Mm3 at NWL so a one-day flood fills the lake (the real 2025
    # flood had several days of rain). Plant, gates and ramps everywhere: (unverified).
    "ta-trach": _Basin(717, 0.75, 3.0, 20, 1.05, 240, 8.0, 80, 9000, 5, 1500, "kim-long", 2.5),
    "binh-dien": _Basin(515, 0.62, 2.5, 15, 0.95, 320, 38.0, 90, 6000, 5, 1000, "kim-long", 3.0),
    "huong-dien": _Basin(707, 0.58, 3.0, 20, 0.90, 450, 25.0, 210, 8000, 5, 1200, "phu-oc", 2.0),
    # A Lưới spills into the A Sáp towards Laos; only its turbine water is diverted to the Bồ.
    "a-luoi": _Basin(331, 0.60, 2.0, 10, 1.10, 70, 525.0, 45, 4000, 3, 900, "phu-oc", 4.0, False),
}
_REACHES: dict[str, _Reach] = {
    "kim-long": _Reach(450, 0.70, 5.0, 30, (60.0, 0.35, 6500.0, 4.5)),
    "phu-oc": _Reach(400, 0.70, 4.0, 20, (40.0, 0.50, 3500.0, 5.2)),
}


def _default_basin(station: Station) -> _Basin:
    # Unknown reservoirs get a mid-sized catchment so the simulator runs on any station list.
    assert station.nwl_m is not None and station.dead_m is not None
    bed = station.dead_m - (station.nwl_m - station.dead_m)
    return _Basin(400, 0.8, 3.0, 15, 1.0, 300, bed, 60, 5000, 4, 1000, None, 0.0)


def _default_reach(station: Station) -> _Reach:
    assert station.bd1_m is not None and station.bd3_m is not None
    return _Reach(400, 0.7, 4.0, 30, (50.0, 0.4 * station.bd1_m, 6000.0, 1.2 * station.bd3_m))


@dataclass
class _Lake:
    """Mutable state of one reservoir during a run."""

    station: Station
    basin: _Basin
    volume: float  # m3
    level: float
    inflow: float
    turbine: float
    spill: float
    level_slow: float  # piezometers and seepage follow the level with a delay
    drift_per_day: float
    rain: deque[float]  # depths (mm) of the steps in the trailing hour
    recent_peak: float = 0.0  # inflow peak, forgotten over ~12 h: tells a receding flood
    sensor_noise: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass
class _River:
    """Mutable state of one gauge: delayed releases from upstream and local runoff."""

    station: Station
    reach: _Reach
    local: float
    routed: float
    delays: dict[str, deque[float]]
    level: float = 0.0


class ReservoirSimulator:
    """Reservoirs and gauges of the Hương basin under background rain and one flood episode.

    `flood_at_s` is the flood start relative to `start` (None: no flood); the flood rain
    lasts `flood_hours`. `events()` replays from the seed, so each call yields the same list.

    >>> sim = ReservoirSimulator(load_stations(), seed=3, start=0.0, flood_at_s=None)
    >>> max(e["level_m"] for e in sim.events(6 * 3600) if e["source_id"] == "kim-long") < 1.0
    True
    """

    def __init__(
        self,
        stations: Sequence[Station],
        *,
        seed: int = 0,
        start: float,
        step_s: float = 300.0,
        flood_at_s: float | None = 3 * 3600.0,
        flood_hours: float = 24.0,
    ) -> None:
        if not stations:
            raise ValueError("stations is empty: give at least one Station")
        if not step_s > 0 or not flood_hours > 0:
            raise ValueError(f"step_s ({step_s}) and flood_hours ({flood_hours}) must be positive")
        if flood_at_s is not None and flood_at_s < 0:
            raise ValueError(f"flood_at_s ({flood_at_s}) must be >= 0 or None (no flood)")
        if len({s.source_id for s in stations}) != len(stations):
            raise ValueError("stations have duplicate source_id values")
        for s in stations:
            needed = ("nwl_m", "dead_m") if s.type == "reservoir" else ("bd1_m", "bd2_m", "bd3_m")
            if s.type not in ("reservoir", "gauge") or any(getattr(s, k) is None for k in needed):
                raise ValueError(f"station {s.source_id!r}: a {s.type} needs {', '.join(needed)}")
        self.stations = list(stations)
        self.seed = seed
        self.start = float(start)
        self.step_s = float(step_s)
        self.flood_at_s = flood_at_s
        self.flood_hours = float(flood_hours)

    def events(self, duration_s: float) -> Iterator[dict[str, Any]]:
        """Events of the steps at `start + k * step_s` before `start + duration_s`, in time order."""
        run = _Run(self)
        for step in range(math.ceil(duration_s / self.step_s - 1e-9)):
            t = self.start + step * self.step_s
            run.advance(t)
            yield from run.emit(t, step)


class _Run:
    """One replay of a simulator: all randomness comes from a fresh default_rng(seed)."""

    WARMUP_S = 6 * 3600.0  # settles the trailing-hour rain sums and river lags before `start`

    def __init__(self, sim: ReservoirSimulator) -> None:
        self.sim = sim
        self.dt = sim.step_s
        self.rng = np.random.default_rng(sim.seed)
        # Flood shape drawn once: a day of steady rain plus a burst of 52-60 mm/h (basin
        # average; the wetter catchments see ~55-75 mm in their peak hour).
        self.burst_mm_h = float(self.rng.uniform(52.0, 60.0))
        self.broad_mm_h = float(self.rng.uniform(6.0, 9.0))
        self.burst_at = float(self.rng.uniform(0.30, 0.38))
        self.background = 0.0
        hour_steps = max(1, round(3600.0 / self.dt))
        self.lakes: list[_Lake] = []
        for st in sim.stations:
            if st.type != "reservoir":
                continue
            basin = _BASINS.get(st.source_id) or _default_basin(st)
            assert st.nwl_m is not None and st.dead_m is not None
            level = st.flood_wait_m if st.flood_wait_m is not None else max(st.dead_m, st.nwl_m - 3.0)
            inflow = basin.base_m3s + self._runoff(basin.area_km2, basin.runoff, 0.3)
            volume = self._volume(st, basin, level)
            drift = float(self.rng.uniform(0.001, 0.004))
            rain = deque([0.0] * hour_steps, hour_steps)
            turbine = min(inflow, basin.turbine_m3s)
            self.lakes.append(_Lake(st, basin, volume, level, inflow, turbine, 0.0, level, drift, rain))
        self.rivers: dict[str, _River] = {}
        for st in sim.stations:
            if st.type == "gauge":
                reach = _REACHES.get(st.source_id) or _default_reach(st)
                local = self._runoff(reach.area_km2, reach.runoff, 0.3)
                self.rivers[st.source_id] = _River(st, reach, local, 0.0, {})
        for lake in self.lakes:
            if lake.basin.gauge in self.rivers:
                n = max(1, round(lake.basin.travel_h * 3600.0 / self.dt))
                self.rivers[lake.basin.gauge].delays[lake.station.source_id] = deque([lake.turbine] * n, n)
        self.by_id = {lake.station.source_id: lake for lake in self.lakes}
        self.t0 = sim.start - self.WARMUP_S
        t = self.t0
        while t < sim.start - 1e-6:
            self.advance(t)
            t += self.dt

    # --- physics -------------------------------------------------------------------------

    @staticmethod
    def _runoff(area_km2: float, coefficient: float, rain_mm_h: float) -> float:
        return coefficient * rain_mm_h * area_km2 / 3.6  # mm/h over km2 -> m3/s

    @staticmethod
    def _volume(st: Station, basin: _Basin, level: float) -> float:
        assert st.nwl_m is not None
        return basin.volume_mm3 * 1e6 * max(0.0, (level - basin.bed_m) / (st.nwl_m - basin.bed_m)) ** _SHAPE

    @staticmethod
    def _level(st: Station, basin: _Basin, volume: float) -> float:
        assert st.nwl_m is not None
        return basin.bed_m + (st.nwl_m - basin.bed_m) * (volume / (basin.volume_mm3 * 1e6)) ** (1.0 / _SHAPE)

    def _rain(self, t: float) -> float:
        """Basin-average rain intensity (mm/h) at event time t."""
        # Light background rain: a slow AR(1) process, clipped at zero (dry spells).
        keep = math.exp(-self.dt / (3 * 3600.0))
        self.background = keep * self.background + math.sqrt(1 - keep**2) * 0.3 * float(
            self.rng.standard_normal()
        )
        rain = max(0.0, 0.2 + self.background)
        if self.sim.flood_at_s is not None:
            hours = (t - self.sim.start - self.sim.flood_at_s) / 3600.0
            length = self.sim.flood_hours
            if 0.0 <= hours <= length:
                width = max(1.5, length / 12.0)
                rain += self.broad_mm_h * math.sin(math.pi * hours / length)
                rain += self.burst_mm_h * math.exp(-0.5 * ((hours - self.burst_at * length) / width) ** 2)
        return rain

    def _release(self, lake: _Lake) -> float:
        """Release the operators aim for (Decision 1606/QĐ-TTg, simplified)."""
        st, b = lake.station, lake.basin
        assert st.nwl_m is not None
        area = _SHAPE * lake.volume / max(lake.level - b.bed_m, 1.0)  # dV/dh, m2
        floor = st.nwl_m - SPILL_BAND_M
        if lake.level >= st.nwl_m:
            # Dam safety first: pass the inflow and bring any surcharge back within ~3 h.
            release = lake.inflow + area * (lake.level - st.nwl_m) / (3 * 3600.0)
        elif lake.level >= floor and lake.inflow > b.turbine_m3s:
            # Store below NWL; the release approaches the inflow as the lake nears NWL.
            share = (lake.level - floor) / SPILL_BAND_M
            release = b.turbine_m3s + share * (lake.inflow - b.turbine_m3s)
        else:
            # Turbines only, steering slowly back to the waiting level.
            target = st.flood_wait_m if st.flood_wait_m is not None else st.nwl_m - 3.0
            release = min(b.turbine_m3s, max(0.0, lake.inflow + area * (lake.level - target) / (12 * 3600.0)))
        receding = lake.inflow < 0.9 * lake.recent_peak
        if lake.level >= floor and receding and not self._downstream_high(lake):
            # Receding flood, gauge below BĐ2: release more than the inflow to win back
            # flood storage, aiming a little below the band so the gates do close.
            release = max(release, lake.inflow + area * (lake.level - floor + 0.25) / (12 * 3600.0))
        return release

    def _downstream_high(self, lake: _Lake) -> bool:
        # Gauges are updated after the lakes: operators act on the last reading they saw.
        river = self.rivers.get(lake.basin.gauge or "")
        return river is not None and river.station.bd2_m is not None and river.level > river.station.bd2_m

    def advance(self, t: float) -> None:
        """Move every station one step forward to event time t."""
        basin_rain = self._rain(t)
        for lake in self.lakes:
            st, b = lake.station, lake.basin
            noise = self.rng.standard_normal(4)
            rain = max(0.0, basin_rain * b.rain_factor * (1.0 + 0.1 * float(noise[0])))
            lake.rain.append(rain * self.dt / 3600.0)
            settle = 1.0 - math.exp(-self.dt / (b.lag_h * 3600.0))
            lake.inflow += (b.base_m3s + self._runoff(b.area_km2, b.runoff, rain) - lake.inflow) * settle
            lake.recent_peak = max(lake.inflow, lake.recent_peak * math.exp(-self.dt / (12 * 3600.0)))
            wanted = self._release(lake)
            ramp = b.ramp_m3s_h * self.dt / 3600.0
            current = lake.turbine + lake.spill
            release = min(max(wanted, current - ramp), current + ramp)
            # Never draw below the dead level, never beyond the plant plus the spillway.
            dead_volume = self._volume(st, b, st.dead_m if st.dead_m is not None else b.bed_m)
            release = max(0.0, min(release, lake.inflow + (lake.volume - dead_volume) / self.dt))
            lake.turbine = float(min(release, b.turbine_m3s))
            lake.spill = float(min(release - lake.turbine, b.spill_m3s))
            lake.volume += (lake.inflow - lake.turbine - lake.spill) * self.dt
            lake.level = self._level(st, b, lake.volume)
            lake.level_slow += (lake.level - lake.level_slow) * (1.0 - math.exp(-self.dt / (6 * 3600.0)))
            lake.sensor_noise = (float(noise[1]), float(noise[2]), float(noise[3]))
        for river in self.rivers.values():
            r = river.reach
            settle = 1.0 - math.exp(-self.dt / (r.lag_h * 3600.0))
            river.local += (self._runoff(r.area_km2, r.runoff, basin_rain) - river.local) * settle
            arriving = 0.0
            for lake in self.lakes:
                delay = river.delays.get(lake.station.source_id)
                if delay is not None:
                    arriving += delay[0]
                    delay.append(lake.turbine + (lake.spill if lake.basin.spill_to_gauge else 0.0))
            # The flood wave flattens on its way down: a 1.5 h linear reservoir.
            river.routed += (arriving - river.routed) * (1.0 - math.exp(-self.dt / (1.5 * 3600.0)))
            q_lo, h_lo, q_hi, h_hi = r.rating
            exponent = math.log(h_hi / h_lo) / math.log(q_hi / q_lo)
            flow = r.base_m3s + river.local + river.routed
            river.level = h_lo * (flow / q_lo) ** exponent + 0.005 * float(self.rng.standard_normal())

    def emit(self, t: float, step: int) -> Iterator[dict[str, Any]]:
        """Events of every station at time t, in the order the stations were given."""
        ts = format_ts(t)
        for st in self.sim.stations:
            base = {"source_id": st.source_id, "ts": ts, "id": f"{st.source_id}-{step:06d}"}
            if st.type == "gauge":
                yield {**base, "level_m": round(self.rivers[st.source_id].level, 2)}
                continue
            lake = self.by_id[st.source_id]
            yield {**base, "level_m": round(lake.level, 2), **self._readings(lake, t)}

    def _readings(self, lake: _Lake, t: float) -> dict[str, Any]:
        st, b = lake.station, lake.basin
        assert st.dead_m is not None
        piezo_noise, seepage_noise, turbidity_noise = lake.sensor_noise
        # Dam sensors creep slowly (instrument drift, ageing) and follow the head above dead level.
        creep = 1.0 + lake.drift_per_day * (t - self.t0) / 86400.0
        head = max(0.0, lake.level_slow - st.dead_m)
        per_gate = b.spill_m3s / b.gates
        return {
            "inflow_m3s": round(lake.inflow, 1),
            "turbine_m3s": round(lake.turbine, 1),
            "spill_m3s": round(lake.spill, 1),
            "gates_open": min(b.gates, math.ceil(lake.spill / per_gate - 1e-9)) if lake.spill >= 0.05 else 0,
            "rain_mm_1h": round(sum(lake.rain), 1),
            "piezo_kpa": round(max(0.0, 9.81 * 0.4 * (head + 5.0) * creep + 0.3 * piezo_noise), 1),
            "seepage_lps": round(max(0.0, 2.5 * (1.0 + 0.06 * head) * creep + 0.05 * seepage_noise), 2),
            "turbidity_ntu": round(
                max(0.1, (1.5 + 0.03 * head) * creep + 0.02 * sum(lake.rain) + 0.1 * abs(turbidity_noise)), 2
            ),
        }
