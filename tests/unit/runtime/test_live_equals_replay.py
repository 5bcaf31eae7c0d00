"""Property: the live runtime gives the backtest's alerts, whatever the delivery.

A simulated worker (the real `ShardHost`, no broker) reads random events from 1 to 3
partitions per topic in random rounds: records arrive in batches of random sizes, raw and
re-keyed partitions interleave at random, idle keys are swept, shards are checkpointed at
random moments and "crash" at others (state thrown away, restored from the last checkpoint, input read again
from its offset, so frames and alerts are repeated). At the end every partition has been
read to its end and is idle. The distinct alert transitions must be exactly those of
`run_backtest` with the same number of partitions: every kind, topic-keyed and re-keyed
rules, a cross-stream sequence, keys read through reference data (a camera's gauge) and
reference-driven absence together.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kindtest import mixed_history

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.loader import load_rules
from ioc.runtime.checkpoint import decode_checkpoint, encode_checkpoint
from ioc.runtime.host import HostSettings, ShardHost
from ioc.runtime.partitioner import partition_of
from ioc.runtime.pipeline import Pipeline, RawRecord
from ioc.runtime.plan import plan_rules
from ioc.runtime.replay import partition_counts

T0 = 1761526800.0
REFERENCE = load_reference(REPO_ROOT / "config" / "reference")

RULES = """
rules:
  - {id: p.threshold, stream: reservoir, kind: threshold, condition: "level_m >= nwl_m - 0.5", for: 10m,
     where: "nwl_m is not None", keep_firing_for: 5m, realert: 15m}
  - {id: p.window, stream: reservoir, kind: window, agg: max, field: rain_mm_1h, window: 30m,
     condition: "value >= 40"}
  - {id: p.rate, stream: reservoir, kind: rate, field: level_m, window: 30m, per: 1h, condition: "value > 1"}
  - {id: p.absence, stream: reservoir, kind: absence, timeout: 25m, expect: reference}
  - {id: p.spike, stream: cyber, kind: spike, key: [src_ip], window: 10m, baseline: 40m, ratio: 3,
     alert_on_new_data: true}
  - {id: p.new_value, stream: cyber, kind: new_value, key: [user], field: src_ip, lookback: 1h}
  - {id: p.match, stream: cyber, kind: match, fields: [url], regex: "union\\\\s+select", fold: false}
  - {id: p.burst, stream: cyber, kind: window, key: [src_ip], agg: count, window: 20m,
     where: "event_outcome == 'failure'", condition: "value >= 3"}
  - {id: p.sequence, stream: cyber, kind: sequence, by: src_ip, within: 20m,
     steps: [{stream: cyber, condition: "event_outcome == 'failure'"},
             {stream: cyber, condition: "event_outcome == 'success'"}]}
  - {id: p.cross, kind: sequence, by: null, within: 2h,
     steps: [{stream: reservoir, condition: "rain_mm_1h >= 45"},
             {stream: cyber, condition: "event_outcome == 'success'"}]}
  - {id: p.gauge_join, kind: sequence, by: {reservoir: source_id, camera: gauge}, within: 1h,
     steps: [{stream: reservoir, condition: "level_m >= bd1_m"},
             {stream: camera, condition: "event_type == 'road_flooding'"}]}
  - {id: p.per_gauge, stream: camera, kind: window, key: [gauge], agg: count, window: 30m,
     where: "event_type == 'road_flooding'", condition: "value >= 2"}
