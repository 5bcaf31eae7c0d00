"""Per rule, its measured value against its threshold over time, as a static inline SVG for the
backtest report (ioc.analysis.report): episodes shaded, labelled incidents marked with their
detection delay.

What is plotted is what a backtest gives cheaply and honestly:

* `threshold` rules: the rule's value expression at every event of the keys that alerted (after
  `where`), read again from the event files, and the threshold: the other side of the comparison
  of the condition that reads the value (`level_m >= nwl_m - 0.5` gives `nwl_m - 0.5` per event);
* other kinds with a numeric `value` (window, rate, absence, spike): the value of each alert
  record (the engine measures it at each evaluation, but keeps only what fires), with the
  threshold when the condition is `value OP number` (a spike's `ratio`);
* kinds that measure nothing (match, new_value, sequence): the episodes only.

>>> svg = value_svg(trace)                                     # doctest: +SKIP
"""

from __future__ import annotations

import ast
import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent
from ioc.events import InvalidEvent, decode
from ioc.events.schemas import stream_fields
from ioc.rules.expr import EMPTY, Expression, ExpressionError, compile_expression
from ioc.rules.kinds.base import number_or_none
from ioc.rules.loader import CompiledRule, RuleSet
from ioc.timeutil import LOCAL_TZ

__all__ = ["ValueTrace", "trace_rules", "value_svg", "MAX_POINTS", "MAX_KEYS"]

MAX_POINTS = 2000  # per key and line: longer series are thinned evenly (first and last kept)
MAX_KEYS = 5  # keys drawn per rule: those with the most episodes
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 900, 240, 60, 10, 10, 40
KEY_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
SEVERITY_COLOURS = {"info": "#4c9be8", "warning": "#f0ad4e", "critical": "#d9534f", "emergency": "#7b1fa2"}
_OPS = {ast.GtE: ">=", ast.Gt: ">", ast.LtE: "<=", ast.Lt: "<"}


@dataclass
class ValueTrace:
    """What one rule's plot shows (times in epoch seconds)."""

    rule_id: str
    source: str  # "events", "alerts" or "none" (see the module docstring)
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # key -> (ts, value)
    threshold: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # key -> (ts, threshold)
    episodes: list[tuple[float, float, str]] = field(default_factory=list)  # (start, end, severity)
    incidents: list[tuple[float, str, str]] = field(default_factory=list)  # (start, id, delay text)


def trace_rules(
    ruleset: RuleSet, alerts: list[Alert], events: Iterable[RawEvent] | None, end: float | None,
    incidents: Mapping[str, list[tuple[float, str, str]]] | None = None,
) -> list[ValueTrace]:
    """A trace per rule that alerted, in rule-set order; `events` (read again) feed the
    threshold rules' series, `incidents` (per rule id) the markers."""
    by_rule: dict[str, list[Alert]] = {}
    for alert in alerts:
        by_rule.setdefault(alert.rule_id, []).append(alert)
    traces = {rule.id: _trace(rule, by_rule[rule.id], end) for rule in ruleset.rules if rule.id in by_rule}
    readers = {rule_id: reader for rule_id in traces
               if (reader := _ThresholdReader.of(ruleset, ruleset.by_id[rule_id], by_rule[rule_id])) is not None}
    if readers and events is not None:
        for row in events:
            wanted = [reader for reader in readers.values() if reader.stream == row.stream]
            if not wanted:
                continue
            try:
                event = decode(row.stream, row.body)
            except InvalidEvent:
                continue
            for reader in wanted:
                reader.add(event)
        for rule_id, reader in readers.items():
            traces[rule_id].source = "events"
            traces[rule_id].series = {k: _thin(v) for k, v in reader.series.items()}
            traces[rule_id].threshold = {k: _thin(v) for k, v in reader.threshold.items() if v}
    for rule_id, marks in (incidents or {}).items():
        if rule_id in traces:
            traces[rule_id].incidents = list(marks)
    return list(traces.values())


def _trace(rule: CompiledRule, alerts: list[Alert], end: float | None) -> ValueTrace:
    trace = ValueTrace(rule.id, "none")
    spans: dict[str, list[Any]] = {}
    for alert in alerts:
        span = spans.setdefault(alert.alert_id, [alert.starts_at, None, alert.severity])
        if alert.ends_at is not None:
            span[1] = alert.ends_at
    last = end if end is not None else max((a.starts_at for a in alerts), default=0.0)
    trace.episodes = [(start, stop if stop is not None else max(last, start), severity)
                      for start, stop, severity in spans.values()]
    values: dict[str, list[tuple[float, float]]] = {}
    for alert in alerts:
        number = number_or_none(alert.value)
        if number is not None:
            at = alert.starts_at if alert.status == "firing" else (alert.ends_at or alert.starts_at)
            values.setdefault(_label(alert.key), []).append((at, float(number)))
    if values:
        trace.source = "alerts"
        trace.series = {key: sorted(points) for key, points in _top(values, alerts).items()}
        level = _value_threshold(rule)
        if level is not None:
            lo, hi = min(s for s, _, _ in trace.episodes), max(e for _, e, _ in trace.episodes)
            trace.threshold = {"": [(lo, level), (hi, level)]}
    return trace


