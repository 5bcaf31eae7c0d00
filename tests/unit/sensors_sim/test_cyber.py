"""Unit tests of the cyber (SOC) simulator: determinism, schema, realism, and that the shipped
rules of rules/cyber.yaml catch every incident kind while the background alone stays quiet."""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from functools import cache
from typing import Any

import pytest

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.events import decode
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules
from ioc.timeutil import parse_ts
from sensors_sim.base import Incident
from sensors_sim.cyber import (
    DEFAULT_REFERENCE_PATH,
    DOC_NETWORKS,
    INCIDENT_RULES,
    CyberSimulator,
    load_sensors,
)

Event = dict[str, Any]

WEDNESDAY = parse_ts("2025-11-12T00:00:00+07:00")  # a working day, outside the change window
SATURDAY = parse_ts("2025-11-15T12:00:00+07:00")  # the window "Sat 22:00-Sun 02:00" is ahead
MONDAY = parse_ts("2025-11-03T00:00:00+07:00")
SLACK_S = 1.0
NETWORKS = DOC_NETWORKS


@cache
def ruleset() -> RuleSet:
    return load_rules(["rules/cyber.yaml"], load_reference("config/reference"))


@cache
def day(seed: int = 1) -> tuple[Event, ...]:
    """One Wednesday of background at full volume (about 100,000 events)."""
    return tuple(CyberSimulator(seed=seed, start=WEDNESDAY).events(WEDNESDAY + 86400))


def backtest(events: list[Event] | tuple[Event, ...], until: float) -> list[Alert]:
    rows = [RawEvent("cyber", dict(e), "sim") for e in events]
    return run_backtest(ruleset(), rows, until=until).alerts


def firing(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.status == "firing"]


def catches(alerts: list[Alert], incident: Incident, rules: tuple[str, ...] | None = None) -> bool:
    wanted = incident.rules if rules is None else rules
    return any(
        a.rule_id in wanted
        and all(a.key.get(k) == v for k, v in incident.keys.items())
        and incident.start - SLACK_S <= a.starts_at <= incident.end
        for a in firing(alerts)
    )


def ts(event: Event) -> float:
    return parse_ts(event["ts"])


