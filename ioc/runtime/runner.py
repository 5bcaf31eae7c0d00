"""Assemble a worker's engine side: rules and their plan, metrics (server) and pipeline, no Faust.

`streams.worker.run_worker` puts these behind the Faust app; shared by `ioc worker` and `ioc demo`.

>>> parts = build_worker(settings)                                   # doctest: +SKIP
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from ioc.config import Settings
from ioc.events import STREAMS
from ioc.exceptions import IocError
from ioc.metrics import IocMetrics
from ioc.refdata import load_reference
from ioc.rules.loader import RuleSet, load_rules, rule_files
from ioc.runtime.host import HostSettings
from ioc.runtime.pipeline import Pipeline
from ioc.runtime.plan import Plan, plan_rules
from ioc.timeutil import parse_duration

__all__ = ["MetricsServer", "WorkerParts", "build_worker", "load_ruleset", "watched_files", "MetricsError"]

log = logging.getLogger(__name__)


class MetricsError(IocError):
    """The metrics endpoint cannot be served."""


@dataclass
class MetricsServer:
    """The Prometheus `/metrics` endpoint of one worker."""

    host: str
    port: int
    server: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    @classmethod
    def start(cls, registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
        try:
            server, _thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise MetricsError(
                    f"metrics port {port} on {host} is already in use: set metrics.port in config/ioc.yaml "
                    "or IOC_METRICS_PORT (0 picks a free port)"
                ) from None
            raise MetricsError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        return cls(host, int(server.server_address[1]), server)


@dataclass
class WorkerParts:
    ruleset: RuleSet
    plan: Plan
    metrics: IocMetrics
    pipeline: Pipeline
    registry: CollectorRegistry
    host_settings: HostSettings


def load_ruleset(settings: Settings) -> RuleSet:
    limits = settings.limits
    reference = load_reference(settings.resolve(settings.reference), max_bytes=limits.rule_file_bytes,
                               max_nodes=limits.yaml_nodes)
    return load_rules([settings.resolve(path) for path in settings.rules], reference, limits=settings.limits,
                      schemas=settings.schemas())


def watched_files(settings: Settings) -> list[Path]:
    """Files whose change reloads the rules: rule files, reference data, zone files, calendars of
    periods (`active:`)."""
    files = rule_files([settings.resolve(path) for path in settings.rules])
    for folder in (settings.resolve(settings.reference), settings.resolve("config/zones"),
                   settings.resolve("config/calendars")):
        if folder.is_dir():
            files.extend(sorted(p for p in folder.iterdir() if p.is_file()))
    return files


def host_settings(settings: Settings) -> HostSettings:
    """The shard host's settings from `worker.*`."""
    worker = settings.worker
    lateness = worker.allowed_lateness.strip()
    return HostSettings(
        lateness_s=0.0 if lateness in ("0", "0s") else parse_duration(lateness),
        idle_after_s=worker.idle_advance_s,
        idle_clock=worker.idle_clock,
        keys_per_rule=settings.limits.keys_per_rule,
        key_idle_s=settings.limits.key_idle_s,
    )


def build_worker(settings: Settings, registry: CollectorRegistry | None = None) -> WorkerParts:
    """Rules and their plan, metrics and pipeline, without Kafka (raises RuleError on bad rules)."""
    registry = registry if registry is not None else CollectorRegistry()
    ruleset = load_ruleset(settings)
    metrics = IocMetrics(registry)
    metrics.rules_running(len(ruleset), ruleset.version, ruleset.reference.rows("reservoir"))
    pipeline = Pipeline(metrics, max_future_s=settings.worker.max_future_s or None, limits=settings.limits,
                        schemas=settings.schemas())
    for stream in STREAMS:
        # Freshness is computed when scraped, so it keeps growing while a stream is silent.
        metrics.freshness.labels(stream=stream).set_function(_freshness(pipeline, stream))
    return WorkerParts(ruleset, plan_rules(ruleset), metrics, pipeline, registry, host_settings(settings))


def _freshness(pipeline: Pipeline, stream: str) -> Callable[[], float]:
    def seconds_since_last() -> float:
        last = pipeline.last_arrival.get(stream)
        return time.time() - last if last is not None else float("nan")

    return seconds_since_last
