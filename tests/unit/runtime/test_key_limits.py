"""State never follows senders: a rule holds at most its key limit per shard, idle keys go after
their TTL, and both decide the same way live, in the backtest and across restores.

* 200,000 distinct senders through a worker's shard, then silence: the state never holds more
  than the limit, refused keys are counted (`ioc_rule_keys_refused_total`) and logged once per
  rule, and the memory comes back near its start.
* Refusals and TTL drops are functions of the shard's events in their order: batching, sweeps
  at wall-clock moments and checkpoint/restore change nothing (property).
* The TTL never cuts short an episode: a firing key stays until it resolves, with the alert it
  would have had without a TTL (per kind, and as a property).
"""

from __future__ import annotations

import gc
import json
import logging
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from brokerless import Brokerless
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ioc.alerts import Alert
from ioc.config import REPO_ROOT
from ioc.engine import Engine, KeyLimits
from ioc.events import decode
from ioc.metrics import IocMetrics
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules
from ioc.runtime.host import HostSettings, ShardHost
from ioc.runtime.partitioner import KeyPartitioner
from ioc.runtime.pipeline import Pipeline
from ioc.runtime.plan import plan_rules
from ioc.runtime.replay import partition_counts, replay

T0 = 1761526800.0
H = 3600.0
KEYS = 200_000
LIMIT = 20_000

SENDER_RULES = """
rules:
  - {id: s.burst, stream: cyber, kind: window, agg: count, window: 2m, condition: "value >= 8"}
  - {id: s.new_ip, stream: cyber, kind: new_value, field: src_ip, lookback: 30d, key_ttl: 1h}
"""


def load(tmp_path: Path, text: str, name: str = "rules.yaml") -> RuleSet:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load_rules([path], load_reference(REPO_ROOT / "config" / "reference"))


def login(sender: str, t: float, ip: str = "192.0.2.1", outcome: str = "failure") -> dict[str, Any]:
    return {"source_id": sender, "ts": T0 + t, "event_action": "authentication", "event_outcome": outcome,
            "src_ip": ip}


# -- 200,000 senders ----------------------------------------------------------------------------


