"""The reservoir simulator behind the scenario interface (StreamSimulator), with `flood` incidents.

>>> stream = ReservoirStream(seed=1, start=T0)                                  # doctest: +SKIP
>>> flood = stream.add_incident("flood", at=T0 + 3 * 3600, duration=24 * 3600)
>>> flood.rules[:2]
('gauge.level.above_bd1', 'gauge.level.above_bd2')
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sensors_sim.base import Incident
from sensors_sim.reservoir import DEFAULT_STATIONS_PATH, ReservoirSimulator, load_stations

__all__ = ["FLOOD_RULES", "ReservoirStream"]

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
    incident_kinds = ("flood",)

    def __init__(self, *, seed: int = 0, start: float, reference_path: str | Path = DEFAULT_STATIONS_PATH) -> None:
        self.seed = seed
        self.start = start
        self.stations = load_stations(reference_path)
        self._flood: tuple[float, float] | None = None

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
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
        flood_at, hours = self._flood if self._flood is not None else (None, 24.0)
        simulator = ReservoirSimulator(self.stations, seed=self.seed, start=self.start, flood_at_s=flood_at,
                                       flood_hours=hours)
        yield from simulator.events(max(0.0, end - self.start))
