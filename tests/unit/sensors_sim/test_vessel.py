"""Unit tests of the vessel (VMS) simulator: determinism, schema, realism, and that the shipped
rules in rules/vessel.yaml catch every incident kind (pure, no broker)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import shapely
import yaml

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.events import decode
from ioc.geo import load_zones
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules
from ioc.timeutil import parse_ts
from sensors_sim.base import Incident
from sensors_sim.vessel import DEFAULT_REFERENCE_PATH, DEFAULT_ZONES_PATH, VesselSimulator, load_fleet

REPO = Path(__file__).resolve().parents[3]
START = parse_ts("2025-10-27T00:00:00+07:00")
DAY = 86400.0
HOUR = 3600.0
BACKGROUND_S = 3 * DAY
SLACK_S = 5 * 60.0
INCIDENT_RULES = (
    "vessel.vms.late", "vessel.vms.lost_6h", "vessel.vms.lost_10d", "vessel.zone.foreign_waters",
    "vessel.zone.length_not_allowed", "vessel.behaviour.loitering",
)

Event = dict[str, Any]


@cache
def ruleset() -> RuleSet:
    return load_rules([REPO / "rules" / "vessel.yaml"], load_reference(REPO / "config" / "reference"))


@cache
def background(seed: int = 0, duration: float = BACKGROUND_S) -> tuple[Event, ...]:
    return tuple(VesselSimulator(seed=seed, start=START).events(START + duration))


@cache
def register() -> dict[str, dict[str, Any]]:
    doc = yaml.safe_load(DEFAULT_REFERENCE_PATH.read_text(encoding="utf-8"))
    return {item["source_id"]: item for item in doc["items"]}


@cache
def zones() -> dict[str, Any]:
    return {z.id: z for z in load_zones(DEFAULT_ZONES_PATH)}


def firing(events: tuple[Event, ...] | list[Event]) -> list[Alert]:
    result = run_backtest(ruleset(), [RawEvent("vessel", e, "sim") for e in events])
    return [a for a in result.alerts if a.status == "firing"]


def by_vessel(events: tuple[Event, ...]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        out[e["source_id"]].append(e)
    return out


def nm(a: Event, b: Event) -> float:
    dx = (b["lon"] - a["lon"]) * 60.0 * math.cos(math.radians((a["lat"] + b["lat"]) / 2))
    return math.hypot(dx, (b["lat"] - a["lat"]) * 60.0)


# --- determinism, order, schema -----------------------------------------------------------


def test_same_seed_same_events_and_other_seed_differs() -> None:
    one = list(VesselSimulator(seed=5, start=START).events(START + DAY))
    two = list(VesselSimulator(seed=5, start=START).events(START + DAY))
    other = list(VesselSimulator(seed=6, start=START).events(START + DAY))
    assert one == two
    assert one != other


def test_events_twice_from_one_simulator_are_identical_with_incidents() -> None:
    sim = VesselSimulator(seed=2, start=START)
    sim.add_incident("loitering", at=START + 10 * HOUR, duration=2 * HOUR)
    sim.add_incident("storm_recall", at=START + 20 * HOUR, duration=12 * HOUR)
    assert list(sim.events(START + 2 * DAY)) == list(sim.events(START + 2 * DAY))


def test_events_are_ts_ordered_within_range_with_unique_ids() -> None:
    events = background()
    times = [parse_ts(e["ts"]) for e in events]
    assert times == sorted(times)
    assert START <= times[0] and times[-1] < START + BACKGROUND_S
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(e["id"].startswith(e["source_id"] + "-") for e in events)


def test_every_event_passes_the_schema_with_the_vessel_fields() -> None:
    fields = {"source_id", "ts", "id", "lat", "lon", "sog_kn", "cog_deg", "length_m", "mmsi", "device_status"}
    for event in background():
        assert set(event) == fields
        decoded = decode("vessel", event)
        assert decoded["source_id"] == event["source_id"]
        assert isinstance(event["mmsi"], str) and len(event["mmsi"]) == 9 and event["mmsi"].startswith("574")


def test_every_registered_vessel_reports_with_its_register_data() -> None:
    seen = by_vessel(background())
    assert set(seen) == set(register())
    for sid, events in seen.items():
        row = register()[sid]
        assert {(e["length_m"], e["mmsi"]) for e in events} == {(row["vessel_length_m"], row["mmsi_ref"])}


# --- realism (issue 4: vessel speeds and gaps) ----------------------------------------------


def test_positions_come_at_least_every_two_hours_typically_every_30_to_60_min() -> None:
    gaps: list[float] = []
    for events in by_vessel(background()).values():
        times = [parse_ts(e["ts"]) for e in events]
        assert times[0] - START < 2 * HOUR
        gaps.extend(b - a for a, b in zip(times, times[1:], strict=False))
    assert max(gaps) < 2 * HOUR
    gaps.sort()
    median = gaps[len(gaps) // 2]
    assert 30 * 60 <= median <= 60 * 60
    assert sum(g > 60 * 60 for g in gaps) / len(gaps) < 0.2


def test_speeds_are_realistic_and_match_the_movement() -> None:
    events = background()
    speeds = [e["sog_kn"] for e in events]
    assert 0.0 <= min(speeds) and max(speeds) <= 12.0
    assert sum(s < 0.5 for s in speeds) > 0.1 * len(speeds)      # moored in port
    assert sum(s >= 6.0 for s in speeds) > 0.02 * len(speeds)    # transits
    for events_of in by_vessel(events).values():
        for a, b in zip(events_of, events_of[1:], strict=False):
            hours = (parse_ts(b["ts"]) - parse_ts(a["ts"])) / HOUR
            assert nm(a, b) / hours <= 12.5, (a, b)               # no jumps: nothing faster than 12 kn


def test_heading_follows_the_movement_in_transit() -> None:
    diffs: list[float] = []
    for events in by_vessel(background()).values():
        for a, b in zip(events, events[1:], strict=False):
            if a["sog_kn"] >= 6.0 and b["sog_kn"] >= 6.0 and nm(a, b) > 2.0:
                dx = (b["lon"] - a["lon"]) * math.cos(math.radians(a["lat"]))
                bearing = math.degrees(math.atan2(dx, b["lat"] - a["lat"])) % 360.0
                diffs.append(abs((bearing - b["cog_deg"] + 180.0) % 360.0 - 180.0))
    assert len(diffs) > 50
    diffs.sort()
    assert diffs[len(diffs) // 2] < 10.0


def test_positions_are_at_sea_and_mostly_in_the_band_allowed_for_the_length() -> None:
    z = zones()
    sea = shapely.union_all([z[k].geometry for k in ("hue-coastal", "hue-inshore", "hue-offshore")])
    shapely.prepare(sea)
    allowed = {
        "coastal": shapely.union_all([z["hue-coastal"].geometry] + [g.geometry for g in z.values()
                                                                      if g.properties["zone_class"] == "port"]),
        "inshore": shapely.union_all([z["hue-inshore"].geometry] + [g.geometry for g in z.values()
                                                                      if g.properties["zone_class"] == "port"]),
        "offshore": shapely.union_all([z["hue-offshore"].geometry] + [g.geometry for g in z.values()
                                                                        if g.properties["zone_class"] == "port"]),
    }
    outside: Counter[str] = Counter()
    per_vessel = by_vessel(background())
    for sid, events in per_vessel.items():
        band = register()[sid]["allowed_zone"]
        for e in events:
            assert shapely.intersects_xy(sea, e["lon"], e["lat"]), e      # east of the coastline
            if not shapely.intersects_xy(allowed[band], e["lon"], e["lat"]):
                outside[band] += 1
    total = sum(len(v) for v in per_vessel.values())
    assert outside["coastal"] == 0                                        # small boats never leave it
    assert sum(outside.values()) < 0.03 * total                          # only while crossing bands


def test_fleet_goes_out_fishes_and_comes_back() -> None:
    events = background()
    ports = [g for g in zones().values() if g.properties["zone_class"] == "port"]
    in_port: Counter[bool] = Counter()
    for e in events:
        in_port[any(shapely.intersects_xy(p.geometry, e["lon"], e["lat"]) for p in ports)] += 1
    assert 0.2 < in_port[True] / len(events) < 0.8
    fishing = [e for e in events if 1.0 <= e["sog_kn"] <= 4.2]
    assert len(fishing) > 0.2 * len(events)
    entries = [a for a in firing(events) if a.rule_id == "vessel.port.enter"]
    assert len(entries) > 20                                               # returns to port


def test_small_boats_leave_before_dawn_or_in_the_afternoon() -> None:
    departures = []
    small = {sid for sid, row in register().items() if row["allowed_zone"] == "coastal"}
    for sid, events in by_vessel(background()).items():
        if sid not in small:
            continue
        for a, b in zip(events, events[1:], strict=False):
            if a["sog_kn"] < 0.5 and b["sog_kn"] >= 4.0:
                departures.append(((parse_ts(a["ts"]) + 7 * HOUR) % DAY) / HOUR)
    assert departures
    assert sum(1.0 <= h <= 7.0 or 13.0 <= h <= 18.5 for h in departures) >= 0.9 * len(departures)


# --- the background stays quiet -----------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_background_alone_triggers_no_incident_rule(seed: int) -> None:
    alerts = firing(background(seed))
    assert [a for a in alerts if a.rule_id in INCIDENT_RULES] == []
    # The background has no storm recall, so every vessel at sea during the example ban of
    # config/calendars/storm-bans.yaml (2025-10-29 06:00-18:00 ICT, inside these 3 days) breaks
    # it: the ban rule fires then, and only then.
    ban = (parse_ts("2025-10-29T06:00:00+07:00"), parse_ts("2025-10-29T18:00:00+07:00"))
    banned = [a for a in alerts if a.rule_id == "vessel.storm_ban.at_sea"]
    assert banned and all(ban[0] <= a.starts_at < ban[1] for a in banned)
    # Otherwise only the info record of returns to port remains.
    assert {a.rule_id for a in alerts} - {"vessel.storm_ban.at_sea"} <= {"vessel.port.enter"}


# --- incidents ----------------------------------------------------------------------------


def caught(incident: Incident, alerts: list[Alert], rules: tuple[str, ...] | None = None) -> list[Alert]:
    wanted = rules or incident.rules
    return [
        a for a in alerts
        if a.rule_id in wanted
        and all(a.key.get(k) == v for k, v in incident.keys.items())
        and incident.start - SLACK_S <= a.starts_at <= incident.end
    ]


def run_incident(kind: str, at_h: float, duration_h: float, seed: int = 3, **params: Any
                 ) -> tuple[Incident, list[Alert], list[Event]]:
    sim = VesselSimulator(seed=seed, start=START)
    incident = sim.add_incident(kind, at=START + at_h * HOUR, duration=duration_h * HOUR, **params)
    events = list(sim.events(START + max(2 * DAY, (at_h + duration_h + 12) * HOUR)))
    return incident, firing(events), events


def only_incident_alerts(incident: Incident, alerts: list[Alert]) -> None:
    """Alerts of the incident rules are about the incident vessel and start within it."""
    stray = [a for a in alerts if a.rule_id in INCIDENT_RULES and a not in caught(incident, alerts, INCIDENT_RULES)]
    assert stray == []


@pytest.mark.parametrize(("hours", "rules"), [
    (3.0, ("vessel.vms.late",)),
    (8.0, ("vessel.vms.late", "vessel.vms.lost_6h")),
])
def test_vms_loss_is_caught_by_the_absence_rules(hours: float, rules: tuple[str, ...]) -> None:
    incident, alerts, events = run_incident("vms_loss", 10.0, 1.0, hours=hours)
    assert incident.rules == rules and incident.end == incident.start + hours * HOUR
    for rule in rules:
        assert caught(incident, alerts, (rule,)), rule
    sid = incident.keys["source_id"]
    assert register()[sid]["vms_required"] is True
    times = [parse_ts(e["ts"]) for e in events if e["source_id"] == sid]
    assert incident.start in times and incident.end in times
    assert not [t for t in times if incident.start < t < incident.end]
    reconnect = next(e for e in events if e["source_id"] == sid and parse_ts(e["ts"]) == incident.end)
    assert reconnect["device_status"] == "reconnected"
    only_incident_alerts(incident, alerts)


def test_vms_loss_of_a_named_vessel_and_bad_parameters() -> None:
    sim = VesselSimulator(seed=0, start=START)
    incident = sim.add_incident("vms_loss", at=START + HOUR, duration=7 * HOUR, source_id="TTH-90123-TS")
    assert incident.keys == {"source_id": "TTH-90123-TS"} and incident.params["hours"] == 7.0
    with pytest.raises(ValueError, match="needs no VMS"):
        sim.add_incident("vms_loss", at=START + HOUR, duration=7 * HOUR, source_id="TTH-26258-TS")
    with pytest.raises(ValueError, match="must be > 2"):
        sim.add_incident("vms_loss", at=START + HOUR, duration=HOUR)
    with pytest.raises(ValueError, match="unknown vessel"):
        sim.add_incident("vms_loss", at=START + HOUR, duration=3 * HOUR, source_id="TTH-00000-TS")
    with pytest.raises(ValueError, match="unknown parameter"):
        sim.add_incident("vms_loss", at=START + HOUR, duration=3 * HOUR, colour="red")
    with pytest.raises(ValueError, match="unknown vessel incident"):
        sim.add_incident("piracy", at=START + HOUR, duration=HOUR)


def test_loitering_is_caught_far_from_shore() -> None:
    incident, alerts, events = run_incident("loitering", 14.0, 2.5)
    assert incident.rules == ("vessel.behaviour.loitering",)
    assert caught(incident, alerts)
    sid = incident.keys["source_id"]
    during = [e for e in events if e["source_id"] == sid and incident.start <= parse_ts(e["ts"]) < incident.end]
    assert during and all(e["sog_kn"] < 2.0 for e in during)
    only_incident_alerts(incident, alerts)


def test_loitering_needs_a_vessel_beyond_the_coastal_band_and_more_than_an_hour() -> None:
    sim = VesselSimulator(seed=0, start=START)
    with pytest.raises(ValueError, match="coastal band"):
        sim.add_incident("loitering", at=START + HOUR, duration=2 * HOUR, source_id="TTH-26258-TS")
    with pytest.raises(ValueError, match="65 min"):
        sim.add_incident("loitering", at=START + HOUR, duration=HOUR)


@pytest.mark.parametrize("params", [
    {},                                               # a >= 15 m vessel fishing in the coastal band
    {"source_id": "TTH-26258-TS", "zone": "offshore"},  # a 9.4 m boat in the offshore band
    {"source_id": "TTH-27684-TS"},                    # a 8.9 m boat in the inshore band (default)
])
def test_wrong_zone_is_caught_by_the_length_rule(params: dict[str, Any]) -> None:
    incident, alerts, events = run_incident("wrong_zone", 12.0, 8.0, **params)
    assert incident.rules == ("vessel.zone.length_not_allowed",)
    assert caught(incident, alerts)
    only_incident_alerts(incident, alerts)
    sid = incident.keys["source_id"]
    mine = [e for e in events if e["source_id"] == sid]
    for a, b in zip(mine, mine[1:], strict=False):     # sails there: no jump
        assert nm(a, b) / ((parse_ts(b["ts"]) - parse_ts(a["ts"])) / HOUR) <= 12.5


def test_wrong_zone_too_short_to_get_there_is_refused() -> None:
    sim = VesselSimulator(seed=0, start=START)
    with pytest.raises(ValueError, match="duration must be"):
        sim.add_incident("wrong_zone", at=START + HOUR, duration=HOUR)
    with pytest.raises(ValueError, match="not allowed for"):
        sim.add_incident("wrong_zone", at=START + HOUR, duration=8 * HOUR, source_id="TTH-26258-TS",
                         zone="coastal")


def test_foreign_waters_sailing_there_is_caught_without_a_jump() -> None:
    incident, alerts, events = run_incident("foreign_waters", 6.0, 16.0)
    assert incident.params["approach"] == "sail"
    assert caught(incident, alerts, ("vessel.zone.foreign_waters",))
    only_incident_alerts(incident, alerts)
    sid = incident.keys["source_id"]
    mine = [e for e in events if e["source_id"] == sid]
    assert max(e["lat"] for e in mine) > 19.0
    for a, b in zip(mine, mine[1:], strict=False):
        assert nm(a, b) / ((parse_ts(b["ts"]) - parse_ts(a["ts"])) / HOUR) <= 12.5


def test_foreign_waters_reported_there_for_a_short_scenario() -> None:
    incident, alerts, events = run_incident("foreign_waters", 6.0, 2.0)
    assert incident.params["approach"] == "report"
    first = [a for a in caught(incident, alerts, ("vessel.zone.foreign_waters",))]
    assert first and first[0].starts_at == incident.start            # at once, first position there
    only_incident_alerts(incident, alerts)
    with pytest.raises(ValueError, match="approach='report'"):
        VesselSimulator(seed=0, start=START).add_incident(
            "foreign_waters", at=START + HOUR, duration=2 * HOUR, approach="sail")


def test_storm_recall_brings_the_fleet_home_and_keeps_it_there() -> None:
    sim = VesselSimulator(seed=4, start=START)
    at, ban = START + 30 * HOUR, 18 * HOUR
    incident = sim.add_incident("storm_recall", at=at, duration=ban)
    assert incident.rules == () and incident.keys == {} and incident.end == at + ban
    events = list(sim.events(START + 3 * DAY))
    ports = [g.geometry for g in zones().values() if g.properties["zone_class"] == "port"]

    def home(e: Event) -> bool:
        return any(shapely.intersects_xy(p, e["lon"], e["lat"]) for p in ports)

    last: dict[str, Event] = {}
    before: dict[str, Event] = {}
    for e in events:
        t = parse_ts(e["ts"])
        if t < at:
            before[e["source_id"]] = e
        if t < at + ban:
            last[e["source_id"]] = e
    at_sea_before = sum(not home(e) for e in before.values())
    assert at_sea_before >= 10
    assert all(home(e) for e in last.values())               # everyone in port by the end of the ban
    alerts = firing(events)
    assert [a for a in alerts if a.rule_id in INCIDENT_RULES] == []
    returns = [a for a in alerts if a.rule_id == "vessel.port.enter" and at <= a.starts_at <= at + ban]
    assert len(returns) >= at_sea_before - 2


def test_incidents_have_unique_ids_and_ground_truth_records() -> None:
    sim = VesselSimulator(seed=0, start=START)
    made = [
        sim.add_incident("vms_loss", at=START + HOUR, duration=3 * HOUR),
        sim.add_incident("vms_loss", at=START + 2 * HOUR, duration=3 * HOUR),
        sim.add_incident("loitering", at=START + 5 * HOUR, duration=2 * HOUR),
        sim.add_incident("storm_recall", at=START + 40 * HOUR, duration=6 * HOUR),
    ]
    assert len({i.id for i in made}) == 4 and made[0].id == "vessel-vms_loss-1"
    assert len({i.keys.get("source_id") for i in made[:3]}) == 3          # distinct vessels
    record = made[0].to_record()
    assert record["stream"] == "vessel" and record["rules"] == ["vessel.vms.late"]
    with pytest.raises(ValueError, match="already has an incident"):
        sim.add_incident("loitering", at=START + 3 * HOUR, duration=2 * HOUR,
                         source_id=made[0].keys["source_id"])
    with pytest.raises(ValueError, match="before the simulation"):
        sim.add_incident("loitering", at=START - HOUR, duration=2 * HOUR)


def test_fleet_reference_and_knobs() -> None:
    fleet = load_fleet()
    assert len(fleet) == 60 and {v.home_port for v in fleet} == {"thuan-an", "tu-hien", "chan-may"}
    assert all(v.vms_required == (v.length_m >= 15.0) for v in fleet)
    with pytest.raises(ValueError, match="report_interval_min"):
        VesselSimulator(start=START, report_interval_min=(60.0, 30.0))
    sparse = list(VesselSimulator(seed=0, start=START, report_interval_min=(80.0, 100.0),
                                  missed_report_rate=0.0).events(START + DAY))
    assert len(sparse) < 0.75 * len([e for e in background() if parse_ts(e["ts"]) < START + DAY])
