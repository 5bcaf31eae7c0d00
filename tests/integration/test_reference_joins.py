"""Acceptance 3 of issue 18 on the embedded broker: two workers running the shipped rules and
configuration give exactly the expected transitions of camera.flooding.gauge_bd2 (a cross-stream
sequence joined through the cameras' reference `gauge`) and camera.crowd.ward_wide (keyed by the
declared field `ward`), and dead-letter a camera event whose `ward` is not text. The events and
the expected alert ids, keys and times are in tests/unit/runtime/reference_joins.py (the backtest
half is tests/unit/runtime/test_reference_keys.py)."""

from __future__ import annotations

import time

import orjson
import pytest
from conftest import wait_for
from kafka_io import read
from reference_joins import BAD, EVENTS, EXPECTED, transitions
from scenario_io import create_topics, produce, runtime_config

pytestmark = pytest.mark.integration


def test_joined_sequence_and_declared_field_rule_on_two_workers(broker_url, topic_prefix, start_worker, tmp_path):
    # Two partitions per topic, so that cameras, gauges and the key spaces spread over both workers.
    create_topics(broker_url, topic_prefix, partitions=2)
    config = runtime_config(tmp_path, idle_clock=False, idle_advance_s=2)  # config/ioc.yaml: declares `ward`
    env = {"IOC_CONFIG": str(config), "IOC_PARTITIONS": "2"}
    first, second = start_worker(topic_prefix, env), start_worker(topic_prefix, env)
    assert wait_for(lambda: first.metric("ioc_shards") + second.metric("ioc_shards") > 0, 90), first.output()
    time.sleep(2)
    produce(broker_url, topic_prefix, list(EVENTS))

    def complete(records: list[tuple[bytes, dict]]) -> bool:  # type: ignore[type-arg]
        return transitions([value for _, value in records]) >= EXPECTED

    records = read(broker_url, f"{topic_prefix}alerts", expect=len(EXPECTED), timeout=180, until=complete)
    assert first.alive() and second.alive(), first.output() + second.output()
    assert first.metric("ioc_shards") > 0 and second.metric("ioc_shards") > 0  # the partitions are shared
    got = transitions([value for _, value in records])
    assert got == EXPECTED, (sorted(EXPECTED - got), sorted(got - EXPECTED))

    letters = [value for _, value in read(broker_url, f"{topic_prefix}deadletter", expect=1, timeout=60)]
    assert len(letters) == 1, letters
    letter = letters[0]
    assert orjson.loads(letter["value"])["id"] == "c14-bad"
    reason, code = BAD["c14-bad"]
    assert (letter["error"], letter["reason"]) == (reason, code), letter
