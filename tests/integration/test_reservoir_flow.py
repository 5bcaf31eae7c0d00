"""Reservoir events through a real broker and a real worker: alerts and dead letters."""

from __future__ import annotations

import orjson
import pytest
from kafka_io import read, send

from ioc.alerts import fingerprint
from ioc.timeutil import format_ts, parse_ts

pytestmark = pytest.mark.integration

T0 = parse_ts("2025-10-27T08:00:00+07:00")
KEY = b"ta-trach"


def _event(minutes: int, level: float, **extra: object) -> tuple[bytes, bytes]:
    body = {"source_id": "ta-trach", "ts": format_ts(T0 + minutes * 60), "id": f"tt-{minutes:03d}",
            "level_m": level, "inflow_m3s": 4200.0, **extra}
    return KEY, orjson.dumps(body)


# Tả Trạch (NWL 45 m): near NWL from minute 0, at NWL from minute 15, back down at minute 25.
GOOD_BEFORE = [_event(0, 44.6), _event(5, 44.7)]
BAD = [
    (KEY, b'{"source_id": "ta-trach", "ts": '),                                 # broken JSON
    (KEY, b'{"source_id": "ta-trach", "level_m": 44.9}'),                       # no ts
    (KEY, b'{"source_id": "ta-trach", "ts": 1761526800, "level_m": "high"}'),   # wrong type
]
GOOD_AFTER = [_event(10, 44.8), _event(15, 45.1), _event(20, 45.2), _event(25, 44.0)]


def _expected(rule_id: str, start_min: int, end_min: int | None, status: str) -> dict[str, object]:
    fp = fingerprint(rule_id, {"source_id": "ta-trach"})
    return {
        "fingerprint": fp,
        "alert_id": f"{fp}-{round((T0 + start_min * 60) * 1000)}",
        "rule_id": rule_id,
        "stream": "reservoir",
        "kind": "threshold",
        "status": status,
        "key": {"source_id": "ta-trach"},
        "starts_at": format_ts(T0 + start_min * 60),
        "ends_at": format_ts(T0 + end_min * 60) if end_min is not None else None,
    }


def _run_flow(broker_url: str, prefix: str, start_worker) -> tuple[list, list, object]:  # type: ignore[no-untyped-def]
    worker = start_worker(prefix)
    send(broker_url, f"{prefix}raw.reservoir", GOOD_BEFORE + BAD + GOOD_AFTER)
    alerts = read(broker_url, f"{prefix}alerts", expect=4, timeout=90)
    letters = read(broker_url, f"{prefix}deadletter", expect=3, timeout=30)
    return alerts, letters, worker


def test_threshold_alerts_and_dead_letters_through_the_broker(broker_url, topic_prefix, start_worker):
    alerts, letters, worker = _run_flow(broker_url, topic_prefix, start_worker)

    assert worker.alive(), worker.output()
    # Alerts are keyed by fingerprint, so they spread over partitions: compare in a fixed order.
    alerts = sorted(alerts, key=lambda a: (a[1]["status"] == "resolved", a[1]["starts_at"]))
    records = [value for _, value in alerts]
    keys = [key for key, _ in alerts]
    assert len(records) == 4, records
    picked = [{name: r[name] for name in _expected("x", 0, None, "firing")} for r in records]
    assert picked == [
        _expected("reservoir.level.near_nwl", 0, None, "firing"),
        _expected("reservoir.level.at_nwl", 15, None, "firing"),
        _expected("reservoir.level.near_nwl", 0, 25, "resolved"),
        _expected("reservoir.level.at_nwl", 15, 25, "resolved"),
    ]
    assert keys == [r["fingerprint"].encode() for r in records]

    near = records[0]
    assert near["severity"] == "warning"
    assert near["labels"] == {"domain": "water", "agency": "Sở NN&PTNT"}
    assert near["summary"] == (
        "Hồ Tả Trạch: mực nước 44.80 m, còn dưới 0,5 m đến mực nước dâng bình thường 45.0 m"
    )
    assert near["value"] == 44.8
    assert near["evidence"] == ["tt-000", "tt-005", "tt-010"]
    assert near["sla"] == {"ack_by": format_ts(T0 + 15 * 60), "resolve_by": format_ts(T0 + 6 * 3600)}
    assert near["detected_at"].endswith("Z")

    reasons = sorted(value["reason"] for _, value in letters)
    assert reasons == ["bad_json", "missing_field", "wrong_type"]
    for key, value in letters:
        assert key == KEY
        assert value["topic"] == f"{topic_prefix}raw.reservoir"
        assert value["stream"] == "reservoir"
        assert isinstance(value["offset"], int) and isinstance(value["partition"], int)
        assert value["error"]
    by_reason = {value["reason"]: value for _, value in letters}
    assert by_reason["missing_field"]["error"] == "missing required field 'ts'"
    assert "level_m" in by_reason["wrong_type"]["error"]
    assert by_reason["bad_json"]["value"] == '{"source_id": "ta-trach", "ts": '


def test_replaying_the_same_input_gives_the_same_alert_ids(broker_url, start_worker):
    first, _, _ = _run_flow(broker_url, "replay-a.", start_worker)
    second, _, _ = _run_flow(broker_url, "replay-b.", start_worker)

    ids_first = sorted((v["alert_id"], v["status"]) for _, v in first)
    ids_second = sorted((v["alert_id"], v["status"]) for _, v in second)
    assert len(ids_first) == 4
    assert ids_first == ids_second


def test_alerts_tail_shows_the_alerts_as_json_and_coloured_lines(broker_url, topic_prefix, start_worker):
    import os
    import subprocess
    import sys

    from conftest import REPO

    alerts, _, _ = _run_flow(broker_url, topic_prefix, start_worker)
    assert len(alerts) == 4
    env = {**os.environ, "IOC_TOPIC_PREFIX": topic_prefix, "COLUMNS": "200"}
    base = [sys.executable, "-m", "ioc.cli.main", "alerts", "tail", "--broker", broker_url, "--from-beginning"]

    # The topic also holds the SLA tracker's escalations of these (2025) alerts, overdue on the
    # wall clock: the tail shows them too, and they are told apart here.
    as_json = subprocess.run(base + ["--json", "--timeout", "8"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert as_json.returncode == 0, as_json.stderr
    lines = [orjson.loads(line) for line in as_json.stdout.splitlines()]
    lines = [r for r in lines if not r["labels"].get("escalation")]
    assert sorted((r["rule_id"], r["status"]) for r in lines) == sorted((v["rule_id"], v["status"]) for _, v in alerts)

    as_text = subprocess.run(base + ["--timeout", "8"], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=60)
    assert as_text.returncode == 0, as_text.stderr
    engine = [line for line in as_text.stdout.splitlines() if "Quá hạn" not in line]
    assert sum(line.count("FIRING") for line in engine) == 2
    assert as_text.stdout.count("RESOLVED") == 2
    assert "Hồ Tả Trạch: mực nước 44.80 m" in as_text.stdout
