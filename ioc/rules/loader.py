"""Load analyst rule YAML into a compiled, indexed `RuleSet`, collecting every error.

>>> ruleset = load_rules(["rules"], load_reference("config/reference"))   # doctest: +SKIP
>>> [rule.spec.id for rule in ruleset.for_stream("reservoir")][:1]
['reservoir.level.near_nwl']

Every problem in every file is reported as `file:line: rule 'id': field: problem`; a rule
set with any error raises RuleError and is never returned half-loaded.
"""

from __future__ import annotations

import functools
import hashlib
import os
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from ioc.config import REPO_ROOT, LimitSettings, configured_schemas
from ioc.events.declared import BUILTIN, EventSchemas
from ioc.events.schemas import STREAMS
from ioc.refdata import Reference
from ioc.rules.exceptions import (
    QUOTE_CHARS,
    RuleError,
    RuleProblem,
    closest,
    did_you_mean,
    shorten,
    shorten_quoted,
)
from ioc.rules.expr import Expression
from ioc.rules.index import RouteIndex
from ioc.rules.keys import RefKey, route_fields, unknown_key_field
from ioc.rules.kinds import RULE_KINDS, BuildContext, KindProblem, KindProblems, RuleKind
from ioc.rules.model import RuleSpec
from ioc.rules.periods import PeriodError, Periods, load_periods
from ioc.rules.template import Template, TemplateError
from ioc.rules.thresholds import GROUP_MIN, ThresholdGroup
from ioc.rules.yamlload import LineDict, LineList, YamlProblems, load_yaml

__all__ = ["CompiledRule", "RuleSet", "load_rules", "rule_files", "read_bounded", "MAX_RULES_PER_FILE",
           "MAX_ITEMS", "MAX_TEXT_CHARS"]

FILE_KEYS = ("rules", "defaults")
RUNTIME_NAMES = frozenset({"rule_id", "severity", "stream"})
# Collection sizes in a rule file, checked before a rule is validated (README, "Limits").
MAX_RULES_PER_FILE = 1000
MAX_ITEMS = 1000  # items of any list (keywords, patterns, zones, values, steps) or keys of a mapping
MAX_TEXT_CHARS = 10_000  # characters of any text value (expressions have their own, lower, limit)


@dataclass(frozen=True, eq=False)
class CompiledRule:
    """One loaded rule: its spec, its kind's evaluator and its compiled parts."""

    spec: RuleSpec
    kind: RuleKind
    where: Expression | None
    key_fields: tuple[str, ...]
    summary: Template
    description: Template
    template_fields: tuple[str, ...]
    source: str
    # The rule's `annotations` as templates, in the order written (rendered like `summary`).
    annotations: tuple[tuple[str, Template], ...] = ()
    # When the rule applies (`active:`); None: always.
    periods: Periods | None = None

    @functools.cached_property
    def id(self) -> str:  # read for every rule an event meets: a plain attribute after the first time
        return self.spec.id

    @property
    def key_names(self) -> tuple[str, ...]:
        """Names of the key values in alert records and fingerprints."""
        return self.kind.key_names

    @property
    def streams(self) -> tuple[str, ...]:
        return self.kind.streams

    @functools.cached_property
    def place(self) -> str:
        """Where the rule is written, as alert records show it: `rules/reservoir.yaml:11` for a
        file under the repository, else its absolute path and line (the same wherever it is
        loaded from: the worker and a backtest give the same records)."""
        file, _, line = self.source.rpartition(":")
        path = Path(file).resolve()
        try:
            shown = str(path.relative_to(REPO_ROOT))
        except ValueError:
            shown = str(path)
        return f"{shown}:{line}"

    @functools.cached_property
    def version(self) -> str:
        """A hash of the rule's normalised definition and the reference rows it joins: equal
        versions evaluate alike, so saved state of one is valid for the other."""
        reference = self.kind.ctx.reference
        tables = {stream: _rows(reference.table(stream)) for stream in self.streams}
        # Fields added since versions were first saved are left out while unset, so that a
        # checkpoint of the earlier release (compared by version) stays valid for an unchanged rule.
        spec = {name: value for name, value in self.spec.model_dump(mode="json").items()
                if not (name in _LATER_FIELDS and value in (None, {}))}
        text = orjson.dumps([spec, tables], option=orjson.OPT_SORT_KEYS, default=str)
        return hashlib.sha256(text).hexdigest()[:16]


