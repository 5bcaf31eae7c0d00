"""Unit tests of the reservoir simulator and its reference data (pure, no broker)."""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from ioc.timeutil import parse_ts
from sensors_sim.reservoir import (
    DEFAULT_STATIONS_PATH,
    SPILL_BAND_M,
    ReservoirSimulator,
    Station,
    StationConfigError,
    load_stations,
)

START = parse_ts("2025-10-26T00:00:00+07:00")
STEP_S = 300.0
FLOOD_AT_S = 3 * 3600.0
FLOOD_HOURS = 24.0
DURATION_S = 36 * 3600.0
SEEDS = (0, 1, 2)

RESERVOIR_FIELDS = {
    "source_id": str,
    "ts": str,
    "id": str,
    "level_m": float,
    "inflow_m3s": float,
    "turbine_m3s": float,
    "spill_m3s": float,
    "gates_open": int,
    "rain_mm_1h": float,
    "piezo_kpa": float,
    "seepage_lps": float,
    "turbidity_ntu": float,
}
GAUGE_FIELDS = {"source_id": str, "ts": str, "id": str, "level_m": float}

Event = dict[str, Any]


@cache
def stations() -> tuple[Station, ...]:
    return tuple(load_stations())


def station(source_id: str) -> Station:
    return next(s for s in stations() if s.source_id == source_id)


@cache
def run(seed: int = 0, flood: bool = True) -> tuple[Event, ...]:
    sim = ReservoirSimulator(
        stations(),
        seed=seed,
        start=START,
        step_s=STEP_S,
        flood_at_s=FLOOD_AT_S if flood else None,
        flood_hours=FLOOD_HOURS,
    )
    return tuple(sim.events(DURATION_S))


def series(events: tuple[Event, ...], source_id: str) -> list[Event]:
    return [e for e in events if e["source_id"] == source_id]


def in_flood(event: Event) -> bool:
    offset = parse_ts(event["ts"]) - START - FLOOD_AT_S
    return 0.0 <= offset <= FLOOD_HOURS * 3600.0


def before_flood(event: Event) -> bool:
    return parse_ts(event["ts"]) < START + FLOOD_AT_S


# --- reference data ------------------------------------------------------------------


def test_reference_file_has_the_six_stations_with_domain_levels() -> None:
    by_id = {s.source_id: s for s in stations()}
    assert list(by_id) == ["ta-trach", "binh-dien", "huong-dien", "a-luoi", "kim-long", "phu-oc"]
    assert (by_id["ta-trach"].nwl_m, by_id["ta-trach"].flood_wait_m) == (45.0, 35.0)
    assert (by_id["binh-dien"].nwl_m, by_id["binh-dien"].dead_m) == (85.0, 53.0)
    assert (by_id["huong-dien"].nwl_m, by_id["huong-dien"].dead_m) == (58.0, 46.0)
    assert by_id["a-luoi"].nwl_m == 553.0
    kim_long, phu_oc = by_id["kim-long"], by_id["phu-oc"]
    assert (kim_long.lat, kim_long.lon) == (16.455, 107.560)
    assert (kim_long.bd1_m, kim_long.bd2_m, kim_long.bd3_m) == (1.0, 2.0, 3.5)
    assert (phu_oc.lat, phu_oc.lon) == (16.528, 107.472)
    assert (phu_oc.bd1_m, phu_oc.bd2_m, phu_oc.bd3_m) == (1.5, 3.0, 4.5)


def test_reservoirs_have_lake_levels_and_gauges_have_alarm_levels() -> None:
    for s in stations():
        lake = (s.nwl_m, s.dead_m, s.flood_wait_m)
        alarms = (s.bd1_m, s.bd2_m, s.bd3_m)
        if s.type == "reservoir":
            assert None not in lake and alarms == (None, None, None), s.source_id
            assert s.dead_m < s.flood_wait_m < s.nwl_m, s.source_id  # type: ignore[operator]
        else:
            assert s.type == "gauge"
            assert None not in alarms and lake == (None, None, None), s.source_id


