"""Acceptance 2 of issue 15 over a live run: a worker on 12 h of the storm-day scenario, its
alerts handled by the operator simulator (actions published as event time reaches them, as
operators would), and the SLA snapshot records on `sla` and the `ioc_sla_*` gauges read through
a real Prometheus equal a pandas computation over the alert and action records of the run.

The pandas side (tests/unit/sla/sla_fixtures.py) derives states and outcomes from each alert and
its actions with plain arithmetic, independently of the tracker and of SlaFigures."""

from __future__ import annotations

import heapq
import time
import zlib
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import yaml
from conftest import wait_for
from kafka import KafkaConsumer, KafkaProducer
from kafka_io import read
from prom_server import PrometheusServer
from scenario_io import create_topics, expected, load_events, produce, runtime_config, scenario_files
from sla_fixtures import FIELDS, expected_figures, expected_gauges, reference_outcome, reference_states

from ioc.kafka.clients import bootstrap_servers
from ioc.sla.figures import WINDOWS
from ioc.timeutil import parse_ts
from sensors_sim.operators import OperatorSimulator
from streams.sla_runner import alert_time

pytestmark = pytest.mark.integration

SETTLE_S = 240


def _same(actual: Any, want: Any) -> bool:
    if actual is None or want is None:
        return actual is None and want is None
    return actual == pytest.approx(want, rel=1e-9, abs=1e-9)


def _snapshot_diff(records: dict[tuple[str, str], dict], want: dict[tuple[str, str], dict]) -> list[str]:
    differ = sorted(set(records) ^ set(want))
    problems = [f"scopes in one and not the other: {differ[:6]}"] if differ else []
    for key in sorted(set(records) & set(want)):
        problems += [f"{key} {name}: {records[key][name]!r} != {want[key][name]!r}" for name in FIELDS
                     if not _same(records[key][name], want[key][name])]
    return problems