_LATER_FIELDS = frozenset({"max_keys", "key_ttl", "annotations", "runbook_url", "active"})


def _rows(table: Any) -> Any:
    return table.rows if table is not None else None


# (rule, its key fields for the stream): what the engine evaluates an event with.
Route = tuple["CompiledRule", tuple[str, ...]]


@dataclass(frozen=True, eq=False)
class RuleSet:
    """A complete, valid rule set, indexed by stream (disabled rules are left out)."""

    rules: tuple[CompiledRule, ...]
    reference: Reference
    files: tuple[str, ...] = ()
    by_stream: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    by_id: dict[str, CompiledRule] = field(default_factory=dict)
    _routes: dict[str, tuple[tuple[CompiledRule, tuple[str, ...]], ...]] = field(default_factory=dict)
    _starters: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict)
    _indexes: dict[str, RouteIndex[Route]] = field(default_factory=dict)
    # The same with the sorted threshold rules apart (see `layout`).
    _grouped: dict[str, Layout] = field(default_factory=dict)
    # The event models the rules were checked against (declared fields: ioc.events.declared): the
    # backtest decodes events with them.
    schemas: EventSchemas = BUILTIN

    @classmethod
    def of(cls, rules: Iterable[CompiledRule], reference: Reference, files: Iterable[str] = (), *,
           schemas: EventSchemas = BUILTIN) -> RuleSet:
        active = tuple(rule for rule in rules if rule.spec.enabled)
        by_stream = {s: tuple(r for r in active if s in r.streams) for s in STREAMS}
        routes = {s: tuple((r, route_fields(r.kind.key_fields(s), r.kind.ref_keys(s))) for r in rules_of)
                  for s, rules_of in by_stream.items()}
        starters = {
            s: tuple(r for r in rules_of if type(r.kind).on_start is not RuleKind.on_start)
            for s, rules_of in by_stream.items()
        }
        indexes = {s: index for s, rs in routes.items() if (index := _route_index(rs)) is not None}
        grouped = {s: layout for s, rs in routes.items() if (layout := _group_thresholds(rs)) is not None}
        return cls(active, reference, tuple(files), by_stream, {r.id: r for r in active}, routes, starters, indexes,
                   grouped, schemas)

    def for_stream(self, stream: str) -> tuple[CompiledRule, ...]:
        """Rules that evaluate events of `stream`."""
        return self.by_stream.get(stream, ())

    def routes(self, stream: str) -> tuple[tuple[CompiledRule, tuple[str, ...]], ...]:
        """(rule, key fields of this stream) for every rule of `stream`: the engine's index."""
        return self._routes.get(stream, ())

    def index(self, stream: str) -> RouteIndex[Route] | None:
        """The stream's routes hashed by the equalities of their rules' `where`
        (ioc.rules.index); None when no field is worth it (then every rule meets every event)."""
        return self._indexes.get(stream)

    def starters(self, stream: str) -> tuple[CompiledRule, ...]:
        """Rules of `stream` with an `on_start` hook."""
        return self._starters.get(stream, ())

    def layout(self, stream: str, grouped: bool) -> Layout:
        """How an engine meets the rules of `stream`: every route (its `index`, if any), or, when
        `grouped` (an engine with no allowed lateness), the threshold rules that compare one field
        with their own number in `groups` (ioc.rules.thresholds) and the others as before."""
        if grouped and stream in self._grouped:
            return self._grouped[stream]
        return Layout(self.routes(stream), self.index(stream), ())

    def __len__(self) -> int:
        return len(self.rules)

    @functools.cached_property
    def version(self) -> str:
        """A short hash of every rule's id and version: equal rule sets have equal versions.

        >>> RuleSet.of([], Reference.empty()).version                     # doctest: +SKIP
        'e3b0c44298fc'
        """
        text = "\n".join(sorted(f"{rule.id}:{rule.version}" for rule in self.rules))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Layout:
    """The rules of one stream as an engine meets them (`RuleSet.layout`)."""

    routes: tuple[Route, ...]
    index: RouteIndex[Route] | None
    groups: tuple[ThresholdGroup[Route], ...]
    # With groups: the rule-set position of each rule of `routes` (rules are met in that order).
    positions: Mapping[str, int] = field(default_factory=dict)


