"""The alert tracker in a real worker over a real broker: alert states on `alert-state`, an ack
from the shell (acceptance 5), a rejection for an unknown alert, escalations on `alerts` with the
event clock, and a SIGKILL between them (acceptance 4): nothing fired twice, the ack kept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from conftest import wait_for
from kafka_io import read, send
from scenario_io import runtime_config

from ioc.alerts import fingerprint
from ioc.config import REPO_ROOT
from ioc.timeutil import format_ts, parse_ts

pytestmark = pytest.mark.integration

T0 = parse_ts("2025-10-27T08:00:00+07:00")
RULE_ID = "test.reservoir.high"
RULES = {
    "defaults": {"stream": "reservoir", "kind": "threshold", "labels": {"domain": "water", "agency": "Sở NN&PTNT"}},
    "rules": [{"id": RULE_ID, "condition": "level_m >= 45", "severity": "critical",
               "summary": "{source_id}: {level_m} m", "sla": {"ack": "15m", "resolve": "1h"}}],
}


def _event(source: str, minutes: float, level: float) -> tuple[bytes, bytes]:
    body = {"source_id": source, "ts": format_ts(T0 + minutes * 60), "id": f"{source}-{minutes:g}",
            "level_m": level, "inflow_m3s": 100.0}
    return source.encode(), orjson.dumps(body)


def _alert_id(source: str, minutes: float) -> str:
    fp = fingerprint(RULE_ID, {"source_id": source})
    return f"{fp}-{round((T0 + minutes * 60) * 1000)}"


def _ioc(broker_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IOC_TOPIC_PREFIX": prefix}
    return subprocess.run([sys.executable, "-m", "ioc.cli.main", "alerts", *args, "--broker", broker_url],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)


def _states(broker_url: str, prefix: str, alert_id: str, until: str, timeout: float = 60) -> list[dict]:
    records = read(broker_url, f"{prefix}alert-state", expect=1, timeout=timeout,
                   until=lambda rs: any(v["alert_id"] == alert_id and until in (v["operator_status"], v["overdue"])
                                        for _, v in rs))
    return [v for _, v in records if v["alert_id"] == alert_id]


def _escalations(broker_url: str, prefix: str, expect: int, timeout: float = 60) -> list[dict]:
    records = read(broker_url, f"{prefix}alerts", expect=0, timeout=timeout, escalations=True,
                   until=lambda rs: sum(1 for _, v in rs if v["labels"].get("escalation")) >= expect)
    return [v for _, v in records if v["labels"].get("escalation")]


def test_tracker_in_the_worker_states_ack_rejection_escalations_and_a_crash(
    broker_url: str, topic_prefix: str, start_worker, tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "sla.yaml").write_text(yaml.safe_dump(RULES, allow_unicode=True), encoding="utf-8")
    config = runtime_config(tmp_path, checkpoint_s=1)
    data = yaml.safe_load(config.read_text(encoding="utf-8"))
    data["sla"]["clock"] = "event"
    data["rules"] = [str(rules)]
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    env = {"IOC_CONFIG": str(config)}
    prefix = topic_prefix
    worker = start_worker(prefix, env)

    # Tả Trạch fires at T0: its state appears, open.
    send(broker_url, f"{prefix}raw.reservoir", [_event("ta-trach", 0, 45.5)])
    ta_trach = _alert_id("ta-trach", 0)
    states = _states(broker_url, prefix, ta_trach, "open", timeout=90)
    assert states, worker.output()
    first = states[0]
    assert first["operator_status"] == "open" and first["severity"] == "critical"
    assert first["starts_at"] == format_ts(T0) and first["ack_by"] == format_ts(T0 + 900)
    assert first["resolve_by"] == format_ts(T0 + 3600) and first["acked_at"] is None

    # Acceptance 5: acknowledged from the shell, the state says so.
    acked = _ioc(broker_url, prefix, "ack", ta_trach, "--by", "truc-ban-1", "--at", format_ts(T0 + 300))
    assert acked.returncode == 0, acked.stderr
    states = _states(broker_url, prefix, ta_trach, "acked")
    assert states[-1]["operator_status"] == "acked", states
    assert states[-1]["acked_at"] == format_ts(T0 + 300) and states[-1]["acked_by"] == "truc-ban-1"

    # An action for an alert nobody raised: a rejection on `sla`, with its reason.
    unknown = "0123456789abcdef-1761526800000"
    assert _ioc(broker_url, prefix, "resolve", unknown, "--by", "x", "--at", format_ts(T0)).returncode == 0
    sla = read(broker_url, f"{prefix}sla", expect=1, timeout=60,
               until=lambda rs: any(k == f"rejection:{unknown}".encode() for k, _ in rs))
    rejections = [v for k, v in sla if k == f"rejection:{unknown}".encode()]
    assert [r["reason"] for r in rejections] == ["unknown alert_id: no such alert on ioc.alerts"], sla
    assert rejections[0]["source"] == "action" and rejections[0]["at"] == format_ts(T0)

    # Bình Điền fires at T0+90m: event time passes Tả Trạch's resolve deadline (T0+1h):
    # its level-1 resolve escalation, and none for its ack (acked on time).
    send(broker_url, f"{prefix}raw.reservoir", [_event("binh-dien", 90, 45.5)])
    escalations = _escalations(broker_url, prefix, 1)
    assert [_what(e) for e in escalations] == [(ta_trach, "resolve", "1")], escalations
    # Acceptance 4: a checkpoint is taken (checkpoint_s 1), then the worker crashes.
    time.sleep(4)
    worker.kill()
    second = start_worker(prefix, env)

    # Tả Trạch's level drops at T0+4h: its engine resolve moves event time past levels 2 and 3.
    send(broker_url, f"{prefix}raw.reservoir", [_event("ta-trach", 240, 44.0)])
    binh_dien = _alert_id("binh-dien", 90)
    # Bình Điền at T0+4h: ack levels 1-3 (T0+105m, 120m, 135m), resolve 1-2 (T0+150m, 210m).
    escalations = _escalations(broker_url, prefix, 1 + 2 + 5, timeout=120)
    time.sleep(3)  # anything doubled would come now
    escalations = _escalations(broker_url, prefix, 8)
    seen = sorted(_what(e) for e in escalations)
    assert seen == sorted([(ta_trach, "resolve", level) for level in "123"]
                          + [(binh_dien, "ack", level) for level in "123"]
                          + [(binh_dien, "resolve", level) for level in "12"]), (seen, second.output())
    # The ack survived the crash: the latest state of Tả Trạch still has it.
    latest = wait_for(lambda: (s := _states(broker_url, prefix, ta_trach, "resolve", timeout=10))
                      and s[-1]["status"] == "resolved" and s, 60)
    assert latest, second.output()
    assert latest[-1]["operator_status"] == "acked" and latest[-1]["acked_at"] == format_ts(T0 + 300)
    assert latest[-1]["escalation_level"] == 3 and latest[-1]["ends_at"] == format_ts(T0 + 240 * 60)
    assert worker.alive() is False and second.alive(), second.output()


def _what(escalation: dict[str, Any]) -> tuple[str, str, str]:
    """(escalated alert id, deadline, level) of an escalation record."""
    what = escalation["details"]["escalation"]
    return what["of_alert_id"], what["deadline"], escalation["labels"]["escalation"]
