"""Errors of rule loading: each problem carries file, line, rule id and field."""

from __future__ import annotations

from dataclasses import dataclass

from ioc.exceptions import IocError

__all__ = ["RuleProblem", "RuleError"]


@dataclass(frozen=True, order=True)
class RuleProblem:
    """One thing wrong in a rule file, printed as `file:line: rule 'id': field: message`."""

    file: str
    line: int
    rule_id: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        parts = [f"{self.file}:{self.line}:"]
        if self.rule_id is not None:
            parts.append(f"rule '{self.rule_id}':")
        if self.field:
            parts.append(f"{self.field}:")
        parts.append(self.message)
        return " ".join(parts)


class RuleError(IocError):
    """A rule set did not load; `problems` lists every error found, in file order."""

    def __init__(self, problems: list[RuleProblem]) -> None:
        self.problems = sorted(problems)
        count = len(self.problems)
        header = f"{count} error{'s' if count != 1 else ''} in the rules"
        super().__init__("\n".join([header, *(str(p) for p in self.problems)]))
