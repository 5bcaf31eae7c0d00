"""`ioc demo`: broker, topics, simulator, worker and metrics in one command.

Starts the embedded broker (unless IOC_BROKER is set), creates the topics, publishes a
scenario for all five streams (default `storm-day`: a flood on the Hương river, vessels,
city cameras, cyber attacks, press; event time runs 600 times faster than the clock), runs a
worker and serves `/metrics`; prints alerts as they fire, and simulated operators acknowledge
and resolve them on `ioc.alert-actions`. Ctrl-C, or `--duration N`, stops everything it started.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import secrets
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from ioc.alerts import Alert
from ioc.cli.common import add_common, console, fail, settings_from, setup_logging
from ioc.cli.display import alert_line
from ioc.cli.simulate import demo_start, publish_scenario
from ioc.config import REPO_ROOT
from ioc.events import STREAMS
from ioc.kafka.broker import broker_for
from ioc.kafka.topics import raw_topic
from ioc.runtime.runner import MetricsServer, WorkerParts
from ioc.timeutil import format_duration
from sensors_sim.operators import OperatorSimulator
from sensors_sim.publish import PublishStats, make_producer
from sensors_sim.scenario import Scenario, ScenarioError, ScenarioRun, build, load_scenario

__all__ = ["register", "scenario_episodes", "sla_line"]

SLA_SNAPSHOT_S = 10.0  # the demo's sla.snapshot_s, and how often it prints its SLA line


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo", help="run everything: broker, simulator, worker, metrics",
        description="Start the embedded broker (unless IOC_BROKER is set), create the topics, run a scenario "
                    "over the five streams (a flood on the Huong river, vessels, cameras, cyber attacks, press), "
                    "run a worker with the shipped rules, serve /metrics and print alerts as they fire. "
                    "Ctrl-C or --duration stops everything it started.",
    )
    add_common(parser)
    parser.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    parser.add_argument("--scenario", default="storm-day", help="scenario to run (default storm-day; see ioc simulate)")
    parser.add_argument("--speed", type=float, default=600.0,
                        help="event time runs this many times faster than the clock (default 600: 1 h in 6 s)")
    parser.add_argument("--rate", type=float, default=0.0, help="at most this many events per second (0: no cap)")
    parser.add_argument("--bad-rate", type=float, default=0.001,
                        help="share of extra malformed messages, to show the dead-letter path (default 0.001)")
    parser.add_argument("--seed", type=int, default=0, help="simulation seed")
    parser.add_argument("--metrics-port", type=int, help="Prometheus /metrics port (default 9108; 0: free port)")
    parser.add_argument("--web-port", type=int,
                        help="the operator console's port (default: worker.web_port, else a free port)")
    parser.set_defaults(run=run)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def console_url(port: int, token: str) -> str:
    """The console's address as the demo prints it: the token rides in the fragment (never sent to
    the server in a request line or logged; the page keeps it for the tab).

    >>> console_url(6066, "abc")
    'http://127.0.0.1:6066/console/#token=abc'
    """
    return f"http://127.0.0.1:{port}/console/#token={token}"


def scenario_episodes(scenario: Scenario, start: float, seed: int) -> Iterator[ScenarioRun]:
    """One run of the scenario after another (seeds counting up), each where the last ended."""
    for number in itertools.count():
        yield build(scenario, seed=seed + number, start=start + number * scenario.duration_s)


def run(args: argparse.Namespace) -> int:
    # The scenario's event time runs --speed times faster and starts days back: SLA deadlines are
    # counted on it (sla.clock=event), and the figures refreshed often enough for the live line.
    settings = settings_from(args, **{"metrics.port": args.metrics_port, "sla.clock": "event",
                                      "sla.snapshot_s": SLA_SNAPSHOT_S, "worker.web_port": args.web_port})
    # The operator console: on the configured web port (else a free one), with the configured
    # token (else one made for this run, printed in the console's URL).
    settings = settings.model_copy(update={
        "worker": settings.worker.model_copy(update={"web_port": settings.worker.web_port or _free_port()}),
        "console": settings.console.model_copy(update={"token": settings.console.token
                                                       or secrets.token_urlsafe(16)}),
    })
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        return fail(str(exc))
    if args.speed <= 0:
        return fail("--speed must be more than 0")
    if not 0 <= args.bad_rate <= 1:
        return fail(f"--bad-rate {args.bad_rate} must be between 0 and 1")
    setup_logging("WARNING")
    # The malformed messages of --bad-rate are counted in the summary, not logged one by one.
    logging.getLogger("ioc.runtime.pipeline").setLevel(logging.ERROR)
    stop = threading.Event()
    stats: list[PublishStats] = []
    seen: list[Alert] = []

    operators = OperatorSimulator(seed=args.seed, settings=settings.sla)
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

        topics = {stream: raw_topic(settings, stream) for stream in scenario.streams}

        def simulate() -> None:
            for episode in scenario_episodes(scenario, demo_start(), args.seed):
                stats.append(publish_scenario(url, episode, topics, rate=args.rate, speed=args.speed,
                                              bad_rate=args.bad_rate, seed=args.seed, stop=stop))
                if stop.is_set():
                    return

        def ready(server: MetricsServer, parts: WorkerParts) -> None:
            console.print(f"  rules     {len(parts.ruleset)} loaded from {', '.join(settings.rules)}")
            console.print(f"  metrics   {server.url} (Prometheus format; scrape it with "
                          f"config/prometheus/prometheus.yml, which loads the recording and alerting rules)")
            console.print("  Grafana   dashboards in config/grafana/dashboards/*.json: import them (Dashboards > New > "
                          "Import) or provision config/grafana/provisioning (config/grafana/README.md)")
            console.print(f"  alerts    topic {settings.topic('alerts')}: "
                          f"ioc alerts tail --broker {url}")
            console.print(f"  SLA       topics {settings.topic('alert-state')} (each alert's state), "
                          f"{settings.topic('sla')} (figures), {settings.topic('notifications')}; "
                          f"ioc alerts ack|resolve, ioc silences add (README: Alert lifecycle and SLA)")
            url_of_console = console_url(settings.worker.web_port, settings.console.token)
            console.print(f"  console   {url_of_console} (the live alert board and map; JSON at /api/alerts, "
                          "README: Operator console)", soft_wrap=True)
            console.print(f"  scenario  {scenario.name}: {scenario.description}")
            console.print(f"            streams {', '.join(scenario.streams)}; {len(scenario.incidents)} incidents "
                          f"every {format_duration(scenario.duration_s)} of event time, {args.speed:g}x "
                          f"(1 h of event time in {3600 / args.speed:.0f} s)")
            console.print("  waiting for the worker to join its group (a few seconds)...", style="dim")
            console.print("  times below are event times in Hue (ICT, UTC+7); Ctrl-C stops the demo", style="dim")
            thread.start()
            threading.Thread(target=sla_status, args=(parts,), name="ioc-sla-line", daemon=True).start()

        def sla_status(parts: WorkerParts) -> None:
            while not stop.wait(SLA_SNAPSHOT_S):
                console.print(sla_line(parts.registry), style="dim")

        thread = threading.Thread(target=simulate, name="ioc-simulator", daemon=True)
        producer.append(make_producer(url))
        try:
            from streams.worker import run_worker  # Faust is loaded only to run a worker

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
    processed = {
        stream: int(registry.get_sample_value("ioc_events_total", {"stream": stream}) or 0) for stream in STREAMS
    }
    sent = sum(s.sent for s in stats)
    firing = [a for a in seen if a.status == "firing"]
    by_stream = {stream: sum(1 for a in firing if a.stream == stream) for stream in STREAMS}
    dead = int(_sum(registry, "ioc_events_invalid_total") or 0)
    console.print(
        f"[bold]demo ended[/]: {sent:,} events published, {sum(processed.values()):,} processed, "
        f"{dead:,} malformed to the dead-letter topic, {len(firing)} alerts fired, {len(seen) - len(firing)} resolved"
    )
    console.print("  alerts fired by stream: " + ", ".join(f"{s} {n}" for s, n in by_stream.items()))
    console.print(sla_line(registry, final=True))


def _sum(registry: Any, name: str, **labels: str) -> float | None:
    """Sum of a metric's samples whose labels include `labels` (None when there is none)."""
    values = [sample.value for metric in registry.collect() for sample in metric.samples
              if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())]
    return sum(values) if values else None


