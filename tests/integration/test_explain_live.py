"""`ioc explain` on the live `ioc.alerts`: a worker on the embedded broker fires an alert, and its
explanation, read back from the broker, points at the events' topic/partition/offset."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from conftest import wait_for
from kafka_io import read
from scenario_io import create_topics, produce, runtime_config

from ioc.cli.main import main

pytestmark = pytest.mark.integration


def test_explain_a_live_alert_shows_topic_partition_offset(
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = runtime_config(tmp_path, idle_clock=False, idle_advance_s=2, checkpoint_s=2)
    create_topics(broker_url, topic_prefix)
    # A Lưới's level crosses NWL - 0.5 (552.5 m) and stays above it for more than 10 minutes.
    start = (time.time() // 300) * 300 - 3600
    levels = [552.0, 552.2, 552.6, 552.7, 552.8, 552.9, 553.0, 552.0]
    events = [("reservoir", {"source_id": "a-luoi", "ts": start + 300 * i, "level_m": level})
              for i, level in enumerate(levels)]
    produce(broker_url, topic_prefix, events)
    worker = start_worker(topic_prefix, {"IOC_CONFIG": str(config)})
    records = read(broker_url, f"{topic_prefix}alerts", expect=2, timeout=120,
                   until=lambda found: any(r["rule_id"] == "reservoir.level.near_nwl" and r["status"] == "resolved"
                                           for _, r in found))
    near = [r for _, r in records if r["rule_id"] == "reservoir.level.near_nwl"]
    assert near, worker.output()
    alert_id = near[0]["alert_id"]
    assert near[0]["condition"] == "level_m >= 552.5"

    monkeypatch.setenv("IOC_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("IOC_CONFIG", str(config))
    capsys.readouterr()
    assert main(["explain", alert_id, "--broker", broker_url, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert data["reproduced"], data["warnings"]
    assert data["checks"][0]["readable"] == "level_m 552.8 >= nwl_m - 0.5 = 552.5"
    assert data["checks"][0]["holds"] is True
    wheres = [event["where"] for event in data["events"]]
    assert wheres and all(w.startswith(f"{topic_prefix}raw.reservoir/") and "@" in w for w in wheres), wheres
    # The offsets are those of the records sent (in order, in one partition): 2, 3, 4 of 0..7.
    assert [int(w.rsplit("@", 1)[1]) for w in wheres] == [2, 3, 4]
    assert data["resolution"]["by"] == "event"
    assert data["resolution"]["event"]["where"].endswith("@7")
    assert data["resolution"]["check"]["holds"] is False

    assert main(["explain", alert_id, "--broker", broker_url]) == 0
    text = capsys.readouterr().out
    assert f"{topic_prefix}raw.reservoir/" in text and "reproduces this alert id" in text

    assert main(["explain", alert_id[:-3] + "999", "--broker", broker_url]) == 1
    err = capsys.readouterr().err
    assert f"{topic_prefix}alerts" in err and "did you mean" in err and alert_id in err
    assert wait_for(worker.alive, 1)