def _route_index(routes: tuple[Route, ...]) -> RouteIndex[Route] | None:
    index = RouteIndex.build([(route, _requires(route[0])) for route in routes])
    return index if index.field is not None else None


def _group_thresholds(routes: tuple[Route, ...]) -> Layout | None:
    """The routes with the threshold rules that can be sorted (`RuleKind.bound`: a single stream,
    no equality to hash in `where`) grouped by field, comparison and key, when a group has at
    least GROUP_MIN rules; None when none does."""
    members: dict[tuple[str, str, tuple[str, ...]], list[tuple[float, int, Route]]] = {}
    for position, route in enumerate(routes):
        rule, key_fields = route
        bound = rule.kind.bound
        if bound is None or len(rule.streams) != 1 or (rule.where is not None and rule.where.requires):
            continue
        if isinstance(key_fields, RefKey):
            continue  # groups read keys from the event only (ioc.rules.thresholds)
        field_name, op, number = bound
        members.setdefault((field_name, op, key_fields), []).append((number, position, route))
    groups = [ThresholdGroup.build(*shape, items) for shape, items in members.items() if len(items) >= GROUP_MIN]
    if not groups:
        return None
    apart = {position for group in groups for position, _ in group.items}
    rest = tuple(route for position, route in enumerate(routes) if position not in apart)
    positions = {route[0].id: position for position, route in enumerate(routes) if position not in apart}
    return Layout(rest, _route_index(rest), tuple(groups), positions)



def _requires(rule: CompiledRule) -> dict[str, frozenset[Any]]:
    return dict(rule.where.requires) if rule.where is not None else {}


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """The YAML files named, directories searched recursively (skipping `*.test.yaml` rule
    tests), in a stable order, with the symlinks that lead out of the named folders (which
    `load_rules` refuses): what a reload watches, so that adding such a link is reported."""
    found, problems = _find_files(paths)
    return sorted({*found, *(Path(problem.file) for problem in problems)})


def _find_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[RuleProblem]]:
    """The rule files of `paths`, and a problem for each symlink that resolves outside the
    named folders (a file named directly counts its own folder as named)."""
    named = [Path(raw) for raw in paths]
    roots = list(dict.fromkeys(_real(path if path.is_dir() else path.parent) for path in named))
    found: list[Path] = []
    problems: list[RuleProblem] = []

    def admit(path: Path) -> bool:
        if not path.is_symlink():
            return True
        target = _real(path)
        if any(target == root or target.is_relative_to(root) for root in roots):
            return True
        problems.append(RuleProblem(str(path), 0, None, None,
                                    f"is a symlink to '{target}', outside the rule folders "
                                    f"({', '.join(str(r) for r in roots)}): refused (copy the file into a rule "
                                    "folder, or name its folder as a rule folder)"))
        return False

    for path in named:
        if not path.is_dir():
            if admit(path):
                found.append(path)
            continue
        inside: list[Path] = []
        for folder, dirs, files in os.walk(path):  # symlinked folders are not entered
            base = Path(folder)
            for name in dirs:
                if (base / name).is_symlink():
                    admit(base / name)  # reported when it leads outside; its files are not read
            for name in files:
                entry = base / name
                if entry.suffix not in (".yaml", ".yml") or name.endswith((".test.yaml", ".test.yml")):
                    continue
                if admit(entry) and entry.is_file():
                    inside.append(entry)
        found.extend(sorted(inside))
    return found, problems


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return path.absolute()


def read_bounded(path: Path, limit: int, what: str = "limits.rule_file_bytes") -> str:
    """The UTF-8 text of `path` if it holds at most `limit` bytes; the size is checked before
    reading, and no more than `limit` bytes are ever read (a file that grows meanwhile too).

    Raises OSError, UnicodeDecodeError, or ValueError with a message for the analyst.

    >>> read_bounded(Path("rules/press.yaml"), 1024)          # doctest: +SKIP
    Traceback (most recent call last):
    ValueError: the file is 14,291 bytes, more than the limit of 1,024 bytes (limits.rule_file_bytes)
    """
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"the file is {size:,} bytes, more than the limit of {limit:,} bytes ({what})")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the file is more than the limit of {limit:,} bytes ({what})")
    return data.decode("utf-8")


