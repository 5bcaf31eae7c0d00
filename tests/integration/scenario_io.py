"""Scenario events on a real broker, and what the backtest says of them: the runtime tests' scaffolding.

* `scenario_files(duration)`: `ioc simulate --scenario storm-day --seed 0 --out DIR`, made once and
  kept under `.ioc/test-scenarios/`;
* `produce(url, prefix, events, rate=None)`: every event to its raw topic, keyed by `source_id`,
  partitioned as Kafka's default partitioner does, in event-time order (optionally at a rate);
* `expected(files, partitions)`: the backtest's distinct alert transitions;
* `AlertLog`: the distinct transitions found on a prefix's alerts topic, read on and on;
* `runtime_config(tmp_path, **worker)`: a config file for `ioc worker` (IOC_CONFIG).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import yaml
from kafka import KafkaConsumer

from ioc.analysis.backtest import read_events, run_backtest
from ioc.config import DEFAULT_CONFIG_PATH, REPO_ROOT
from ioc.events import STREAMS
from ioc.kafka.clients import bootstrap_servers
from ioc.kafka.topics import catalogue, ensure_topics
from ioc.runtime.plan import plan_rules
from ioc.runtime.runner import load_ruleset
from sensors_sim.publish import make_producer

Transition = tuple[str, str, str | None, str]  # (alert_id, status, ends_at, rule_id)

CACHE = REPO_ROOT / ".ioc" / "test-scenarios"


def scenario_files(duration: str, scenario: str = "storm-day", seed: int = 0) -> list[Path]:
    """The per-stream JSONL files of a scenario run (generated once, then reused)."""
    folder = CACHE / f"{scenario}-{duration}-{seed}"
    files = [folder / f"{stream}.jsonl" for stream in STREAMS]
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "ioc.cli.main", "simulate", "--scenario", scenario,
                        "--duration", duration, "--seed", str(seed), "--out", str(folder)],
                       cwd=REPO_ROOT, check=True, capture_output=True)
        (folder / "done").write_text("ok")
    return [path for path in files if path.exists()]


def load_events(files: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(stream, event) of every file, in event-time order (stable), as a live feed sends them."""
    rows = []
    for path in files:
        stream = path.name.split(".")[0]
        with path.open("rb") as handle:
            rows.extend((stream, orjson.loads(line)) for line in handle if line.strip())
    rows.sort(key=lambda row: _ts(row[1]))
    return rows


def _ts(event: dict[str, Any]) -> float:
    from ioc.timeutil import parse_ts

    ts = event["ts"]
    return float(ts) if isinstance(ts, (int, float)) else parse_ts(ts)


def create_topics(url: str, prefix: str, partitions: int = 4) -> None:
    from ioc.config import load_settings

    settings = load_settings(env={"IOC_TOPIC_PREFIX": prefix, "IOC_PARTITIONS": str(partitions)})
    spaces = plan_rules(load_ruleset(settings)).spaces
    ensure_topics(url, catalogue(settings, spaces))


def produce(url: str, prefix: str, events: list[tuple[str, dict[str, Any]]], rate: float | None = None) -> float:
    """Send every event to `<prefix>raw.<stream>` keyed by its source_id; returns the seconds it took."""
    producer = make_producer(url)
    started = time.monotonic()
    try:
        for sent, (stream, event) in enumerate(events, start=1):
            producer.send(f"{prefix}raw.{stream}", key=str(event["source_id"]).encode(), value=orjson.dumps(event))
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        producer.flush()
    finally:
        producer.close()
    return time.monotonic() - started


def expected(files: list[Path], partitions: int = 4) -> set[Transition]:
    """The backtest's distinct alert transitions over `files` (shipped rules)."""
    from ioc.config import load_settings

    result = run_backtest(load_ruleset(load_settings(env={})), read_events(files), partitions=partitions)
    return {(a.alert_id, a.status, _iso(a.ends_at), a.rule_id) for a in result.alerts}


def _iso(ts: float | None) -> str | None:
    from ioc.timeutil import format_ts

    return None if ts is None else format_ts(ts)


class AlertLog:
    """The distinct transitions on `<prefix>alerts`, read on as workers publish."""

    def __init__(self, url: str, prefix: str) -> None:
        self.consumer = KafkaConsumer(
            f"{prefix}alerts", bootstrap_servers=bootstrap_servers(url), auto_offset_reset="earliest",
            enable_auto_commit=False, group_id=None, consumer_timeout_ms=200,
        )
        self.found: set[Transition] = set()
        self.records = 0

    def poll(self) -> set[Transition]:
        for message in self.consumer:
            record = orjson.loads(message.value)
            if (record.get("labels") or {}).get("escalation"):
                continue  # the SLA tracker's escalations: not engine transitions
            self.found.add((record["alert_id"], record["status"], record["ends_at"], record["rule_id"]))
            self.records += 1
        return self.found

    def settle(self, want: set[Transition], timeout: float, quiet: float = 4.0) -> set[Transition]:
        """Read until `want` is found (or `timeout`), then `quiet` seconds more for anything extra."""
        deadline = time.monotonic() + timeout
        while self.poll() != want and time.monotonic() < deadline:
            time.sleep(0.5)
        end = time.monotonic() + quiet
        while time.monotonic() < end:
            self.poll()
            time.sleep(0.3)
        return self.found

    def close(self) -> None:
        self.consumer.close()


def runtime_config(tmp_path: Path, **worker: Any) -> Path:
    """A copy of config/ioc.yaml with `worker.*` overridden (for IOC_CONFIG)."""
    data = yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    data["worker"].update(worker)
    path = tmp_path / "ioc.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def describe(want: set[Transition], got: set[Transition]) -> str:
    lost, invented = sorted(want - got), sorted(got - want)
    return f"{len(lost)} lost: {lost[:10]}; {len(invented)} invented: {invented[:10]}"