"""

# More keys than the batching property, and several cyber sensors, so that sources spread over partitions.
HISTORIES = mixed_history(most=70, stations=("ta-trach", "binh-dien", "kim-long", "huong-dien", "phu-oc"),
                          sensors=("soc-fw-01", "soc-fw-02", "soc-ids-01"),
                          ips=("192.0.2.1", "192.0.2.2", "198.51.100.7", "203.0.113.9"),
                          cameras=("cam-026", "cam-032", "cam-041", "cam-001"))


class SimulatedWorker:
    """One worker holding every shard, fed from in-memory partition logs in random rounds."""

    def __init__(self, ruleset: Any, counts: dict[str, int], rng: random.Random) -> None:
        self.plan = plan_rules(ruleset)
        self.rng = rng
        self.now = [0.0]
        self.host = ShardHost(self.plan, Pipeline(None), counts,
                              settings=HostSettings(idle_after_s=5.0, idle_clock=False, marker_interval_s=0.0),
                              clock=lambda: 0.0, monotonic=lambda: self.now[0])
        self.logs: dict[tuple[str, int], list[RawRecord]] = {}
        for topic, n in counts.items():
            for p in range(n):
                self.logs[(topic, p)] = []
        self.position: dict[tuple[str, int], int] = dict.fromkeys(self.logs, 0)
        self.saved: dict[tuple[str, int], bytes | None] = dict.fromkeys(self.logs)
        for topic, p in self.logs:
            self.host.open(topic, p)
        self.alerts: list[Alert] = []

    def append(self, topic: str, partition: int, value: bytes, key: bytes | None = None) -> None:
        log = self.logs[(topic, partition)]
        log.append(RawRecord(topic, partition, len(log), key, value, 0.0))

    def deliver(self, key: tuple[str, int], size: int) -> None:
        start = self.position[key]
        records = self.logs[key][start:start + size]
        if not records:
            return
        self.position[key] = start + len(records)
        self.take(self.host.handle(key[0], key[1], records))

    def take(self, out: Any) -> None:
        self.alerts.extend(out.alerts)
        for topic, partition, value in out.frames:
            self.append(topic, partition, value)

    def checkpoint(self, key: tuple[str, int]) -> None:
        shard = self.host.shards[key]
        self.saved[key] = encode_checkpoint(shard.snapshot())

    def crash(self, key: tuple[str, int]) -> None:
        """Throw the shard away; a new owner restores the last checkpoint and reads on from it."""
        self.host.close(*key)
        saved = self.saved[key]
        shard = self.host.open(key[0], key[1], decode_checkpoint(saved) if saved is not None else None)
        self.position[key] = shard.offset or 0

    def caught_up(self, key: tuple[str, int]) -> bool:
        return self.position[key] >= len(self.logs[key])

    def round(self) -> None:
        key = self.rng.choice(sorted(self.logs))
        action = self.rng.random()
        if action < 0.7:
            self.deliver(key, self.rng.randint(1, 6))
        elif action < 0.85:
            self.checkpoint(key)
        elif action < 0.92:
            self.crash(key)
        elif action < 0.95:
            self.host.sweep()  # forgetting keys with nothing left to remember changes nothing
        else:
            self.now[0] += self.rng.choice([0.5, 6.0])
            self.take(self.host.tick(self.caught_up))

    def drain(self) -> None:
        """Read everything, let every partition be idle, read what that sends."""
        for _ in range(3):
            for key in sorted(self.logs):
                self.deliver(key, len(self.logs[key]))
            self.now[0] += 10.0
            self.take(self.host.tick(self.caught_up))
        for key in sorted(self.logs):
            self.deliver(key, len(self.logs[key]))


def distinct(alerts: list[Alert]) -> set[tuple[Any, ...]]:
    return {(a.alert_id, a.status, a.starts_at, a.ends_at, a.rule_id) for a in alerts}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=HISTORIES, partitions=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_live_rounds_with_crashes_give_the_backtest_alerts(tmp_path_factory, rows, partitions, seed) -> None:  # type: ignore[no-untyped-def]
    path: Path = tmp_path_factory.mktemp("rules") / "p.yaml"
    path.write_text(RULES, encoding="utf-8")
    ruleset = load_rules([path], REFERENCE)
    backtest = run_backtest(ruleset, [RawEvent(stream, dict(body), "x") for stream, body in rows],
                            partitions=partitions)

    worker = SimulatedWorker(ruleset, partition_counts(plan_rules(ruleset), partitions), random.Random(seed))
    for stream, body in rows:
        key = body["source_id"].encode()
        worker.append(f"raw.{stream}", partition_of(key, partitions), orjson.dumps(body), key)
    for _ in range(worker.rng.randint(0, 4 * len(rows))):
        worker.round()
    worker.drain()

    assert distinct(worker.alerts) == distinct(backtest.alerts)

