"""Deterministic sensor simulators that feed the IOC streams with plausible events.

Each simulator is pure Python with an explicit seed and event-time start, so tests and
the demo get the same sequence every run.

>>> from sensors_sim import ReservoirSimulator, load_stations
>>> sim = ReservoirSimulator(load_stations(), seed=1, start=1761526800.0)
>>> next(iter(sim.events(300.0)))["source_id"]
'ta-trach'
"""

from sensors_sim.reservoir import ReservoirSimulator, Station, StationConfigError, load_stations

__all__ = ["ReservoirSimulator", "Station", "StationConfigError", "load_stations"]
