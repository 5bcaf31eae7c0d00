"""Threshold sweeps: replay history once per value of a rule's parameter, and compare.

>>> sweep = parse_sweep("reservoir.level.near_nwl.for=5m..20m/5m", ruleset)     # doctest: +SKIP
>>> [point.values for point in run_sweep(ruleset, [sweep], events)]              # doctest: +SKIP
[(300.0,), (600.0,), (900.0,), (1200.0,)]

A sweep names a rule, a parameter and its values: `RULE_ID.PARAM=FROM..TO/STEP` (or
`=A,B,C`). PARAM is a field of the rule (`for`, `window`, `within`, `min_count`, `ratio`...:
durations with a unit, `5m..30m/5m`) or a number in one of its expressions: `condition` (its
only number) or `condition[2]` (its second). Several sweeps make a grid. Each value is
written into the rule as the analyst would write it, in a copy of the rule's own YAML, and
compiled by the loader: a value the rule cannot take is reported as a rule problem.

Each point of the grid replays only the swept rules, with the other rules of their key spaces
(ioc.runtime.plan: those decide which events reach a space), in parallel across cores, and
gives per swept rule its episodes, per day, and with ground truth its recall, precision and
median time to detect. These figures are
the ones a whole backtest of the changed rule files gives (tests/unit/analysis/test_sweep.py).
"""

from __future__ import annotations

import ast
import concurrent.futures
import itertools
import multiprocessing
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ioc.alerts import Alert
from ioc.analysis.backtest import BacktestResult, PreparedEvents, RawEvent, prepare_events, replay_prepared
from ioc.analysis.scoring import TruthIncident, score_alerts
from ioc.config import LimitSettings
from ioc.engine import KeyLimits
from ioc.exceptions import IocError
from ioc.rules.exceptions import closest
from ioc.rules.loader import CompiledRule, RuleSet, _build_rule, read_bounded
from ioc.rules.yamlload import LineDict, YamlProblems, load_yaml
from ioc.runtime.plan import plan_rules
from ioc.runtime.shards import SHARD_LIMITS
from ioc.timeutil import format_duration, parse_duration

__all__ = ["Sweep", "SweepError", "Point", "parse_sweep", "run_sweep", "MAX_POINTS"]

MAX_POINTS = 1000  # grid points in one run


class SweepError(IocError):
    """A sweep that cannot be run: what is wrong, in the analyst's terms."""


@dataclass(frozen=True)
class Sweep:
    """One swept parameter: `rule_id`, `param` (a field, or `condition[n]`), its `values` (seconds
    for durations), whether they are `durations`, and the rule's `current` value."""

    text: str
    rule_id: str
    param: str
    values: tuple[float, ...]
    durations: bool
    current: float | None
    nth: int = 0   # > 0: the value is the nth number of the expression field `param` names
    label: str = ""  # PARAM as the analyst wrote it (`for`, `condition`, `condition[2]`)

    def show(self, value: float | None) -> str:
        if value is None:
            return "-"
        return format_duration(value) if self.durations else _number_text(value)


@dataclass
class Figures:
    """What one point of the grid gave for one swept rule."""

    episodes: int = 0
    per_day: float = 0.0
    recall: float | None = None
    precision: float | None = None
    detect_s: float | None = None   # median time from an incident's start to its first detection
    incidents: int = 0              # labelled incidents that name the rule


@dataclass
class Point:
    """One point of the grid: a value per sweep, and the figures of each swept rule."""

    values: tuple[float, ...]
    figures: dict[str, Figures] = field(default_factory=dict)
    current: bool = False


# -- parsing -----------------------------------------------------------------------------------------


def parse_sweep(text: str, ruleset: RuleSet) -> Sweep:
    """`RULE_ID.PARAM=FROM..TO/STEP` or `RULE_ID.PARAM=A,B,C`, checked against the rule set."""
    target, sep, spec = text.partition("=")
    if not sep or not spec.strip():
        raise SweepError(f"--sweep {text!r}: expected RULE_ID.PARAM=FROM..TO/STEP (e.g. "
                         "reservoir.level.near_nwl.for=5m..30m/5m) or RULE_ID.PARAM=A,B,C")
    target = target.strip()
    matches = [rule_id for rule_id in ruleset.by_id if target.startswith(rule_id + ".")]
    if not matches:
        guess = closest(target.rsplit(".", 1)[0], ruleset.by_id)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise SweepError(f"--sweep {text!r}: no rule id starts {target!r}{hint}")
    rule_id = max(matches, key=len)
    param = target[len(rule_id) + 1:]
    rule = ruleset.by_id[rule_id]
    raw, _ = _source(rule)
    name, nth, current_value = _current(rule, raw, param, text)
    values, durations = _values(spec.strip(), text)
    if nth and durations:
        raise SweepError(f"--sweep {text!r}: a number in {name} takes plain numbers, not durations")
    if not nth and not durations and _is_duration(current_value):
        durations = True  # `for=300,600`: seconds of a duration field
    if not values:
        raise SweepError(f"--sweep {text!r}: no values to sweep")
    return Sweep(text, rule_id, name, values, durations, _as_number(current_value, durations), nth, param)


