"""What an explanation holds: plain data that the CLI prints for people and as JSON for scripts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ioc.rules.expr import ExpressionError
from ioc.rules.render import RenderError, evaluate, readable, substitute, with_threshold
from ioc.timeutil import format_ts

__all__ = ["Check", "EventRef", "Detail", "Resolution", "Explanation", "check"]


@dataclass
class Check:
    """A condition at one moment: its text, the values of its names, the text with the values put
    in (`substituted`, valid expression text), for people (`readable`), and what it gave (`holds`,
    the engine evaluating `substituted`: None when it could not be substituted)."""

    label: str
    text: str
    values: dict[str, Any]
    substituted: str | None
    readable: str
    holds: bool | None
    note: str = ""


def check(label: str, text: str, values: dict[str, Any], note: str = "") -> Check:
    """The Check of `text` with `values` (only the names the text reads are kept)."""
    try:
        literal = substitute(text, values)
        try:
            holds: bool | None = bool(evaluate(text, values))
        except (TypeError, ValueError, ArithmeticError):
            holds = False  # None >= 3: false, as the engine takes it
    except (RenderError, ExpressionError):  # no literal for a value, or longer than an expression may be
        literal, holds = None, None
    shown = readable(text, values)
    return Check(label, text.strip(), values, literal, shown, holds, note)


@dataclass
class EventRef:
    """One event the explanation points at: its role, stream, time, where it is (a file's line in
    a backtest, topic/partition/offset live), its id and the fields that matter."""

    role: str
    stream: str
    ts: float
    where: str
    id: str | None
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ts"] = format_ts(self.ts)
        return data


@dataclass
class Detail:
    """A kind's own fact about the episode (window contents, the zone, the matched text...)."""

    label: str
    text: str
    data: Any = None


@dataclass
class Resolution:
    """How the episode ended: `by` an event whose condition was false, a timer, or not (firing)."""

    by: str                      # "event" | "timer" | "firing"
    at: float | None
    text: str
    event: EventRef | None = None
    check: Check | None = None


@dataclass
class Explanation:
    """Why one alert fired, replayed: the record, the rule then and now, the triggering events, the
    conditions with their values, the kind's details and how it resolved."""

    record: dict[str, Any]
    rule_id: str
    kind: str
    rule_source: str | None
    rule_version: str | None
    current_version: str | None
    source: str                          # what was searched: a file, or a broker's topics
    reproduced: bool
    replayed_ids: list[str] = field(default_factory=list)
    fired_at: float | None = None
    fired_by: str = ""                   # "event" | "timer"
    events: list[EventRef] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    details: list[Detail] = field(default_factory=list)
    resolution: Resolution | None = None
    condition: str | None = None         # the rule's condition with its threshold (as records carry it)
    warnings: list[str] = field(default_factory=list)

    @property
    def rule_changed(self) -> bool:
        return self.rule_version is not None and self.rule_version != self.current_version

    def to_json(self) -> dict[str, Any]:
        """JSON-able, times in RFC 3339 UTC."""
        data = {
            "alert_id": self.record.get("alert_id"), "rule_id": self.rule_id, "kind": self.kind,
            "rule_source": self.rule_source, "rule_version": self.rule_version,
            "current_version": self.current_version, "rule_changed": self.rule_changed,
            "source": self.source, "reproduced": self.reproduced, "replayed_ids": self.replayed_ids,
            "fired_at": format_ts(self.fired_at) if self.fired_at is not None else None,
            "fired_by": self.fired_by, "condition": self.condition,
            "events": [event.to_json() for event in self.events],
            "checks": [asdict(item) for item in self.checks],
            "details": [asdict(item) for item in self.details],
            "resolution": None, "warnings": self.warnings, "record": self.record,
        }
        if self.resolution is not None:
            res = self.resolution
            data["resolution"] = {
                "by": res.by, "at": format_ts(res.at) if res.at is not None else None, "text": res.text,
                "event": res.event.to_json() if res.event is not None else None,
                "check": asdict(res.check) if res.check is not None else None,
            }
        return data


def threshold_text(text: str, values: dict[str, Any], keep: frozenset[str]) -> str:
    """`with_threshold`, never failing (an explanation shows the text as written instead)."""
    try:
        return with_threshold(text, values, keep)
    except (RenderError, SyntaxError, ValueError):
        return text.strip()