def load_rules(
    paths: Iterable[str | Path], reference: Reference | None = None, *, limits: LimitSettings | None = None,
    schemas: EventSchemas | None = None,
) -> RuleSet:
    """Load and compile every rule in `paths`; raises RuleError listing every problem. `schemas`:
    the streams' event models with a deployment's declared fields (`Settings.schemas()`), checked
    like built-in fields; default: those of the configuration (config/ioc.yaml, or $IOC_CONFIG),
    as the worker and `ioc rules check` see them (pass `BUILTIN` for the built-in fields only)."""
    schemas = schemas if schemas is not None else configured_schemas()
    limits = limits if limits is not None else LimitSettings()
    reference = reference if reference is not None else Reference()
    problems: list[RuleProblem] = []
    compiled: list[CompiledRule] = []
    seen: dict[str, str] = {}
    paths = list(paths)
    files, problems = _find_files(paths)
    if not files and not problems:
        raise RuleError([RuleProblem(", ".join(str(p) for p in paths) or "(none)", 0, None, None,
                                     "no rule files found (expected .yaml files)")])
    for path in files:
        problems.extend(_load_file(path, reference, compiled, seen, limits, schemas))
    if problems:
        raise RuleError(problems)
    return RuleSet.of(compiled, reference, [str(p) for p in files], schemas=schemas)


def _load_file(
    path: Path, reference: Reference, out: list[CompiledRule], seen: dict[str, str], limits: LimitSettings,
    schemas: EventSchemas,
) -> list[RuleProblem]:
    name = str(path)
    try:
        text = read_bounded(path, limits.rule_file_bytes)
    except FileNotFoundError:
        return [RuleProblem(name, 0, None, None, "file not found")]
    except ValueError as exc:
        return [RuleProblem(name, 0, None, None, str(exc))]
    except OSError as exc:
        return [RuleProblem(name, 0, None, None, f"cannot be read: {exc}")]
    try:
        document, duplicates = load_yaml(text, name, max_nodes=limits.yaml_nodes)
    except YamlProblems as exc:
        return exc.problems
    if document is None:
        return []
    if not isinstance(document, LineDict):
        return [RuleProblem(name, 1, None, None, "the file must be a mapping with a 'rules:' list")]
    problems = [
        RuleProblem(name, document.line_of(key), None, key, f"unknown key (allowed: {', '.join(FILE_KEYS)})")
        for key in document
        if key not in FILE_KEYS
    ]
    problems += _place_duplicates(duplicates, document.get("rules"))
    defaults = document.get("defaults") or LineDict()
    if not isinstance(defaults, LineDict):
        problems.append(RuleProblem(name, document.line_of("defaults"), None, "defaults", "must be a mapping"))
        defaults = LineDict()
    rules = document.get("rules")
    if not isinstance(rules, LineList):
        problems.append(RuleProblem(name, document.line_of("rules"), None, "rules", "must be a list of rules"))
        return problems
    if len(rules) > MAX_RULES_PER_FILE:
        problems.append(RuleProblem(name, document.line_of("rules"), None, "rules",
                                    f"{len(rules):,} rules in one file, more than {MAX_RULES_PER_FILE:,} "
                                    "(split them into several files)"))
        return problems
    problems += _oversized(name, defaults, "(defaults)", None)
    for index, raw in enumerate(rules):
        line = rules.item_lines[index]
        if not isinstance(raw, LineDict):
            problems.append(RuleProblem(name, line, f"#{index + 1}", None, "a rule must be a mapping"))
            continue
        raw_id = raw.get("id")
        rule_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 200 else f"#{index + 1}"
        too_big = _oversized(name, raw, rule_id, None)
        if too_big:
            problems.extend(too_big)
            continue
        built, rule_problems = _build_rule(name, raw, defaults, reference, limits, schemas)
        problems.extend(rule_problems)
        if built is None:
            continue
        if built.id in seen:
            problems.append(RuleProblem(name, raw.line_of("id"), rule_id, "id",
                                        f"duplicate rule id (first defined at {seen[built.id]})"))
            continue
        seen[built.id] = built.source
        out.append(built)
    return problems