class Operators:
    """Tail the alerts; publish each firing alert's simulated actions once event time reaches them
    (an eighth of the alerts, by id, are never handled)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.consumer = KafkaConsumer(f"{prefix}alerts", bootstrap_servers=bootstrap_servers(url),
                                      auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                      consumer_timeout_ms=200)
        self.producer = KafkaProducer(bootstrap_servers=bootstrap_servers(url), acks="all")
        # Late more often than the seeds' 1.86 %, so that the figures have late and overdue alerts.
        self.simulator = OperatorSimulator(seed=0, late_share=0.3)
        self.alerts: dict[str, dict] = {}
        self.transitions: set[tuple[str, str]] = set()
        self.actions: dict[str, list[dict]] = {}
        self.pending: list[tuple[float, int, str, dict]] = []
        self.clock = float("-inf")
        self.sent = 0

    def poll(self) -> None:
        for message in self.consumer:
            record = orjson.loads(message.value)
            seen = alert_time(record)
            if seen is None:
                continue  # an escalation
            self.clock = max(self.clock, seen)
            self.transitions.add((record["alert_id"], record["status"]))
            if record["status"] == "firing" and record["alert_id"] not in self.alerts:
                self.alerts[record["alert_id"]] = record
                if zlib.crc32(record["alert_id"].encode()) % 8 == 0:
                    continue  # nobody on duty: never acknowledged, overdue at the end
                for action in self.simulator.actions_for(record):
                    heapq.heappush(self.pending, (parse_ts(action["at"]), self.sent + len(self.pending),
                                                  record["fingerprint"], action))
        while self.pending and self.pending[0][0] <= self.clock:
            _, _, fingerprint, action = heapq.heappop(self.pending)
            self.producer.send(f"{self.prefix}alert-actions", key=fingerprint.encode(), value=orjson.dumps(action))
            self.actions.setdefault(action["alert_id"], []).append(action)
            self.sent += 1
        self.producer.flush()

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()


def _latest_snapshots(url: str, prefix: str) -> dict[tuple[str, str], dict]:
    consumer = KafkaConsumer(f"{prefix}sla", bootstrap_servers=bootstrap_servers(url), auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=500)
    latest: dict[tuple[str, str], dict] = {}
    try:
        for message in consumer:
            record = orjson.loads(message.value)
            if record.get("type") == "snapshot":
                latest[(record["scope"], record["window"])] = record
    finally:
        consumer.close()
    return latest


def test_live_sla_figures_equal_pandas_over_the_alert_and_action_records(  # type: ignore[no-untyped-def]
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path,
) -> None:
    files = scenario_files("12h")
    want_transitions = {(alert_id, status) for alert_id, status, _, _ in expected(files, partitions=4)}
    config = runtime_config(tmp_path, checkpoint_s=2)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sla"].update(clock="event", snapshot_s=1)
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    create_topics(broker_url, topic_prefix)
    produce(broker_url, topic_prefix, load_events(files))
    worker = start_worker(topic_prefix, {"IOC_CONFIG": str(config)})
    operators = Operators(broker_url, topic_prefix)
    try:
        def settled() -> bool:
            operators.poll()
            return want_transitions <= operators.transitions and not (
                operators.pending and operators.pending[0][0] <= operators.clock)
        assert wait_for(settled, SETTLE_S, interval=0.5), (len(operators.transitions), worker.output()[-3000:])
    finally:
        operators.close()
    now = operators.clock

    # pandas over the run's alert and action records.
    states, outcomes = [], []
    for alert_id, alert in operators.alerts.items():
        actions = operators.actions.get(alert_id, [])
        states += reference_states(alert, actions)
        outcome = reference_outcome(alert, actions)
        if outcome is not None:
            outcomes.append(outcome)
    assert outcomes and len(outcomes) < len(operators.alerts)  # some handled, some still open at the end
    assert any(not o["resolve_on_time"] for o in outcomes) and any(o["resolve_on_time"] for o in outcomes)
    want = expected_figures(pd.DataFrame(states), pd.DataFrame(outcomes), now)

    # The worker's snapshots on `sla` at the same event time: the latest of each scope and window.
    def snapshots_match() -> list[str] | None:
        records = _latest_snapshots(broker_url, topic_prefix)
        problems = [f"{key} at {r['at']}" for key, r in records.items() if parse_ts(r["at"]) != now][:3]
        problems += _snapshot_diff(records, want)
        return None if not problems else problems
    problems: list[str] | None = ["not checked"]
    deadline = time.monotonic() + 60
    while problems and time.monotonic() < deadline:
        problems = snapshots_match()
        time.sleep(1)
    if problems:
        rejected = [v for _, v in read(broker_url, f"{topic_prefix}sla", expect=0, timeout=2)
                    if v.get("type") == "rejection"]
        problems += [f"rejection: {r['reason']} ({r.get('alert_id')})" for r in rejected][:10]
    assert not problems, (problems[:30], worker.output()[-2000:])
    assert ("all", "30d") in want and want[("all", "30d")]["resolved"] == len(outcomes)
    assert {window for _, window in want} == set(WINDOWS)

    # The same figures in Prometheus, scraped from the worker.
    url = worker.metrics_url()
    assert url, worker.output()
    prometheus = PrometheusServer(tmp_path / "prometheus", [url.split("//", 1)[1].split("/", 1)[0]])
    try:
        want_gauges = expected_gauges(want)

        def gauges() -> dict:
            found = {}
            for name in ("ioc_sla_on_time_ratio", "ioc_sla_overdue"):
                for series in prometheus.query(name):
                    labels = tuple(sorted((k, v) for k, v in series["metric"].items()
                                          if k not in ("__name__", "instance", "job")))
                    found[(name, labels)] = float(series["value"][1])
            return found

        got = wait_for(lambda: (g := gauges()) and set(g) == set(want_gauges) and g, 60, interval=1)
        assert got and set(got) == set(want_gauges), (sorted(set(got or {}) ^ set(want_gauges))[:10])
        for key, value in want_gauges.items():
            assert got[key] == pytest.approx(value, rel=1e-9), key
        assert sum(v for (name, _), v in want_gauges.items() if name == "ioc_sla_overdue") > 0
        # The histograms: one observation per outcome, by domain and severity.
        frame = pd.DataFrame(outcomes)
        for (domain, severity), group in frame.groupby(["domain", "severity"]):
            selector = f'{{domain="{domain}",severity="{severity}"}}'
            assert prometheus.value(f"ioc_sla_resolve_seconds_count{selector}") == len(group)
            assert prometheus.value(f"ioc_sla_resolve_seconds_sum{selector}") == pytest.approx(group["resolve_s"].sum())
            assert prometheus.value(f"ioc_sla_ack_seconds_count{selector}") == group["ack_s"].count()
    finally:
        prometheus.stop()
    assert worker.alive(), worker.output()
