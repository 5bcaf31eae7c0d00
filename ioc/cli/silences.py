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
from ioc.config import Settings
from ioc.kafka.clients import bootstrap_servers, client_options
from ioc.sla.silences import SilenceRecordError, expire_record, silence_record
from ioc.timeutil import LOCAL_TIME_HELP, parse_duration, parse_local, shown_local

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
    add.add_argument("--starts-at", help=f"from when ({LOCAL_TIME_HELP}; default: now)")
    end = add.add_argument_group("when it ends (one or more; the first to come ends it)")
    end.add_argument("--ends-at", help=f"at this time ({LOCAL_TIME_HELP})")
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
    expire.add_argument("--at", help=f"when ({LOCAL_TIME_HELP}; default: now)")
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
        return parse_local(value)
    except ValueError as exc:
        raise SilenceRecordError(f"{flag}: {exc}") from None


def _fields(args: argparse.Namespace) -> tuple[dict[str, object], float | None]:
    """The silence's fields and its length (--for); times the worker's clock fills in stay None."""
    starts = _time(args.starts_at, "--starts-at", 0.0) if args.starts_at else None
    ends = _time(args.ends_at, "--ends-at", 0.0) if args.ends_at else None
    span = None
    if args.duration:
        try:
            span = parse_duration(args.duration)
        except ValueError as exc:
            raise SilenceRecordError(f"--for: {exc}") from None
    until: object = None
    if args.until_resolved is not None:
        until = True if args.until_resolved == "" else [m.strip() for m in args.until_resolved.split(",") if m.strip()]
    return {"kind": "maintenance" if args.maintenance else "silence", "matchers": args.match,
            "starts_at": starts, "ends_at": ends, "until_resolved": until, "comment": args.comment}, span


def _broker_settings(args: argparse.Namespace, command: str):  # type: ignore[no-untyped-def]
    settings = settings_from(args)
    if not settings.broker.url:
        return None, fail(f"ioc silences {command} needs a broker: pass --broker kafka://host:port (ioc demo "
                          "prints it) or set IOC_BROKER")
    return settings, 0


def _configured(settings: Settings) -> set[str]:
    """The ids of the silences in `notify.silences` (as the worker names them)."""
    return {s.id or f"config-{index}" for index, s in enumerate(settings.notify.silences)}


def run_add(args: argparse.Namespace) -> int:
    if not args.by.strip():
        return fail("--by: say who adds the silence")
    settings = settings_from(args)
    silence_id = args.silence_id or f"s-{uuid.uuid4().hex[:12]}"
    try:
        fields, span = _fields(args)
        if fields["starts_at"] is None and settings.sla.clock == "wall":
            fields["starts_at"] = time.time()  # "now" is this clock's; on event time, the worker's
        record = silence_record(fields, silence_id, args.by.strip(), for_s=span)
    except SilenceRecordError as exc:
        message = str(exc).replace("matchers: ", "--match: ").replace("until_resolved: ", "--until-resolved: ")
        message = message.replace("silence: a silence needs ends_at, until_resolved, or both",
                                  "say when it ends: --ends-at, --for or --until-resolved")
        message = message.replace("for_s: must be more than 0", "--for: must be more than 0")
        return fail(message.replace("silence: ends_at must be after starts_at", "--ends-at: must be after its start"))
    if not settings.broker.url:
        return _broker_settings(args, "add")[1]
    if args.silence_id:
        latest = _published(settings)
        if isinstance(latest, str):
            return fail(latest)
        if silence_id in _configured(settings) or (silence_id in latest and "expired_at" not in latest[silence_id]):
            return fail(f"a silence {silence_id!r} exists already: expire it first, or choose another --id")
    topic = settings.topic("silences")
    sent = publish_one(settings, topic, silence_id.encode(), orjson.dumps(record), "ioc-silences")
    if isinstance(sent, str):
        return fail(sent)
    start = shown_local(record["starts_at"]) if record["starts_at"] else "now (the worker's clock)"
    ends = [text for text in (record["ends_at"] and f"at {shown_local(record['ends_at'])}",
                              span and f"after {args.duration}",
                              record["until_resolved"] and f"when {', '.join(record['until_resolved'])} resolves")
            if text]
    console.print(f"{record['kind']} {silence_id} of {', '.join(record['matchers'])} from {start}, ending "
                  f"{' or '.join(ends)}; published to {topic}", soft_wrap=True, highlight=False, markup=False)
    return 0


