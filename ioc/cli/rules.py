"""`ioc rules check PATH...`: validate rule files and report every problem with its line."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.text import Text

from ioc.analysis.rulestest import RuleTestError, run_test_file, test_files
from ioc.cli.common import console, err_console, fail
from ioc.config import REPO_ROOT, ConfigError, LimitSettings, load_settings
from ioc.refdata import load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import load_rules

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rules", help="check and test analyst rule files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    check = actions.add_parser("check", help="validate rule files; exit 1 on any error")
    check.add_argument("paths", nargs="*", type=Path, default=[REPO_ROOT / "rules"], help="files or folders")
    check.add_argument("--reference", type=Path, default=REPO_ROOT / "config" / "reference",
                       help="reference data folder joined to events by source_id (default config/reference)")
    check.add_argument("--config", help="settings file whose `limits` and declared `fields` apply, as for the worker "
                                        "(default: config/ioc.yaml, or $IOC_CONFIG)")
    check.set_defaults(run=run_check)
    test = actions.add_parser("test", help="run rule unit tests (*.test.yaml); exit 1 on any failure")
    test.add_argument("paths", nargs="*", type=Path, default=[REPO_ROOT / "rules"],
                      help="test files or folders (default: rules/)")
    test.set_defaults(run=run_test)


def configured_limits(path: str | None = None) -> LimitSettings:
    """The `limits` of the configuration (`path`, else config/ioc.yaml or $IOC_CONFIG), so that
    a check or a backtest sees what a worker with that configuration will. Raises ConfigError
    for an invalid one (never quietly other limits than the worker's)."""
    return load_settings(path).limits


def run_check(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        return fail(str(exc))
    limits = settings.limits
    try:
        reference = load_reference(args.reference, max_bytes=limits.rule_file_bytes, max_nodes=limits.yaml_nodes)
        # The configuration's declared fields (`fields:`) are known to the rules, as in the worker.
        ruleset = load_rules(args.paths, reference, limits=limits, schemas=settings.schemas())
    except RuleError as exc:
        for problem in exc.problems:
            err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
        count = len(exc.problems)
        err_console.print(f"[bold red]{count} error{'s' if count != 1 else ''}[/]: the rule set was not loaded")
        return 1
    per_stream = {s: len(rules) for s, rules in ruleset.by_stream.items() if rules}
    summary = ", ".join(f"{s} {n}" for s, n in per_stream.items())
    console.print(f"[green]OK[/]: {len(ruleset)} rules in {len(ruleset.files)} files ({summary})")
    return 0


def run_test(args: argparse.Namespace) -> int:
    files = test_files(args.paths)
    if not files:
        err_console.print("no rule tests found (files named *.test.yaml)")
        return 1
    passed = failed = 0
    for file in files:
        try:
            results = run_test_file(file)
        except RuleError as exc:
            for problem in exc.problems:
                err_console.print(str(problem), markup=False, highlight=False, soft_wrap=True)
            err_console.print(Text.assemble(("ERROR", "bold red"), f" {file}: its rules did not load"))
            failed += 1
            continue
        except RuleTestError as exc:
            err_console.print(Text.assemble(("ERROR", "bold red"), " ", str(exc)), highlight=False, soft_wrap=True)
            failed += 1
            continue
        for result in results:
            if result.error is not None:
                err_console.print(Text.assemble(("ERROR", "bold red"), " ", result.error), highlight=False,
                                  soft_wrap=True)
                failed += 1
                continue
            if result.passed:
                passed += 1
                console.print(Text.assemble(("PASS", "green"), f" {file.name}: {result.name}"), highlight=False)
                continue
            failed += 1
            console.print(Text.assemble(("FAIL", "bold red"), f" {file.name}: {result.name}"), highlight=False)
            for message in result.problems:
                console.print(f"    {message}", markup=False, highlight=False, soft_wrap=True)
            console.print("    expected:", style="dim")
            for line in result.expected or ["(no transitions)"]:
                console.print(f"      {line}", markup=False, highlight=False, soft_wrap=True)
            console.print("    actual:", style="dim")
            for line in result.actual or ["(no transitions)"]:
                console.print(f"      {line}", markup=False, highlight=False, soft_wrap=True)
    style = "green" if not failed else "bold red"
    console.print(f"[{style}]{passed} passed, {failed} failed[/]")
    return 1 if failed else 0
