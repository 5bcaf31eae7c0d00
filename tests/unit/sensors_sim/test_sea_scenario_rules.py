"""The `sea` scenario replayed through rules/vessel.yaml: each rule that needed a new part of the
rule language (issue 18: `previous`, `proximity`, `active`) catches its labelled incident and
fires nowhere else in the scenario (pure: backtest, no broker)."""

from __future__ import annotations

from functools import cache

import pytest

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules
from ioc.timeutil import parse_ts
from sensors_sim.base import Incident
from sensors_sim.scenario import build, load_scenario

START = parse_ts("2025-10-27T00:00:00+07:00")  # `ioc simulate`'s default start


@cache
def sea() -> tuple[list[Incident], list[Alert]]:
    run = build(load_scenario("sea"), seed=0, start=START)
    rules = load_rules([REPO_ROOT / "rules" / "vessel.yaml"], load_reference(REPO_ROOT / "config" / "reference"))
    result = run_backtest(rules, (RawEvent(stream, event, "sea") for stream, event in run.events()))
    return run.incidents, result.alerts


def overlaps(alert: Alert, incident: Incident) -> bool:
    return (all(alert.key.get(name) == value for name, value in incident.keys.items())
            and incident.start <= alert.starts_at <= incident.end)


@pytest.mark.parametrize(("kind", "rule", "episodes"), [
    ("position_jump", "vessel.vms.position_jump", 2),   # the jump away and the jump back
    ("rendezvous", "vessel.behaviour.encounter", 1),
    ("ban_violation", "vessel.storm_ban.at_sea", 1),
])
def test_the_rule_catches_its_incident_and_fires_nowhere_else(kind: str, rule: str, episodes: int) -> None:
    incidents, records = sea()
    alerts = [a for a in records if a.status == "firing"]
    (incident,) = [i for i in incidents if i.kind == kind]
    assert rule in incident.rules
    fired = [a for a in alerts if a.rule_id == rule]
    assert len(fired) == episodes and all(overlaps(a, incident) for a in fired), fired


def test_the_storm_ban_alert_resolves_when_the_ban_ends() -> None:
    # config/calendars/storm-bans.yaml: 2025-10-29 06:00-18:00 ICT; the vessel is still at sea.
    _, records = sea()
    ban = [(a.status, a.starts_at, a.ends_at) for a in records if a.rule_id == "vessel.storm_ban.at_sea"]
    start, end = parse_ts("2025-10-29T06:00:00+07:00"), parse_ts("2025-10-29T18:00:00+07:00")
    assert ban == [("firing", start, None), ("resolved", start, end)]


def test_the_new_incident_kinds_check_their_parameters() -> None:
    from sensors_sim.vessel import VesselSimulator

    sim = VesselSimulator(seed=0, start=START)
    with pytest.raises(ValueError, match="must be >= 60"):
        sim.add_incident("position_jump", at=START + 3600, duration=3600, km=40)
    with pytest.raises(ValueError, match="duration must be >= 4 h"):
        sim.add_incident("rendezvous", at=START + 3600, duration=3 * 3600)
    with pytest.raises(ValueError, match="must be another vessel"):
        sim.add_incident("rendezvous", at=START + 3600, duration=5 * 3600, source_id="TTH-90123-TS",
                         other_id="TTH-90123-TS")
    with pytest.raises(ValueError, match="unknown parameter"):
        sim.add_incident("ban_violation", at=START + 3600, duration=3600, km=3)
    meet = sim.add_incident("rendezvous", at=START + 3600, duration=5 * 3600)
    first, second = meet.params["source_id"], meet.params["other_id"]
    assert first < second and meet.keys == {"source_id": first}
    assert meet.rules == ("vessel.behaviour.encounter", "vessel.behaviour.loitering")
