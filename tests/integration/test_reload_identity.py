"""Editing a rule's summary during a live run keeps its firing alert's id (issue 14, test 5).

A real worker on the embedded broker: a rule fires, its summary and severity are edited on disk,
the worker reloads, and the alert's resolve carries the same alert_id with the new texts; no
resolve-and-refire pair appears on `ioc.alerts`."""

from __future__ import annotations

import textwrap

import pytest
from conftest import wait_for
from kafka_io import read, send
from test_live_reload import _event

pytestmark = pytest.mark.integration


def _rule(summary: str, severity: str) -> str:
    return textwrap.dedent(f"""\
        rules:
          - id: live.level
            stream: reservoir
            kind: threshold
            condition: "level_m >= 50"
            severity: {severity}
            summary: "{summary}"
        """)


def test_a_summary_edit_keeps_the_firing_alert_id(broker_url, topic_prefix, start_worker, tmp_path):
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rules_file = rules_dir / "live.yaml"
    rules_file.write_text(_rule("old {source_id} {level_m}", "warning"), encoding="utf-8")
    worker = start_worker(topic_prefix, {"IOC_RULES": str(rules_dir)})
    raw, alerts_topic = f"{topic_prefix}raw.reservoir", f"{topic_prefix}alerts"

    send(broker_url, raw, [_event(0, 60.0)])
    [(_, fired)] = read(broker_url, alerts_topic, expect=1, timeout=60)
    assert (fired["status"], fired["summary"], fired["severity"]) == ("firing", "old ta-trach 60.0", "warning")

    rules_file.write_text(_rule("new {source_id}: {level_m:.1f} m", "critical"), encoding="utf-8")
    assert wait_for(lambda: "rules reloaded (files changed)" in worker.output(), 30), worker.output()
    assert "no rule changed" in worker.output()  # same meaning: its state (and alert) kept

    send(broker_url, raw, [_event(5, 20.0)])
    records = [value for _, value in read(broker_url, alerts_topic, expect=2, timeout=60)]
    assert [(r["alert_id"], r["status"]) for r in records] == [
        (fired["alert_id"], "firing"), (fired["alert_id"], "resolved"),
    ]
    resolved = records[1]
    assert (resolved["summary"], resolved["severity"]) == ("new ta-trach: 60.0 m", "critical")
    assert resolved["starts_at"] == fired["starts_at"]
    assert worker.alive(), worker.output()
