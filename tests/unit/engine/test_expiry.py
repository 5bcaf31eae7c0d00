"""Bounded state: `Engine.sweep()` forgets the keys a kind says have nothing left to remember
(`RuleKind.expired`), and that never changes an alert.

For every kind, a property: random streams (several keys on two partitions, gaps short and long
enough for windows, lookbacks and `realert` to pass, events out of order within the allowed
lateness) give exactly the same alerts with sweeps at random points between batches as without
any; then, once every key went quiet and the watermark moved past every window, a sweep leaves
no state but that of the rules that must keep it (absence, spike judged on history, new_value
with learning, enters/exits of a key that would cross at its next position).
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kindtest import SIZES, T0, batches, batching_settings, engine_of, make_rules

from ioc.alerts import Alert
from ioc.engine import Engine
from ioc.events import decode
from ioc.rules.kinds import KIND_MODULES
from ioc.rules.loader import RuleSet

DAY = 86400.0
Event = dict[str, Any]
Pairs = list[tuple[int, Event]]
# What must not change: everything an alert says, per fingerprint, in order.
Record = tuple[str, str, float, float | None, Any, list[str], str]

STATIONS = ("ta-trach", "binh-dien", "kim-long")
IPS = ("192.0.2.1", "192.0.2.2", "198.51.100.7")
USERS = ("lan", "minh", "hoa")
VESSELS = ("TTH-90123-TS", "TTH-90456-TS", "TTH-91789-TS")

# Two overlapping squares: positions in A only, B only, both, neither.
A_ONLY, BOTH, B_ONLY, NOWHERE = (16.50, 107.50), (16.50, 107.56), (16.50, 107.62), (16.0, 109.5)


def square(zone_id: str, band: str, lat: float, lon: float, half: float = 0.04) -> dict[str, Any]:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Feature", "id": zone_id, "properties": {"name": f"Zone {zone_id}", "band": band},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


ZONES = {"type": "FeatureCollection",
         "features": [square("A", "a", 16.50, 107.52), square("B", "b", 16.50, 107.60)]}


# -- the kinds: rules, events, and which rules keep their keys for ever --------------------------


@dataclass(frozen=True)
class Case:
    stream: str
    rules: str
    event: Callable[[st.DrawFn, float, int], Event]
    # Rules whose keys stay (by design) once the stream goes quiet.
    kept: frozenset[str] = frozenset()
    # Events that leave every key quiet (condition false, position outside...) at a time.
    closing: Callable[[float], list[Event]] = field(default=lambda t: [])
    # Gaps between events (seconds): short ones, and long ones past windows and lookbacks.
    steps: tuple[int, ...] = (0, 1, 60, 299, 300, 301, 600, 1200, 1800, 3600, 7200)
    lateness: tuple[float, ...] = (0.0, 120.0, 900.0)
    # The event field every rule of the case is keyed by: it chooses the event's partition.
    key: str = "source_id"


def reservoir(draw: st.DrawFn, ts: float, i: int) -> Event:
    return decode("reservoir", {
        "source_id": draw(st.sampled_from(STATIONS)), "ts": ts, "id": f"e{i}",
        "level_m": draw(st.sampled_from([1.0, 1.5, 6.0, 7.0, 9.5])),
        "rain_mm_1h": draw(st.sampled_from([0.0, 10.0, 45.0])),
    })


def cyber(draw: st.DrawFn, ts: float, i: int) -> Event:
    return decode("cyber", {
        "source_id": draw(st.sampled_from(["fw-1", "fw-2"])), "ts": ts, "id": f"e{i}",
        "event_action": "authentication",
        "event_outcome": draw(st.sampled_from(["failure", "failure", "success"])),
        "src_ip": draw(st.sampled_from(IPS)), "user": draw(st.sampled_from(USERS)),
        "dst_port": draw(st.sampled_from([22, 443, 8080])),
        "url": draw(st.sampled_from(["/login", "/news?id=1 UNION SELECT pass", "/admin", "/"])),
    })


def vessel(draw: st.DrawFn, ts: float, i: int) -> Event:
    lat, lon = draw(st.sampled_from([A_ONLY, BOTH, B_ONLY, NOWHERE]))
    return decode("vessel", {"source_id": draw(st.sampled_from(VESSELS)), "ts": ts, "id": f"e{i}",
                             "lat": lat, "lon": lon, "length_m": 20.0})


CASES: dict[str, Case] = {
    "threshold": Case(
        "reservoir",
        """
  - {id: t.now, kind: threshold, condition: "level_m >= 6"}
  - {id: t.for, kind: threshold, condition: "level_m >= 6", for: 10m, keep_firing_for: 5m, realert: 30m}
  - {id: t.rain, kind: threshold, condition: "rain_mm_1h >= 40", for: 20m, realert: 2h}
