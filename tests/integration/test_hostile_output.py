"""What a sender or the broker does must not stop a worker: oversized messages, a simulator
sending malformed ones, a broker restart. Real embedded broker, real `ioc worker` processes.

The workers run one small rule of their own (a reservoir threshold without `for`, so one event
fires it), so that what is tested here does not depend on the shipped rules.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from conftest import REPO, WorkerProcess, wait_for
from kafka_io import read, send

from ioc.kafka.broker import EmbeddedBroker

pytestmark = pytest.mark.integration

RULES = """\
rules:
  - id: test.reservoir.high
    stream: reservoir
    kind: threshold
    condition: "level_m >= 40"
    severity: warning
    summary: "{source_id}: {level_m:.1f} m"
"""
RULE_ID = "test.reservoir.high"
STOP_BOUND_S = 10.0


def _env(tmp_path: Path) -> dict[str, str]:
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "test.yaml").write_text(RULES, encoding="utf-8")
    return {"IOC_RULES": str(rules)}


def _event(source: str, level: float, minutes_ago: float = 30) -> bytes:
    return orjson.dumps({"source_id": source, "ts": time.time() - minutes_ago * 60, "level_m": level})


def _up(worker: WorkerProcess) -> None:
    """The worker has created its topics and serves metrics (records sent before its topics
    exist would be written by the embedded broker into topics it does not know yet)."""
    assert wait_for(worker.metrics_url, 60), worker.output()


def _stop_within_bound(worker: WorkerProcess) -> float:
    started = time.monotonic()
    code = worker.stop()
    elapsed = time.monotonic() - started
    assert code == 0, worker.output()[-3000:]
    assert elapsed < STOP_BOUND_S, f"SIGTERM took {elapsed:.1f} s\n{worker.output()[-3000:]}"
    return elapsed


def _problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"WARNING|ERROR|CRITICAL|Traceback", line)]


def test_an_oversized_message_is_dead_lettered_the_next_event_alerts_and_sigterm_stops(
    broker_url, topic_prefix, start_worker, tmp_path
):
    worker = start_worker(topic_prefix, _env(tmp_path))
    _up(worker)
    huge = b'{"source_id": "ta-trach", "ts": 1761526800, "pad": "' + b"x" * 1_500_000 + b'"}'
    send(broker_url, f"{topic_prefix}raw.reservoir", [(b"ta-trach", huge), (b"ta-trach", _event("ta-trach", 44.0))],
         max_bytes=4 * 1024 * 1024)

    alerts = read(broker_url, f"{topic_prefix}alerts", expect=1, timeout=90)
    assert [(a["rule_id"], a["status"], a["key"]) for _, a in alerts] == [
        (RULE_ID, "firing", {"source_id": "ta-trach"})
    ], worker.output()[-3000:]
    [(key, letter)] = read(broker_url, f"{topic_prefix}deadletter", expect=1, timeout=30)
    assert key == b"ta-trach"
    assert letter["reason"] == "too_large" and letter["offset"] == 0
    assert letter["size"] == len(huge) and str(len(huge)) in letter["error"]
    assert letter["value_truncated"] is True
    assert letter["value"] == huge[:16_384].decode()  # limits.dead_letter_value_bytes
    assert worker.alive(), worker.output()[-3000:]
    assert worker.metric("ioc_publish_failures_total") == 0  # everything fitted: nothing given up

    elapsed = _stop_within_bound(worker)
    print(f"SIGTERM stop: {elapsed:.2f} s")


def test_simulate_with_bad_messages_runs_to_the_end_and_every_bad_one_is_dead_lettered(
    broker_url, topic_prefix, start_worker, tmp_path
):
    worker = start_worker(topic_prefix, _env(tmp_path))
    _up(worker)
    result = subprocess.run(
        [sys.executable, "-m", "ioc.cli.main", "simulate", "--scenario", "flood", "--duration", "1h",
         "--bad-rate", "0.05", "--broker", broker_url],
        cwd=REPO, env={**_clean_env(), "IOC_TOPIC_PREFIX": topic_prefix}, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"([\d,]+) malformed messages", result.stdout)
    assert found, result.stdout
    bad = int(found.group(1).replace(",", ""))
    assert bad > 0 and "refused" not in result.stdout, result.stdout

    letters = read(broker_url, f"{topic_prefix}deadletter", expect=bad, timeout=240)
    reasons = Counter(letter["reason"] for _, letter in letters)
    assert len(letters) == bad, (bad, reasons)
    assert reasons["too_large"] >= 1, reasons
    for _, letter in letters:
        if letter["reason"] == "too_large":
            assert letter["size"] > 1_000_000 and letter["value_truncated"] is True
            assert len(letter["value"].encode()) <= 16_384
    assert worker.alive(), worker.output()[-3000:]
    print(f"simulate: {bad} malformed sent, {len(letters)} dead letters: {dict(reasons)}")
    _stop_within_bound(worker)


def test_a_broker_restart_is_said_once_topics_come_back_and_alerts_flow_again(tmp_path):
    """Its own broker: restarting the session's would disturb the other tests."""
    broker = EmbeddedBroker(log_path=REPO / ".ioc" / "test-restart-broker.log")
    url = broker.start()
    prefix = f"t{uuid.uuid4().hex[:8]}."
    worker = WorkerProcess(url, prefix, _env(tmp_path))
    try:
        _up(worker)
        send(url, f"{prefix}raw.reservoir", [(b"ta-trach", _event("ta-trach", 44.0))])
        assert read(url, f"{prefix}alerts", expect=1, timeout=90), worker.output()[-3000:]
        before = len(_problems(worker.output()))

        broker.restart(down_s=3)  # memory storage: every topic, group and offset is gone
        assert wait_for(lambda: "broker back after" in worker.output(), 60), worker.output()[-3000:]
        assert worker.alive(), worker.output()[-3000:]

        send(url, f"{prefix}raw.reservoir", [(b"binh-dien", _event("binh-dien", 80.0, minutes_ago=10))])
        alerts = read(url, f"{prefix}alerts", expect=1, timeout=120,
                      until=lambda records: any(a["key"] == {"source_id": "binh-dien"} for _, a in records))
        assert any(a["key"] == {"source_id": "binh-dien"} and a["status"] == "firing" for _, a in alerts), \
            worker.output()[-3000:]
        assert wait_for(lambda: worker.metric("ioc_broker_reconnects_total") >= 1, 10)

        output = worker.output()
        outage = _problems(output)[before:]
        print(f"broker restart: {len(outage)} warning/error lines:\n" + "\n".join(outage))
        assert len(outage) < 20, "\n".join(outage)
        assert sum("lost the broker" in line for line in outage) == 1
        assert sum("broker back after" in line for line in outage) == 1
        assert f"{prefix}raw.reservoir" in next(line for line in outage if "broker back after" in line)
        _stop_within_bound(worker)
    finally:
        worker.stop()
        broker.stop()


def _clean_env() -> dict[str, str]:
    import os

    return {name: value for name, value in os.environ.items() if not name.startswith("IOC_")}
