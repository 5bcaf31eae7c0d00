"""docker-compose.yml cannot run here (no Docker engine): what can be checked without one is that
every file it mounts or builds from exists and that the configurations it names are in them."""

from __future__ import annotations

import yaml

from ioc.config import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_the_services_of_the_issue_are_there() -> None:
    assert set(COMPOSE["services"]) == {"kafka", "worker", "simulator", "prometheus", "alertmanager", "grafana"}
    assert "broker,controller" in COMPOSE["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft


def test_every_mounted_path_and_named_config_exists() -> None:
    for name, service in COMPOSE["services"].items():
        if service.get("build"):
            assert (REPO_ROOT / service["build"] / "Dockerfile").exists(), name
        mounts = {}
        for volume in service.get("volumes", ()):
            source, target = volume.split(":")[:2]
            assert (REPO_ROOT / source).exists(), f"{name}: {source}"
            mounts[target] = REPO_ROOT / source
        for arg in service.get("command", ()):
            if str(arg).startswith("--config.file="):
                path = str(arg).split("=", 1)[1]
                folder = next(target for target in mounts if path.startswith(target + "/"))
                assert (mounts[folder] / path[len(folder) + 1:]).exists(), f"{name}: {path}"


def test_the_worker_is_scraped_and_sends_to_alertmanager_in_compose() -> None:
    worker = COMPOSE["services"]["worker"]["environment"]
    prometheus = yaml.safe_load((REPO_ROOT / "config" / "prometheus" / "prometheus-compose.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == [f"worker:{worker['IOC_METRICS_PORT']}"]
    assert worker["IOC_ALERTMANAGER_URL"] == "http://alertmanager:9093"
