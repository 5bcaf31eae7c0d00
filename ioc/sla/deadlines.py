"""An alert's ack and resolve deadlines, and when each escalation level of them is due.

Rules (docs/sla.md "Deadlines"):

* The alert record's `sla` (`ack_by`, `resolve_by`, computed by the engine in plain time from
  the rule's `sla`) is used as it is, unless the rule's deadlines count working time (the record's
  `sla.working_time` is true, or the rule id is in `working_time_rules`): then the budget
  `ack_by - starts_at` is counted again as working seconds from `starts_at`.
* A deadline the record lacks (no `sla`, or only one of the two) comes from the severity's
  defaults, in working time if the severity (or `working_time`) says so.
* Escalation level k (1-based) of a deadline is due at deadline + (k - 1) * repeat * budget, in
  the deadline's own time (plain or working).

>>> from ioc.sla.calendar import WorkingCalendar
>>> from ioc.timeutil import parse_ts
>>> start = parse_ts("2025-10-27T08:00:00+07:00")
>>> d = compute_deadlines(start, "critical", "r", {"ack_by": start + 300}, SlaSettings(), WorkingCalendar())
>>> d.ack_by - start, d.resolve_by - start, d.ack_source, d.resolve_source
(300.0, 14400.0, 'rule', 'default')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ioc.sla.calendar import WorkingCalendar
from ioc.sla.settings import SlaSettings
from ioc.timeutil import parse_ts

__all__ = ["Deadline", "Deadlines", "DeadlineKind", "compute_deadlines", "escalation_plan", "EscalationDue"]

DeadlineKind = Literal["ack", "resolve"]


@dataclass(frozen=True, slots=True)
class Deadline:
    kind: DeadlineKind
    due_at: float
    budget: float          # seconds after starts_at, working seconds when `working_time`
    working_time: bool
    source: str            # rule | default


@dataclass(frozen=True, slots=True)
class Deadlines:
    ack: Deadline
    resolve: Deadline

    @property
    def ack_by(self) -> float:
        return self.ack.due_at

    @property
    def resolve_by(self) -> float:
        return self.resolve.due_at

    @property
    def ack_source(self) -> str:
        return self.ack.source

    @property
    def resolve_source(self) -> str:
        return self.resolve.source


@dataclass(frozen=True, slots=True)
class EscalationDue:
    kind: DeadlineKind
    level: int
    agency: str
    due_at: float


def compute_deadlines(starts_at: float, severity: str, rule_id: str, sla: Mapping[str, Any] | None,
                      settings: SlaSettings, calendar: WorkingCalendar) -> Deadlines:
    """Both deadlines of an alert that started at `starts_at`. Raises ValueError on a bad `sla` time."""
    sla = sla or {}
    rule_working = bool(sla.get("working_time")) or settings.rule_uses_working_time(rule_id)
    defaults = settings.defaults_for(severity)
    default_working = settings.uses_working_time_by_default(severity)

    def one(kind: DeadlineKind, field: str, default_budget: float) -> Deadline:
        raw = sla.get(field)
        if raw is not None:
            budget = max(0.0, parse_ts(raw) - starts_at)
            if rule_working:
                return Deadline(kind, calendar.add_working(starts_at, budget), budget, True, "rule")
            return Deadline(kind, starts_at + budget, budget, False, "rule")
        if default_working:
            return Deadline(kind, calendar.add_working(starts_at, default_budget), default_budget, True, "default")
        return Deadline(kind, starts_at + default_budget, default_budget, False, "default")

    return Deadlines(one("ack", "ack_by", defaults.ack), one("resolve", "resolve_by", defaults.resolve))


def escalation_plan(starts_at: float, deadlines: Deadlines, settings: SlaSettings,
                    calendar: WorkingCalendar) -> list[EscalationDue]:
    """Every escalation an alert may need, in due order: per deadline, one per chain level."""
    plan = []
    for deadline in (deadlines.ack, deadlines.resolve):
        for index, step in enumerate(settings.escalation):
            extra = index * settings.escalation_repeat * deadline.budget
            if deadline.working_time:
                working_start = calendar.working_seconds(starts_at, deadline.due_at)
                due = calendar.add_working(starts_at, working_start + extra) if extra else deadline.due_at
            else:
                due = deadline.due_at + extra
            plan.append(EscalationDue(deadline.kind, index + 1, step.agency, due))
    plan.sort(key=lambda e: (e.due_at, e.kind != "ack", e.level))
    return plan
