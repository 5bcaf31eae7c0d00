"""`ioc explain ALERT_ID`: why an alert fired, by replaying its rule over the events.

From a backtest (`--alerts alerts.jsonl --events FILE|DIR`, as `ioc backtest --out` and
`--events` took them) or, without `--alerts`, from the live broker: the alert's records on
`ioc.alerts` and the raw topics' events around it (`--before`: how far back before its start).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import orjson
from rich.table import Table
from rich.text import Text

from ioc.alerts import fingerprint_of
from ioc.analysis.explain import ExplainError, Explanation, explain_alert, latest_record
from ioc.analysis.explain.model import Check
from ioc.analysis.explain.sources import (
    events_from_broker,
    events_from_files,
    records_from_broker,
    records_from_file,
)
from ioc.cli.common import SEVERITY_STYLES, console, err_console, fail, settings_from
from ioc.config import REPO_ROOT, ConfigError
from ioc.refdata import load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import CompiledRule, load_rules
from ioc.runtime.shards import SHARD_LIMITS
from ioc.timeutil import format_local, parse_duration, parse_ts

__all__ = ["register", "lookback"]

# Spec fields whose durations bound how far back a rule's state reaches (new_value's lookback,
# 30 days by default, is left out: pass --before to replay that far).
_REACH = ("for_", "keep_firing_for", "window", "baseline", "within", "timeout", "dwell", "realert")
MARGIN_S = 3600.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("explain", help="why an alert fired: its rule replayed over the events")
    parser.add_argument("alert_id", help="the alert's id (its record's alert_id, e.g. eece90541220b5d3-1761526800000)")
    parser.add_argument("--alerts", type=Path, help="alert records of a backtest (ioc backtest --out FILE); "
                                                    "without it, the live ioc.alerts and raw topics are read")
    parser.add_argument("--events", type=Path, action="append",
                        help="the backtest's event file or folder (as given to ioc backtest --events)")
    parser.add_argument("--rules", action="append",
                        help="rule file or folder (default rules/); several joined by ':' as in IOC_RULES")
    parser.add_argument("--reference", type=Path, default=REPO_ROOT / "config" / "reference",
                        help="reference data folder (default config/reference)")
    parser.add_argument("--partitions", type=int,
                        help="partitions per topic, as the backtest or worker had them (default: topics.partitions "
                             "of the configuration; live: the topics')")
    parser.add_argument("--lateness", help="allowed lateness (default: 0s for a backtest, the worker's setting live)")
    parser.add_argument("--until", help="backtest: the --until it was run with")
    parser.add_argument("--before", help="live: how far before the alert's start to read events (default: the rule's "
                                         "longest duration + 1h)")
    parser.add_argument("--config", help="settings file (default: config/ioc.yaml, or $IOC_CONFIG)")
    parser.add_argument("--broker", help="Kafka URL (default: $IOC_BROKER)")
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON (times in UTC)")
    parser.set_defaults(run=run)


def lookback(rule: CompiledRule) -> float:
    """How far back a rule's state reaches: its longest duration, plus an hour."""
    spec = rule.spec
    reach = [getattr(spec, name, None) for name in _REACH]
    reach += [getattr(spec, "resolve_after", None)]
    return max((float(x) for x in reach if isinstance(x, (int, float)) and not isinstance(x, bool)), default=0.0) \
        + MARGIN_S