def _values(spec: str, text: str) -> tuple[tuple[float, ...], bool]:
    parts: list[str]
    if ".." in spec:
        low, _, rest = spec.partition("..")
        high, slash, step = rest.partition("/")
        if not slash:
            raise SweepError(f"--sweep {text!r}: a range needs a step, FROM..TO/STEP (e.g. 44..46/0.5)")
        durations = any(_has_unit(part) for part in (low, high, step))
        first, last, size = (_decimal(part, durations, text) for part in (low, high, step))
        if size <= 0:
            raise SweepError(f"--sweep {text!r}: the step must be more than 0")
        if last < first:
            raise SweepError(f"--sweep {text!r}: the range goes down ({low} > {high})")
        count = int((last - first) / size) + 1
        if count > MAX_POINTS:
            raise SweepError(f"--sweep {text!r}: {count:,} values, more than {MAX_POINTS:,}")
        return tuple(float(first + size * i) for i in range(count)), durations
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    durations = any(_has_unit(part) for part in parts)
    return tuple(float(_decimal(part, durations, text)) for part in parts), durations


def _has_unit(text: str) -> bool:
    return text.strip()[-1:].isalpha()


def _decimal(part: str, durations: bool, text: str) -> Decimal:
    part = part.strip()
    try:
        if durations:
            return Decimal(str(parse_duration(part if _has_unit(part) else f"{part}s")))
        return Decimal(part)
    except (ValueError, InvalidOperation):
        kind = "a duration (e.g. 5m)" if durations else "a number"
        raise SweepError(f"--sweep {text!r}: {part!r} is not {kind}") from None


def _is_duration(value: Any) -> bool:
    """A field's current value written as a duration (`10m`)."""
    if not isinstance(value, str) or not _has_unit(value):
        return False
    try:
        parse_duration(value)
    except ValueError:
        return False
    return True


def _as_number(value: Any, durations: bool) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return parse_duration(value) if durations else float(value)
    except (TypeError, ValueError):
        return None


# -- the rule's own YAML -----------------------------------------------------------------------------


def _source(rule: CompiledRule, limits: LimitSettings | None = None) -> tuple[LineDict, LineDict]:
    """The rule's mapping as written, and its file's defaults."""
    limits = limits if limits is not None else LimitSettings()
    file, _, line = rule.source.rpartition(":")
    try:
        text = read_bounded(Path(file), limits.rule_file_bytes)
        document, _ = load_yaml(text, file, max_nodes=limits.yaml_nodes)
    except (OSError, ValueError, YamlProblems) as exc:
        raise SweepError(f"{rule.source}: the rule file cannot be read again ({exc})") from None
    for raw in document.get("rules") or ():
        if isinstance(raw, LineDict) and raw.get("id") == rule.id:
            return raw, document.get("defaults") or LineDict()
    raise SweepError(f"{rule.source}: rule {rule.id!r} is no longer in its file")


def _expression_field(param: str) -> tuple[str, int] | None:
    """('condition', 2) for `condition[2]`, ('condition', 0) for `condition`; None for a field."""
    name, bracket, rest = param.partition("[")
    if not bracket:
        return None
    if not rest.endswith("]") or not rest[:-1].isdigit() or int(rest[:-1]) < 1:
        raise SweepError(f"{param!r}: write the n-th number of an expression as {name}[n], n from 1")
    return name, int(rest[:-1])


def _numbers(expression: str) -> list[tuple[int, int, float]]:
    """(start, end, value) of each number literal of a one-line expression, in reading order; a
    minus sign right before a number is part of it (`level_m < -3`: -3). Start and end are
    offsets in the expression's UTF-8 bytes, as `ast` gives them ('Phú Xuân' is 10 bytes)."""
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        return []
    found: list[tuple[int, int, float]] = []
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _is_number(node.operand):
            inside.add(id(node.operand))
            found.append((node.col_offset, node.end_col_offset or 0, -node.operand.value))  # type: ignore[attr-defined]
        elif _is_number(node) and id(node) not in inside:
            found.append((node.col_offset, node.end_col_offset or 0, node.value))  # type: ignore[attr-defined]
    return sorted(found)


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