def _oversized(file: str, node: Any, rule_id: str, path: str | None) -> list[RuleProblem]:
    """Lists, mappings and texts of a rule over the collection limits, each with its line
    (checked before validation, so that nothing walks a huge value)."""
    found: list[RuleProblem] = []
    if isinstance(node, LineDict):
        if len(node) > MAX_ITEMS:
            found.append(RuleProblem(file, node.line, rule_id, path,
                                     f"{len(node):,} keys, more than the limit of {MAX_ITEMS:,}"))
            return found
        for key, value in node.items():
            child = f"{path}.{key}" if path else key
            if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                found.append(RuleProblem(file, node.line_of(key), rule_id, child,
                                         f"{shorten(value)} is longer than the limit of {MAX_TEXT_CHARS:,} "
                                         "characters"))
            else:
                found += _oversized(file, value, rule_id, child)
    elif isinstance(node, LineList):
        if len(node) > MAX_ITEMS:
            found.append(RuleProblem(file, node.line, rule_id, path,
                                     f"a list of {len(node):,} items, more than the limit of {MAX_ITEMS:,}"))
            return found
        for index, value in enumerate(node):
            child = f"{path}.{index}" if path else str(index)
            if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
                found.append(RuleProblem(file, node.item_lines[index], rule_id, child,
                                         f"{shorten(value)} is longer than the limit of {MAX_TEXT_CHARS:,} "
                                         "characters"))
            else:
                found += _oversized(file, value, rule_id, child)
    return found


def _long_texts(node: Any) -> list[str]:
    """The texts of a rule too long to quote whole in a message (the rule is already within
    the collection limits, so this walk is bounded)."""
    if isinstance(node, str):
        return [node] if len(node) > QUOTE_CHARS else []
    if isinstance(node, dict):
        return [text for value in node.values() for text in _long_texts(value)]
    if isinstance(node, list):
        return [text for value in node for text in _long_texts(value)]
    return []


def _place_duplicates(duplicates: list[RuleProblem], rules: Any) -> list[RuleProblem]:
    """Name the rule a duplicate YAML key belongs to (the rule whose lines hold it)."""
    if not isinstance(rules, LineList):
        return duplicates
    placed = []
    for problem in duplicates:
        owner = None
        for index, start in enumerate(rules.item_lines):
            if start <= problem.line and isinstance(rules[index], LineDict):
                raw_id = rules[index].get("id")
                owner = raw_id if isinstance(raw_id, str) else f"#{index + 1}"
        placed.append(RuleProblem(problem.file, problem.line, owner, problem.field, problem.message))
    return placed


def _merge_defaults(raw: LineDict, defaults: LineDict) -> tuple[dict[str, Any], dict[str, int]]:
    merged: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for key, value in defaults.items():
        merged[key], lines[key] = value, defaults.line_of(key)
    for key, value in raw.items():
        if key in ("labels", "annotations") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = {**merged[key], **value}
        merged[key], lines[key] = value, raw.line_of(key)
    return merged, lines


