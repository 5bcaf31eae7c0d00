"""`ioc alerts tail`: follow `ioc.alerts` in the terminal (severity coloured) or as JSON lines."""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from ioc.cli.common import console, fail, settings_from
from ioc.cli.display import alert_line
from ioc.kafka.clients import bootstrap_servers, client_options

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("alerts", help="follow alerts on the alerts topic")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    tail = actions.add_parser("tail", help="print alerts as they arrive (needs --broker or $IOC_BROKER)")
    tail.add_argument("--config", help="settings file (default: config/ioc.yaml, or $IOC_CONFIG)")
    tail.add_argument("--broker", help="Kafka URL, e.g. kafka://127.0.0.1:PORT as printed by ioc demo "
                                       "(default: $IOC_BROKER)")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest alert kept")
    tail.add_argument("--json", action="store_true", help="print each alert record as one JSON line")
    tail.add_argument("--max", type=int, help="stop after this many alerts")
    tail.add_argument("--timeout", type=float, help="stop after this many seconds")
    tail.set_defaults(run=run_tail)


def run_tail(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    settings = settings_from(args)
    if not settings.broker.url:
        return fail("ioc alerts tail needs a broker: pass --broker kafka://host:port (ioc demo prints it) "
                    "or set IOC_BROKER")
    topic = settings.topic("alerts")
    try:
        consumer = KafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers(settings.broker.url),
            auto_offset_reset="earliest" if args.from_beginning else "latest",
            enable_auto_commit=False,
            group_id=None,
            consumer_timeout_ms=500,
            client_id="ioc-alerts-tail",
            **client_options(settings),
        )
    except KafkaError as exc:
        return fail(f"the broker at {settings.broker.url} is not reachable ({type(exc).__name__})")
    shown = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    if not args.json:
        console.print(f"following {topic} on {settings.broker.url} (Ctrl-C to stop)", style="dim")
    try:
        while deadline is None or time.monotonic() < deadline:
            for message in consumer:
                try:
                    record = orjson.loads(message.value)
                except orjson.JSONDecodeError:
                    continue
                if args.json:
                    sys.stdout.write(orjson.dumps(record).decode("utf-8") + "\n")
                    sys.stdout.flush()
                else:
                    console.print(alert_line(record))
                shown += 1
                if args.max and shown >= args.max:
                    return 0
                if deadline is not None and time.monotonic() >= deadline:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
