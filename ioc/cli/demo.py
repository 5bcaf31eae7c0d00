"""`ioc demo`: broker, topics, simulator, worker and metrics in one command.

Starts the embedded broker (unless IOC_BROKER is set), creates the topics, publishes a
simulated flood on the Hương river (event time compressed: about 25 minutes of event time
per second), runs a worker and serves `/metrics`; prints alerts as they fire. Ctrl-C, or
`--duration N`, stops everything it started.
"""

from __future__ import annotations

import argparse
import itertools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ioc.alerts import Alert
from ioc.broker import broker_for
from ioc.cli.common import add_common, console, settings_from, setup_logging
from ioc.cli.display import alert_line
from ioc.cli.simulate import demo_start
from ioc.config import REPO_ROOT
from ioc.runner import MetricsServer, WorkerParts, run_worker
from ioc.topics import raw_topic
from sensors_sim.operators import OperatorSimulator
from sensors_sim.publish import PublishStats, make_producer, publish
from sensors_sim.reservoir import ReservoirSimulator, load_stations

__all__ = ["register", "flood_episodes"]

EPISODE_S = 48 * 3600.0
STEP_S = 300.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="run everything: broker, simulator, worker, metrics",
        description="Start the embedded broker (unless IOC_BROKER is set), create the topics, simulate a flood "
                    "on the Huong river, run a worker with the shipped rules, serve /metrics and print alerts "
                    "as they fire. Ctrl-C or --duration stops everything it started.",
    )
    add_common(parser)
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--rate", type=float, default=25.0, help="simulated events per second (default 25)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default 9108; 0: free port)")
    parser.set_defaults(run=run)


def flood_episodes(start: float, seed: int) -> Iterator[dict[str, Any]]:
    """Endless reservoir events: one 48 h flood episode after another, seeds counting up."""
    stations = load_stations()
    for number in itertools.count():
        simulator = ReservoirSimulator(stations, seed=seed + number, start=start + number * EPISODE_S,
                                       step_s=STEP_S)
        for event in simulator.events(EPISODE_S):
            # Ids restart with each episode's simulator: keep them unique across episodes.
            event["id"] = f"{event['id']}-e{number}"
            yield event


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, **{"metrics.port": args.metrics_port})
    setup_logging("WARNING")
    stop = threading.Event()
    stats: list[PublishStats] = []
    seen: list[Alert] = []

    operators = OperatorSimulator(seed=args.seed)
    producer: list[Any] = []
    actions_sent = [0]

    def show(alerts: Sequence[Alert]) -> None:
        seen.extend(alerts)
        for alert in alerts:
            record = alert.to_record()
            console.print(alert_line(record))
            # Simulated operators acknowledge and resolve (event-time `at`) on ioc.alert-actions.
            for action in operators.actions_for(record):
                if producer:
                    producer[0].send(settings.topic("alert-actions"), key=alert.fingerprint.encode(),
                                     value=orjson.dumps(action))
                    actions_sent[0] += 1

    with broker_for(settings, log_path=REPO_ROOT / ".ioc" / "broker.log") as url:
        embedded = "embedded Tansu, memory storage" if not settings.broker.url else "external"
        console.print(f"[bold]IOC demo[/]  broker {url} ({embedded})")

        def simulate() -> None:
            events = flood_episodes(demo_start(), args.seed)
            stats.append(publish(url, raw_topic(settings, "reservoir"), events, rate=args.rate, stop=stop))

        def ready(server: MetricsServer, parts: WorkerParts) -> None:
            console.print(f"  rules     {len(parts.ruleset)} loaded from {', '.join(settings.rules)}")
            console.print(f"  metrics   {server.url}")
            console.print(f"  alerts    topic {settings.topic('alerts')}: "
                          f"ioc alerts tail --broker {url}")
            console.print(f"  simulator reservoir + gauges of the Hương basin, {args.rate:g} events/s, "
                          "a flood every 48 h of event time (~25 min of event time per second)")
            console.print("  waiting for the worker to join its group (a few seconds)...", style="dim")
            console.print("  times below are event times in Hue (ICT, UTC+7); Ctrl-C stops the demo", style="dim")
            thread.start()

        thread = threading.Thread(target=simulate, name="ioc-simulator", daemon=True)
        producer.append(make_producer(url))
        try:
            parts = run_worker(settings, url, duration=args.duration, listeners=(show,), on_ready=ready)
        finally:
            stop.set()
            if thread.is_alive():
                thread.join(timeout=10)
            producer[0].close()
        _summary(parts, seen, stats, Path(settings.resolve(settings.rules[0])))
        console.print(f"operators: {actions_sent[0]} acknowledge/resolve actions on {settings.topic('alert-actions')}")
    return 0


def _summary(parts: WorkerParts, seen: list[Alert], stats: list[PublishStats], rules: Path) -> None:
    registry = parts.registry
    events = registry.get_sample_value("ioc_events_total", {"stream": "reservoir"}) or 0
    sent = stats[0].sent if stats else 0
    firing = sum(1 for a in seen if a.status == "firing")
    resolved = len(seen) - firing
    console.print(
        f"[bold]demo ended[/]: {sent} events published, {int(events)} processed, "
        f"{firing} alerts fired, {resolved} resolved"
    )