""",
        reservoir,
        closing=lambda t: [decode("reservoir", {"source_id": s, "ts": t, "level_m": 1.0, "rain_mm_1h": 0.0})
                           for s in STATIONS],
    ),
    "window": Case(
        "cyber",
        """
  - {id: w.count, kind: window, key: [src_ip], where: "event_outcome == 'failure'", agg: count, window: 30m,
     condition: "value >= 3", realert: 20m}
  - {id: w.distinct, kind: window, key: [src_ip], agg: distinct, field: user, window: 20m, condition: "value >= 2"}
  - {id: w.avg, kind: window, key: [src_ip], agg: avg, field: dst_port, window: 10m, condition: "value > 1000",
     realert: 1h}
  - {id: w.p95, kind: window, key: [src_ip], agg: p95, field: dst_port, window: 15m, condition: "value >= 443"}
  - {id: w.tumbling, kind: window, type: tumbling, key: [src_ip], agg: count, window: 20m, condition: "value >= 2",
     resolve_after: 10m, realert: 30m}
  - {id: w.hopping, kind: window, type: hopping, key: [src_ip], agg: sum, field: dst_port, window: 30m, step: 10m,
     condition: "value >= 500"}
""",
        cyber,
        key="src_ip",
    ),
    "rate": Case(
        "reservoir",
        """
  - {id: r.up, kind: rate, field: level_m, window: 30m, per: 1h, condition: "value > 1"}
  - {id: r.down, kind: rate, field: level_m, window: 1h, min_span: 5m, per: 1h, condition: "value < -2",
     realert: 30m}
""",
        reservoir,
    ),
    "absence": Case(
        "reservoir",
        """
  - {id: a.plain, kind: absence, timeout: 25m}
  - {id: a.realert, kind: absence, timeout: 10m, realert: 30m, where: "rain_mm_1h >= 10"}
""",
        reservoir,
        kept=frozenset({"a.plain", "a.realert"}),
    ),
    "spike": Case(
        "cyber",
        """
  - {id: s.up, kind: spike, key: [src_ip], window: 10m, baseline: 40m, bucket: 5m, ratio: 3, min_count: 2,
     alert_on_new_data: true}
  - {id: s.down, kind: spike, key: [src_ip], window: 10m, baseline: 30m, ratio: 2, direction: down, min_count: 2,
     alert_on_new_data: true, realert: 20m}
  - {id: s.avg, kind: spike, key: [src_ip], agg: avg, field: dst_port, window: 10m, baseline: 20m, ratio: 2,
     alert_on_new_data: true}
  - {id: s.history, kind: spike, key: [src_ip], window: 10m, baseline: 20m, ratio: 2}
""",
        cyber,
        kept=frozenset({"s.history"}),
        key="src_ip",
    ),
    "new_value": Case(
        "cyber",
        """
  - {id: n.plain, kind: new_value, key: [user], field: src_ip, lookback: 1h}
  - {id: n.small, kind: new_value, key: [user], field: src_ip, lookback: 30m, max_values: 2, realert: 10m,
     resolve_after: 1m}
  - {id: n.port, kind: new_value, key: [user], field: dst_port, lookback: 20m, resolve_after: 30m}
  - {id: n.learn, kind: new_value, key: [user], field: src_ip, lookback: 1h, learning: 20m}
