"""What every stream simulator offers: reproducible events in event-time order, and labelled
incidents injected at chosen times (the ground truth that rules are scored against).

>>> sim = CameraSimulator(seed=7, start=T0)                      # doctest: +SKIP
>>> incident = sim.add_incident("fire_smoke", at=T0 + 600, duration=120, source_id="cam-003")
>>> events = list(sim.events(T0 + 3600))                          # ts-ordered, deterministic

A simulator draws all randomness from `numpy.random.default_rng(seed)` (one generator per
simulator, created in `events()` so that two calls give the same list), never from the
global random state or the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from ioc.timeutil import format_ts

__all__ = ["Incident", "StreamSimulator"]


@dataclass(frozen=True)
class Incident:
    """One injected incident: what happened, to which keys, when, and which rules should catch it."""

    id: str                      # unique within a scenario run, e.g. "camera-fire_smoke-1"
    stream: str                  # the stream whose events carry it
    kind: str                    # the simulator's incident kind, e.g. "fire_smoke"
    keys: dict[str, Any]         # the alert key values a catching rule would have, e.g. {"source_id": "cam-003"}
    start: float                 # event time the incident's first event is stamped with
    end: float                   # event time its last event is stamped with
    rules: tuple[str, ...]       # ids of the shipped rules expected to alert on it (any one catches it)
    params: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["rules"] = list(self.rules)
        record["start"], record["end"] = format_ts(self.start), format_ts(self.end)
        return record


class StreamSimulator(Protocol):
    """The interface the scenario runner uses."""

    stream: str
    incident_kinds: tuple[str, ...]

    def add_incident(self, kind: str, *, at: float, duration: float, **params: Any) -> Incident:
        """Schedule an incident of one of `incident_kinds`; raises ValueError for an unknown kind
        or bad parameters. Returns its ground truth."""
        ...

    def events(self, end: float) -> Iterator[dict[str, Any]]:
        """Every event from the simulator's `start` to `end` (event time), in ts order, as plain
        JSON-able dicts valid for the stream's schema (`ts` as RFC 3339 text), background traffic
        and injected incidents merged. Same seed and incidents: the same events."""
        ...