def sla_line(registry: Any, *, final: bool = False) -> str:
    """The SLA status line from the worker's `ioc_sla_*` metrics (the figures over the last 30
    days of event time, refreshed every sla.snapshot_s) and `ioc_notifications_total`.

    >>> from prometheus_client import CollectorRegistry
    >>> sla_line(CollectorRegistry())
    '  SLA   ack on time -, resolve on time -, overdue now 0 ack / 0 resolve, escalations 0, notifications 0'
    """
    def ratio(deadline: str) -> str:
        value = registry.get_sample_value("ioc_sla_on_time_ratio",
                                          {"domain": "all", "window": "30d", "deadline": deadline})
        return "-" if value is None else f"{value:.0%}"

    overdue = _sum(registry, "ioc_sla_overdue", deadline="resolve") or 0
    late_ack = _sum(registry, "ioc_sla_overdue", deadline="ack") or 0
    escalations = _sum(registry, "ioc_sla_escalations_total") or 0
    notifications = _sum(registry, "ioc_notifications_total") or 0
    head = "[bold]SLA[/] (final)" if final else "  SLA  "
    # Counted per deadline: an alert past both is in both.
    return (f"{head} ack on time {ratio('ack')}, resolve on time {ratio('resolve')}, "
            f"overdue now {late_ack:g} ack / {overdue:g} resolve, escalations {escalations:g}, "
            f"notifications {notifications:g}")