def test_every_item_has_the_same_keys_and_nfc_vietnamese_names() -> None:
    doc = yaml.safe_load(DEFAULT_STATIONS_PATH.read_text(encoding="utf-8"))
    assert doc["key"] == "source_id"
    key_sets = {frozenset(item) for item in doc["items"]}
    assert len(key_sets) == 1
    for item in doc["items"]:
        for text in (item["name"], item["river"]):
            assert unicodedata.normalize("NFC", text) == text
    names = {item["source_id"]: item["name"] for item in doc["items"]}
    assert names["ta-trach"] == "Hồ Tả Trạch"
    assert "Phú Ốc" in names["phu-oc"] and "Bình Điền" in names["binh-dien"]


def test_bad_station_file_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    good = DEFAULT_STATIONS_PATH.read_text(encoding="utf-8")
    bad = good.replace("nwl_m: 85.0", "nwl_m: high", 1).replace("bd2_m: 2.0", "bd2_m: 0.5", 1)
    path = tmp_path / "reservoir.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(StationConfigError) as caught:
        load_stations(path)
    problems = caught.value.problems
    assert len(problems) == 2
    nwl_line = next(i for i, line in enumerate(bad.splitlines(), 1) if "nwl_m: high" in line)
    assert (
        problems[0]
        == f"reservoir.yaml:{nwl_line}: station 'binh-dien': nwl_m: 'high' is not a number of metres or null"
    )
    assert "station 'kim-long'" in problems[1] and "levels must increase" in problems[1]


# --- determinism and shape -----------------------------------------------------------


def test_same_seed_gives_identical_events_and_another_seed_differs() -> None:
    again = ReservoirSimulator(stations(), seed=0, start=START, flood_at_s=FLOOD_AT_S)
    assert list(again.events(DURATION_S)) == list(run(0))
    assert list(again.events(DURATION_S)) == list(run(0))  # events() replays from the seed
    assert run(1) != run(0)


def test_events_are_in_time_order_with_one_event_per_station_per_step() -> None:
    events = run(0)
    times = [parse_ts(e["ts"]) for e in events]
    assert times == sorted(times)
    by_time: dict[float, list[str]] = defaultdict(list)
    for t, e in zip(times, events, strict=True):
        by_time[t].append(e["source_id"])
    steps = int(DURATION_S / STEP_S)
    assert sorted(by_time) == [START + k * STEP_S for k in range(steps)]
    order = [s.source_id for s in stations()]
    assert all(ids == order for ids in by_time.values())
    assert len({e["id"] for e in events}) == len(events)
    assert events[0]["ts"] == "2025-10-25T17:00:00Z" and events[0]["id"] == "ta-trach-000000"


def test_fields_and_types_per_station_type() -> None:
    for e in run(0):
        expected = GAUGE_FIELDS if station(e["source_id"]).type == "gauge" else RESERVOIR_FIELDS
        assert set(e) == set(expected), e["source_id"]
        for key, kind in expected.items():
            assert type(e[key]) is kind, (e["source_id"], key, e[key])
        if "inflow_m3s" in e:
            assert min(e[k] for k in RESERVOIR_FIELDS if expected[k] in (float, int) and k != "level_m") >= 0


def test_constructor_rejects_nonsense_parameters() -> None:
    with pytest.raises(ValueError, match="step_s"):
        ReservoirSimulator(stations(), start=START, step_s=0.0)
    with pytest.raises(ValueError, match="flood_at_s"):
        ReservoirSimulator(stations(), start=START, flood_at_s=-1.0)


# --- flood physics -------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_reservoir_levels_stay_between_dead_level_and_nwl_plus_3(seed: int) -> None:
    for s in stations():
        if s.type == "reservoir":
            levels = [e["level_m"] for e in series(run(seed), s.source_id)]
            assert s.dead_m <= min(levels) and max(levels) <= s.nwl_m + 3.0, s.source_id  # type: ignore[operator]


@pytest.mark.parametrize("seed", SEEDS)
def test_flood_fills_every_reservoir_to_the_warning_band_and_one_to_nwl(seed: int) -> None:
    peaks = {}
    for s in stations():
        if s.type == "reservoir":
            peaks[s.source_id] = max(e["level_m"] for e in series(run(seed), s.source_id) if in_flood(e))
            assert peaks[s.source_id] > s.nwl_m - 0.5, (s.source_id, peaks[s.source_id])  # type: ignore[operator]
    assert any(peaks[sid] >= station(sid).nwl_m for sid in peaks)  # type: ignore[operator]