def _build_rule(
    file: str, raw: LineDict, defaults: LineDict, reference: Reference, limits: LimitSettings,
    schemas: EventSchemas,
) -> tuple[CompiledRule | None, list[RuleProblem]]:
    data, lines = _merge_defaults(raw, defaults)
    rule_id = data.get("id") if isinstance(data.get("id"), str) else None
    shown_id = rule_id if rule_id is None or len(rule_id) <= 200 else shorten(rule_id).strip("'")
    shown_id = shown_id or "(no id)"

    long_texts: list[str] | None = None

    def problem(field_name: str | None, message: str, line: int | None = None) -> RuleProblem:
        nonlocal long_texts
        top = field_name.split(".")[0] if field_name else None
        if long_texts is None:
            long_texts = _long_texts(data)
        # Kinds and validators quote the rule's values with repr: shorten them here, in one place.
        return RuleProblem(file, line or lines.get(top or "", raw.line), shown_id, field_name,
                           shorten_quoted(message, long_texts))

    kind_name = data.get("kind")
    if kind_name is None:
        return None, [problem("kind", f"missing (allowed: {', '.join(RULE_KINDS)})", raw.line)]
    kind_cls = RULE_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind_cls is None:
        return None, [problem("kind", f"{shorten(kind_name)} is not a rule kind (allowed: {', '.join(RULE_KINDS)}"
                                      f"{did_you_mean(kind_name, RULE_KINDS, VALUE_CUTOFF)})")]
    try:
        spec = kind_cls.Spec.model_validate(data)
    except ValidationError as exc:
        errors = _drop_missing_with_typo(exc.errors())
        found = [
            problem(_loc(err["loc"]), _message(err, kind_cls.Spec), _nested_line(raw, err["loc"]))
            for err in errors
        ]
        # The schema failed, but expressions can still be checked: report all at once.
        found += [problem(f, m) for f, m in _expression_problems(kind_cls, data, reference, errors, schemas)]
        return None, found
    fields = schemas.fields(spec.stream)
    ref_fields = reference.fields(spec.stream)
    ctx = BuildContext(spec.stream, fields, ref_fields, reference, schemas=schemas)
    problems: list[RuleProblem] = []
    kind: RuleKind | None = None
    kind_problems: list[KindProblem] = []
    try:
        kind = kind_cls(spec, ctx)
    except KindProblems as exc:
        kind_problems = exc.problems
    except KindProblem as exc:
        kind_problems = [exc]
    if kind_problems:
        # A kind reports every independent problem it finds (ioc.rules.kinds.base.Problems), but
        # skips checks that need what failed: its expressions are checked here too, so that every
        # error of the rule is reported at once (`where` is checked below).
        reported = [(exc.field, exc.message) for exc in kind_problems]
        failed = {name for name, _ in reported}
        reported += [(name, text) for name, text in _expression_problems(kind_cls, data, reference, [], schemas)
                     if name not in failed and name != "where"]
        problems.extend(problem(name, text) for name, text in dict.fromkeys(reported))
    where = None
    if spec.where:
        try:
            where = ctx.expression("where", spec.where)
        except KindProblem as exc:
            if (exc.field, exc.message) not in {(k.field, k.message) for k in kind_problems}:
                problems.append(problem(exc.field, exc.message))
    periods = None
    if spec.active is not None:
        try:
            periods = load_periods(spec.active, ctx.config_dir)
        except PeriodError as exc:
            problems.append(problem("active", str(exc)))
        else:
            where = periods.guard(where)  # outside the periods, as if `where` were false
    for stream in kind.streams if kind is not None else (spec.stream,):
        stream_known = schemas.fields(stream)
        stream_ref = reference.fields(stream)
        for key_field in kind.key_fields(stream) if kind is not None else spec.key:
            if key_field in _list_fields(schemas.model(stream)):
                problems.append(problem(
                    "key", f"'{key_field}' of stream '{stream}' is a list; a key must be a single value "
                    "(key by another field, or write one rule per value with a `where`)",
                ))
            elif key_field not in stream_known and key_field not in stream_ref:
                # A reference field is a key too (ioc.rules.keys): `key: [gauge]` on camera.
                problems.append(problem("key", unknown_key_field(key_field, stream, stream_known, stream_ref)))
    # A kind that failed to build still names what its templates may use (its details).
    kind_names = kind.template_names if kind else getattr(kind_cls, "TEMPLATE_NAMES", frozenset({"value"}))
    known = fields | ref_fields | RUNTIME_NAMES | kind_names
    for other in kind.streams if kind is not None else ():
        # Cross-stream kinds: templates may use any step stream's fields.
        known = known | schemas.fields(other) | reference.fields(other)
    templates: dict[str, Template] = {}
    for name in ("summary", "description"):
        try:
            templates[name] = Template(getattr(spec, name), known, max_width=limits.template_width,
                                       max_chars=limits.alert_text_chars)
        except TemplateError as exc:
            problems.append(problem(name, str(exc)))
    annotations: list[tuple[str, Template]] = []
    for name, text in spec.annotations.items():
        try:
            annotations.append((name, Template(text, known, max_width=limits.template_width,
                                               max_chars=limits.alert_text_chars)))
        except TemplateError as exc:
            problems.append(problem(f"annotations.{name}", str(exc), _nested_line(raw, ("annotations", name))))
    if problems or kind is None:
        return None, problems
    used = frozenset().union(*(t.names for t in (templates["summary"], templates["description"],
                                                 *(t for _, t in annotations))))
    needed = used & (known - RUNTIME_NAMES - {"value"})
    return CompiledRule(
        spec=spec,
        kind=kind,
        where=where,
        key_fields=tuple(spec.key),
        summary=templates["summary"],
        description=templates["description"],
        template_fields=tuple(sorted(needed | set(spec.key))),
        source=f"{file}:{raw.line}",
        annotations=tuple(annotations),
        periods=periods,
    ), []


