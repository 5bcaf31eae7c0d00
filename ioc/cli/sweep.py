"""`ioc backtest --sweep`: the figures of a rule per value of one of its parameters.

    ioc backtest --events flood.jsonl --truth ground_truth.jsonl \\
        --sweep reservoir.level.near_nwl.condition=0.25..1.5/0.25 --report sweep.html

One line per point of the grid; `*` marks the rule's current value(s). See ioc.analysis.sweep.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
from rich.table import Table

from ioc.analysis.backtest import BacktestError, read_events
from ioc.analysis.scoring import TruthError, read_truth
from ioc.analysis.sweep import Figures, Point, Sweep, SweepError, parse_sweep, run_sweep
from ioc.cli.common import console, err_console
from ioc.config import LimitSettings
from ioc.engine import KeyLimits
from ioc.rules.loader import RuleSet
from ioc.timeutil import format_duration

__all__ = ["run_sweep_command"]


def _error(message: str) -> int:
    err_console.print("ioc: error: " + message, style="bold red", markup=False, highlight=False, soft_wrap=True)
    return 1


def run_sweep_command(args: argparse.Namespace, ruleset: RuleSet, *, lateness: float, partitions: int,
                      limits: KeyLimits, rule_limits: LimitSettings) -> int:
    try:
        sweeps = [parse_sweep(text, ruleset) for text in args.sweep]
        truth = read_truth(args.truth) if args.truth is not None else None
        events = read_events(args.events)  # read and decoded once, by run_sweep
        points_total = 1
        for sweep in sweeps:
            points_total *= len(sweep.values)
        with err_console.status(f"reading the events, then replaying {points_total:,} values of "
                                f"{', '.join(s.rule_id for s in sweeps)}"):
            points = run_sweep(ruleset, sweeps, events, truth=truth, partitions=partitions, lateness_s=lateness,
                               limits=limits, rule_limits=rule_limits, workers=args.workers)
    except (SweepError, TruthError, BacktestError) as exc:
        return _error(str(exc))
    _print(sweeps, points, truth is not None)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("wb") as out:
            for point in points:
                out.write(orjson.dumps(record(sweeps, point)) + b"\n")
        console.print(f"figures written to {args.out}")
    if args.report is not None:
        from ioc.analysis.sweep_report import write_sweep_report

        write_sweep_report(Path(args.report), sweeps, points, truth is not None)
        console.print(f"report written to {args.report}")
    return 0


def record(sweeps: list[Sweep], point: Point) -> dict[str, object]:
    """One point as JSON: the swept values, and the figures of each swept rule."""
    return {
        "values": {f"{sweep.rule_id}.{sweep.label}": value
                   for sweep, value in zip(sweeps, point.values, strict=True)},
        "current": point.current,
        "rules": {rule_id: vars(figures) for rule_id, figures in point.figures.items()},
    }


def _print(sweeps: list[Sweep], points: list[Point], scored: bool) -> None:
    rules = list(dict.fromkeys(sweep.rule_id for sweep in sweeps))
    for rule_id in rules:
        table = Table(title=f"sweep of {rule_id} (* the current value)", title_justify="left")
        for sweep in sweeps:
            table.add_column(sweep.label, justify="right")
        for column in ("alerts", "per day") + (("recall", "precision", "time to detect") if scored else ()):
            table.add_column(column, justify="right")
        for point in points:
            figures = point.figures.get(rule_id, Figures())
            cells = [sweep.show(value) + (" *" if point.current else "")
                     for sweep, value in zip(sweeps, point.values, strict=True)]
            cells += [f"{figures.episodes:,}", f"{figures.per_day:.2f}"]
            if scored:
                cells += [_ratio(figures.recall), _ratio(figures.precision),
                          format_duration(figures.detect_s) if figures.detect_s is not None else "-"]
            table.add_row(*cells)
        console.print(table)
        if scored and not any(point.figures.get(rule_id, Figures()).incidents for point in points):
            console.print(f"no labelled incident names {rule_id}: recall and time to detect are not known",
                          style="dim")


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
