"""`ioc alerts ack|assign|comment|resolve|reopen` from the shell: each publishes one action record
on `ioc.alert-actions`, keyed by the alert's fingerprint (the key of its records on `ioc.alerts`,
so the SLA tracker that owns the fingerprint gets it); a bad alert id never reaches the broker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from kafka_io import read

from ioc.config import REPO_ROOT, load_settings
from ioc.kafka.topics import catalogue, ensure_topics
from ioc.timeutil import parse_ts

pytestmark = pytest.mark.integration

ALERT_ID = "eece90541220b5d3-1761526800000"


def ioc(broker_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IOC_TOPIC_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "ioc.cli.main", "alerts", *args, "--broker", broker_url],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_actions_from_the_shell_reach_the_actions_topic_keyed_by_fingerprint(broker_url: str,
                                                                            topic_prefix: str) -> None:
    settings = load_settings(env={"IOC_TOPIC_PREFIX": topic_prefix})
    ensure_topics(broker_url, catalogue(settings, set()), 1)
    done = [
        ioc(broker_url, topic_prefix, "ack", ALERT_ID, "--by", "truc-ban-1", "--note", "đã tiếp nhận",
            "--at", "2025-10-27T08:05:00+07:00"),
        ioc(broker_url, topic_prefix, "assign", ALERT_ID, "--by", "truc-ban-1", "--to", "so-nnptnt",
            "--at", "2025-10-27T08:06:00+07:00"),
        ioc(broker_url, topic_prefix, "resolve", ALERT_ID, "--by", "so-nnptnt", "--at", "2025-10-27T09:00:00+07:00"),
    ]
    for result in done:
        assert result.returncode == 0, result.stderr
        assert f"published to {topic_prefix}alert-actions" in result.stdout
    records = read(broker_url, f"{topic_prefix}alert-actions", expect=3)
    assert [key for key, _ in records] == [b"eece90541220b5d3"] * 3
    assert [value for _, value in records] == [
        {"alert_id": ALERT_ID, "action": "ack", "by": "truc-ban-1", "at": "2025-10-27T01:05:00Z",
         "note": "đã tiếp nhận"},
        {"alert_id": ALERT_ID, "action": "assign", "by": "truc-ban-1", "at": "2025-10-27T01:06:00Z", "note": None,
         "assignee": "so-nnptnt"},
        {"alert_id": ALERT_ID, "action": "resolve", "by": "so-nnptnt", "at": "2025-10-27T02:00:00Z", "note": None},
    ]
    assert parse_ts(records[0][1]["at"]) == parse_ts("2025-10-27T08:05:00+07:00")


def test_a_bad_alert_id_or_time_is_refused_before_the_broker(broker_url: str, topic_prefix: str) -> None:
    bad_id = ioc(broker_url, topic_prefix, "ack", "ta-trach", "--by", "x")
    assert bad_id.returncode == 1
    assert "'ta-trach' is not an alert id (16 hex digits" in bad_id.stderr
    bad_at = ioc(broker_url, topic_prefix, "comment", ALERT_ID, "--by", "x", "--at", "yesterday")
    assert bad_at.returncode == 1 and "--at:" in bad_at.stderr
