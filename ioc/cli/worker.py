"""`ioc worker`: run one stream worker against the configured (or embedded) broker."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ioc.alerts import Alert
from ioc.cli.common import add_common, console, settings_from, setup_logging
from ioc.cli.display import alert_line
from ioc.kafka.broker import broker_for
from ioc.runtime.runner import MetricsServer, WorkerParts

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("worker", help="run one stream worker (joins the consumer group)")
    add_common(parser)
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (0: a free port)")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="do not print alerts")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, **{"metrics.port": args.metrics_port})
    setup_logging(settings.log_level)

    def ready(server: MetricsServer, parts: WorkerParts) -> None:
        console.print(f"worker up: {len(parts.ruleset)} rules, metrics at {server.url}")
        if settings.worker.web_port and settings.console.enabled:
            console.print(f"console at http://127.0.0.1:{settings.worker.web_port}/console/"
                          + ("" if settings.console.token else " (read only: no console.token)"))

    def show(alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            console.print(alert_line(alert.to_record()))

    with broker_for(settings) as url:
        console.print(f"broker: {url}")
        from streams.worker import run_worker  # Faust is loaded only to run a worker

        run_worker(settings, url, duration=args.duration, listeners=() if args.quiet else (show,), on_ready=ready)
    return 0
