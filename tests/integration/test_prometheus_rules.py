"""The Prometheus configuration and rules in config/prometheus, checked by Prometheus' own
`promtool` (from the Debian package `make test` unpacks), and config/alertmanager by `amtool`:
the configurations and the rules are
valid, every alerting rule has a test case that fires it, the test cases pass, and every
`ioc_*` metric the rules read is one the worker serves."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prom_server import alertmanager_binary, prometheus_binary
from prometheus_client import CollectorRegistry

from ioc.alertmanager.metrics import AlertmanagerMetrics
from ioc.config import REPO_ROOT
from ioc.metrics import IocMetrics
from ioc.sla.sla_metrics import SlaMetrics
from streams.cluster_runner import NotifyMetrics

pytestmark = pytest.mark.integration

HERE = REPO_ROOT / "config" / "prometheus"


def _promtool() -> str:
    beside = Path(prometheus_binary()).with_name("promtool")
    path = str(beside) if beside.exists() else shutil.which("promtool")
    assert path, "no promtool next to the Prometheus binary `make test` provides"
    return path


def _run(*args: str) -> str:
    done = subprocess.run([_promtool(), *args], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_checks_the_configuration_and_the_rules() -> None:
    assert "SUCCESS" in _run("check", "config", "prometheus.yml")
    assert "SUCCESS" in _run("check", "config", "prometheus-compose.yml")  # docker-compose.yml's
    assert "SUCCESS" in _run("check", "rules", *sorted(str(p.relative_to(HERE)) for p in HERE.glob("rules/*.yml")))


def test_every_alerting_rule_has_a_test_that_fires_it_and_the_tests_pass() -> None:
    rules = yaml.safe_load((HERE / "rules" / "ioc-alerts.yml").read_text(encoding="utf-8"))
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}
    tests = yaml.safe_load((HERE / "tests" / "ioc-alerts.test.yml").read_text(encoding="utf-8"))
    fired = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", ())
             if case.get("exp_alerts")}
    quiet = {case["alertname"] for test in tests["tests"] for case in test.get("alert_rule_test", ())
             if not case.get("exp_alerts")}
    assert alerts and alerts == fired, f"without a firing test case: {sorted(alerts - fired)}"
    assert alerts == quiet, f"without a case where it does not fire yet: {sorted(alerts - quiet)}"
    assert "SUCCESS" in _run("test", "rules", "tests/ioc-alerts.test.yml")


def test_the_rules_read_only_metrics_the_worker_serves() -> None:
    registry = CollectorRegistry()
    IocMetrics(registry)
    SlaMetrics(registry)
    NotifyMetrics(registry)
    AlertmanagerMetrics(registry)
    served = {sample.name for family in registry.collect() for sample in family.samples}
    served |= {family.name for family in registry.collect()}
    served |= {f"{family.name}_{suffix}" for family in registry.collect() if family.type == "histogram"
               for suffix in ("bucket", "sum", "count")}
    served |= {f"{family.name}_total" for family in registry.collect() if family.type == "counter"}
    used = set()
    for path in HERE.glob("rules/*.yml"):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                used |= set(re.findall(r"\bioc_[a-z_]+", rule["expr"]))
    assert used and used <= served, f"not served by a worker: {sorted(used - served)}"


def test_amtool_checks_the_alertmanager_configuration() -> None:
    amtool = Path(alertmanager_binary()).with_name("amtool")
    assert amtool.exists(), "no amtool next to the Alertmanager binary `make test` provides"
    config = REPO_ROOT / "config" / "alertmanager" / "alertmanager.yml"
    done = subprocess.run([str(amtool), "check-config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr
