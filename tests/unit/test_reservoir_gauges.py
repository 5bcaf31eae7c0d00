"""`ioc_reservoir_level_meters` and `ioc_reservoir_threshold_meters`: the reference data's
reservoirs and gauges, their newest level and their reference levels, and nothing else."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from ioc.config import load_settings
from ioc.metrics import ReservoirGauges
from ioc.runtime.runner import build_worker

ROWS = {"ta-trach": {"name": "Hồ Tả Trạch", "nwl_m": 45.0, "dead_m": 23.0, "bd1_m": None},
        "kim-long": {"name": "Trạm Kim Long", "bd1_m": 1.0, "bd2_m": 2.0, "bd3_m": 3.5}}


def _level(registry: CollectorRegistry, sid: str, name: str) -> float | None:
    return registry.get_sample_value("ioc_reservoir_level_meters", {"reservoir": sid, "name": name})


def _series(registry: CollectorRegistry) -> int:
    return sum(len(family.samples) for family in registry.collect())


def test_the_newest_level_by_event_time_wins_and_unknown_sensors_add_no_series() -> None:
    registry = CollectorRegistry()
    gauges = ReservoirGauges(registry, clock=lambda: 0.0)
    gauges.reference(ROWS)
    gauges.observe([{"source_id": "ta-trach", "ts": 20.0, "level_m": 44.0}])
    before = _series(registry)
    gauges.observe([{"source_id": "ta-trach", "ts": 10.0, "level_m": 40.0},   # older: kept out
                    {"source_id": "kim-long", "ts": 15.0, "level_m": 2.1}]
                   + [{"source_id": f"rogue-{n}", "ts": 30.0, "level_m": 1.0} for n in range(1000)])
    assert _level(registry, "ta-trach", "Hồ Tả Trạch") == 44.0
    assert _level(registry, "kim-long", "Trạm Kim Long") == 2.1
    assert _series(registry) == before + 1
    thresholds = {s.labels["threshold"]: s.value for f in registry.collect() for s in f.samples
                  if s.name == "ioc_reservoir_threshold_meters" and s.labels["reservoir"] == "kim-long"}
    assert thresholds == {"bd1": 1.0, "bd2": 2.0, "bd3": 3.5}


def test_a_level_not_read_for_a_while_is_dropped_and_a_reload_forgets_removed_reservoirs() -> None:
    now = [0.0]
    registry = CollectorRegistry()
    gauges = ReservoirGauges(registry, clock=lambda: now[0], stale_s=60.0)
    gauges.reference(ROWS)
    gauges.observe([{"source_id": "ta-trach", "ts": 1.0, "level_m": 44.0},
                    {"source_id": "kim-long", "ts": 1.0, "level_m": 2.0}])
    now[0] = 61.0
    assert _level(registry, "ta-trach", "Hồ Tả Trạch") is None  # another worker reads it now
    gauges.observe([{"source_id": "kim-long", "ts": 2.0, "level_m": 2.2}])
    assert _level(registry, "kim-long", "Trạm Kim Long") == 2.2
    gauges.reference({"ta-trach": ROWS["ta-trach"]})
    assert _level(registry, "kim-long", "Trạm Kim Long") is None
    assert not [s for f in registry.collect() for s in f.samples if s.labels.get("reservoir") == "kim-long"]


def test_a_worker_serves_the_shipped_reference_levels() -> None:
    parts = build_worker(load_settings(env={}))
    registry = parts.registry
    assert registry.get_sample_value("ioc_reservoir_threshold_meters",
                                     {"reservoir": "ta-trach", "name": "Hồ Tả Trạch", "threshold": "nwl"}) == 45.0
    assert registry.get_sample_value("ioc_reservoir_threshold_meters",
                                     {"reservoir": "kim-long", "name": "Trạm Kim Long", "threshold": "bd3"}) == 3.5
