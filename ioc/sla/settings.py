"""Settings of the alert tracker: default deadlines per severity, working time, escalation chain.

Plain pydantic models with defaults, meant to become `settings.sla` of `config/ioc.yaml`.
Durations are written as in rules (`15m`, `4h`, `1h30m`). A duration counted in working time
is working seconds: with the default hours (8 h a day) one working day is `8h`, five are `40h`.

>>> s = SlaSettings()
>>> s.defaults["critical"].ack, s.defaults["critical"].resolve
(900.0, 14400.0)
>>> s.uses_working_time_by_default("info"), s.uses_working_time_by_default("critical")
(True, False)
>>> [step.agency for step in s.escalation][:1]
['Trực ban IOC']
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from ioc.timeutil import parse_duration

__all__ = ["DeadlineDefaults", "WorkingHours", "EscalationStep", "SlaSettings", "DEFAULT_CALENDAR"]

DEFAULT_CALENDAR = "config/calendars/vn.yaml"
_CLOCK = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def _duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (e.g. 30s, 5m, 2h, 1d, 1h30m)")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]


class DeadlineDefaults(BaseModel):
    """Deadlines for alerts whose rule has no `sla` (or lacks one of the two)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ack: Duration = Field(gt=0)
    resolve: Duration = Field(gt=0)
    # None: follow SlaSettings.working_time.
    working_time: bool | None = None


def _default_deadlines() -> dict[str, DeadlineDefaults]:
    # Why these (docs/sla.md "Default deadlines"): docs/domain.md gives urgent 24 h and normal 5
    # working days; emergency/critical mirror the camera and cyber rules' own `sla` blocks.
    return {
        "emergency": DeadlineDefaults(ack=300, resolve=3600),
        "critical": DeadlineDefaults(ack=900, resolve=4 * 3600),
        "warning": DeadlineDefaults(ack=3600, resolve=24 * 3600),
        "info": DeadlineDefaults(ack=8 * 3600, resolve=40 * 3600, working_time=True),
    }


class WorkingHours(BaseModel):
    """Office hours in local time. Default: Monday-Friday 07:00-11:30 and 13:30-17:00 in
    Asia/Ho_Chi_Minh, 8 h a day (Labour Code 2019 art. 105; the 40-hour week of public offices)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    timezone: str = "Asia/Ho_Chi_Minh"
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)    # Monday = 0
    periods: tuple[tuple[str, str], ...] = (("07:00", "11:30"), ("13:30", "17:00"))

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(day not in range(7) for day in value):
            raise ValueError("weekdays: numbers 0 (Monday) to 6 (Sunday), at least one")
        return tuple(sorted(set(value)))

    @field_validator("periods")
    @classmethod
    def _periods(cls, value: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        previous_end = -1
        for start, end in value:
            if not _CLOCK.match(start) or not _CLOCK.match(end):
                raise ValueError(f"period {start}-{end}: times are HH:MM (e.g. 07:30)")
            if not clock_seconds(start) < clock_seconds(end) or clock_seconds(start) < previous_end:
                raise ValueError(f"period {start}-{end}: periods must be increasing and not overlap")
            previous_end = clock_seconds(end)
        if not value:
            raise ValueError("periods: at least one (e.g. [[07:30, 11:30]])")
        return value

    def seconds(self) -> tuple[tuple[int, int], ...]:
        """The periods as seconds after local midnight."""
        return tuple((clock_seconds(a), clock_seconds(b)) for a, b in self.periods)


def clock_seconds(text: str) -> int:
    """Seconds after midnight of `HH:MM`.

    >>> clock_seconds("13:30")
    48600
    """
    hours, minutes = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60


class EscalationStep(BaseModel):
    """One level of the escalation chain: who an overdue alert goes to."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    agency: str = Field(min_length=1, max_length=200)


def _default_chain() -> list[EscalationStep]:
    return [EscalationStep(agency=name)
            for name in ("Trực ban IOC", "Lãnh đạo Trung tâm IOC", "Lãnh đạo UBND tỉnh")]


class SlaSettings(BaseModel):
    """Everything the alert tracker needs besides the alerts and actions themselves."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    defaults: dict[str, DeadlineDefaults] = Field(default_factory=_default_deadlines)
    # Default of DeadlineDefaults.working_time (deadlines from severity defaults only).
    working_time: bool = False
    # Rules whose own `sla` is counted in working time (ids, or prefixes ending in '*').
    working_time_rules: tuple[str, ...] = ()
    calendar: str = DEFAULT_CALENDAR
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    escalation: list[EscalationStep] = Field(default_factory=_default_chain)
    # Level k (1-based) of a deadline fires at deadline + (k - 1) * repeat * budget.
    escalation_repeat: float = Field(default=1.0, gt=0)
    # An alert closed by its operator (and resolved by the engine) is forgotten this long after.
    retention: Duration = 7 * 86400.0
    # The worker's tracker clock: `wall` (time.time()) or `event` (the latest event time its
    # alert records carry: starts_at/ends_at; not actions), for replays and the demo's fast time.
    clock: Literal["wall", "event"] = "wall"
    # How often the worker publishes its SLA figures (snapshot records on `ioc.sla`, gauges).
    snapshot_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _warning_exists(self) -> SlaSettings:
        if "warning" not in self.defaults:
            raise ValueError("defaults: 'warning' is required (used for unknown severities)")
        return self

    def defaults_for(self, severity: str) -> DeadlineDefaults:
        """The defaults of a severity (those of `warning` for an unknown one)."""
        return self.defaults.get(severity) or self.defaults["warning"]

    def uses_working_time_by_default(self, severity: str) -> bool:
        """Whether default deadlines of this severity count working time."""
        own = self.defaults_for(severity).working_time
        return self.working_time if own is None else own

    def rule_uses_working_time(self, rule_id: str) -> bool:
        """Whether this rule's own `sla` is counted in working time."""
        return any(rule_id == p or (p.endswith("*") and rule_id.startswith(p[:-1]))
                   for p in self.working_time_rules)