def run_expire(args: argparse.Namespace) -> int:
    if not args.by.strip():
        return fail("--by: say who ends the silence")
    try:
        at = _time(args.at, "--at", 0.0) if args.at else None
    except SilenceRecordError as exc:
        return fail(str(exc))
    read = _read_published(args, "expire")
    if isinstance(read, int):
        return read
    settings, latest = read
    if at is None and settings.sla.clock == "wall":
        at = time.time()
    if args.silence_id not in latest and args.silence_id not in _configured(settings):
        return fail(f"no silence {args.silence_id!r} on {settings.topic('silences')} ({len(latest)} there: "
                    "ioc silences list shows them) nor in notify.silences")
    topic = settings.topic("silences")
    record = expire_record(args.silence_id, args.by.strip(), at)
    sent = publish_one(settings, topic, args.silence_id.encode(), orjson.dumps(record), "ioc-silences")
    if isinstance(sent, str):
        return fail(sent)
    when = shown_local(at) if at is not None else "now (the worker's clock)"
    console.print(f"silence {args.silence_id} ends {when}; published to {topic}",
                  soft_wrap=True, highlight=False, markup=False)
    return 0


def _read_published(args: argparse.Namespace, command: str) -> tuple[Settings, dict[str, dict]] | int:
    """The settings and the silences published (see _published), or the exit code of a failure."""
    settings, code = _broker_settings(args, command)
    if settings is None:
        return code
    latest = _published(settings)
    if isinstance(latest, str):
        return fail(latest)
    return settings, latest


def _published(settings: Settings) -> dict[str, dict] | str:
    """The latest silence record of each id on the topic (an expired one with `expired_at`),
    read to the topic's end; or what went wrong."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    topic = settings.topic("silences")
    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers(settings.broker.url), enable_auto_commit=False,
                                 group_id=None, client_id="ioc-silences-list", **client_options(settings))
    except KafkaError as exc:
        return f"the broker at {settings.broker.url} is not reachable ({type(exc).__name__})"
    latest: dict[str, dict] = {}
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return latest
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=500).values():
                for message in messages:
                    _take(latest, message.value)
    except KafkaError as exc:
        return f"{topic} could not be read ({type(exc).__name__}: {exc})"
    finally:
        consumer.close()
    return latest


def _take(latest: dict[str, dict], value: bytes | None) -> None:
    try:
        record = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return
    if not isinstance(record, dict):
        return
    if record.get("type") == "silence":
        latest[str(record.get("id"))] = record
    elif record.get("type") == "expire" and str(record.get("id")) in latest:
        latest[str(record["id"])]["expired_at"] = record.get("at") or "now"


def run_list(args: argparse.Namespace) -> int:
    read = _read_published(args, "list")
    if isinstance(read, int):
        return read
    _, latest = read
    for silence_id, record in latest.items():
        if args.json:
            print(orjson.dumps(record).decode())
            continue
        ends = [text for text in (record.get("expired_at") and f"expired {shown_local(record['expired_at'])}",
                                  record.get("ends_at") and f"ends {shown_local(record['ends_at'])}",
                                  record.get("for_s") and f"lasts {record['for_s']:g} s",
                                  record.get("until_resolved")
                                  and f"ends when {', '.join(record['until_resolved'])} resolves") if text]
        console.print(f"{silence_id}  {record.get('kind')}  {', '.join(record.get('matchers', []))}  from "
                      f"{shown_local(record['starts_at']) if record.get('starts_at') else 'when the worker took it'}, "
                      f"{'; '.join(ends)}  by "
                      f"{record.get('created_by')}{'  ' + record['comment'] if record.get('comment') else ''}",
                      soft_wrap=True, highlight=False, markup=False)
    if not latest and not args.json:
        console.print("no silences", style="dim")
    return 0
