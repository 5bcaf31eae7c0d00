"""Rule unit tests in YAML (`ioc rules test`), in the spirit of `promtool test rules`.

A test file names the rule files it tests and lists cases: input events (times absolute or
relative to `start`) and the alert transitions expected, in order.

```yaml
rule_files: [../reservoir.yaml]          # relative to this file
reference: ../../config/reference        # optional (default: config/reference)
tests:
  - name: near NWL fires after 10 minutes and resolves
    rules: [reservoir.level.near_nwl]    # optional: compare only these rules' alerts
    start: "2025-10-27T08:00:00+07:00"
    events:
      - {stream: reservoir, at: 0m, source_id: ta-trach, level_m: 44.6}
      - {stream: reservoir, at: 10m, source_id: ta-trach, level_m: 44.8}
      - {stream: reservoir, at: 25m, source_id: ta-trach, level_m: 44.0}
    advance_to: 2h                       # optional: move every watermark here at the end
    order: time                          # or as_written: replay in the listed (arrival) order
    expect:
      - {rule: reservoir.level.near_nwl, status: firing, key: {source_id: ta-trach}, starts_at: 0m}
      - {rule: reservoir.level.near_nwl, status: resolved, ends_at: 25m}
```

Expected fields: `rule` (required), `status` (required), and any of `key` (a subset),
`starts_at`, `ends_at` (a duration from `start`, or RFC 3339), `severity`, `value` (the
measured number, or null), `details` (a subset of the record's details, e.g.
`{matched: [xả lũ]}`), `summary` (exact), `summary_contains`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ioc.alerts import Alert
from ioc.analysis.backtest import RawEvent, run_backtest
from ioc.config import REPO_ROOT
from ioc.exceptions import IocError
from ioc.refdata import load_reference
from ioc.rules.exceptions import closest
from ioc.rules.loader import RuleSet, load_rules
from ioc.rules.yamlload import LineList, YamlProblems, load_yaml
from ioc.timeutil import format_ts, parse_duration, parse_ts, shown_local

__all__ = ["RuleTestError", "CaseResult", "run_test_file", "test_files"]

CASE_KEYS = {"name", "rules", "start", "events", "advance_to", "expect", "lateness", "order"}
EXPECT_KEYS = {"rule", "status", "key", "starts_at", "ends_at", "severity", "value", "details", "summary",
               "summary_contains"}


class RuleTestError(IocError):
    """A rule test file is malformed (not a failing test: a file that cannot run)."""


@dataclass
class CaseResult:
    file: str
    name: str
    passed: bool
    problems: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    actual: list[str] = field(default_factory=list)
    # A case that cannot run (a malformed case): what is wrong, as `file:line: test 'name': ...`;
    # the other cases of the file still run.
    error: str | None = None


def test_files(paths: list[Path]) -> list[Path]:
    """`*.test.yaml` files named or found under the given folders."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*.test.yaml")))
        else:
            found.append(path)
    return found


test_files.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


def _time(value: Any, start: float | None, where: str) -> float:
    """A duration from the case's `start` (e.g. `10m`), or an absolute RFC 3339 / epoch time."""
    if isinstance(value, str):
        try:
            offset = parse_duration(value)
        except ValueError:
            offset = None
        if offset is not None:
            if start is None:
                raise RuleTestError(f"{where}: {value!r} is relative: the test needs a `start` time")
            return start + offset
    try:
        return parse_ts(value)
    except ValueError:
        raise RuleTestError(
            f"{where}: {value!r} is neither a duration from `start` (e.g. 10m) nor an RFC 3339 time"
        ) from None


