"""`ioc silences add|expire|list`: silences and maintenance windows at run time, on
`ioc.silences` (compacted, keyed by silence id), applied by the worker that runs the
notification policy (docs/notifications.md). `notify.silences` in the configuration holds the
ones known in advance."""

from __future__ import annotations

import argparse
import time
import uuid

import orjson

from ioc.cli.common import console, fail, publish_one, settings_from
from ioc.kafka.clients import bootstrap_servers, client_options
from ioc.sla.silences import SilenceRecordError, expire_record, silence_record
from ioc.timeutil import format_ts, parse_duration, parse_ts

__all__ = ["register"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="settings file (default: config/ioc.yaml, or $IOC_CONFIG)")
    parser.add_argument("--broker", help="Kafka URL, e.g. kafka://127.0.0.1:PORT as printed by ioc demo "
                                         "(default: $IOC_BROKER)")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("silences", help="mute notifications: add, expire and list silences")
    actions = parser.add_subparsers(dest="silences_action", metavar="{add,expire,list}", required=True)
    add = actions.add_parser("add", help="mute the alerts matching --match, until a time or an incident's end")
    add.add_argument("--match", action="append", required=True, metavar="MATCHER",
                     help='label matcher, Alertmanager style: rule_id="x", domain=~"water|dam", severity!="info" '
                          "(repeat for more; all must match)")
    add.add_argument("--by", required=True, help="who adds it")
    add.add_argument("--comment", default="", help="why")
    add.add_argument("--maintenance", action="store_true", help="a maintenance window rather than a silence")
    add.add_argument("--starts-at", help="from when (RFC 3339; default: now)")
    end = add.add_argument_group("when it ends (one or more; the first to come ends it)")
    end.add_argument("--ends-at", help="at this time (RFC 3339)")
    end.add_argument("--for", dest="duration", help="this long after its start (30m, 2h, 1d)")
    end.add_argument("--until-resolved", nargs="?", const="", metavar="MATCHER",
                     help="when the incident matching these matchers (comma separated; default: --match "
                          "itself) has resolved")
    add.add_argument("--id", dest="silence_id", help="its id (default: generated)")
    _common(add)
    add.set_defaults(run=run_add)
    expire = actions.add_parser("expire", help="end a silence now (or --at)")
    expire.add_argument("silence_id")
    expire.add_argument("--by", required=True, help="who ends it")
    expire.add_argument("--at", help="when (RFC 3339; default: now)")
    _common(expire)
    expire.set_defaults(run=run_expire)
    listing = actions.add_parser("list", help="the silences published, latest record of each")
    listing.add_argument("--json", action="store_true", help="one JSON record per line")
    _common(listing)
    listing.set_defaults(run=run_list)


