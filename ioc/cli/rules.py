"""`ioc rules check PATH...`: validate rule files and report every problem with its line."""

from __future__ import annotations

import argparse
from pathlib import Path

from ioc.cli.common import console, err_console
from ioc.config import REPO_ROOT
from ioc.refdata import load_reference
from ioc.rules.exceptions import RuleError
from ioc.rules.loader import load_rules

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("rules", help="check analyst rule files")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    check = actions.add_parser("check", help="validate rule files; exit 1 on any error")
    check.add_argument("paths", nargs="*", type=Path, default=[REPO_ROOT / "rules"], help="files or folders")
    check.add_argument("--reference", type=Path, default=REPO_ROOT / "config" / "reference",
                       help="reference data folder (default config/reference)")
    check.set_defaults(run=run_check)


def run_check(args: argparse.Namespace) -> int:
    reference = load_reference(args.reference)
    try:
        ruleset = load_rules(args.paths, reference)
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