def _start(value: Any, where: str) -> float:
    """A case's `start`: RFC 3339 text, or what YAML makes of an unquoted time (a datetime)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise RuleTestError(f"{where}: start: {value.isoformat()} has no UTC offset (add Z or +07:00)")
        return value.timestamp()
    try:
        return parse_ts(value)
    except ValueError as exc:
        raise RuleTestError(f"{where}: start: {exc}") from None


def _load_ruleset(file: Path, doc: dict[str, Any]) -> RuleSet:
    names = doc.get("rule_files")
    if not isinstance(names, list) or not names:
        raise RuleTestError(f"{file}: rule_files: a list of rule files is required")
    reference_dir = doc.get("reference")
    reference = load_reference(file.parent / reference_dir if reference_dir else REPO_ROOT / "config" / "reference")
    # Rules know the configuration's declared fields (config/ioc.yaml or $IOC_CONFIG `fields:`), as
    # the worker does: load_rules' default.
    return load_rules([file.parent / name for name in names], reference)


def run_test_file(file: Path) -> list[CaseResult]:
    """Run every case of a test file; raises RuleTestError (or RuleError) if the file cannot run.
    A malformed case is a result with its `error`, and the other cases still run."""
    try:
        doc, duplicates = load_yaml(file.read_text(encoding="utf-8"), str(file))
    except OSError as exc:
        raise RuleTestError(f"{file}: cannot be read: {exc}") from None
    except YamlProblems as exc:
        raise RuleTestError("; ".join(str(problem) for problem in exc.problems)) from None
    if duplicates:  # a key written twice: which one was meant cannot be known
        raise RuleTestError("; ".join(str(problem) for problem in duplicates))
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise RuleTestError(f"{file}: expected a mapping with `rule_files:` and a `tests:` list")
    unknown = set(doc) - {"rule_files", "reference", "tests"}
    if unknown:
        names = ", ".join(sorted(unknown))
        raise RuleTestError(f"{file}: unknown key(s) {names} (allowed: rule_files, reference, tests)")
    ruleset = _load_ruleset(file, doc)
    cases = doc["tests"]
    lines = cases.item_lines if isinstance(cases, LineList) else [0] * len(cases)
    results = []
    for index, (case, line) in enumerate(zip(cases, lines, strict=True), start=1):
        name = str(case.get("name", f"test {index}")) if isinstance(case, dict) else f"test {index}"
        try:
            results.append(_run_case(file, index, case, ruleset, line))
        except RuleTestError as exc:
            results.append(CaseResult(str(file), name, False, error=str(exc)))
        except (ValueError, TypeError, AttributeError) as exc:  # a value of the wrong kind (`events: 5`)
            place = f"{file}:{line}" if line else str(file)
            results.append(CaseResult(str(file), name, False, error=f"{place}: test '{name}': {exc}"))
    return results


def _run_case(file: Path, index: int, case: Any, ruleset: RuleSet, line: int = 0) -> CaseResult:
    place = f"{file}:{line}" if line else str(file)
    where = f"{place}: test {index}"
    if not isinstance(case, dict):
        raise RuleTestError(f"{where}: a test must be a mapping")
    name = str(case.get("name", f"test {index}"))
    where = f"{place}: test '{name}'"
    unknown = set(case) - CASE_KEYS
    if unknown:
        names = ", ".join(sorted(unknown))
        raise RuleTestError(f"{where}: unknown key(s) {names} (allowed: {', '.join(sorted(CASE_KEYS))}"
                            f"{_did_you_mean(unknown, CASE_KEYS)})")
    start = _start(case["start"], where) if "start" in case else None
    rows = []
    for number, raw in enumerate(case.get("events") or [], start=1):
        if not isinstance(raw, dict) or "stream" not in raw:
            raise RuleTestError(f"{where}: event {number}: needs a `stream` field")
        body = dict(raw)
        stream = str(body.pop("stream"))
        if "at" in body:
            body["ts"] = format_ts(_time(body.pop("at"), start, f"{where}: event {number}: at"))
        rows.append(RawEvent(stream, body, f"{where}: event {number}"))
    selected = case.get("rules")
    unknown_rules = [r for r in selected or [] if r not in ruleset.by_id]
    if unknown_rules:
        raise RuleTestError(f"{where}: rules: unknown rule id(s) {', '.join(unknown_rules)}")
    until = _time(case["advance_to"], start, f"{where}: advance_to") if "advance_to" in case else None
    lateness = parse_duration(case["lateness"]) if case.get("lateness") not in (None, 0, "0", "0s") else 0.0
    # `order: as_written` replays events in the order listed (arrival order), so that a case can
    # show late events; the default sorts them by event time, like a backtest.
    order = case.get("order", "time")
    if order not in ("time", "as_written"):
        raise RuleTestError(f"{where}: order: {order!r} is not allowed (allowed: time, as_written)")
    result = run_backtest(ruleset, rows, lateness_s=lateness, until=until, in_order=order == "time")
    actual = [a for a in result.alerts if not selected or a.rule_id in selected]
    expected = case.get("expect") or []
    outcome = CaseResult(str(file), name, True)
    outcome.problems += [f"event rejected: {message}" for message in result.invalid_examples]
    outcome.expected = [_describe_expected(e) for e in expected]
    outcome.actual = [_describe(a, start) for a in actual]
    for number, want in enumerate(expected, start=1):
        if not isinstance(want, dict):
            raise RuleTestError(f"{where}: expect {number}: must be a mapping with `rule` and `status`")
        missing = sorted({"rule", "status"} - set(want))
        unknown_keys = sorted(set(want) - EXPECT_KEYS)
        if missing or unknown_keys:
            problems = ([f"missing {', '.join(missing)}"] if missing else []) + (
                [f"unknown key(s) {', '.join(unknown_keys)}"] if unknown_keys else [])
            raise RuleTestError(
                f"{where}: expect {number}: {'; '.join(problems)} (allowed: {', '.join(sorted(EXPECT_KEYS))}"
                f"{_did_you_mean(set(unknown_keys), EXPECT_KEYS)})"
            )
        if number > len(actual):
            outcome.problems.append(f"expected transition {number} did not happen: {_describe_expected(want)}")
            continue
        outcome.problems += [f"transition {number}: {p}" for p in _compare(want, actual[number - 1], start, where)]
    for extra in actual[len(expected):]:
        outcome.problems.append(f"unexpected transition: {_describe(extra, start)}")
    outcome.passed = not outcome.problems
    return outcome


def _did_you_mean(unknown: set[Any], allowed: set[str]) -> str:
    guesses = [f"'{found}'" for name in sorted(map(str, unknown)) if (found := closest(name, sorted(allowed)))]
    return f"; did you mean {', '.join(guesses)}?" if guesses else ""


def _compare(want: dict[str, Any], got: Alert, start: float | None, where: str) -> list[str]:
    problems = []
    if want["rule"] != got.rule_id:
        problems.append(f"rule: expected {want['rule']}, got {got.rule_id}")
    if want["status"] != got.status:
        problems.append(f"status: expected {want['status']}, got {got.status}")
    for name, value in (want.get("key") or {}).items():
        if got.key.get(name) != value:
            problems.append(f"key.{name}: expected {value!r}, got {got.key.get(name)!r}")
    for name, value in (want.get("details") or {}).items():
        if got.details.get(name) != value:
            problems.append(f"details.{name}: expected {value!r}, got {got.details.get(name)!r}")
    for name in ("starts_at", "ends_at"):
        if name in want:
            expected_ts = None if want[name] is None else _time(want[name], start, f"{where}: {name}")
            actual_ts = getattr(got, name)
            if expected_ts is None or actual_ts is None:
                if expected_ts != actual_ts:
                    problems.append(f"{name}: expected {want[name]!r}, got {_show_time(actual_ts, start)}")
            elif abs(expected_ts - actual_ts) > 1e-6:
                problems.append(f"{name}: expected {want[name]}, got {_show_time(actual_ts, start)}")
    for name in ("severity", "value", "summary"):
        if name in want and want[name] != getattr(got, name):
            problems.append(f"{name}: expected {want[name]!r}, got {getattr(got, name)!r}")
    if "summary_contains" in want and str(want["summary_contains"]) not in got.summary:
        problems.append(f"summary: expected to contain {want['summary_contains']!r}, got {got.summary!r}")
    return problems


def _show_time(ts: float | None, start: float | None) -> str:
    if ts is None:
        return "null"
    if start is not None and ts >= start:
        offset = ts - start
        return f"{_short(offset)} ({shown_local(ts)})"
    return shown_local(ts)


def _short(seconds: float) -> str:
    from ioc.timeutil import format_duration

    return format_duration(seconds)


def _describe(alert: Alert, start: float | None) -> str:
    key = ",".join(f"{k}={v}" for k, v in alert.key.items())
    when = _show_time(alert.starts_at, start)
    ends = f" ends {_show_time(alert.ends_at, start)}" if alert.ends_at is not None else ""
    return f"{alert.rule_id} {alert.status} [{key}] starts {when}{ends}"


def _describe_expected(want: Any) -> str:
    if not isinstance(want, dict):
        return repr(want)
    key = ",".join(f"{k}={v}" for k, v in (want.get("key") or {}).items())
    parts = [str(want.get("rule")), str(want.get("status"))]
    if key:
        parts.append(f"[{key}]")
    for name in ("starts_at", "ends_at"):
        if name in want:
            parts.append(f"{name.split('_')[0]} {want[name]}")
    return " ".join(parts)