def _current(rule: CompiledRule, raw: LineDict, param: str, text: str) -> tuple[str, int, Any]:
    """(field, nth number or 0, the value the rule has now); SweepError if PARAM cannot be swept."""
    indexed = _expression_field(param)
    name, nth = indexed if indexed is not None else (param, 0)
    fields = type(rule.spec).model_fields
    allowed = sorted(info.alias or field_name for field_name, info in fields.items())
    if name not in allowed:
        guess = closest(name, allowed)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise SweepError(f"--sweep {text!r}: rule {rule.id!r} has no field {name!r} ({hint}fields: "
                         f"{', '.join(allowed)})")
    value = raw.get(name)
    if value is None:
        spec_name = next(field_name for field_name, info in fields.items() if (info.alias or field_name) == name)
        value = getattr(rule.spec, spec_name, None)
    # Expressions: `where`, `condition` (every kind that has one) and the kind's own.
    expression = name in type(rule.kind).EXPRESSION_FIELDS or name in ("where", "condition")
    if not expression:
        if indexed is not None:
            raise SweepError(f"--sweep {text!r}: {name} is not an expression")
        return name, 0, value
    if not isinstance(value, str) or "\n" in value.strip():
        raise SweepError(f"--sweep {text!r}: {name} must be a one-line expression to sweep a number in it")
    numbers = _numbers(value.strip())
    if not numbers:
        raise SweepError(f"--sweep {text!r}: {name} ({value!r}) has no number to sweep")
    if nth == 0 and len(numbers) > 1:
        raise SweepError(f"--sweep {text!r}: {name} ({value!r}) has {len(numbers)} numbers: "
                         f"say which, {name}[1] to {name}[{len(numbers)}]")
    if nth > len(numbers):
        raise SweepError(f"--sweep {text!r}: {name} ({value!r}) has only {len(numbers)} number(s)")
    nth = max(nth, 1)
    return name, nth, numbers[nth - 1][2]


def _with_value(raw: LineDict, sweep: Sweep, value: float) -> LineDict:
    """A copy of the rule's mapping with the swept value in it, written as an analyst would."""
    copy = LineDict(raw)
    copy.line, copy.key_lines = raw.line, dict(raw.key_lines)
    if sweep.nth:
        body = str(raw[sweep.param]).strip()
        start, end, _ = _numbers(body)[sweep.nth - 1]
        encoded = body.encode("utf-8")
        copy[sweep.param] = (encoded[:start] + _number_text(value).encode() + encoded[end:]).decode("utf-8")
    else:
        copy[sweep.param] = f"{_number_text(value)}s" if sweep.durations else _plain_number(value)
    return copy


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _number_text(value: float) -> str:
    return str(_plain_number(value))


def variant(ruleset: RuleSet, sweeps: Sequence[Sweep], values: Sequence[float],
            limits: LimitSettings | None = None,
            sources: Mapping[str, tuple[LineDict, LineDict]] | None = None) -> RuleSet:
    """The rule set with each swept rule given its values of this point of the grid (`sources`:
    the swept rules' mappings and defaults as `_source` reads them, when already read)."""
    limits = limits if limits is not None else LimitSettings()
    by_rule: dict[str, list[tuple[Sweep, float]]] = {}
    for sweep, value in zip(sweeps, values, strict=True):
        by_rule.setdefault(sweep.rule_id, []).append((sweep, value))
    compiled = []
    for rule_id, changes in by_rule.items():
        rule = ruleset.by_id[rule_id]
        raw, defaults = sources[rule_id] if sources and rule_id in sources else _source(rule, limits)
        for sweep, value in changes:
            raw = _with_value(raw, sweep, value)
        file = rule.source.rpartition(":")[0]
        built, problems = _build_rule(file, raw, defaults, ruleset.reference, limits, ruleset.schemas)
        if built is None:
            shown = ", ".join(f"{sweep.label}={sweep.show(value)}" for sweep, value in changes)
            raise SweepError(f"rule {rule_id!r} with {shown}: " + "; ".join(str(problem) for problem in problems))
        compiled.append(built)
    swept = {rule.id: rule for rule in compiled}
    return RuleSet.of([swept.get(rule.id, rule) for rule in ruleset.rules], ruleset.reference, ruleset.files,
                      schemas=ruleset.schemas)


# -- running -------------------------------------------------------------------------------------------


