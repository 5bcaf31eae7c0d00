"""Live rule reload in a running worker: file change and SIGHUP swap rules; a broken change is
rejected with the `ioc rules check` error text while the previous rules keep running."""

from __future__ import annotations

import signal
import textwrap

import orjson
import pytest
from conftest import wait_for
from kafka_io import read, send

from ioc.timeutil import format_ts, parse_ts

pytestmark = pytest.mark.integration

T0 = parse_ts("2025-10-27T08:00:00+07:00")


def _rule(rule_id: str, threshold: float) -> str:
    return textwrap.dedent(f"""\
        rules:
          - id: {rule_id}
            stream: reservoir
            kind: threshold
            condition: "level_m >= {threshold}"
            severity: warning
            summary: "{{source_id}} {{level_m}}"
        """)


def _event(minute: int, level: float) -> tuple[bytes, bytes]:
    body = {"source_id": "ta-trach", "ts": format_ts(T0 + minute * 60), "level_m": level}
    return b"ta-trach", orjson.dumps(body)


def test_file_change_sighup_and_broken_change(broker_url, topic_prefix, start_worker, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rules_file = rules_dir / "live.yaml"
    rules_file.write_text(_rule("live.high", 50), encoding="utf-8")
    worker = start_worker(topic_prefix, {"IOC_RULES": str(rules_dir)})
    raw, alerts_topic = f"{topic_prefix}raw.reservoir", f"{topic_prefix}alerts"

    send(broker_url, raw, [_event(0, 60.0)])
    first = read(broker_url, alerts_topic, expect=1, timeout=60)
    assert [(v["rule_id"], v["status"]) for _, v in first] == [("live.high", "firing")]

    # 1. A file change: live.high is replaced by live.low (its firing alert is resolved).
    rules_file.write_text(_rule("live.low", 10), encoding="utf-8")
    assert wait_for(lambda: "rules reloaded (files changed)" in worker.output(), 30), worker.output()
    send(broker_url, raw, [_event(5, 20.0)])
    second = read(broker_url, alerts_topic, expect=3, timeout=60)
    assert sorted((v["rule_id"], v["status"]) for _, v in second) == [
        ("live.high", "firing"), ("live.high", "resolved"), ("live.low", "firing"),
    ]

    # 2. A broken change is rejected with the analyst's error text; live.low keeps running.
    rules_file.write_text(_rule("live.low", 10).replace("level_m >=", "levl_m >="), encoding="utf-8")
    assert wait_for(lambda: "rejected" in worker.output(), 30), worker.output()
    log = worker.output()
    assert f"{rules_file}:5: rule 'live.low': condition: unknown field 'levl_m'" in log
    assert "the previous 1 rules keep running" in log
    send(broker_url, raw, [_event(10, 5.0)])
    third = read(broker_url, alerts_topic, expect=4, timeout=60)
    assert ("live.low", "resolved") in [(v["rule_id"], v["status"]) for _, v in third]

    # 3. SIGHUP reloads on request, whether or not a file changed.
    rules_file.write_text(_rule("live.low", 10), encoding="utf-8")
    worker.process.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "rules reloaded (SIGHUP): 1 rules" in worker.output(), 30), worker.output()
    assert worker.alive(), worker.output()