def _time(value: str | None, flag: str, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise SilenceRecordError(f"{flag}: {exc}") from None


def _fields(args: argparse.Namespace) -> dict[str, object]:
    starts = _time(args.starts_at, "--starts-at", time.time())
    ends = _time(args.ends_at, "--ends-at", 0.0) if args.ends_at else None
    if args.duration:
        try:
            span = parse_duration(args.duration)
        except ValueError as exc:
            raise SilenceRecordError(f"--for: {exc}") from None
        ends = starts + span if ends is None else min(ends, starts + span)
    until: object = None
    if args.until_resolved is not None:
        until = True if args.until_resolved == "" else [m.strip() for m in args.until_resolved.split(",") if m.strip()]
    return {"kind": "maintenance" if args.maintenance else "silence", "matchers": args.match,
            "starts_at": starts, "ends_at": ends, "until_resolved": until, "comment": args.comment}


def _broker_settings(args: argparse.Namespace, command: str):  # type: ignore[no-untyped-def]
    settings = settings_from(args)
    if not settings.broker.url:
        return None, fail(f"ioc silences {command} needs a broker: pass --broker kafka://host:port (ioc demo "
                          "prints it) or set IOC_BROKER")
    return settings, 0


def run_add(args: argparse.Namespace) -> int:
    if not args.by.strip():
        return fail("--by: say who adds the silence")
    silence_id = args.silence_id or f"s-{uuid.uuid4().hex[:12]}"
    try:
        record = silence_record(_fields(args), silence_id, args.by.strip())
    except SilenceRecordError as exc:
        message = str(exc).replace("matchers: ", "--match: ").replace("until_resolved: ", "--until-resolved: ")
        message = message.replace("silence: a silence needs ends_at, until_resolved, or both",
                                  "say when it ends: --ends-at, --for or --until-resolved")
        return fail(message.replace("silence: ends_at must be after starts_at", "--ends-at: must be after its start"))
    settings, code = _broker_settings(args, "add")
    if settings is None:
        return code
    topic = settings.topic("silences")
    sent = publish_one(settings, topic, silence_id.encode(), orjson.dumps(record), "ioc-silences")
    if isinstance(sent, str):
        return fail(sent)
    ends = record["ends_at"] or "-"
    until = f", until {', '.join(record['until_resolved'])} resolves" if record["until_resolved"] else ""
    console.print(f"{record['kind']} {silence_id} of {', '.join(record['matchers'])} from {record['starts_at']} "
                  f"to {ends}{until}, published to {topic}", soft_wrap=True, highlight=False, markup=False)
    return 0


def run_expire(args: argparse.Namespace) -> int:
    if not args.by.strip():
        return fail("--by: say who ends the silence")
    try:
        at = _time(args.at, "--at", time.time())
    except SilenceRecordError as exc:
        return fail(str(exc))
    settings, code = _broker_settings(args, "expire")
    if settings is None:
        return code
    topic = settings.topic("silences")
    record = expire_record(args.silence_id, args.by.strip(), at)
    sent = publish_one(settings, topic, args.silence_id.encode(), orjson.dumps(record), "ioc-silences")
    if isinstance(sent, str):
        return fail(sent)
    console.print(f"silence {args.silence_id} ends at {format_ts(at)}, published to {topic}",
                  soft_wrap=True, highlight=False, markup=False)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    settings, code = _broker_settings(args, "list")
    if settings is None:
        return code
    try:
        consumer = KafkaConsumer(settings.topic("silences"), bootstrap_servers=bootstrap_servers(settings.broker.url),
                                 auto_offset_reset="earliest", enable_auto_commit=False, group_id=None,
                                 consumer_timeout_ms=1000, client_id="ioc-silences-list", **client_options(settings))
    except KafkaError as exc:
        return fail(f"the broker at {settings.broker.url} is not reachable ({type(exc).__name__})")
    latest: dict[str, dict] = {}
    try:
        for message in consumer:
            try:
                record = orjson.loads(message.value) if message.value is not None else None
            except orjson.JSONDecodeError:
                continue
            if isinstance(record, dict) and record.get("type") == "silence":
                latest[str(record.get("id"))] = record
            elif isinstance(record, dict) and record.get("type") == "expire" and str(record.get("id")) in latest:
                latest[str(record["id"])]["expired_at"] = record.get("at")
    finally:
        consumer.close()
    for silence_id, record in latest.items():
        if args.json:
            print(orjson.dumps(record).decode())
            continue
        ends = record.get("expired_at") or record.get("ends_at") or "-"
        until = f" or when {', '.join(record['until_resolved'])} resolves" if record.get("until_resolved") else ""
        console.print(f"{silence_id}  {record.get('kind')}  {', '.join(record.get('matchers', []))}  "
                      f"{record.get('starts_at')} to {ends}{until}  by {record.get('created_by')}"
                      f"{'  ' + record['comment'] if record.get('comment') else ''}",
                      soft_wrap=True, highlight=False, markup=False)
    if not latest and not args.json:
        console.print("no silences", style="dim")
    return 0
