"""Run one worker: the engine side from `ioc.runtime.runner` behind the Faust app of `streams.app`.

>>> run_worker(settings, "kafka://127.0.0.1:9092", duration=60)     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ioc.alerts import Alert
from ioc.config import Settings
from ioc.kafka.clients import client_options
from ioc.kafka.topics import catalogue, ensure_topics
from ioc.runtime.reload import RuleReloader
from ioc.runtime.runner import MetricsServer, WorkerParts, build_worker, load_ruleset, watched_files
from streams.app import build_app

__all__ = ["run_worker"]


def run_worker(
    settings: Settings,
    broker_url: str,
    *,
    duration: float | None = None,
    listeners: Sequence[Callable[[Sequence[Alert]], None]] = (),
    on_ready: Callable[[MetricsServer, WorkerParts], None] | None = None,
    loglevel: str = "WARNING",
) -> WorkerParts:
    """Run one worker until stopped (SIGINT/SIGTERM) or for `duration` seconds."""
    parts = build_worker(settings)
    ensure_topics(broker_url, catalogue(settings, parts.plan.spaces), settings.topics.replication,
                  client_options(settings))
    server = MetricsServer.start(parts.registry, settings.metrics.host, settings.metrics.port)
    try:
        reloader = RuleReloader(lambda: load_ruleset(settings), lambda ruleset: ([], []), parts.metrics,
                                lambda: watched_files(settings), running=len(parts.ruleset),
                                load_s=settings.limits.rule_load_s)
        ioc_app = build_app(settings, broker_url, parts, reloader)
        ioc_app.listeners.extend(listeners)
        if on_ready is not None:
            on_ready(server, parts)
        ioc_app.run(loglevel=loglevel, stop_after=duration)
    finally:
        server.stop()
    return parts