def test_two_hundred_thousand_senders_are_bounded_reported_and_forgotten(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    plan = plan_rules(load(tmp_path, SENDER_RULES))
    registry = CollectorRegistry()
    host = ShardHost(plan, Pipeline(IocMetrics(registry)), partition_counts(plan, 1),
                     settings=HostSettings(idle_after_s=0.0, marker_interval_s=0.0, keys_per_rule=LIMIT),
                     clock=lambda: 0.0, monotonic=lambda: 0.0)
    worker = Brokerless(host)
    host.open("raw.cyber", 0)
    engine = host.shards[("raw.cyber", 0)].engine
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        most = fired = 0
        with caplog.at_level(logging.WARNING, logger="ioc.runtime.host"):
            # 200,000 senders, one failed login each, over about 3 minutes of event time.
            for batch in range(0, KEYS, 2000):
                worker.feed("raw.cyber", 0, [orjson.dumps(login(f"s-{i}", i / 1000))
                                             for i in range(batch, batch + 2000)])
                most = max(most, *(len(keys) for keys in engine.states.values()))
                fired += len(worker.alerts)
                worker.alerts.clear()  # published: alerts leave the worker
        busy = tracemalloc.get_traced_memory()[0]
        busy_keys = host.state_keys()
        # Silence: a day later, one event moves the watermark past every window and the TTL.
        worker.feed("raw.cyber", 0, [orjson.dumps(login("s-0", 86_400))])
        worker.alerts.clear()
        gc.collect()
        quiet = tracemalloc.get_traced_memory()[0]
        quiet_keys = host.state_keys()
    finally:
        tracemalloc.stop()
    print(f"state keys: {busy_keys} busy, {quiet_keys} quiet; memory: {(busy - base) / 1e6:.1f} MB busy, "
          f"{(quiet - base) / 1e6:.2f} MB quiet")
    assert most == LIMIT  # never more than the limit, and it was reached
    assert fired == LIMIT  # each tracked sender's first address is new to it; refused ones raise nothing
    refused = {rule: registry.get_sample_value("ioc_rule_keys_refused_total", {"rule_id": rule})
               for rule in ("s.burst", "s.new_ip")}
    # new_value keys stay (30 d lookback, 1 h TTL): every sender after the first 20,000 is refused.
    assert refused["s.new_ip"] == KEYS - LIMIT
    # Window keys end with their 2-minute windows: the sweeps make room for new senders.
    assert 0 < refused["s.burst"] < KEYS - LIMIT  # type: ignore[operator]
    warnings = [r.getMessage() for r in caplog.records if "holds its limit" in r.getMessage()]
    # Once per rule per episode of being full: new_value is full from the 20,001st sender on.
    assert sum("s.new_ip" in m for m in warnings) == 1, warnings
    assert 1 <= sum("s.burst" in m for m in warnings) <= 4, warnings
    assert any(m.startswith("rule s.new_ip holds its limit of 20000 keys in shard raw.cyber/0:") for m in warnings)
    assert quiet_keys <= 2, quiet_keys
    grown, kept = busy - base, quiet - base
    assert kept < 0.05 * grown, f"{kept / 1e6:.1f} MB of {grown / 1e6:.1f} MB still held"


def test_a_rule_limit_overrides_the_global_one(tmp_path: Path) -> None:
    rules = load(tmp_path, "rules:\n  - {id: s.burst, stream: cyber, kind: window, agg: count, window: 1h,"
                           " condition: 'value >= 8', max_keys: 2}\n")
    engine = Engine(rules, clock=lambda: 0.0, limits=KeyLimits(keys_per_rule=100))
    engine.process("cyber", [decode("cyber", login(f"s-{i}", i)) for i in range(5)])
    assert sorted(engine.states["s.burst"]) == [("s-0",), ("s-1",)]
    assert engine.last_stats.refused == {"s.burst": 3}
    assert engine.last_stats.full == [("s.burst", 2)]
    # Existing keys keep working while the rule is full.
    engine.process("cyber", [decode("cyber", login("s-1", 10 + i)) for i in range(7)])
    assert engine.states["s.burst"][("s-1",)]["firing"]
    assert engine.last_stats.refused == {} and engine.last_stats.full == []


def test_a_key_outside_the_reference_list_takes_no_place_under_the_limit(tmp_path: Path) -> None:
    rules = load(tmp_path, "rules:\n  - {id: c.off, stream: camera, kind: absence, timeout: 10m, max_keys: 60}\n")
    engine = Engine(rules, clock=lambda: 0.0)
    listed = len(load_reference(REPO_ROOT / "config" / "reference").table("camera").rows)
    events = [decode("camera", {"source_id": f"forged-{i}", "ts": T0 + i, "event_type": "heartbeat"})
              for i in range(1000)]
    alerts = engine.process("camera", events) + engine.advance("camera", T0 + 2 * H)
    assert len(engine.states["c.off"]) == listed  # the listed cameras only
    assert {a.key["source_id"] for a in alerts} == {key for (key,) in engine.states["c.off"]}
    assert engine.last_stats.refused == {}


# -- deterministic: batching, wall-clock sweeps, restores ---------------------------------------

PROPERTY_RULES = """
rules:
  - {id: p.burst, stream: cyber, kind: window, agg: count, window: 5m, condition: "value >= 2", max_keys: 2}
  - {id: p.new, stream: cyber, kind: new_value, field: src_ip, lookback: 2h, max_keys: 3, key_ttl: 20m}
  - {id: p.thr, stream: cyber, kind: threshold, condition: "event_outcome == 'failure'", for: 3m,
     keep_firing_for: 2m, max_keys: 2, key_ttl: 1m}
"""
SENDERS = ("a", "b", "c", "d", "e")
IPS = ("192.0.2.1", "192.0.2.2", "198.51.100.7")


@st.composite
def histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    t = 0.0
    events = []
    for i in range(draw(st.integers(5, 60))):
        t += draw(st.sampled_from([0, 1, 30, 59, 60, 61, 120, 300, 1200, 3700]))
        event = login(draw(st.sampled_from(SENDERS)), t, draw(st.sampled_from(IPS)),
                      draw(st.sampled_from(["failure", "success"])))
        event["id"] = f"e{i}"
        events.append(decode("cyber", event))
    return events


@pytest.fixture(scope="module")
def property_rules(tmp_path_factory: pytest.TempPathFactory) -> RuleSet:
    return load(tmp_path_factory.mktemp("limits"), PROPERTY_RULES)


def run(ruleset: RuleSet, events: list[dict[str, Any]], sizes: list[int], cuts: set[int]) -> tuple[list[Any], int]:
    """Events in batches of `sizes` (cycled) through a shard-like engine (its own sweeps), with a
    wall-clock `sweep()` and a restore from a JSON snapshot after each batch number in `cuts`."""
    limits = KeyLimits(sweep_every_s=60.0)
    engine = Engine(ruleset, clock=lambda: 0.0, limits=limits)
    alerts: list[Alert] = []
    refused = 0
    i = n = 0
    while i < len(events):
        size = sizes[n % len(sizes)]
        alerts += engine.process("cyber", [dict(e) for e in events[i:i + size]])
        refused += sum(engine.last_stats.refused.values())
        i += size
        if n in cuts:
            engine.sweep()
            saved = json.loads(json.dumps(engine.snapshot()))
            engine = Engine(ruleset, clock=lambda: 0.0, limits=limits)
            engine.restore(saved)
        n += 1
    alerts += engine.advance("cyber", T0 + 30 * 86_400)
    return [(a.alert_id, a.status, a.ends_at, a.summary) for a in alerts], refused


@settings(max_examples=150, deadline=None)
@given(events=histories(), sizes=st.lists(st.integers(1, 7), min_size=1, max_size=5),
       cuts=st.sets(st.integers(0, 40), max_size=6))
def test_refusals_and_idle_drops_do_not_depend_on_batching_sweeps_or_restores(
    property_rules: RuleSet, events: list[dict[str, Any]], sizes: list[int], cuts: set[int],
) -> None:
    whole = run(property_rules, events, [len(events)], set())
    assert run(property_rules, events, sizes, cuts) == whole
    assert run(property_rules, events, [1], set(range(0, 60, 3))) == whole


@settings(max_examples=40, deadline=None)
@given(events=histories(), partitions=st.sampled_from([1, 2]))
def test_the_backtest_refuses_what_a_restarted_worker_refuses(
    property_rules: RuleSet, events: list[dict[str, Any]], partitions: int,
) -> None:
    """The backtest's shards and a host whose shards are checkpointed and restored mid-stream
    (the rules are small enough to be full most of the time): the same alerts."""
    plan = plan_rules(property_rules)
    counts = partition_counts(plan, partitions)
    expected = replay(plan, [("cyber", dict(e)) for e in events], partitions=counts)
    host = ShardHost(plan, Pipeline(None), counts, settings=HostSettings(idle_after_s=0.0, marker_interval_s=0.0),
                     clock=lambda: 0.0, monotonic=lambda: 0.0)
    for p in range(partitions):
        host.open("raw.cyber", p)
    worker = Brokerless(host)
    owner = KeyPartitioner(partitions)
    for n, event in enumerate(events):
        p = owner((event["source_id"],))
        worker.feed("raw.cyber", p, [orjson.dumps({k: v for k, v in event.items() if not k.startswith("_")})])
        if n % 7 == 3:
            saved = json.loads(json.dumps(host.close("raw.cyber", p)))
            host.open("raw.cyber", p, saved)
    live = {(a.alert_id, a.status, a.ends_at) for a in worker.alerts}
    assert live == {(a.alert_id, a.status, a.ends_at) for a in expected}


# -- the TTL never cuts an episode short --------------------------------------------------------

KINDS = {
    "threshold": ("reservoir", "{id: k, stream: reservoir, kind: threshold, condition: 'level_m >= 5',"
                  " key_ttl: 5m}", lambda t, on: {"level_m": 6.0 if on else 1.0}),
    "window": ("reservoir", "{id: k, stream: reservoir, kind: window, agg: max, field: level_m, window: 10m,"
               " condition: 'value >= 5', key_ttl: 5m}", lambda t, on: {"level_m": 6.0 if on else 1.0}),
    "rate": ("reservoir", "{id: k, stream: reservoir, kind: rate, field: level_m, window: 30m, per: 1h,"
             " condition: 'value > 1', key_ttl: 5m}", lambda t, on: {"level_m": t / 600.0 if on else 0.0}),
    "geofence": ("vessel", "{id: k, stream: vessel, kind: geofence, zones: zones/hue_sea.geojson,"
                 " zone_filter: \"foreign == True\", mode: inside, key_ttl: 5m}", None),
    "new_value": ("cyber", "{id: k, stream: cyber, kind: new_value, key: [user], field: src_ip, lookback: 1d,"
                  " resolve_after: 3h, key_ttl: 5m}", None),
    "sequence": ("cyber", "{id: k, stream: cyber, kind: sequence, by: src_ip, within: 1h, resolve_after: 3h,"
                 " key_ttl: 5m, steps: [{stream: cyber, condition: \"event_outcome == 'failure'\"},"
                 " {stream: cyber, condition: \"event_outcome == 'success'\"}]}", None),
}


def kind_events(kind: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events that make key A fire, then 2 h in which only key B sends (A idle for far longer than
    its 5 min TTL), then what ends A's episode."""
    stream, _, fields = KINDS[kind]
    if stream == "reservoir":
        def ev(source: str, t: float, on: bool) -> dict[str, Any]:
            return decode("reservoir", {"source_id": source, "ts": T0 + t, **fields(t, on)})  # type: ignore[misc]
        first = [ev("ta-trach", t, True) for t in (0, 600, 1200, 1800)]
        quiet = [ev("binh-dien", 1800 + 60 * i, False) for i in range(1, 120)]
        return first, quiet + [ev("ta-trach", 1800 + 7200, False), ev("binh-dien", 1800 + 7260, False)]
    if stream == "vessel":
        def fix(source: str, t: float, lat: float, lon: float) -> dict[str, Any]:
            return decode("vessel", {"source_id": source, "ts": T0 + t, "lat": lat, "lon": lon})
        zones = json.loads((REPO_ROOT / "config" / "zones" / "hue_sea.geojson").read_text(encoding="utf-8"))
        foreign = next(f for f in zones["features"] if f["properties"].get("foreign"))
        ring = foreign["geometry"]["coordinates"][0]
        lon = sum(p[0] for p in ring[:-1]) / (len(ring) - 1)
        lat = sum(p[1] for p in ring[:-1]) / (len(ring) - 1)
        first = [fix("TTH-90123-TS", 0, lat, lon)]
        quiet = [fix("TTH-90456-TS", 60 * i, 16.6, 107.7) for i in range(1, 120)]
        return first, quiet + [fix("TTH-90123-TS", 7200, 16.6, 107.7), fix("TTH-90456-TS", 7260, 16.6, 107.7)]

    def log(ip: str, t: float, user: str, outcome: str) -> dict[str, Any]:
        return decode("cyber", {"source_id": "fw", "ts": T0 + t, "event_action": "authentication",
                                "event_outcome": outcome, "src_ip": ip, "user": user})
    first = [log("192.0.2.1", 0, "lan", "failure"), log("192.0.2.1", 60, "lan", "success"),
             log("192.0.2.9", 120, "lan", "success")]
    quiet = [log("198.51.100.7", 120 + 60 * i, "minh", "success") for i in range(1, 120)]
    return first, quiet + [log("198.51.100.7", 4 * H, "minh", "success")]


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_ttl_keeps_a_firing_key_until_it_resolves(tmp_path: Path, kind: str) -> None:
    stream, rule, _ = KINDS[kind]
    with_ttl = load(tmp_path, "rules:\n  - " + rule + "\n", "ttl.yaml")
    without = load(tmp_path, "rules:\n  - " + rule.replace("key_ttl: 5m", "key_ttl: 0") + "\n", "plain.yaml")
    first, rest = kind_events(kind)
    runs = []
    for ruleset in (with_ttl, without):
        engine = Engine(ruleset, clock=lambda: 0.0, limits=KeyLimits(sweep_every_s=60.0))
        alerts = engine.process(stream, first)
        assert [a.status for a in alerts][:1] == ["firing"], kind
        for event in rest:
            alerts += engine.process(stream, [event])
        runs.append(([(a.alert_id, a.status, a.starts_at, a.ends_at) for a in alerts], engine))
    (ttl_alerts, ttl_engine), (plain_alerts, plain_engine) = runs
    # The first episode (A's) fired, stayed firing while A was idle far past its TTL, and ended
    # exactly as without a TTL. (Later episodes may differ: a key forgotten while not firing starts
    # afresh, e.g. new_value finds its values new again: that is what a TTL is for.)
    first_id = ttl_alerts[0][0]
    assert [a for a in ttl_alerts if a[0] == first_id] == [a for a in plain_alerts if a[0] == first_id]
    assert [status for alert_id, status, _, _ in ttl_alerts if alert_id == first_id] == ["firing", "resolved"], kind
    for alert_id in {a[0] for a in ttl_alerts} & {a[0] for a in plain_alerts}:
        assert [a for a in ttl_alerts if a[0] == alert_id] == [a for a in plain_alerts if a[0] == alert_id]
    # The TTL did forget: the idle key that never fired is gone where the plain engine keeps it
    # (or the kind forgets it anyway).
    assert sum(map(len, ttl_engine.states.values())) <= sum(map(len, plain_engine.states.values()))


@st.composite
def readings(draw: st.DrawFn) -> list[dict[str, Any]]:
    t = 0.0
    out = []
    for _ in range(draw(st.integers(3, 40))):
        t += draw(st.sampled_from([0, 30, 60, 120, 299, 300, 301, 900, 3600]))
        source = draw(st.sampled_from(["ta-trach", "binh-dien", "kim-long"]))
        out.append(decode("reservoir", {"source_id": source, "ts": T0 + t,
                                        "level_m": draw(st.sampled_from([1.0, 6.0]))}))
    return out


TTL_RULES = """
rules:
  - {id: t.thr, stream: reservoir, kind: threshold, condition: "level_m >= 5", for: 2m, keep_firing_for: 10m,
     key_ttl: 1m}
  - {id: t.win, stream: reservoir, kind: window, agg: count, window: 20m, condition: "value >= 3",
     where: "level_m >= 5", key_ttl: 1m}
"""


@settings(max_examples=150, deadline=None)
@given(events=readings())
def test_an_episode_under_a_ttl_ends_as_it_would_without(tmp_path_factory: pytest.TempPathFactory,
                                                         events: list[dict[str, Any]]) -> None:
    """Whatever episodes a TTL lets happen, each one that also happens without it (same alert id)
    has the same transitions: the TTL never cuts a firing or pending key short."""
    folder = tmp_path_factory.mktemp("ttl")
    runs = []
    for text in (TTL_RULES, TTL_RULES.replace("key_ttl: 1m", "key_ttl: 0")):
        engine = Engine(load(folder, text), clock=lambda: 0.0, limits=KeyLimits(sweep_every_s=60.0))
        alerts = engine.process("reservoir", [dict(e) for e in events])
        alerts += engine.advance("reservoir", T0 + 86_400)
        by_id: dict[str, list[Any]] = {}
        for a in alerts:
            by_id.setdefault(a.alert_id, []).append((a.status, a.starts_at, a.ends_at))
        runs.append(by_id)
    ttl, plain = runs
    for alert_id in ttl.keys() & plain.keys():
        assert ttl[alert_id] == plain[alert_id]
    # A `for` or a window still to close is a timer: nothing of these rules is cut short at all.
    assert ttl == plain
