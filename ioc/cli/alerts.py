"""`ioc alerts tail`: follow `ioc.alerts` in the terminal (severity coloured) or as JSON lines.
`ioc alerts ack|assign|comment|resolve|reopen ALERT_ID --by NAME`: an operator's action on an
alert, published to `ioc.alert-actions` (keyed by the alert's fingerprint) for the SLA tracker."""

from __future__ import annotations

import argparse
import sys
import time

import orjson

from ioc.alerts import fingerprint_of
from ioc.cli.common import console, fail, publish_one, settings_from
from ioc.cli.display import alert_line
from ioc.kafka.clients import bootstrap_servers, client_options
from ioc.timeutil import LOCAL_TIME_HELP, format_ts, parse_local, shown_local

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("alerts", help="follow alerts; acknowledge, assign, comment, resolve, reopen them")
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
    for verb, what in ACTIONS.items():
        act = actions.add_parser(verb, help=what)
        act.add_argument("alert_id", help="the alert's id (its record's alert_id, e.g. "
                                          "eece90541220b5d3-1761526800000)")
        act.add_argument("--by", required=True, help="who acts (an operator or an agency)")
        act.add_argument("--note", help="a note kept with the action")
        if verb == "assign":
            act.add_argument("--to", required=True, dest="assignee", help="who the alert is assigned to")
        act.add_argument("--at", help=f"when ({LOCAL_TIME_HELP}; default: now)")
        act.add_argument("--config", help="settings file (default: config/ioc.yaml, or $IOC_CONFIG)")
        act.add_argument("--broker", help="Kafka URL, e.g. kafka://127.0.0.1:PORT as printed by ioc demo "
                                          "(default: $IOC_BROKER)")
        act.set_defaults(run=run_action, verb=verb)


ACTIONS = {
    "ack": "acknowledge an alert: someone has it in hand",
    "assign": "assign an alert to a person or agency (--to)",
    "comment": "add a note to an alert",
    "resolve": "close an alert as handled",
    "reopen": "open a closed alert again",
}


def action_record(verb: str, alert_id: str, by: str, at: float, note: str | None = None,
                  assignee: str | None = None) -> dict[str, object]:
    """The record `ioc alerts <verb>` publishes (the simulated operators publish the same shape).

    >>> action_record("ack", "eece90541220b5d3-1761526800000", "truc-ban-1", 1761527000.0)["at"]
    '2025-10-27T01:03:20Z'
    """
    record: dict[str, object] = {"alert_id": alert_id, "action": verb, "by": by, "at": format_ts(at), "note": note}
    if assignee is not None:
        record["assignee"] = assignee
    return record


def run_action(args: argparse.Namespace) -> int:
    try:
        key = fingerprint_of(args.alert_id)
    except ValueError as exc:
        return fail(str(exc))
    if not args.by.strip():
        return fail("--by: say who acts (an operator or an agency)")
    try:
        at = parse_local(args.at) if args.at else time.time()
    except ValueError as exc:
        return fail(f"--at: {exc}")
    settings = settings_from(args)
    if not settings.broker.url:
        return fail(f"ioc alerts {args.verb} needs a broker: pass --broker kafka://host:port (ioc demo prints it) "
                    "or set IOC_BROKER")
    topic = settings.topic("alert-actions")
    record = action_record(args.verb, args.alert_id, args.by.strip(), at, args.note,
                           getattr(args, "assignee", None))
    sent = publish_one(settings, topic, key.encode(), orjson.dumps(record), "ioc-alerts-action")
    if isinstance(sent, str):
        return fail(sent)
    console.print(f"{args.verb} of {args.alert_id} by {record['by']} at {shown_local(at)} published to {topic} "
                  f"(partition {sent[0]}, offset {sent[1]})", soft_wrap=True, highlight=False)
    return 0


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