@pytest.mark.parametrize("seed", SEEDS)
def test_flood_inflow_peaks_come_close_to_27_october_2025(seed: int) -> None:
    peak = {sid: max(e["inflow_m3s"] for e in series(run(seed), sid)) for sid in ("ta-trach", "binh-dien")}
    assert 5500 <= peak["ta-trach"] <= 8000
    assert 3000 <= peak["binh-dien"] <= 5000
    assert peak["ta-trach"] > peak["binh-dien"]


@pytest.mark.parametrize("seed", SEEDS)
def test_gauges_below_bd1_before_the_flood_and_over_bd3_bd2_during_it(seed: int) -> None:
    events = run(seed)
    for sid in ("kim-long", "phu-oc"):
        before = [e["level_m"] for e in series(events, sid) if before_flood(e)]
        assert before and max(before) < station(sid).bd1_m  # type: ignore[operator]
    kim_long = max(e["level_m"] for e in series(events, "kim-long") if in_flood(e))
    phu_oc = max(e["level_m"] for e in series(events, "phu-oc") if in_flood(e))
    assert kim_long > station("kim-long").bd3_m  # type: ignore[operator]
    assert phu_oc > station("phu-oc").bd2_m  # type: ignore[operator]
    assert phu_oc < 5.24  # the 2020 record stays a record


@pytest.mark.parametrize("seed", SEEDS)
def test_flood_rain_exceeds_100_mm_in_some_3_hours(seed: int) -> None:
    hour = int(3600 / STEP_S)
    best = 0.0
    for s in stations():
        if s.type == "reservoir":
            rain = [e["rain_mm_1h"] for e in series(run(seed), s.source_id)]
            # rain_mm_1h is the trailing hour: three readings an hour apart make 3 hours.
            best = max(
                best, *(rain[i] + rain[i - hour] + rain[i - 2 * hour] for i in range(2 * hour, len(rain)))
            )
    assert best > 100.0
    assert max(e.get("rain_mm_1h", 0.0) for e in run(seed) if before_flood(e)) < 5.0  # light rain only


def test_no_flood_keeps_gauges_below_bd1_and_lakes_below_nwl_minus_1() -> None:
    events = run(0, flood=False)
    for s in stations():
        levels = [e["level_m"] for e in series(events, s.source_id)]
        if s.type == "gauge":
            assert max(levels) < s.bd1_m  # type: ignore[operator]
        else:
            assert s.dead_m <= min(levels) and max(levels) <= s.nwl_m - 1.0  # type: ignore[operator]
    assert all(e.get("spill_m3s", 0.0) == 0.0 for e in events)
    assert max(e.get("rain_mm_1h", 0.0) for e in events) < 5.0


@pytest.mark.parametrize("seed", SEEDS)
def test_spill_happens_only_near_nwl(seed: int) -> None:
    spilled = set()
    for e in run(seed):
        if e.get("spill_m3s", 0.0) > 0.0:
            spilled.add(e["source_id"])
            nwl = station(e["source_id"]).nwl_m
            assert e["level_m"] >= nwl - SPILL_BAND_M - 0.1, e  # type: ignore[operator]
            assert e["gates_open"] >= 1
        elif "gates_open" in e:
            assert e["gates_open"] == 0
    assert spilled == {"ta-trach", "binh-dien", "huong-dien", "a-luoi"}


@pytest.mark.parametrize("seed", SEEDS)
def test_releases_change_gradually(seed: int) -> None:
    hour = int(3600 / STEP_S)
    for sid in ("ta-trach", "binh-dien", "huong-dien", "a-luoi"):
        release = [e["turbine_m3s"] + e["spill_m3s"] for e in series(run(seed), sid)]
        steps = [abs(release[i] - release[i - hour]) for i in range(hour, len(release))]
        # Tả Trạch's ramp (1,500 m3/s per hour) is the fastest; rounding adds a little.
        assert max(steps) <= 1500.0 + 1.0, sid


def test_dam_sensors_rise_with_the_lake_and_stay_quiet_without_a_flood() -> None:
    flood = series(run(0), "ta-trach")
    first, peak = flood[0], max(flood, key=lambda e: e["piezo_kpa"])
    assert peak["piezo_kpa"] > first["piezo_kpa"] + 10.0
    assert max(e["seepage_lps"] for e in flood) > first["seepage_lps"]
    calm = series(run(0, flood=False), "ta-trach")
    piezo = [e["piezo_kpa"] for e in calm]
    assert max(piezo) - min(piezo) < 5.0  # noise and slow drift only