@dataclass
class _Job:
    rulesets: list[RuleSet]   # per point of the grid, compiled once before any replay
    sweeps: tuple[Sweep, ...]
    events: PreparedEvents
    truth: list[TruthIncident] | None
    partitions: int
    lateness_s: float
    limits: KeyLimits


_JOB: _Job | None = None   # what a forked worker process reads (set before the pool starts)


def run_sweep(
    ruleset: RuleSet, sweeps: Sequence[Sweep], events: Iterable[RawEvent], *,
    truth: Sequence[TruthIncident] | None = None, partitions: int = 1, lateness_s: float = 0.0,
    limits: KeyLimits = SHARD_LIMITS, rule_limits: LimitSettings | None = None, workers: int | None = None,
) -> list[Point]:
    """Every point of the grid of `sweeps` (in order), replayed over `events` (their swept rules'
    streams), in `workers` processes (default: one per core)."""
    global _JOB
    grid = list(itertools.product(*(sweep.values for sweep in sweeps)))
    if not grid:
        raise SweepError("no values to sweep")
    if len(grid) > MAX_POINTS:
        raise SweepError(f"{len(grid):,} points in the grid, more than {MAX_POINTS:,}")
    # Every point compiled first: a value a rule refuses is said before any replay.
    rule_limits = rule_limits if rule_limits is not None else LimitSettings()
    sources = {sweep.rule_id: _source(ruleset.by_id[sweep.rule_id], rule_limits) for sweep in sweeps}
    rulesets = [variant(ruleset, sweeps, values, rule_limits, sources) for values in grid]
    # The streams of the swept rules, and of the key spaces they run in (whose other rules run too).
    swept = frozenset(sweep.rule_id for sweep in sweeps)
    streams = {stream for rule_id in swept for stream in ruleset.by_id[rule_id].streams}
    streams |= {stream for space in plan_rules(ruleset, only=swept).spaces.values() for stream in space.streams}
    # Decoded once, here: each point replays the same events (the workers share them by fork).
    prepared = prepare_events((row for row in events if row.stream in streams), schemas=ruleset.schemas)
    job = _Job(rulesets, tuple(sweeps), prepared, list(truth) if truth is not None else None, partitions, lateness_s,
               limits)
    workers = max(1, min(workers or os.cpu_count() or 1, len(grid)))
    _JOB = job
    try:
        if workers == 1:
            points = [_point(index, values) for index, values in enumerate(grid)]
        else:
            context = multiprocessing.get_context("fork")  # the workers share the parent's events
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
                points = list(pool.map(_point, range(len(grid)), grid))
    finally:
        _JOB = None
    currents = tuple(sweep.current for sweep in sweeps)
    for point in points:
        point.current = point.values == currents
    return points


def _point(index: int, values: tuple[float, ...]) -> Point:
    job = _JOB
    assert job is not None
    rules = job.rulesets[index]
    swept = frozenset(sweep.rule_id for sweep in job.sweeps)
    # The swept rules run where the whole rule set would run them, with the rules of their key
    # spaces (they decide which events reach a space, hence its watermark and its sweeps): the
    # figures are those of a whole backtest.
    result = replay_prepared(rules, job.events, partitions=job.partitions, lateness_s=job.lateness_s,
                             limits=job.limits, only=swept)
    point = Point(values)
    for rule_id in dict.fromkeys(sweep.rule_id for sweep in job.sweeps):
        point.figures[rule_id] = figures_of(rules.by_id[rule_id], result, job.truth)
    return point


def figures_of(rule: CompiledRule, result: BacktestResult, truth: Sequence[TruthIncident] | None) -> Figures:
    """The figures of one rule in a backtest's result, the same in a whole backtest and a sweep
    (per day: over the event time of the rule's streams)."""
    rule_id = rule.id
    days = result.span_s(rule.streams) / 86400.0
    firing: dict[str, Alert] = {}
    for alert in result.alerts:
        if alert.rule_id == rule_id and alert.status == "firing":
            firing.setdefault(alert.alert_id, alert)
    out = Figures(episodes=len(firing), per_day=len(firing) / days if days > 0 else 0.0)
    if truth is None:
        return out
    named = [incident for incident in truth if rule_id in incident.rules]
    score = score_alerts(list(firing.values()), named)
    out.incidents = len(named)
    if named:
        caught = [incident for incident in named if score.caught.get(incident.id)]
        out.recall = len(caught) / len(named)
        delays = [firing[str(score.caught[incident.id])].detected_at - incident.start for incident in caught]
        out.detect_s = statistics.median(delays) if delays else None
    rule_score = score.rules.get(rule_id)
    out.precision = rule_score.precision if rule_score is not None else None
    return out

