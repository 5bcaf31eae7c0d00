"""`ioc demo --duration 90`: alerts appear, a real Prometheus scrapes the metrics with the shipped
recording rules, every query of every Grafana dashboard returns data, nothing is left running."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import REPO, wait_for
from prom_server import PrometheusServer, _free_port

pytestmark = [pytest.mark.e2e, pytest.mark.prometheus]

DASHBOARDS = REPO / "config" / "grafana" / "dashboards"
RULE_FILES = sorted((REPO / "config" / "prometheus" / "rules").glob("*.yml"))
# Grafana's variables as the dashboards use them, for a run of a minute and a half.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__range": "5m", "$__interval": "15s",
                     "${datasource}": "", "$reservoir": ".+"}
LABEL_VALUES = re.compile(r"^label_values\((.+),\s*(\w+)\)$")


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, PromQL) of every panel target and query variable of every
    dashboard, read from the files (a new panel is checked without a new test)."""
    from ioc.dashboards import queries

    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for title, expr in queries(orjson.loads(path.read_bytes())):
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            variable = LABEL_VALUES.match(expr.strip())
            if variable:  # a variable's values: the series that carry the label
                expr = f"group by ({variable.group(2)}) ({variable.group(1)})"
            found.append((path.name, title, expr))
    return found


def _empty_queries(prometheus: PrometheusServer, wanted: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    empty = []
    for query in wanted:
        result: list[dict[str, Any]] = prometheus.query(query[2])
        if not result:
            empty.append(query)
    return empty


def shipped_rules():  # type: ignore[no-untyped-def]
    from ioc.refdata import load_reference
    from ioc.rules.loader import load_rules

    return load_rules([REPO / "rules"], load_reference(REPO / "config" / "reference"))


def _json(url: str) -> dict:
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the demo's 127.0.0.1 console
            return json.loads(response.read())
    except OSError:
        return {}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_demo_alerts_metrics_and_clean_exit(tmp_path):
    metrics_port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="200")
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        demo = subprocess.Popen(
            [sys.executable, "-m", "ioc.cli.main", "demo", "--duration", "90", "--metrics-port", str(metrics_port)],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        prometheus = PrometheusServer(tmp_path / "prometheus", [f"127.0.0.1:{metrics_port}"], RULE_FILES)
        try:
            def output() -> str:
                return log_path.read_text(encoding="utf-8", errors="replace")

            assert wait_for(lambda: "metrics   http://" in output(), 60), output()
            children = wait_for(lambda: _children(demo.pid), 10)
            assert children, "the demo should run the embedded broker as a child process"

            assert wait_for(lambda: "FIRING" in output(), 55), output()
            assert wait_for(lambda: (prometheus.value("sum(ioc_alerts_total)") or 0) >= 1, 30)
            assert (prometheus.value('ioc_events_total{stream="reservoir"}') or 0) > 0
            assert prometheus.value("ioc_rules_loaded") == float(len(shipped_rules()))
            # The SLA figures and the notifications of the simulated operators' run.
            assert wait_for(lambda: prometheus.value('ioc_sla_on_time_ratio{domain="all",window="30d"}')
                            is not None, 50), output()
            assert wait_for(lambda: (prometheus.value("sum(ioc_notifications_total)") or 0) >= 1, 30), output()
            assert "Grafana   dashboards in config/grafana/dashboards/*.json" in output()
            # The operator console: the URL printed, its alerts served (the browser side is
            # tests/integration/test_console_browser.py).
            console = re.search(r"console   (http://127\.0\.0\.1:(\d+)/console/)#token=(\S+)", output())
            assert console, output()
            api = f"http://127.0.0.1:{console.group(2)}/api/alerts?limit=5"
            assert wait_for(lambda: _json(api).get("total", 0) >= 1, 30), output()

            # Every query of every dashboard panel returns at least one series through Prometheus.
            queries = dashboard_queries()
            assert len({q[0] for q in queries}) == 3 and len(queries) > 40
            missing = queries
            deadline = time.monotonic() + 60
            while missing and time.monotonic() < deadline and demo.poll() is None:
                missing = _empty_queries(prometheus, missing)
                time.sleep(1 if missing else 0)
            assert not missing, "\n".join(f"{board}: {title}: {expr}" for board, title, expr in missing)

            demo.wait(timeout=150)
        finally:
            if demo.poll() is None:
                demo.send_signal(signal.SIGTERM)
                demo.wait(timeout=30)
            prometheus.stop()
    text = log_path.read_text(encoding="utf-8")
    assert demo.returncode == 0, text
    assert re.search(r"demo ended.*, [1-9][\d,]* malformed to the dead-letter topic", text), text
    assert re.search(r"operators: [1-9]\d* acknowledge/resolve actions on ioc.alert-actions", text), text
    assert "reservoir.level" in text or "gauge.level" in text
    assert re.search(r"SLA +ack on time \d+%, resolve on time", text), text
    assert re.search(r"SLA \(final\) ack on time \d+%, resolve on time \d+%, overdue now \d+ ack / \d+ resolve, "
                     r"escalations \d+, notifications [1-9]\d*", text), text
    # Vietnamese summaries come through intact.
    assert "mực nước" in text
    time.sleep(0.5)
    assert [pid for pid in children if _running(pid)] == []
