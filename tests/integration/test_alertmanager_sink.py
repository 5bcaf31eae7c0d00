"""The Alertmanager sink against a real Alertmanager (Debian's, on 127.0.0.1, started here): a
worker started while Alertmanager is away keeps trying, then Alertmanager holds the firing alert
with its labels and annotations (checked through its v2 API) and routes its resolution to a
webhook receiver; a worker that takes over after a crash re-reads the partition but does not
fire the resolved alert again."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from conftest import wait_for
from kafka_io import read, send
from prom_server import AlertmanagerServer, _free_port

from ioc.alerts import fingerprint
from ioc.config import load_settings
from ioc.kafka.topics import catalogue, ensure_topics
from ioc.timeutil import format_ts, parse_ts

pytestmark = pytest.mark.integration

T0 = parse_ts("2025-10-27T08:00:00+07:00")
RULE = "reservoir.level.at_nwl"


def _event(minutes: int, level: float, source: str = "ta-trach") -> tuple[bytes, bytes]:
    body = {"source_id": source, "ts": format_ts(T0 + minutes * 60), "id": f"{source}-{minutes:03d}",
            "level_m": level, "inflow_m3s": 4200.0}
    return source.encode(), orjson.dumps(body)


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Hook", (_Webhook,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def _notified(received: list[dict[str, Any]], status: str, source: str = "ta-trach") -> list[dict[str, Any]]:
    return [alert for message in received for alert in message["alerts"]
            if alert["status"] == status and alert["labels"].get("alertname") == RULE
            and alert["labels"].get("source_id") == source and "escalation" not in alert["labels"]]


def test_firing_then_resolved_reach_alertmanager_after_it_was_away(
        broker_url, topic_prefix, start_worker, webhook, tmp_path):
    hook_url, received = webhook
    port = _free_port()
    # One partition: the alert records of both workers below are in one offset order.
    env = {"IOC_ALERTMANAGER_URL": f"http://127.0.0.1:{port}", "IOC_PARTITIONS": "1"}
    ensure_topics(broker_url, catalogue(load_settings(env={"IOC_TOPIC_PREFIX": topic_prefix, **env})))
    worker = start_worker(topic_prefix, env)
    send(broker_url, f"{topic_prefix}raw.reservoir", [_event(0, 44.6), _event(15, 45.1), _event(20, 45.2)])
    read(broker_url, f"{topic_prefix}alerts", expect=2, timeout=90)

    # Alertmanager is not there yet: the sink keeps the alerts and tries again.
    assert wait_for(lambda: worker.metric("ioc_alertmanager_alerts_total") > 0
                    and worker.metric("ioc_alertmanager_pending") > 0, 30), worker.output()
    assert worker.metric("ioc_alertmanager_alerts_total", result="retry") > 0
    assert worker.metric("ioc_alertmanager_alerts_total", result="sent") == 0

    manager = AlertmanagerServer(tmp_path / "alertmanager", hook_url, port=port)
    try:
        def held(source: str = "ta-trach") -> dict[str, Any] | None:
            found = [a for a in manager.alerts() if a["labels"].get("alertname") == RULE
                     and a["labels"].get("source_id") == source and "escalation" not in a["labels"]]
            return found[0] if found else None

        def not_active() -> bool:
            alert = held()
            return alert is None or alert["status"]["state"] != "active"

        alert = wait_for(held, 60)
        assert alert, worker.output()
        fp = fingerprint(RULE, {"source_id": "ta-trach"})
        assert alert["status"]["state"] == "active"
        assert {k: alert["labels"][k] for k in ("rule_id", "severity", "stream", "kind", "domain", "source_id",
                                                "agency")} == {
            "rule_id": RULE, "severity": "critical", "stream": "reservoir", "kind": "threshold",
            "domain": "water", "source_id": "ta-trach", "agency": "Sở NN&PTNT"}
        annotations = alert["annotations"]
        assert annotations["alert_id"] == f"{fp}-{round((T0 + 15 * 60) * 1000)}"
        assert annotations["fingerprint"] == fp
        assert annotations["summary"].startswith("Hồ Tả Trạch")
        assert annotations["rule"].startswith("rules/reservoir.yaml:")
        assert alert["startsAt"].startswith(format_ts(T0 + 15 * 60)[:19])
        assert wait_for(lambda: _notified(received, "firing"), 30), received
        assert wait_for(lambda: worker.metric("ioc_alertmanager_pending") == 0, 30)

        # The level goes down: the resolution reaches the receiver, and Alertmanager drops it.
        send(broker_url, f"{topic_prefix}raw.reservoir", [_event(25, 44.0)])
        resolved = wait_for(lambda: _notified(received, "resolved"), 60)
        assert resolved, (received, worker.output())
        assert resolved[0]["annotations"]["alert_id"] == annotations["alert_id"]
        assert resolved[0]["endsAt"].startswith(format_ts(T0 + 25 * 60)[:19])
        assert wait_for(not_active, 30)
        assert worker.alive(), worker.output()

        # A crash, and another worker takes the partition over from the last committed offset:
        # it re-reads what was posted, but the resolved alert does not fire again.
        worker.kill()
        successor = start_worker(topic_prefix, env)
        send(broker_url, f"{topic_prefix}raw.reservoir",
             [_event(30, 85.2, "binh-dien"), _event(40, 85.3, "binh-dien")])
        assert wait_for(lambda: held("binh-dien"), 90), successor.output()  # read past the old records
        wait_for(lambda: False, 3)  # a firing posted again would have been notified within this
        assert len(_notified(received, "firing")) == 1, received
        assert not_active()
        assert successor.alive(), successor.output()
    finally:
        manager.stop()