def run(args: argparse.Namespace) -> int:
    try:
        fingerprint_of(args.alert_id)
    except ValueError as exc:
        return fail(str(exc))
    try:
        settings = settings_from(args)
    except ConfigError as exc:
        return fail(str(exc))
    limits = settings.limits
    try:
        reference = load_reference(args.reference, max_bytes=limits.rule_file_bytes, max_nodes=limits.yaml_nodes)
        rule_paths = [Path(part) for value in args.rules or () for part in value.split(os.pathsep) if part]
        ruleset = load_rules(rule_paths or [REPO_ROOT / "rules"], reference, limits=limits, schemas=settings.schemas())
    except RuleError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        return fail("the rules did not load: nothing was explained")
    # A backtest's default lateness is 0s (ioc backtest --lateness); the worker's is its setting.
    lateness_text = args.lateness or ("0s" if args.alerts is not None else settings.worker.allowed_lateness)
    try:
        lateness = 0.0 if lateness_text.strip() in ("0", "0s") else parse_duration(lateness_text)
        until = parse_ts(args.until) if args.until else None
    except ValueError as exc:
        return fail(f"--lateness/--until: {exc}")
    shard_limits = dataclasses.replace(SHARD_LIMITS, keys_per_rule=limits.keys_per_rule, key_idle_s=limits.key_idle_s)
    try:
        if args.alerts is not None:
            if not args.events:
                return fail("--alerts needs --events: the event files the backtest replayed")
            records = records_from_file(args.alerts, args.alert_id)
            prepared = events_from_files(args.events, ruleset.schemas)
            partitions = args.partitions if args.partitions is not None else settings.topics.partitions
            source = f"{args.alerts} with the events of {', '.join(str(p) for p in args.events)}"
        else:
            if not settings.broker.url:
                return fail("ioc explain needs --alerts FILE --events FILE (a backtest) or a broker: pass --broker "
                            "kafka://host:port or set IOC_BROKER")
            records = records_from_broker(settings, args.alert_id)
            record = latest_record(records)
            rule = ruleset.by_id.get(str(record.get("rule_id")))
            before = parse_duration(args.before) if args.before else (lookback(rule) if rule else MARGIN_S)
            starts = parse_ts(record["starts_at"])
            ends = parse_ts(record["ends_at"]) if record.get("ends_at") else None
            prepared, counted, source = events_from_broker(settings, starts - before,
                                                           ends + MARGIN_S if ends is not None else None,
                                                           ruleset.schemas)
            partitions = args.partitions if args.partitions is not None else counted
            if until is None and ends is not None:
                until = ends + 1.0  # live, idle partitions' watermarks follow the clock past the end
        explanation = explain_alert(records, ruleset, prepared, source=source, partitions=partitions,
                                    lateness_s=lateness, until=until, limits=shard_limits)
    except (ExplainError, ValueError) as exc:
        return fail(str(exc))
    if args.json:
        sys.stdout.write(orjson.dumps(explanation.to_json(), default=_plain, option=orjson.OPT_INDENT_2)
                         .decode("utf-8") + "\n")
    else:
        show(explanation)
    return 0 if explanation.reproduced else 2


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _check_line(item: Check) -> Text:
    line = Text("  ")
    line.append(f"{item.label}: ", style="bold")
    line.append(item.readable)
    verdict = {True: ("  -> true", "green"), False: ("  -> false", "red"), None: ("  -> ?", "yellow")}[item.holds]
    line.append(verdict[0], style=verdict[1])
    if item.note:
        line.append(f"  ({item.note})", style="dim")
    return line


def show(exp: Explanation) -> None:
    """The explanation for people: times in ICT."""
    record = exp.record
    head = Text()
    head.append(f"{record.get('alert_id')}  ", style="bold")
    severity = str(record.get("severity", ""))
    head.append(f"{exp.rule_id} ", style="bold")
    head.append(f"({exp.kind}, ")
    head.append(severity, style=SEVERITY_STYLES.get(severity, ""))
    key = record.get("key") or {}
    head.append(f")  key {', '.join(f'{k}={v}' for k, v in key.items())}")
    console.print(head, soft_wrap=True)
    for warning in exp.warnings:
        console.print(Text(f"warning: {warning}", style="bold yellow"), soft_wrap=True)
    status = f"{record.get('status')}, from {format_local(parse_ts(record['starts_at']))} ICT"
    if record.get("ends_at"):
        status += f" to {format_local(parse_ts(record['ends_at']))} ICT"
    console.print(Text(f"status     {status}; value {record.get('value')!r}"), soft_wrap=True)
    changed = "CHANGED since" if exp.rule_changed else "unchanged"
    console.print(Text(f"rule       {exp.rule_source}  version {exp.rule_version} ({changed}; now "
                       f"{exp.current_version})"), soft_wrap=True)
    console.print(Text(f"replayed   {exp.source}: "
                       + ("reproduces this alert id" if exp.reproduced else "does NOT reproduce this alert id")),
                  soft_wrap=True)
    if exp.fired_at is not None:
        console.print(Text(f"fired      {format_local(exp.fired_at)} ICT, at "
                           + ("an event" if exp.fired_by == "event" else "a timer (the watermark passed it)")),
                      soft_wrap=True)
    if exp.condition:
        console.print(Text(f"condition  {exp.condition}"), soft_wrap=True)
    for item in exp.checks:
        console.print(_check_line(item), soft_wrap=True)
    for detail in exp.details:
        console.print(Text(f"  {detail.label}: {detail.text}"), soft_wrap=True)
    if exp.events:
        table = Table(title="events", title_justify="left")
        for column in ("role", "time (ICT)", "stream", "where", "id", "fields"):
            table.add_column(column, overflow="fold")
        for event in exp.events:
            table.add_row(event.role, format_local(event.ts), event.stream, event.where, event.id or "",
                          ", ".join(f"{k}={v!r}" for k, v in event.fields.items()))
        console.print(table)
    res = exp.resolution
    if res is not None:
        console.print(Text(f"resolution {res.text}"), soft_wrap=True)
        if res.event is not None:
            console.print(Text(f"  event {res.event.where} at {format_local(res.event.ts)} ICT"), soft_wrap=True)
        if res.check is not None:
            console.print(_check_line(res.check), soft_wrap=True)


