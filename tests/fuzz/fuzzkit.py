"""The fuzz tier's shared parts: adversarial values, sample events of every stream (from the
simulators), and a brokerless worker holding every shard of the shipped rules.

Imported as `from fuzzkit import ...` (tests/conftest.py puts this folder on the path).
"""

from __future__ import annotations

import functools
import itertools
import os
from typing import Any

from brokerless import Brokerless
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ioc.config import LimitSettings, load_settings
from ioc.events import STREAMS
from ioc.runtime.host import HostSettings, ShardHost
from ioc.runtime.partitioner import partition_of
from ioc.runtime.pipeline import Pipeline
from ioc.runtime.plan import plan_rules
from ioc.runtime.replay import partition_counts
from ioc.runtime.runner import load_ruleset
from sensors_sim.scenario import build, load_scenario

# CI runs each fuzz test a few dozen times; `IOC_FUZZ_SCALE=50 pytest tests/fuzz` searches longer.
SCALE = max(1, int(os.environ.get("IOC_FUZZ_SCALE", "1")))


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings of a fuzz test: `examples` times IOC_FUZZ_SCALE, no deadline (shared machine)."""
    return settings(max_examples=examples * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])


T0 = 1761526800.0  # 2025-10-27T08:00:00+07:00
PARTITIONS = 2

# Values a hostile or broken sender may put in any field: wrong types, extremes, control and
# bidi characters, huge numbers, deep nesting, very long text.
TEXTS = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\u202e", "\ud7ff", "NaN", "Infinity", "-0", "1e309", "{source_id}",
                     "' or 1=1 --", "a" * 40 + "!", "Đà Nẵng", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "%s%s%n", "../../etc/passwd"]),
    st.integers(min_value=1, max_value=64).map(lambda n: "a" * (n * 1024)),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([0, -1, 2**53, 1e308, -1e308, 5e-324]),
    TEXTS,
)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner, max_size=6),
    max_leaves=12,
)


@functools.cache
def samples() -> dict[str, list[dict[str, Any]]]:
    """Valid events of every stream: the first hour of the storm-day scenario."""
    run = build(load_scenario("storm-day"), seed=0, start=T0, duration_s=3600)
    by_stream: dict[str, list[dict[str, Any]]] = {stream: [] for stream in STREAMS}
    for stream, event in itertools.islice(run.events(), 20_000):
        if len(by_stream[stream]) < 200:
            by_stream[stream].append(event)
    return by_stream


@functools.cache
def shipped_plan() -> Any:
    return plan_rules(load_ruleset(load_settings()))


class FuzzWorker(Brokerless):
    """Every shard of a plan (default: the shipped rules) in one host, partition logs in memory."""

    def __init__(self, plan: Any = None) -> None:
        plan = plan if plan is not None else shipped_plan()
        counts = partition_counts(plan, PARTITIONS)
        super().__init__(ShardHost(plan, Pipeline(None, max_future_s=None), counts,
                                   settings=HostSettings(idle_after_s=0.0, idle_clock=False), clock=lambda: T0),
                         received=T0)
        for topic, n in counts.items():
            for partition in range(n):
                self.host.open(topic, partition)

    def send(self, stream: str, key: bytes | None, value: bytes) -> None:
        """One raw record on its partition (chosen by key, as the simulator's producer does)."""
        self.feed(f"raw.{stream}", partition_of(key, PARTITIONS) if key else 0, [value], key)


LIMITS = LimitSettings()
