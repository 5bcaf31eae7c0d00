"""Scenarios: a named storyline that runs stream simulators and injects labelled incidents.

A scenario file (`sensors_sim/scenarios/<name>.yaml`):

```yaml
name: flood
description: Mưa lớn, lũ sông Hương ...
duration: 2d                      # event time simulated
streams: [reservoir, camera]      # which simulators run
incidents:
  - {stream: reservoir, kind: flood, at: 3h, duration: 24h}
  - {stream: camera, kind: road_flooding, at: 18h, duration: 30m, source_id: cam-021}
```

>>> run = build(load_scenario("flood"), seed=1, start=T0)          # doctest: +SKIP
>>> for stream, event in run.events():                              # ts-ordered across streams
...     ...
>>> run.incidents                                                   # the ground truth
"""

from __future__ import annotations

import heapq
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ioc.events import STREAMS
from ioc.exceptions import IocError
from ioc.timeutil import parse_duration, parse_ts
from sensors_sim.base import Incident, StreamSimulator

__all__ = ["Scenario", "ScenarioError", "ScenarioRun", "SCENARIO_DIR", "build", "load_scenario", "scenario_names"]

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"

# stream -> (module, class) of its simulator; a stream whose module is missing is reported.
SIMULATORS = {
    "reservoir": ("sensors_sim.reservoir_stream", "ReservoirStream"),
    "camera": ("sensors_sim.camera", "CameraSimulator"),
    "vessel": ("sensors_sim.vessel", "VesselSimulator"),
    "cyber": ("sensors_sim.cyber", "CyberSimulator"),
    "press": ("sensors_sim.press", "PressSimulator"),
}


class ScenarioError(IocError):
    """A scenario file is invalid or names something that does not exist."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    streams: tuple[str, ...]
    incidents: tuple[dict[str, Any], ...]
    path: Path


@dataclass
class ScenarioRun:
    scenario: Scenario
    start: float
    end: float
    simulators: dict[str, StreamSimulator]
    incidents: list[Incident] = field(default_factory=list)

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every event of every stream, merged in event-time order (stable per stream)."""
        streams = [
            _tagged(sim.events(self.end), order, stream) for order, (stream, sim) in enumerate(self.simulators.items())
        ]
        for _, _, stream, event in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
            yield stream, event


def _tagged(
    events: Iterator[dict[str, Any]], order: int, stream: str
) -> Iterator[tuple[float, int, str, dict[str, Any]]]:
    # A function of its own so that each generator keeps its own stream (a generator expression
    # in a comprehension would see only the last loop values).
    for event in events:
        yield parse_ts(event["ts"]), order, stream, event


def scenario_names() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A scenario by name (from sensors_sim/scenarios/) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ScenarioError(f"no scenario {str(name_or_path)!r} (available: {', '.join(scenario_names())})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping (name, duration, streams, incidents)")
    unknown = set(data) - {"name", "description", "duration", "streams", "incidents"}
    if unknown:
        raise ScenarioError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    streams = tuple(data.get("streams") or STREAMS)
    for stream in streams:
        if stream not in STREAMS:
            raise ScenarioError(f"{path}: streams: {stream!r} is not a stream (allowed: {', '.join(STREAMS)})")
    incidents = tuple(data.get("incidents") or ())
    for number, incident in enumerate(incidents, start=1):
        if not isinstance(incident, dict) or not {"stream", "kind", "at"} <= set(incident):
            raise ScenarioError(f"{path}: incident {number}: needs stream, kind and at")
        if incident["stream"] not in streams:
            raise ScenarioError(f"{path}: incident {number}: stream {incident['stream']!r} is not in `streams`")
    try:
        duration = parse_duration(data.get("duration", "1d"))
    except ValueError as exc:
        raise ScenarioError(f"{path}: duration: {exc}") from None
    return Scenario(str(data.get("name", path.stem)), str(data.get("description", "")), duration, streams,
                    incidents, path)


def _simulator(stream: str, seed: int, start: float) -> StreamSimulator:
    module_name, class_name = SIMULATORS[stream]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ScenarioError(f"no simulator for the {stream} stream yet ({module_name})") from None
        raise
    simulator: StreamSimulator = getattr(module, class_name)(seed=seed, start=start)
    return simulator


def build(scenario: Scenario, *, seed: int, start: float, duration_s: float | None = None) -> ScenarioRun:
    """Simulators for the scenario's streams (seeds derived from `seed`) with its incidents added."""
    end = start + (duration_s if duration_s is not None else scenario.duration_s)
    simulators = {
        stream: _simulator(stream, seed * 100 + index, start) for index, stream in enumerate(scenario.streams)
    }
    run = ScenarioRun(scenario, start, end, simulators)
    for number, spec in enumerate(scenario.incidents, start=1):
        params = {k: v for k, v in spec.items() if k not in ("stream", "kind", "at", "duration")}
        try:
            at = start + parse_duration(spec["at"])
            duration = parse_duration(spec.get("duration", "10m"))
            incident = simulators[spec["stream"]].add_incident(spec["kind"], at=at, duration=duration, **params)
        except (ValueError, TypeError) as exc:
            where = f"{scenario.path}: incident {number} ({spec['stream']} {spec['kind']})"
            raise ScenarioError(f"{where}: {exc}") from None
        if incident.start < end:
            run.incidents.append(incident)
    return run