def local_hour(t: float) -> int:
    return int((t + 7 * 3600) % 86400 // 3600)


# --- reference data and interface ----------------------------------------------------------


def test_sensors_come_from_the_reference_file() -> None:
    sensors = {s.source_id: s for s in load_sensors(DEFAULT_REFERENCE_PATH)}
    assert {"soc-fw-01", "soc-fw-02", "soc-waf-01", "soc-waf-02", "soc-ids-01", "soc-fim-01"} <= set(sensors)
    assert [s.source_id for s in sensors.values() if s.web_root] == ["soc-fim-01"]
    assert sensors["soc-fim-01"].change_window == "Sat 22:00-Sun 02:00"
    assert {e["source_id"] for e in day()} <= set(sensors)
    # Every sensor except the integrity monitor (quiet outside its change window) speaks on a working day.
    assert {e["source_id"] for e in day()} == set(sensors) - {"soc-fim-01"}


def test_interface_and_incident_rules_name_shipped_rules() -> None:
    sim = CyberSimulator(start=WEDNESDAY)
    assert sim.stream == "cyber"
    assert set(sim.incident_kinds) == set(INCIDENT_RULES) == {
        "brute_force", "brute_force_success", "port_scan", "sweep", "sqli", "sqli_success", "xss", "dos",
        "long_url", "defacement", "new_src_login",
    }
    shipped = {r.id for r in ruleset().rules}
    for rules in INCIDENT_RULES.values():
        assert rules and set(rules) <= shipped


# --- determinism and shape -------------------------------------------------------------------


def _with_incidents(seed: int) -> list[Event]:
    sim = CyberSimulator(seed=seed, start=WEDNESDAY + 8 * 3600, volume=0.3)
    sim.add_incident("brute_force", at=sim.start + 300, duration=60)
    sim.add_incident("sqli_success", at=sim.start + 900, duration=60)
    sim.add_incident("dos", at=sim.start + 1500, duration=60)
    return list(sim.events(sim.start + 3600))


def test_same_seed_gives_identical_events_and_another_seed_differs() -> None:
    first = _with_incidents(3)
    assert _with_incidents(3) == first
    assert json.dumps(_with_incidents(3)) == json.dumps(first)  # byte-identical JSONL
    assert _with_incidents(4) != first


def test_events_replay_from_the_seed_and_shorter_runs_are_prefixes() -> None:
    sim = CyberSimulator(seed=5, start=WEDNESDAY, volume=0.2)
    sim.add_incident("port_scan", at=WEDNESDAY + 5000, duration=30)
    full = list(sim.events(WEDNESDAY + 4 * 3600))
    assert list(sim.events(WEDNESDAY + 4 * 3600)) == full
    part = list(sim.events(WEDNESDAY + 5400.5))
    assert part == full[: len(part)] and all(ts(e) < WEDNESDAY + 5400.5 for e in part)
    assert ts(full[len(part)]) >= WEDNESDAY + 5400.5


def test_incidents_do_not_change_the_background() -> None:
    plain = CyberSimulator(seed=2, start=WEDNESDAY, volume=0.2)
    attacked = CyberSimulator(seed=2, start=WEDNESDAY, volume=0.2)
    incident = attacked.add_incident("sweep", at=WEDNESDAY + 1800, duration=200)
    background = list(plain.events(WEDNESDAY + 3 * 3600))
    mixed = list(attacked.events(WEDNESDAY + 3 * 3600))
    strip = [{k: v for k, v in e.items() if k != "id"} for e in mixed if e.get("src_ip") != incident.keys["src_ip"]]
    assert strip == [{k: v for k, v in e.items() if k != "id"} for e in background]
    assert len(mixed) - len(background) == 201


def test_events_are_ts_ordered_within_the_run_with_unique_ids() -> None:
    events = _with_incidents(1)
    times = [ts(e) for e in events]
    assert times == sorted(times)
    assert WEDNESDAY + 8 * 3600 <= times[0] and times[-1] < WEDNESDAY + 9 * 3600
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(e["id"].rsplit("-", 1)[0] == e["source_id"] for e in events)
    assert [e["ts"] for e in events] == sorted(e["ts"] for e in events)  # fixed-width text: sorts as time
    assert all(len(e["ts"]) == 24 and e["ts"].endswith("Z") for e in events)


def test_every_event_passes_the_schema() -> None:
    for event in day():
        decode("cyber", event)
    sim = CyberSimulator(seed=9, start=WEDNESDAY, volume=0.05)
    for i, kind in enumerate(k for k in sim.incident_kinds if k != "new_src_login"):
        sim.add_incident(kind, at=WEDNESDAY + 3600 + 900 * i, duration=240)
    events = list(sim.events(WEDNESDAY + 6 * 3600))
    assert len(events) > 2000
    for event in events:
        decoded = decode("cyber", event)
        assert decoded["source_id"] == event["source_id"]


def test_only_documentation_addresses_appear() -> None:
    events = list(day()) + _with_incidents(0)
    seen = 0
    for event in events:
        for field in ("src_ip", "dst_ip"):
            if field in event:
                address = ipaddress.ip_address(event[field])
                assert any(address.version == n.version and address in n for n in NETWORKS), event
                seen += 1
    assert seen > 150_000
    with pytest.raises(ValueError, match="documentation range"):
        CyberSimulator(start=WEDNESDAY).add_incident("brute_force", at=WEDNESDAY, duration=60, src_ip="8.8.8.8")


# --- realism (docs/domain.md §4) -----------------------------------------------------------------


def test_blocked_attempts_match_the_socs_daily_volume() -> None:
    counts = Counter(e["event_action"] for e in day())
    blocked = counts["connection"] + counts["ids_alert"]
    assert 18_750 * 0.95 < blocked < 18_750 * 1.05  # >5.7 M in 10 months of 2023
    sources = Counter(e["src_ip"] for e in day() if e["event_action"] in ("connection", "ids_alert"))
    assert len(sources) > 2000  # many sources (the IPv6 ones are mostly single probes)
    assert max(sources.values()) < 200  # a trickle of single probes, no single heavy scanner
    assert 200 < counts["malware_detected"] < 400  # 90,000 virus spreads in 10 months
    assert 3 <= counts["email_blocked"] <= 25  # 2,713 malware + 355 phishing mails in 10 months


def test_logins_are_mostly_successful_with_occasional_typos() -> None:
    logins = [e for e in day() if e["event_action"] == "authentication"]
    outcome = Counter(e["event_outcome"] for e in logins)
    assert outcome["success"] > 400
    assert 0.01 < outcome["failure"] / len(logins) < 0.12
    failures = Counter(e["src_ip"] for e in logins if e["event_outcome"] == "failure")
    assert max(failures.values()) < 8  # never a brute force by itself
    morning = [e for e in logins if 7 <= local_hour(ts(e)) < 9]
    assert len(morning) > len(logins) / 3  # officials log in when they arrive at work


def test_web_traffic_has_a_day_night_profile_and_realistic_statuses() -> None:
    web = [e for e in day() if e["event_action"] == "http_request"]
    assert 60_000 < len(web) < 100_000
    by_hour = Counter(local_hour(ts(e)) for e in web)
    assert min(by_hour[h] for h in (9, 10, 15)) > 5 * max(by_hour[h] for h in (2, 3, 4))
    status = Counter(e["http_status"] for e in web)
    assert status[200] / len(web) > 0.8
    assert 0.02 < status[404] / len(web) < 0.1
    assert 0 < status[503] / len(web) < 0.005  # occasional
    assert {e["host"] for e in web} == {"hue.gov.vn", "dichvucong.hue.gov.vn", "api.hue-s.vn"}
    assert max(len(e["url"]) for e in web) < 200


def test_web_root_changes_happen_only_inside_the_change_window() -> None:
    sim = CyberSimulator(seed=4, start=SATURDAY, volume=0.05, deploy_p=1.0)
    events = list(sim.events(SATURDAY + 86400))
    changes = [e for e in events if e["source_id"] == "soc-fim-01"]
    assert changes, "a planned deployment in the Sat 22:00-Sun 02:00 window"
    for event in changes:
        t = ts(event) + 7 * 3600
        weekday, hour = int((t // 86400 + 3) % 7), int(t % 86400 // 3600)
        assert (weekday == 5 and hour >= 22) or (weekday == 6 and hour < 2)
    assert not firing(backtest(events, SATURDAY + 86400))


# --- background against the shipped rules ----------------------------------------------------


def test_a_working_day_of_background_raises_no_alert() -> None:
    assert firing(backtest(day(), WEDNESDAY + 86400)) == []


def test_ten_days_of_background_raise_no_alert_after_login_learning() -> None:
    # Past the 7-day learning of cyber.login.new_src_ip: every official logs in only from
    # the agency's address and (some) from home, both learned in the first days.
    sim = CyberSimulator(seed=6, start=MONDAY, volume=0.03)
    events = list(sim.events(MONDAY + 10 * 86400))
    assert firing(backtest(events, MONDAY + 10 * 86400)) == []


# --- incidents: each kind caught by its shipped rule -----------------------------------------

# (kind, duration s, params): defaults of each kind, plus variants (IPv6 attacker, VPN target).
CASES: list[tuple[str, float, dict[str, Any]]] = [
    ("brute_force", 90.0, {}),
    ("brute_force", 600.0, {"src_ip": "2001:db8:bad::7", "target": "vpn", "interval_s": 12.0}),
    ("brute_force_success", 75.0, {}),
    ("brute_force_success", 110.0, {"target": "ssh", "interval_s": 10.0, "user": "root"}),
    ("port_scan", 30.0, {}),
    ("port_scan", 300.0, {"rate": 1.0, "dst_ip": "198.51.100.10"}),
    ("sweep", 200.0, {}),
    ("sweep", 500.0, {"rate": 0.2, "port": 3389}),
    ("sqli", 80.0, {}),
    ("sqli_success", 60.0, {}),
    ("xss", 90.0, {}),
    ("xss", 110.0, {"interval_s": 10.0, "host": "dichvucong.hue.gov.vn"}),
    ("dos", 180.0, {}),
    ("dos", 60.0, {"rate": 1.0, "host": "hue.gov.vn"}),
    ("long_url", 300.0, {}),
    ("long_url", 0.0, {"count": 1, "length": 7901}),
    ("defacement", 120.0, {}),
]


@pytest.mark.parametrize(("kind", "duration", "params"), CASES, ids=lambda v: v if isinstance(v, str) else None)
def test_each_incident_is_caught_by_its_shipped_rule(kind: str, duration: float, params: dict[str, Any]) -> None:
    start = WEDNESDAY + 3 * 3600 + 7 * 60  # Wed 03:07: quiet hours, outside the change window
    sim = CyberSimulator(seed=11, start=start)
    incident = sim.add_incident(kind, at=start + 1800, duration=duration, **params)
    assert incident.stream == "cyber" and incident.kind == kind and incident.id == f"cyber-{kind}-1"
    assert incident.rules == INCIDENT_RULES[kind]
    assert incident.end - incident.start <= duration + 1e-6
    events = list(sim.events(start + 2 * 3600))
    mine = [e for e in events if all(e.get(k) == v for k, v in incident.keys.items())]
    assert incident.start == min(ts(e) for e in mine if ts(e) >= incident.start)
    alerts = backtest(events, start + 2 * 3600)
    assert catches(alerts, incident), [(a.rule_id, a.key) for a in firing(alerts)]
    assert catches(alerts, incident, incident.rules[:1])  # the main rule itself, not only a fallback
    # Nothing else fires: the background adds no alert of its own.
    assert all(any(a.key.get(k) == v for k, v in incident.keys.items()) for a in firing(alerts))


def test_new_src_login_is_caught_after_the_learning_week() -> None:
    sim = CyberSimulator(seed=12, start=MONDAY, volume=0.02)
    assert sim.logins_learned_at == parse_ts("2025-11-10T08:45:00+07:00")
    with pytest.raises(ValueError, match="learns each user's addresses for 7 days"):
        sim.add_incident("new_src_login", at=MONDAY + 6 * 86400, duration=0)
    incident = sim.add_incident("new_src_login", at=parse_ts("2025-11-11T21:30:00+07:00"), duration=600, logins=2)
    assert incident.keys == {"user": incident.params["user"]} and incident.params["user"] in sim.users
    end = MONDAY + 9 * 86400
    alerts = backtest(list(sim.events(end)), end)
    assert catches(alerts, incident)
    assert [a.key for a in firing(alerts)] == [incident.keys]


def test_a_campaign_of_every_kind_is_fully_caught_with_no_false_alert() -> None:
    start = WEDNESDAY + 9 * 3600  # busy hours
    sim = CyberSimulator(seed=21, start=start)
    incidents = [
        sim.add_incident(kind, at=start + 600 + 420 * i, duration=120 if kind != "sweep" else 240)
        for i, kind in enumerate(k for k in sim.incident_kinds if k != "new_src_login")
    ]
    assert len({i.id for i in incidents}) == len(incidents)
    assert len({i.params["src_ip"] for i in incidents}) == len(incidents)  # one source per campaign
    end = start + 3 * 3600
    alerts = backtest(list(sim.events(end)), end)
    assert all(catches(alerts, i) for i in incidents)
    for alert in firing(alerts):  # precision 1.0: every alert belongs to an incident
        assert any(
            alert.rule_id in i.rules and all(alert.key.get(k) == v for k, v in i.keys.items()) for i in incidents
        ), alert


def test_incident_records_are_json_ground_truth() -> None:
    sim = CyberSimulator(seed=0, start=WEDNESDAY)
    record = sim.add_incident("sqli_success", at=WEDNESDAY + 60, duration=60).to_record()
    assert json.loads(json.dumps(record))["rules"] == ["cyber.web.sqli_success", "cyber.web.sqli_burst"]
    assert record["start"] == "2025-11-11T17:01:00Z" and record["keys"] == {"src_ip": "203.0.113.200"}


@pytest.mark.parametrize(
    ("kind", "at_offset", "duration", "params", "message"),
    [
        ("ransomware", 0, 60, {}, "unknown incident kind"),
        ("brute_force", 0, 60, {"speed": 3}, "unknown parameter"),
        ("brute_force", 0, 20, {}, "at least 8"),
        ("brute_force", 0, 600, {"interval_s": 20.0}, "must fit in 120 s"),
        ("xss", 0, 40, {}, "at least 10"),
        ("port_scan", 0, 5, {}, ">= 50 distinct ports"),
        ("sweep", 0, 60, {}, ">= 100 within 9 min"),
        ("long_url", 0, 0, {"length": 7900}, "7901"),
        ("dos", 0, 10, {"rate": 1.0}, "14 HTTP 503"),
        ("sqli", 0, 60, {"host": "example.org"}, "not a simulated site"),
        ("defacement", 4 * 86400 - 3600, 60, {}, "inside the change window"),  # Sat 23:00 Huế time
        ("brute_force", -10, 60, {}, "must be event time >= start"),
    ],
)
def test_bad_incidents_are_refused(kind: str, at_offset: float, duration: float, params: dict[str, Any],
                                   message: str) -> None:
    sim = CyberSimulator(start=WEDNESDAY)
    with pytest.raises(ValueError, match=message):
        sim.add_incident(kind, at=WEDNESDAY + at_offset, duration=duration, **params)


def test_generation_is_fast() -> None:
    sim = CyberSimulator(seed=1, start=WEDNESDAY + 8 * 3600)
    began = time.perf_counter()
    count = sum(1 for _ in sim.events(WEDNESDAY + 14 * 3600))
    rate = count / (time.perf_counter() - began)
    assert count > 10_000
    assert rate > 20_000, f"{rate:.0f} events/s"  # measured ~100,000/s; a loose floor for slow CI
