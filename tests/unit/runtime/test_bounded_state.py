"""Memory follows active keys: 100,000 distinct keys pass through a worker's shards with the
shipped rules, then go quiet; once every window, lookback and `realert` has passed, the
sweep before a checkpoint leaves almost nothing of them, and the memory they took comes back."""

from __future__ import annotations

import gc
import ipaddress
import tracemalloc

import orjson
from brokerless import Brokerless

from ioc.config import load_settings
from ioc.runtime.host import HostSettings, ShardHost
from ioc.runtime.pipeline import Pipeline
from ioc.runtime.plan import plan_rules
from ioc.runtime.replay import partition_counts
from ioc.runtime.runner import load_ruleset

T0 = 1761526800.0
KEYS = 100_000
SENSORS = ("soc-fw-01", "soc-fw-02", "soc-ids-01", "soc-waf-01")


class Worker(Brokerless):
    """Every cyber shard (4 raw partitions, every key space cyber feeds) of one host."""

    def __init__(self) -> None:
        plan = plan_rules(load_ruleset(load_settings(env={})))
        counts = partition_counts(plan, 4)
        settings = HostSettings(idle_after_s=0.0, marker_interval_s=0.0)
        super().__init__(ShardHost(plan, Pipeline(None), counts, settings=settings, clock=lambda: 0.0,
                                   monotonic=lambda: 0.0))
        for topic, n in counts.items():
            if topic == "raw.cyber" or topic.startswith("rekey.cyber"):
                for p in range(n):
                    self.host.open(topic, p)

    def send(self, partition: int, events: list[dict[str, object]]) -> None:
        self.feed("raw.cyber", partition, [orjson.dumps(e) for e in events])


def failure(sensor: str, t: float, src_ip: str) -> dict[str, object]:
    return {"source_id": sensor, "ts": T0 + t, "event_action": "authentication", "event_outcome": "failure",
            "src_ip": src_ip, "dst_ip": "203.0.113.10", "url": "/login"}


def test_keys_that_went_quiet_are_forgotten_and_their_memory_comes_back() -> None:
    worker = Worker()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        keys_before = worker.host.state_keys()
        # 100,000 addresses, one failed login each, over about 2 minutes of event time.
        first = int(ipaddress.ip_address("10.0.0.0"))
        for batch in range(0, KEYS, 1000):
            events = [failure(SENSORS[i % 4], i / 1000, str(ipaddress.ip_address(first + i)))
                      for i in range(batch, batch + 1000)]
            for partition in range(4):
                worker.send(partition, [e for j, e in enumerate(events) if j % 4 == partition])
        busy_keys = worker.host.state_keys()
        busy = tracemalloc.get_traced_memory()[0]
        # Quiet: a day later, one event per partition moves every watermark past the windows,
        # lookbacks and realert intervals of the shipped cyber rules.
        for partition in range(4):
            worker.send(partition, [failure(SENSORS[partition], 86_400 * 31, "192.0.2.1")])
        worker.host.sweep()
        gc.collect()
        quiet_keys = worker.host.state_keys()
        quiet = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert busy_keys >= KEYS  # every address had state while it was in its windows
    assert quiet_keys - keys_before < 50, f"{quiet_keys} keys left"
    grown, kept = busy - base, quiet - base
    assert kept < 0.05 * grown, f"{kept / 1e6:.1f} MB of {grown / 1e6:.1f} MB still held"
