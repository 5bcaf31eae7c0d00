"""Label cardinality stays bounded: a worker that meets 10,000 new sensor ids (cameras, vessels,
reservoir sensors, attacking IPs, press outlets, and malformed messages from them) serves the
same series as before, and no label of any series holds one of those ids."""

from __future__ import annotations

import re
import time
import urllib.request

import orjson
import pytest
from conftest import wait_for
from kafka_io import send

from ioc.timeutil import format_ts

pytestmark = pytest.mark.integration

SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? \S+$", re.M)


def _events(stream: str, n: int, now: float) -> tuple[bytes, bytes]:
    """Event n of `stream`, from sensor n (each of the kinds the rules key on), stamped about now:
    the worker's idle clock follows the wall clock, so older events would be late."""
    ts = format_ts(round(now, 3))
    body: dict[str, object] = {
        "camera": {"source_id": f"cam-{n}", "ts": ts, "event_type": "wrong_way",
                   "plate": f"75A-{n:05d}", "score": 0.9},
        "reservoir": {"source_id": f"res-{n}", "ts": ts, "level_m": 12.0, "rain_mm_1h": 80.0},
        "vessel": {"source_id": f"QT-{n:05d}-TS", "ts": ts, "lat": 16.7, "lon": 107.9, "sog_kn": 6.0},
        "cyber": {"source_id": f"fw-{n % 7}", "ts": ts, "event_action": "authentication", "event_outcome": "failure",
                  "src_ip": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}", "user": f"u{n}"},
        "press": {"source_id": f"outlet-{n}", "ts": ts, "title": f"Tin {n}", "lang": "vi", "sentiment": -0.8},
    }[stream]
    return str(body["source_id"]).encode(), orjson.dumps(body)


def _send_ids(broker_url: str, prefix: str, ids: range) -> int:
    sent = 0
    for stream in ("camera", "reservoir", "vessel", "cyber", "press"):
        now = time.time()
        records = [_events(stream, n, now) for n in ids]
        # one malformed message per hundred sensors: dead letters are counted by reason, not by sender
        records += [(f"bad-{n}".encode(), b'{"source_id": "bad-%d", "ts": ' % n) for n in ids if n % 100 == 0]
        send(broker_url, f"{prefix}raw.{stream}", records, batched=True)
        sent += len(records)
    return sent


def _scrape(url: str) -> tuple[set[str], str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - our own 127.0.0.1 endpoint
        text = response.read().decode()
    return {f"{name}{labels or ''}" for name, labels in SERIES.findall(text)}, text


def _settled(url: str, quiet_s: float = 8.0, timeout: float = 90.0) -> tuple[set[str], str]:
    """The series once no new one appeared for `quiet_s` (absence rules, escalation levels and
    SLA figures follow the first alerts by a few seconds)."""
    series, text = _scrape(url)

    def unchanged() -> bool:
        nonlocal series, text
        wait_for(lambda: False, quiet_s)
        again, text = _scrape(url)
        same, series = again == series, again
        return same

    assert wait_for(unchanged, timeout, interval=0), "the series kept changing"
    return series, text


def test_ten_thousand_new_sensor_ids_add_no_series(broker_url, topic_prefix, start_worker):
    worker = start_worker(topic_prefix)
    first = _send_ids(broker_url, topic_prefix, range(100))
    taken = lambda: worker.metric("ioc_events_total") + worker.metric("ioc_events_invalid_total")  # noqa: E731
    assert wait_for(lambda: taken() >= first, 120), worker.output()
    url = worker.metrics_url()
    assert url is not None
    before, _ = _settled(url)

    new_ids = range(100, 2100)  # 2,000 per stream: 10,000 new sensors
    second = _send_ids(broker_url, topic_prefix, new_ids)
    assert wait_for(lambda: taken() >= first + second, 300), worker.output()
    after, text = _settled(url)

    assert worker.metric("ioc_alerts_total", rule_id="camera.wrong_way.detected") >= 2100  # one per camera
    grown = sorted(after - before)
    assert not grown, f"{len(grown)} new series, e.g. {grown[:10]}"
    labels = " ".join(line for line in text.splitlines() if not line.startswith("#"))
    leaked = [token for token in ("cam-1999", "res-1999", "QT-01999-TS", "10.0.7.207", "outlet-1999", "bad-1900")
              if token in labels]
    assert not leaked, leaked