def _list_fields(model: Any) -> frozenset[str]:
    """Declared fields of a stream that hold lists (press `topics`): not usable as keys."""
    def is_list(annotation: Any) -> bool:
        if typing.get_origin(annotation) in (list, tuple, set, frozenset):
            return True
        return any(is_list(arg) for arg in typing.get_args(annotation))

    return frozenset(name for name, info in model.model_fields.items() if is_list(info.annotation))


def _drop_missing_with_typo(errors: list[Any]) -> list[Any]:
    """A `conditon:` typo gives 'unknown key' and 'condition missing': keep only the first."""
    unknown = {err["loc"][-1] for err in errors if err["type"] == "extra_forbidden" and err["loc"]}
    kept = []
    for err in errors:
        if err["type"] == "missing" and err["loc"] and closest(str(err["loc"][-1]), unknown) is not None:
            continue
        kept.append(err)
    return kept


def _expression_problems(
    kind_cls: type[RuleKind], data: Mapping[str, Any], reference: Reference, errors: list[Any],
    schemas: EventSchemas,
) -> list[tuple[str, str]]:
    stream = data.get("stream")
    if stream not in STREAMS:
        return []
    failed = {err["loc"][0] for err in errors if err["loc"]}
    ctx = BuildContext(stream, schemas.fields(stream), reference.fields(stream), reference, schemas=schemas)
    found = []
    for name in ("where", *kind_cls.EXPRESSION_FIELDS):
        text = data.get(name)
        if isinstance(text, str) and name not in failed:
            try:
                ctx.expression(name, text, previous=name in kind_cls.PREVIOUS_FIELDS)
            except KindProblem as exc:
                found.append((exc.field, exc.message))
    return found


def _loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) if loc else "(rule)"


def _nested_line(raw: LineDict, loc: tuple[Any, ...]) -> int | None:
    node: Any = raw
    line = None
    for part in loc:
        if isinstance(node, LineDict) and isinstance(part, str) and part in node:
            line, node = node.line_of(part), node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and part < len(node):
            line, node = node.item_lines[part], node[part]
        else:
            break
    return line


def _allowed_keys(spec_cls: type[RuleSpec], loc: tuple[Any, ...]) -> list[str]:
    model: Any = spec_cls
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list of models (e.g. sequence steps)
            continue
        info = getattr(model, "model_fields", {}).get(part)
        annotation = getattr(info, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        model = next((c for c in candidates if hasattr(c, "model_fields")), None)
        if model is None:
            return []
    return sorted(info.alias or name for name, info in model.model_fields.items())


# How close a mistyped value must be to be suggested: closer than a key ('median' is no 'min').
VALUE_CUTOFF = 0.75


def _message(error: Mapping[str, Any], spec_cls: type[RuleSpec]) -> str:
    kind = error["type"]
    value = error.get("input")
    shown = shorten(value) if not isinstance(value, dict) else "a mapping"
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(spec_cls, error["loc"])
        if not allowed:
            return "unknown key"
        return f"unknown key (allowed: {', '.join(allowed)}{did_you_mean(str(error['loc'][-1]), allowed)})"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        expected = expected.replace(" or ", ", ")
        return f"{shown} is not allowed (allowed: {expected}{did_you_mean(value, expected.split(', '), VALUE_CUTOFF)})"
    if kind == "string_pattern_mismatch" and error["loc"] == ("id",):
        return f"{shown} is not a valid rule id (allowed: lowercase letters, digits, '.', '_' and '-')"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in ("string_type", "float_type", "int_type", "bool_type", "list_type", "dict_type", "model_type"):
        wanted = {"string_type": "text", "float_type": "a number", "int_type": "an integer",
                  "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
                  "model_type": "a mapping"}[kind]
        return f"{shown} is not {wanted}"
    return f"{shown}: {error['msg']}"
