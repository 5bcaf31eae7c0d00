"""`ioc backtest`: replay recorded events through the rules; alerts to JSONL, a summary per rule."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ioc.analysis.backtest import BacktestResult, read_events, run_backtest
from ioc.analysis.scoring import Score, TruthError, read_truth, score_alerts
from ioc.cli.common import SEVERITY_STYLES, console, err_console, fail
from ioc.cli.sweep import run_sweep_command
from ioc.config import REPO_ROOT, ConfigError, load_settings
from ioc.refdata import load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import RuleSet, load_rules
from ioc.runtime.shards import SHARD_LIMITS
from ioc.timeutil import LOCAL_TIME_HELP, format_duration, format_local, parse_duration, parse_local

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("backtest", help="replay recorded events through rules (JSONL, CSV, Parquet)")
    parser.add_argument("--rules", action="append",
                        help="rule file or folder (default rules/); several joined by ':' as in IOC_RULES")
    parser.add_argument("--events", type=Path, action="append", required=True,
                        help="event file: .jsonl (a `stream` field per line), .csv or .parquet (a `stream` column); "
                             "or a folder of them (ioc simulate --out DIR)")
    parser.add_argument("--out", type=Path, help="write the alert records here (JSONL)")
    parser.add_argument("--report", type=Path, help="write an HTML report with plots here")
    parser.add_argument("--reference", type=Path, default=REPO_ROOT / "config" / "reference",
                        help="reference data folder joined to events by source_id (default config/reference)")
    parser.add_argument("--lateness", default="0s", help="allowed lateness (default 0s)")
    parser.add_argument("--until", help=f"at the end, move every watermark to this time ({LOCAL_TIME_HELP})")
    parser.add_argument("--partitions", type=int,
                        help="partitions per topic, as live (default: topics.partitions of the configuration, 4): "
                             "watermarks are per partition, so the live alerts need the live number")
    parser.add_argument("--config", help="settings file whose `topics.partitions` and `limits` apply, as for the "
                                         "worker (default: config/ioc.yaml, or $IOC_CONFIG)")
    parser.add_argument("--truth", type=Path,
                        help="ground truth (ioc simulate --out DIR writes DIR/ground_truth.jsonl): "
                             "print recall per incident and precision per rule")
    parser.add_argument("--sweep", action="append", metavar="RULE_ID.PARAM=FROM..TO/STEP",
                        help="replay once per value of a rule's parameter (a field such as for, window, "
                             "min_count, or a number of its condition: condition, condition[2]); values "
                             "FROM..TO/STEP or A,B,C; several --sweep make a grid. Prints alerts, alerts "
                             "per day and, with --truth, recall, precision and time to detect per value; "
                             "--report plots them, --out writes them as JSONL")
    parser.add_argument("--workers", type=int, help="processes for --sweep (default: one per core)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    limits = settings.limits
    try:
        reference = load_reference(args.reference, max_bytes=limits.rule_file_bytes, max_nodes=limits.yaml_nodes)
        rule_paths = [Path(part) for value in args.rules or () for part in value.split(os.pathsep) if part]
        ruleset = load_rules(rule_paths or [REPO_ROOT / "rules"], reference, limits=limits,
                             schemas=settings.schemas())
    except RuleError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        err_console.print("[bold red]the rules did not load[/]: nothing was replayed")
        return 1
    try:
        lateness = 0.0 if args.lateness.strip() in ("0", "0s") else parse_duration(args.lateness)
    except ValueError as exc:
        return fail(f"--lateness: {exc}")
    try:
        until = parse_local(args.until) if args.until else None
    except ValueError as exc:
        return fail(f"--until: {exc}")
    partitions = args.partitions if args.partitions is not None else settings.topics.partitions
    if partitions < 1:
        return fail(f"--partitions: {partitions} is not a number of partitions (at least 1)")
    shard_limits = dataclasses.replace(SHARD_LIMITS, keys_per_rule=limits.keys_per_rule, key_idle_s=limits.key_idle_s)
    if args.sweep:
        if until is not None:
            return fail("--until does not apply to --sweep")
        return run_sweep_command(args, ruleset, lateness=lateness, partitions=partitions, limits=shard_limits,
                                 rule_limits=limits)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,} events"),
                  TimeElapsedColumn(), console=err_console, transient=True) as progress:
        reading = progress.add_task("reading events", total=None)

        def evaluating(done: int, total: int) -> None:
            progress.update(reading, description="evaluating", completed=done, total=total)

        result = run_backtest(ruleset, read_events(args.events), lateness_s=lateness, until=until,
                              progress=lambda n: progress.update(reading, completed=n), partitions=partitions,
                              limits=shard_limits, evaluated=evaluating)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("wb") as out:
            for alert in result.alerts:
                out.write(alert.to_json() + b"\n")
    _print_summary(result, ruleset)
    if args.out is not None:
        console.print(f"alerts written to {args.out}")
    score = None
    if args.truth is not None:
        try:
            score = score_alerts(result.alerts, read_truth(args.truth))
        except TruthError as exc:
            return fail(str(exc))
        _print_score(score)
    if args.report is not None:
        from ioc.analysis.report import write_report

        write_report(args.report, result, ruleset, score, events=read_events(args.events))
        console.print(f"report written to {args.report}")
    return 0


def _print_summary(result: BacktestResult, ruleset: RuleSet) -> None:
    invalid = sum(result.invalid.values())
    console.print(f"{result.events:,} events replayed, {invalid:,} invalid, {len(result.alerts):,} alert transitions")
    for example in result.invalid_examples[:5]:
        console.print(f"  invalid: {example}", style="dim", markup=False, highlight=False)
    table = Table(title="alerts per rule", title_justify="left")
    for column in ("rule", "severity", "transitions", "episodes", "first start (ICT)", "last start (ICT)",
                   "time firing"):
        table.add_column(column, justify="right" if column in ("transitions", "episodes") else "left",
                         overflow="fold")
    rows = result.summary(ruleset)
    silent = [row for row in rows if not row.transitions]
    for row in rows:
        if not row.transitions:
            continue
        table.add_row(
            row.rule_id,
            f"[{SEVERITY_STYLES.get(row.severity, '')}]{row.severity}[/]",
            str(row.transitions),
            str(row.episodes),
            _short_time(row.first),
            _short_time(row.last),
            format_duration(row.firing_seconds) if row.episodes else "-",
        )
    console.print(table)
    if silent:
        console.print(f"{len(silent)} of {len(rows)} rules gave no alert", style="dim")


def _short_time(ts: float | None) -> str:
    return "-" if ts is None else format_local(ts)


def _print_score(score: Score) -> None:
    recall = score.recall
    scored = sum(1 for incident in score.incidents if incident.rules)
    caught = scored - len(score.missed)
    shown = f"{recall:.2f}" if recall is not None else "-"
    console.print(f"detection: recall {shown} ({caught} of {scored} labelled incidents caught)")
    for incident in score.missed:
        console.print(f"  missed: {incident.id} ({incident.stream} {incident.kind}, "
                      f"{', '.join(f'{k}={v}' for k, v in incident.keys.items())}; rules {', '.join(incident.rules)})",
                      markup=False)
    table = Table(title="precision per rule (episodes matching a labelled incident)", title_justify="left")
    for column in ("rule", "episodes", "true positives", "precision"):
        table.add_column(column, justify="left" if column == "rule" else "right", overflow="fold")
    labelled = {rule for incident in score.incidents for rule in incident.rules}
    unlabelled = sorted(rule_id for rule_id in score.rules if rule_id not in labelled)
    for rule in sorted(score.rules.values(), key=lambda r: r.rule_id):
        if rule.rule_id not in labelled:
            continue
        precision = rule.precision
        table.add_row(rule.rule_id, str(rule.episodes), str(rule.true_positives),
                      f"{precision:.2f}" if precision is not None else "-")
    console.print(table)
    if unlabelled:
        episodes = ", ".join(f"{rule_id} ({score.rules[rule_id].episodes})" for rule_id in unlabelled)
        console.print(f"not scored (no incident kind of the scenario names them): {episodes}", style="dim")