def _value_threshold(rule: CompiledRule) -> float | None:
    """The number a `value OP number` condition compares with (a spike's `ratio`)."""
    if rule.spec.kind == "spike":
        return float(rule.spec.ratio)  # type: ignore[attr-defined]
    condition = getattr(rule.spec, "condition", None)
    if not isinstance(condition, str):
        return None
    try:
        tree = ast.parse(condition, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and type(tree.ops[0]) in _OPS:
        sides = (tree.left, tree.comparators[0])
        names = [side for side in sides if isinstance(side, ast.Name) and side.id == "value"]
        numbers = [number for side in sides if isinstance(side, ast.Constant)
                   and (number := number_or_none(side.value)) is not None]
        if names and numbers:
            return float(numbers[0])
    return None


class _ThresholdReader:
    """A threshold rule's value (and threshold) at each event of the keys that alerted."""

    def __init__(self, rule: CompiledRule, value: Expression, limit: Expression | None, keys: set[tuple[Any, ...]],
                 ruleset: RuleSet) -> None:
        self.rule = rule
        self.stream = rule.spec.stream
        self.value = value
        self.limit = limit
        self.keys = keys
        table = ruleset.reference.table(self.stream)
        self.lookup = table.lookup if table is not None else None
        self.series: dict[str, list[tuple[float, float]]] = {}
        self.threshold: dict[str, list[tuple[float, float]]] = {}

    @classmethod
    def of(cls, ruleset: RuleSet, rule: CompiledRule, alerts: list[Alert]) -> _ThresholdReader | None:
        value = getattr(rule.kind, "value", None)
        if rule.spec.kind != "threshold" or not isinstance(value, Expression):
            return None
        top = set(_top({_label(a.key): None for a in alerts}, alerts))
        keys = {tuple(a.key[name] for name in rule.key_names) for a in alerts if _label(a.key) in top}
        limit = _other_side(rule, value.text)
        return cls(rule, value, limit, keys, ruleset)

    def add(self, event: Mapping[str, Any]) -> None:
        rule = self.rule
        key = tuple(event.get(name) for name in rule.key_fields)
        if key not in self.keys:
            return
        ref = self.lookup(event) if self.lookup is not None else EMPTY
        if rule.where is not None and not rule.where.test(event, ref):
            return
        label = _label(dict(zip(rule.key_names, key, strict=True)))
        ts = float(event["ts"])
        number = _number(self.value, event, ref)
        if number is not None:
            self.series.setdefault(label, []).append((ts, number))
        if self.limit is not None:
            level = _number(self.limit, event, ref)
            if level is not None:
                self.threshold.setdefault(label, []).append((ts, level))


def _other_side(rule: CompiledRule, value_text: str) -> Expression | None:
    """The side of the condition's comparison that is not the value (`nwl_m - 0.5` in
    `level_m >= nwl_m - 0.5`), looked for at the top or in a top-level `and`."""
    condition = getattr(rule.spec, "condition", "")
    try:
        tree = ast.parse(condition, mode="eval").body
        wanted = ast.dump(ast.parse(value_text, mode="eval").body)
    except SyntaxError:
        return None
    terms = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    for term in terms:
        if isinstance(term, ast.Compare) and len(term.ops) == 1 and type(term.ops[0]) in _OPS:
            left, right = term.left, term.comparators[0]
            other = right if ast.dump(left) == wanted else left if ast.dump(right) == wanted else None
            if other is not None:
                try:
                    return compile_expression(ast.unparse(other), stream_fields(rule.spec.stream),
                                              rule.kind.ctx.ref_fields)
                except ExpressionError:
                    return None
    return None


def _number(expr: Expression, event: Mapping[str, Any], ref: Mapping[str, Any]) -> float | None:
    try:
        number = number_or_none(expr(event, ref))
    except (TypeError, ValueError, ArithmeticError, KeyError, IndexError):
        return None
    return float(number) if number is not None else None


def _label(key: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={value}" for name, value in key.items())


def _top(values: dict[str, Any], alerts: list[Alert]) -> dict[str, Any]:
    """The MAX_KEYS keys with the most episodes (ties: first alerted)."""
    episodes: dict[str, set[str]] = {}
    for alert in alerts:
        episodes.setdefault(_label(alert.key), set()).add(alert.alert_id)
    ranked = sorted(values, key=lambda k: -len(episodes.get(k, ())))
    return {key: values[key] for key in ranked[:MAX_KEYS]}


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    points = sorted(points)
    if len(points) <= MAX_POINTS:
        return points
    step = (len(points) - 1) / (MAX_POINTS - 1)
    return [points[round(i * step)] for i in range(MAX_POINTS)]


# -- drawing --------------------------------------------------------------------------------------


def value_svg(trace: ValueTrace) -> str:
    """The trace as an inline SVG. Elements carry their data (`data-*`) next to their drawing:
    `polyline.series` (`data-key`, `data-points` "ts,value ..."), `polyline.threshold`,
    `rect.episode` (`data-start`, `data-end`), `line.incident` (`data-incident`, `data-delay`)."""
    times = [t for points in (*trace.series.values(), *trace.threshold.values()) for t, _ in points]
    times += [t for start, end, _ in trace.episodes for t in (start, end)]
    times += [t for t, _, _ in trace.incidents]
    t0, t1 = min(times), max(times)
    if t1 <= t0:
        t1 = t0 + 3600.0
    numbers = [v for points in (*trace.series.values(), *trace.threshold.values()) for _, v in points]
    v0, v1 = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    pad = (v1 - v0) * 0.05 or abs(v1) * 0.05 or 1.0
    v0, v1 = v0 - pad, v1 + pad
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / (t1 - t0) * plot_w, 1)

    def y(v: float) -> float:
        return round(TOP + (v1 - v) / (v1 - v0) * plot_h, 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="value-plot" data-rule="{html.escape(trace.rule_id)}" '
             f'data-source="{trace.source}" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'font-family="sans-serif" font-size="11">',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>']
    for start, end, severity in trace.episodes:
        parts.append(f'<rect class="episode" data-start="{start}" data-end="{end}" x="{x(start)}" y="{TOP}" '
                     f'width="{max(x(end) - x(start), 1.0)}" height="{plot_h}" '
                     f'fill="{SEVERITY_COLOURS.get(severity, "grey")}" fill-opacity="0.2"/>')
    for index, (key, points) in enumerate(trace.threshold.items()):
        parts.append(f'<polyline class="threshold" data-key="{html.escape(key)}" data-points="{_data(points)}" '
                     f'points="{_coords(points, x, y)}" fill="none" stroke="#d9534f" stroke-dasharray="6 3"/>')
        if index == 0:
            parts.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y(points[-1][1]) - 4}" text-anchor="end" '
                         f'fill="#d9534f">threshold</text>')
    for index, (key, points) in enumerate(trace.series.items()):
        colour = KEY_COLOURS[index % len(KEY_COLOURS)]
        parts.append(f'<polyline class="series" data-key="{html.escape(key)}" data-points="{_data(points)}" '
                     f'points="{_coords(points, x, y)}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        if trace.source == "alerts":
            parts.extend(f'<circle cx="{x(t)}" cy="{y(v)}" r="3" fill="{colour}"/>' for t, v in points)
        parts.append(f'<text x="{LEFT + 6}" y="{TOP + 14 + 13 * index}" fill="{colour}">{html.escape(key)}</text>')
    for start, incident, delay in trace.incidents:
        parts.append(f'<line class="incident" data-incident="{html.escape(incident)}" data-start="{start}" '
                     f'data-delay="{html.escape(delay)}" x1="{x(start)}" x2="{x(start)}" y1="{TOP}" '
                     f'y2="{TOP + plot_h}" stroke="#333" stroke-dasharray="2 2"/>'
                     f'<text x="{x(start) + 3}" y="{TOP + plot_h - 4}">{html.escape(incident)}: '
                     f'{html.escape(delay)}</text>')
    if numbers:
        parts.append(f'<text x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">{_short(v1)}</text>'
                     f'<text x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">{_short(v0)}</text>')
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        label = datetime.fromtimestamp(t, LOCAL_TZ).strftime("%d/%m %H:%M")
        parts.append(f'<text x="{x(t)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}">time (ICT, UTC+7)</text></svg>')
    return "".join(parts)


def _data(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{t!r},{v!r}" for t, v in points)


def _coords(points: list[tuple[float, float]], x: Any, y: Any) -> str:
    return " ".join(f"{x(t)},{y(v)}" for t, v in points)


def _short(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "?"
