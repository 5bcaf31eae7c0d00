"""The reservoir simulator behind the scenario interface (StreamSimulator), with `flood` incidents.

>>> stream = ReservoirStream(seed=1, start=T0)                                  # doctest: +SKIP
>>> flood = stream.add_incident("flood", at=T0 + 3 * 3600, duration=24 * 3600)
>>> flood.rules[:2]
('gauge.level.above_bd1', 'gauge.level.above_bd2')

Spill notices: the dam operators notify downstream before they spill (docs/domain.md §1:
"downstream sirens and river bans before spilling"). Each time a reservoir's spillway opens
(a reading with `spill_m3s > 0` after one with 0), its operator has sent a notice
`NOTICE_LEAD_S` before (3 h, inside the 4 h of docs/domain.md §1; the lead itself is
(unverified)): an event `{"event_type": "spill_notice", "level_m": <its last reading>}` one
minute after that reading. The `spill_without_notice` incident leaves out the notice of a
reservoir's first spill within the incident's time (`source_id`, default `binh-dien`); its
truth is that spill, from `CLOSED_S` (15 min, the shipped rule's `within`) before it: the rule's
alert starts at the earliest closed reading it pairs with the spill. Finding a spill needs the simulation
`NOTICE_LEAD_S` ahead, so a shorter run is still a prefix of a longer one.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ioc.timeutil import format_ts, parse_ts
from sensors_sim.base import Incident
from sensors_sim.reservoir import DEFAULT_STATIONS_PATH, ReservoirSimulator, load_stations

__all__ = ["FLOOD_RULES", "NOTICE_LEAD_S", "NOTICE_RULES", "ReservoirStream"]

NOTICE_LEAD_S = 3 * 3600.0
CLOSED_S = 15 * 60.0
# The shipped rule that a spill without a notice should set off (rules/reservoir.yaml).
NOTICE_RULES = ("reservoir.spill.without_notice",)

# The shipped rules (rules/reservoir.yaml) that a flood should set off.
FLOOD_RULES = (
    "gauge.level.above_bd1", "gauge.level.above_bd2", "gauge.level.above_bd3",
    "reservoir.level.near_nwl", "reservoir.level.at_nwl", "reservoir.level.rising_fast",
    "reservoir.rain.3h_over_100mm", "reservoir.rain.3h_over_200mm", "reservoir.release.step",
    "reservoir.sequence.rain_level_spill", "reservoir.spill.kim_long_above_bd2",
    "reservoir.release.above_inflow_kim_long_bd2",
)


class ReservoirStream:
    """Reservoirs and gauges of the Hương basin; one rain-driven flood per run at most."""

    stream = "reservoir"
    incident_kinds = ("flood", "spill_without_notice")

    def __init__(self, *, seed: int = 0, start: float, reference_path: str | Path = DEFAULT_STATIONS_PATH) -> None:
        self.seed = seed
        self.start = start
        self.stations = load_stations(reference_path)
        self._flood: tuple[float, float] | None = None
        self._silent: list[tuple[str, float]] = []  # (reservoir, spill start) whose notice is left out

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
        if kind == "spill_without_notice":
            return self._spill_without_notice(at, duration, **params)
        if kind not in self.incident_kinds:
            raise ValueError(f"unknown reservoir incident {kind!r} (allowed: {', '.join(self.incident_kinds)})")
        if params:
            raise ValueError(f"a flood takes no parameters (got {', '.join(sorted(params))})")
        if self._flood is not None:
            raise ValueError("one flood per scenario run")
        if at < self.start:
            raise ValueError("a flood cannot start before the simulation")
        self._flood = (at - self.start, duration / 3600.0)
        # A flood is basin-wide (no single key): every flood rule alerting during it, on any
        # station, is a true positive.
        return Incident(
            id="reservoir-flood-1", stream="reservoir", kind="flood", keys={},
            start=at, end=at + duration + 24 * 3600,  # the river recedes for a day after the rain
            rules=FLOOD_RULES,
        )

    def events(self, end: float) -> Iterator[dict[str, Any]]:
        """Readings, and the spill notices merged in time order (a notice after the reading it follows)."""
        notices = [n for n in self._notices(end + NOTICE_LEAD_S) if parse_ts(n["ts"]) < end]
        readings = (e for e in self._simulator().events(max(0.0, end - self.start)))
        yield from heapq.merge(readings, notices, key=lambda e: parse_ts(e["ts"]))

    def _simulator(self) -> ReservoirSimulator:
        flood_at, hours = self._flood if self._flood is not None else (None, 24.0)
        return ReservoirSimulator(self.stations, seed=self.seed, start=self.start, flood_at_s=flood_at,
                                  flood_hours=hours)

    def _spill_starts(self, end: float) -> list[tuple[str, float, float]]:
        """(reservoir, time of the first spilling reading, time of the closed reading before it)."""
        last: dict[str, tuple[float, float]] = {}
        starts = []
        for e in self._simulator().events(max(0.0, end - self.start)):
            spill = e.get("spill_m3s")
            if spill is None:
                continue
            t = parse_ts(e["ts"])
            before = last.get(e["source_id"])
            if before is not None and before[1] == 0 and spill > 0:
                starts.append((e["source_id"], t, before[0]))
            last[e["source_id"]] = (t, spill)
        return starts

    def _notices(self, end: float) -> list[dict[str, Any]]:
        starts = self._spill_starts(end)
        if not starts:
            return []
        levels: dict[str, list[tuple[float, float]]] = {}
        for e in self._simulator().events(max(0.0, end - self.start)):
            if "spill_m3s" in e:
                levels.setdefault(e["source_id"], []).append((parse_ts(e["ts"]), e["level_m"]))
        out = []
        for number, (source_id, t, _) in enumerate(starts, start=1):
            if (source_id, t) in self._silent:
                continue
            at = max(self.start, t - NOTICE_LEAD_S)
            before = [level for ts, level in levels[source_id] if ts <= at]
            level = before[-1] if before else levels[source_id][0][1]
            out.append({"source_id": source_id, "ts": format_ts(at + 60.0), "id": f"{source_id}-notice-{number:03d}",
                        "event_type": "spill_notice", "level_m": level})
        out.sort(key=lambda e: (parse_ts(e["ts"]), e["source_id"]))
        return out

    def _spill_without_notice(self, at: float, duration: float, **params: Any) -> Incident:
        unknown = set(params) - {"source_id"}
        if unknown:
            raise ValueError(f"spill_without_notice: unknown parameter(s) {', '.join(sorted(unknown))}"
                             " (allowed: source_id)")
        source_id = params.get("source_id", "binh-dien")
        reservoirs = [s.source_id for s in self.stations if s.type == "reservoir"]
        if source_id not in reservoirs:
            raise ValueError(f"spill_without_notice: source_id {source_id!r} is not a reservoir"
                             f" (allowed: {', '.join(reservoirs)})")
        found = [(t, closed) for sid, t, closed in self._spill_starts(at + duration + 1.0)
                 if sid == source_id and at <= t <= at + duration]
        if not found:
            raise ValueError(f"spill_without_notice: {source_id} does not start spilling between {format_ts(at)}"
                             f" and {format_ts(at + duration)} (add the flood first, and cover its spill)")
        t, closed = found[0]
        self._silent.append((source_id, t))
        return Incident(
            id=f"reservoir-spill_without_notice-{len(self._silent)}", stream="reservoir",
            kind="spill_without_notice", keys={"source_id": source_id}, start=min(closed, t - CLOSED_S), end=t,
            rules=NOTICE_RULES, params={"source_id": source_id},
        )