""",
        cyber,
        kept=frozenset({"n.learn"}),
        key="user",
    ),
    "match": Case(
        "cyber",
        """
  - {id: m.sqli, kind: match, fields: [url], regex: "union\\\\s+select", fold: false}
  - {id: m.admin, kind: match, fields: [url], any: [admin], condition: "event_outcome == 'failure'",
     resolve_after: 20m, realert: 1h}
""",
        cyber,
    ),
    "sequence": Case(
        "cyber",
        """
  - {id: q.two, kind: sequence, by: src_ip, within: 20m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'success'"}]}
  - {id: q.three, kind: sequence, by: src_ip, within: 1h, realert: 30m, resolve_after: 10m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'failure' and dst_port == 22"},
             {stream: cyber, condition: "event_outcome == 'success'"}]}
  - {id: q.not_after, kind: sequence, by: src_ip, within: 20m, resolve_after: 10m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'success'", absent: true, within: 10m}]}
  - {id: q.not_before, kind: sequence, by: src_ip, within: 20m, realert: 30m,
     steps: [{stream: cyber, condition: "event_outcome == 'success'", absent: true, within: 30m},
             {stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'failure' and dst_port == 22"}]}
""",
        cyber,
        key="src_ip",
    ),
    "near_duplicate": Case(
        "cyber",
        """
  - {id: d.users, kind: near_duplicate, key: [src_ip], fields: [url, user], similarity: 0.5, within: 20m,
     distinct: user, min_count: 2, resolve_after: 10m, realert: 15m}
  - {id: d.items, kind: near_duplicate, key: [src_ip], fields: [url], similarity: 1, within: 30m, min_count: 3,
     max_items: 4}
""",
        cyber,
        key="src_ip",
    ),
    "geofence": Case(
        "vessel",
        """
  - {id: g.in, kind: geofence, zones: ZONES, zone_filter: "band == 'a'", mode: inside}
  - {id: g.dwell, kind: geofence, zones: ZONES, zone_filter: "band == 'a'", mode: inside, dwell: 10m, realert: 20m}
  - {id: g.out, kind: geofence, zones: ZONES, zone_filter: "band == 'b'", mode: outside, dwell: 5m}
  - {id: g.enters_b, kind: geofence, zones: ZONES, zone_filter: "band == 'b'", mode: enters, realert: 30m}
  - {id: g.exits_a, kind: geofence, zones: ZONES, zone_filter: "band == 'a'", mode: exits, resolve_after: 20m}
  - {id: g.enters, kind: geofence, zones: ZONES, mode: enters}
  - {id: g.exits, kind: geofence, zones: ZONES, mode: exits}
""",
        vessel,
        # The closing position is in B only: a key there would enter A (or leave B) next.
        kept=frozenset({"g.enters", "g.exits"}),
        closing=lambda t: [decode("vessel", {"source_id": v, "ts": t, "lat": B_ONLY[0], "lon": B_ONLY[1]})
                           for v in VESSELS],
    ),
    "proximity": Case(
        "vessel",
        """
  - {id: p.near, kind: proximity, distance_km: 8, within: 20m, for: 10m}
  - {id: p.now, kind: proximity, distance_km: 8, within: 1h, realert: 30m}
""",
        vessel,
        # Apart (A only and B only are 12.8 km apart): every pair resolves.
        closing=lambda t: [decode("vessel", {"source_id": v, "ts": t, "lat": pos[0], "lon": pos[1]})
                           for v, pos in zip(VESSELS, (A_ONLY, B_ONLY, NOWHERE), strict=True)],
    ),
}


@pytest.fixture(scope="module")
def rulesets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, RuleSet]:
    folder = tmp_path_factory.mktemp("expiry")
    zones = folder / "zones.geojson"
    zones.write_text(json.dumps(ZONES), encoding="utf-8")
    out = {}
    for kind, case in CASES.items():
        text = f"defaults: {{stream: {case.stream}}}\nrules:{case.rules.replace('ZONES', str(zones))}"
        out[kind] = make_rules(folder, text, name=f"{kind}.yaml")
    return out


# -- streams and runs ---------------------------------------------------------------------------------


@dataclass
class Scenario:
    pairs: Pairs
    sizes: list[int]
    sweeps: list[bool]
    lateness: float


@st.composite
def scenarios(draw: st.DrawFn, case: Case) -> Scenario:
    """Events on two partitions, a key in one (as a topic keyed by it, or a re-keyed shard, has
    it), each partition with its own clock moving on by one of the case's steps; with lateness,
    some events are up to that much older than their partition's clock."""
    lateness = draw(st.sampled_from(case.lateness))
    partition_of: dict[Any, int] = {}
    heads = [0.0, 0.0]
    pairs: Pairs = []
    for i in range(draw(st.integers(1, 45))):
        event = case.event(draw, T0, i)
        key = event[case.key]
        if key not in partition_of:
            partition_of[key] = draw(st.integers(0, 1))
        part = partition_of[key]
        heads[part] += draw(st.sampled_from(case.steps))
        back = draw(st.sampled_from([0.0, 0.0, 0.0, lateness / 2, lateness, lateness + 1])) if lateness else 0.0
        event["ts"] = T0 + max(0.0, heads[part] - back)
        pairs.append((part, event))
    sweeps = draw(st.lists(st.booleans(), min_size=1, max_size=12))
    return Scenario(pairs, draw(SIZES), sweeps, lateness)


def run(ruleset: RuleSet, case: Case, scenario: Scenario, *, sweep: bool) -> tuple[list[Alert], Engine]:
    """The scenario's batches, with a sweep after each batch its `sweeps` say (cycled) if `sweep`;
    then the closing events, and the watermark far past every window, lookback and realert."""
    engine = engine_of(ruleset, lateness_s=scenario.lateness)
    out: list[Alert] = []
    for n, (part, batch) in enumerate(batches(scenario.pairs, scenario.sizes)):
        out += engine.process(case.stream, batch, part)
        if sweep and scenario.sweeps[n % len(scenario.sweeps)]:
            engine.sweep()
    last = max(event["ts"] for _, event in scenario.pairs)
    closing = case.closing(last + scenario.lateness + 1)
    for part in (0, 1):
        out += engine.process(case.stream, [e for e in closing if _partition(scenario, case, e) == part], part)
    if sweep:
        engine.sweep()
    for part in (0, 1):
        out += engine.advance(case.stream, last + 30 * DAY, part)
    return out, engine


def _partition(scenario: Scenario, case: Case, event: Event) -> int:
    """The partition of `event`'s key in the scenario (0 for a key it never had)."""
    return next((part for part, e in scenario.pairs if e[case.key] == event[case.key]), 0)


def per_fingerprint(alerts: Sequence[Alert]) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = {}
    for a in alerts:
        out.setdefault(a.fingerprint, []).append(
            (a.alert_id, a.status, a.starts_at, a.ends_at, a.value, a.evidence, a.summary))
    return out


def keys_of(engine: Engine) -> dict[str, set[tuple[Any, ...]]]:
    return {rule_id: set(states) for rule_id, states in engine.states.items()}


# -- the properties ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(CASES))
@batching_settings(150)
@given(data=st.data())
def test_sweeps_change_no_alert(rulesets: dict[str, RuleSet], kind: str, data: st.DataObject) -> None:
    case = CASES[kind]
    scenario = data.draw(scenarios(case))
    plain, unswept = run(rulesets[kind], case, scenario, sweep=False)
    swept, engine = run(rulesets[kind], case, scenario, sweep=True)
    assert per_fingerprint(swept) == per_fingerprint(plain)
    # Quiet past every window: only the rules that keep keys by design still have any.
    before = keys_of(engine)
    engine.sweep()
    after = keys_of(engine)
    for rule_id, keys in after.items():
        if rule_id in case.kept:
            assert keys == before[rule_id] == set(unswept.states[rule_id]), rule_id
        else:
            assert keys == set(), (rule_id, {k: engine.states[rule_id][k] for k in keys})
    # The sweep drops keys the plain engine still holds (state is bounded), never the reverse.
    assert all(after[r] <= set(unswept.states[r]) for r in after)


def test_every_kind_has_a_case() -> None:
    assert set(CASES) == set(KIND_MODULES)


@pytest.mark.parametrize("kind", list(CASES))
def test_a_quiet_stream_leaves_state_only_where_kept(rulesets: dict[str, RuleSet], kind: str) -> None:
    """A hand-made stream: the rules fire, then everything goes quiet; one sweep forgets all
    keys of the rules that can forget."""
    case = CASES[kind]
    events = {
        "reservoir": [decode("reservoir", {"source_id": s, "ts": T0 + t, "level_m": level, "rain_mm_1h": 45.0})
                      for t, level in ((0, 6.0), (600, 7.0), (1500, 9.5), (1800, 1.0)) for s in STATIONS],
        "cyber": [decode("cyber", {"source_id": "fw-1", "ts": T0 + t, "event_action": "authentication",
                                   "event_outcome": outcome, "src_ip": ip, "user": user, "dst_port": port,
                                   "url": "/admin?q=1 union select 2"})
                  for t, port, more in ((0, 22, ()), (60, 22, ()), (120, 22, ()), (180, 22, ()),
                                        (1200, 8080, ((IPS[2], USERS[0], "success"),)), (1260, 8080, ()),
                                        (1320, 8080, ()), (2400, 8080, ()), (2460, 8080, ()), (2520, 8080, ()))
                  for ip, user, outcome in ((IPS[0], USERS[0], "failure"), (IPS[1], USERS[1], "success"),
                                            (IPS[0], USERS[1], "success"), (IPS[2], USERS[2], "failure"), *more)],
        "vessel": [decode("vessel", {"source_id": v, "ts": T0 + t, "lat": pos[0], "lon": pos[1]})
                   for t, pos in ((0, NOWHERE), (300, A_ONLY), (1200, BOTH), (1500, B_ONLY)) for v in VESSELS],
    }[case.stream]
    engine = engine_of(rulesets[kind])
    alerts = engine.process(case.stream, events)
    alerts += engine.process(case.stream, case.closing(events[-1]["ts"] + 1))
    seen = keys_of(engine)
    firing = {(a.rule_id, tuple(a.key.values())) for a in engine.firing()}
    engine.sweep()
    # A firing key (or one inside its windows) stays.
    assert firing <= {(rule_id, key) for rule_id, keys in keys_of(engine).items() for key in keys}
    alerts += engine.advance(case.stream, T0 + 30 * DAY)
    assert {a.rule_id for a in alerts if a.status == "firing"} == set(rulesets[kind].by_id)
    assert engine.sweep() > 0 or set(rulesets[kind].by_id) == case.kept
    for rule_id, keys in keys_of(engine).items():
        assert keys == (seen[rule_id] if rule_id in case.kept else set()), rule_id


# -- the point of it: 20,000 one-off keys ----------------------------------------------------------------


def test_twenty_thousand_one_off_keys_are_forgotten_once_the_window_passed(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, (
        "rules:\n  - {id: scan, stream: cyber, kind: window, key: [src_ip], agg: count, window: 2m,"
        " condition: 'value >= 8', where: \"event_outcome == 'failure'\"}\n"
    ))
    ips = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(20_000)]
    events = [decode("cyber", {"source_id": "fw-1", "ts": T0 + i * 0.003, "event_action": "authentication",
                               "event_outcome": "failure", "src_ip": ip}) for i, ip in enumerate(ips)]
    gc.collect()
    tracemalloc.start()
    try:
        engine = engine_of(rules)
        start, blocks = tracemalloc.get_traced_memory()[0], _blocks()
        assert engine.process("cyber", events) == []
        full = tracemalloc.get_traced_memory()[0]
        assert sum(len(s) for s in engine.states.values()) == 20_000
        # Inside the window nothing goes: every key still counts.
        assert engine.sweep() == 0
        engine.advance("cyber", T0 + 60 + 120 + 1)
        assert engine.sweep() == 20_000
        assert sum(len(s) for s in engine.states.values()) == 0
        gc.collect()
        end = tracemalloc.get_traced_memory()[0]
        left_blocks = _blocks() - blocks
    finally:
        tracemalloc.stop()
    grown, left = full - start, end - start
    assert grown > 5_000_000  # 20,000 windows and timers: some 600 bytes each
    # Nothing of any key is left: a few blocks, not one or more per key...
    assert left_blocks < 50, left_blocks
    # ...but the hash tables of `Engine.states[rule]` and `Engine._timer_set` keep the size they
    # had at the peak (CPython does not shrink them on deletion): some 2.7 MB of 13 MB here.
    assert left < grown / 4, (start, full, end)


def _blocks() -> int:
    """Memory blocks traced now, leaving out the snapshot's own."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    return len(snapshot.traces)


# -- boundaries the random streams rarely hit ---------------------------------------------------------------


def _compare(ruleset: RuleSet, stream: str, steps: Sequence[Any], lateness: float = 0.0) -> list[Alert]:
    """Run `steps` (a list of events: one batch; a number: advance the watermark to T0 + it, then
    sweep) on an engine that sweeps and on one that does not; the alerts must be the same."""
    runs = []
    for sweep in (True, False):
        engine = engine_of(ruleset, lateness_s=lateness)
        out: list[Alert] = []
        dropped = 0
        for step in steps:
            if isinstance(step, list):
                out += engine.process(stream, step)
            else:
                out += engine.advance(stream, T0 + step)
                if sweep:
                    dropped += engine.sweep()
        runs.append((per_fingerprint(out), out, dropped))
    (swept, alerts, dropped), (plain, _, _) = runs
    assert swept == plain
    return alerts


def logon(t: float, ip: str, user: str = USERS[0], outcome: str = "success") -> list[Event]:
    return [decode("cyber", {"source_id": "fw-1", "ts": T0 + t, "event_action": "authentication",
                             "event_outcome": outcome, "src_ip": ip, "user": user})]


def test_a_value_seen_exactly_lookback_before_the_watermark_is_remembered(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, "rules:\n  - {id: n, stream: cyber, kind: new_value, key: [user], field: src_ip,"
                                 " lookback: 1h, resolve_after: 1m}\n")
    # At 3600 the value seen at 0 is exactly lookback old: not new, so not forgotten.
    alerts = _compare(rules, "cyber", [logon(0, IPS[0]), 3600, logon(3600, IPS[0])])
    assert [a.status for a in alerts] == ["firing", "resolved"]
    engine = engine_of(rules)
    engine.process("cyber", logon(0, IPS[0]))
    engine.advance("cyber", T0 + 3600)
    assert engine.sweep() == 0
    engine.advance("cyber", T0 + 3600.5)
    assert engine.sweep() == 1


def test_a_value_back_after_lookback_drops_stale_sightings_as_a_forgotten_key_would(tmp_path: Path) -> None:
    # The key is forgotten at 3601 (both values older than lookback). Then: IPS[0] at 3601 and
    # IPS[1] at 7202 come back (new); IPS[0] at 7201, out of order, was last seen exactly
    # lookback before: not new if its sighting at 3601 were still kept, as it would be if a
    # value coming back did not drop stale sightings like a value added does.
    rules = make_rules(tmp_path, "rules:\n  - {id: n, stream: cyber, kind: new_value, key: [user], field: src_ip,"
                                 " lookback: 1h, resolve_after: 1s}\n")
    alerts = _compare(rules, "cyber", [logon(0, IPS[0]) + logon(0, IPS[1]), 3601, logon(3601, IPS[0]),
                                       logon(7202, IPS[1]), logon(7201, IPS[0]), 9000], lateness=10.0)
    # The last episode starts with IPS[1] at 7202; IPS[0] at 7201 is new and extends it.
    assert [(a.status, a.details["new_value"], a.starts_at - T0) for a in alerts][-2:] == [
        ("firing", IPS[1], 7202.0), ("resolved", IPS[0], 7202.0)]


def test_a_partial_match_the_watermark_just_reached_is_remembered(tmp_path: Path) -> None:
    rules = make_rules(tmp_path, (
        "rules:\n  - {id: q, stream: cyber, kind: sequence, by: src_ip, within: 20m, steps: ["
        "{stream: cyber, condition: \"event_outcome == 'failure'\"},"
        " {stream: cyber, condition: \"event_outcome == 'success'\"}]}\n"))
    # `ts <= first + within`: an event at 1200 still completes the match started at 0.
    alerts = _compare(rules, "cyber", [logon(0, IPS[0], outcome="failure"), 1200, logon(1200, IPS[0])])
    assert [(a.status, a.starts_at - T0) for a in alerts] == [("firing", 0.0)]


@pytest.mark.parametrize(("rule", "events", "advance", "boundary"), [
    # A sliding window's clock moves to the expiry of its last sample (120).
    ("{id: k, stream: cyber, kind: window, key: [src_ip], agg: count, window: 2m, condition: 'value >= 5'}",
     logon(0, IPS[0]), 121, 120),
    ("{id: k, stream: reservoir, kind: rate, field: level_m, window: 2m, condition: 'value > 5'}",
     [decode("reservoir", {"source_id": "kim-long", "ts": T0, "level_m": 1.0})], 121, 120),
    # The tumbling window [0, 600) is evaluated once the watermark passed its end.
    ("{id: k, stream: cyber, kind: window, type: tumbling, key: [src_ip], agg: count, window: 10m,"
     " condition: 'value >= 5'}", logon(0, IPS[0]), 601, 600),
    # The key's latest event is at 100 (it was tracked from its high reading at 0).
    ("{id: k, stream: reservoir, kind: threshold, condition: 'level_m > 5'}",
     [decode("reservoir", {"source_id": "kim-long", "ts": T0, "level_m": 6.0}),
      decode("reservoir", {"source_id": "kim-long", "ts": T0 + 100, "level_m": 1.0})], 100, 100),
    ("{id: k, stream: vessel, kind: geofence, zones: ZONES, mode: exits}",
     [decode("vessel", {"source_id": VESSELS[0], "ts": T0 + 100, "lat": NOWHERE[0], "lon": NOWHERE[1]})], 100, 100),
    # A bucket of 1m at 0 leaves the baseline of a 10m window with a 30m baseline at 2400.
    ("{id: k, stream: cyber, kind: spike, key: [src_ip], window: 10m, baseline: 30m, ratio: 3, min_count: 5,"
     " alert_on_new_data: true}", logon(0, IPS[0]), 100, 2400),
])
def test_expired_from_a_boundary_on(
    tmp_path: Path, rule: str, events: list[Event], advance: float, boundary: float,
) -> None:
    """A key's state is forgotten from the watermark at which no event still to come can be
    older than the key's time (or fall in a window already evaluated) on, not before: a sweep
    takes the lowest watermark of the engine's partitions, which may be behind the key's."""
    zones = tmp_path / "zones.geojson"
    zones.write_text(json.dumps(ZONES), encoding="utf-8")
    rules = make_rules(tmp_path, "rules:\n  - " + rule.replace("ZONES", str(zones)) + "\n")
    engine = engine_of(rules)
    engine.process(rules.rules[0].spec.stream, events)
    engine.advance(rules.rules[0].spec.stream, T0 + advance)
    [state] = engine.states["k"].values()
    kind = rules.rules[0].kind
    assert not kind.expired(state, T0 + boundary - 0.5)
    assert kind.expired(state, T0 + boundary)


def test_a_spike_key_whose_time_is_after_the_watermark_is_kept(rulesets: dict[str, RuleSet]) -> None:
    kind = rulesets["spike"].by_id["s.up"].kind
    state = {"t": T0 + 5000, "since": T0, "at": T0 + 4800, "b": [], "nb": 0, "cur": [0, 0], "base": [0, 0]}
    assert not kind.expired(state, T0 + 4999)
    assert kind.expired(state, T0 + 5000)
