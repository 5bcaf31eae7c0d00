"""The alert tracker: per-alert lifecycle, deadlines, escalation and SLA outcomes.

Pure and time-explicit: the runtime feeds alert records (`ioc.alerts`), operator actions
(`ioc.alert-actions`) and the clock (`advance(now)`), and publishes what comes out
(`Output`): alert states (`ioc.alert-state`, keyed by fingerprint), rejections, escalation
alert records (`ioc.alerts`) and outcome records (`ioc.sla`). `snapshot()` is plain JSON-able
data; `restore()` takes it back, so that nothing fires twice or is lost across a restart.
The lifecycle, deadlines and record schemas are in docs/sla.md.

>>> tracker = AlertTracker(calendar=WorkingCalendar())
>>> alert = {"fingerprint": "eece90541220b5d3", "alert_id": "eece90541220b5d3-1761526800000",
...          "rule_id": "r", "stream": "camera", "severity": "critical", "status": "firing",
...          "labels": {"domain": "traffic"}, "starts_at": 1761526800.0,
...          "sla": {"ack_by": 1761527100.0, "resolve_by": 1761530400.0}}
>>> tracker.on_alert(alert).states[0]["operator_status"]
'open'
>>> [e["labels"]["escalation"] for e in tracker.advance(1761527200.0).escalations]
['1']
>>> out = tracker.on_action({"alert_id": alert["alert_id"], "action": "resolve", "by": "a",
...                          "at": 1761527300.0})
>>> out.outcomes[0]["ack_on_time"], out.outcomes[0]["resolve_on_time"]
(False, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ioc.alerts import Alert, fingerprint_of, make_alert_id
from ioc.sla.actions import Action, InvalidAction, parse_action
from ioc.sla.calendar import WorkingCalendar
from ioc.sla.deadlines import compute_deadlines, escalation_plan
from ioc.sla.exceptions import SnapshotError
from ioc.sla.settings import SlaSettings
from ioc.timeutil import format_ts, parse_ts

__all__ = ["AlertTracker", "AlertState", "Output", "SNAPSHOT_VERSION", "escalation_id"]

SNAPSHOT_VERSION = 1
NOTES_KEPT = 5
STATE_FIELDS = (
    "fingerprint", "alert_id", "rule_id", "domain", "severity", "agency", "status", "operator_status",
    "assignee", "starts_at", "ends_at", "ack_by", "resolve_by", "acked_at", "acked_by", "resolved_at",
    "resolved_by", "escalation_level", "overdue", "notes", "updated_at",
)


@dataclass
class Output:
    """What one call produced, for the runtime to publish."""

    states: list[dict[str, Any]] = field(default_factory=list)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    escalations: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        self.states += other.states
        self.rejections += other.rejections
        self.escalations += other.escalations
        self.outcomes += other.outcomes

    def __bool__(self) -> bool:
        return bool(self.states or self.rejections or self.escalations or self.outcomes)


@dataclass
class AlertState:
    """One alert episode as the tracker keeps it (every field JSON-able)."""

    fingerprint: str
    alert_id: str
    rule_id: str
    stream: str
    kind: str
    severity: str
    domain: str
    agency: str | None
    key: dict[str, Any]
    labels: dict[str, str]
    summary: str
    status: str                       # engine: firing | resolved
    starts_at: float
    ends_at: float | None
    ack_by: float
    resolve_by: float
    working_time: bool
    # [kind, level, agency, due_at] per possible escalation, in due order
    plan: list[list[Any]]
    operator_status: str = "open"     # open | acked | assigned | resolved
    assignee: str | None = None
    acked_at: float | None = None
    acked_by: str | None = None
    resolved_at: float | None = None
    resolved_by: str | None = None
    escalation_level: int = 0
    overdue: str | None = None
    notes: list[dict[str, Any]] = field(default_factory=list)
    updated_at: float = 0.0
    fired: list[str] = field(default_factory=list)      # "ack:1": escalations emitted
    open_escalations: list[str] = field(default_factory=list)  # fired and not yet resolved
    revision: int = 0                 # reopen count: outcomes of a later revision supersede
    rule_version: str | None = None   # of the alert record: escalations carry them on
    rule_source: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    value: Any = None

    def record(self) -> dict[str, Any]:
        """The `alert_state` record of `ioc.alert-state` (times as epoch seconds)."""
        out: dict[str, Any] = {"type": "alert_state"}
        for name in STATE_FIELDS:
            value = getattr(self, name)
            out[name] = [dict(n) for n in value] if name == "notes" else value
        return out


def escalation_id(alert_id: str, kind: str, level: int, due_at: float) -> tuple[str, str]:
    """(fingerprint, alert_id) of the escalation of an alert's deadline at a level: the same
    every time, so consumers can dedupe.

    >>> escalation_id("eece90541220b5d3-1761526800000", "ack", 1, 1761527100.0)[1][-14:]
    '-1761527100000'
    """
    fp = hashlib.sha256(f"{alert_id}|{kind}|{level}".encode()).hexdigest()[:16]
    return fp, make_alert_id(fp, due_at)


class AlertTracker:
    """Per-alert state keyed by alert id (a fingerprint's episodes), driven by records and the clock."""

    def __init__(self, settings: SlaSettings | None = None, calendar: WorkingCalendar | None = None) -> None:
        self.settings = settings or SlaSettings()
        self.calendar = calendar or WorkingCalendar.from_file(self.settings.calendar, self.settings.working_hours)
        self._alerts: dict[str, AlertState] = {}
        self._forgotten: dict[str, float] = {}   # alert id -> when its state was dropped
        self._clock: float | None = None
        # Nothing can happen in `advance` before this time (not part of the snapshot).
        self._next_due = -math.inf

    # ---- inputs -------------------------------------------------------------------------
    def on_alert(self, record: Mapping[str, Any]) -> Output:
        """An alert transition from `ioc.alerts`. Escalation records (label `escalation`) are ignored."""
        out = Output()
        if not isinstance(record, Mapping):
            out.rejections.append(_rejection("alert", record, "an alert record is a JSON object"))
            return out
        if (record.get("labels") or {}).get("escalation"):
            return out
        try:
            state = self._new_state(record)
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            out.rejections.append(_rejection("alert", record, f"malformed alert: {reason}"))
            return out
        known = self._alerts.get(state.alert_id)
        if known is None:
            # A resolved record for an alert never seen firing (or forgotten) starts nothing.
            if state.status != "firing" or state.alert_id in self._forgotten:
                return out
            self._alerts[state.alert_id] = state
            state.overdue = self._overdue(state)
            self._next_due = min(self._next_due, self._next_event(state))
            out.states.append(state.record())
        elif known.status == "firing" and state.status == "resolved":
            known.status, known.ends_at = "resolved", state.ends_at
            known.updated_at = max(known.updated_at, state.updated_at)
            self._next_due = min(self._next_due, self._next_event(known))
            out.states.append(known.record())
        # Anything else is a duplicate or a stale redelivery: idempotent, nothing changes.
        return out

    def on_action(self, record: Mapping[str, Any] | bytes | str, at: float | None = None) -> Output:
        """An operator action from `ioc.alert-actions`; `at` is used when the record has no time."""
        out = Output()
        parsed = parse_action(record)
        if isinstance(parsed, InvalidAction):
            out.rejections.append(_rejection("action", record, f"malformed: {parsed.reason}"))
            return out
        when = parsed.at if parsed.at is not None else at
        state = self._alerts.get(parsed.alert_id)
        reason = None
        if when is None:
            reason = "no time: the action has no `at`"
        elif state is None:
            reason = ("unknown alert_id: closed and forgotten" if parsed.alert_id in self._forgotten
                      else "unknown alert_id: no such alert on ioc.alerts")
        else:
            reason = self._apply(state, parsed, when, out)
        if reason is not None:
            out.rejections.append(_rejection("action", record, reason, when))
        return out

    def advance(self, now: float) -> Output:
        """Move the clock to `now`: fire due escalations, update overdue flags, forget old alerts."""
        out = Output()
        self._clock = now if self._clock is None else max(self._clock, now)
        clock = self._clock
        if clock <= self._next_due:
            return out
        next_due = math.inf
        for alert_id in sorted(self._alerts):
            state = self._alerts[alert_id]
            changed = False
            for kind, level, agency, due_at in state.plan:
                tag = f"{kind}:{level}"
                if due_at >= clock or tag in state.fired or not self._pending(state, kind):
                    continue
                state.fired.append(tag)
                state.open_escalations.append(tag)
                state.escalation_level = max(state.escalation_level, level)
                out.escalations.append(self._escalation(state, kind, level, agency, due_at, clock))
                changed = True
            overdue = self._overdue(state)
            if overdue != state.overdue:
                state.overdue = overdue
                changed = True
            if changed:
                state.updated_at = max(state.updated_at, clock)
                out.states.append(state.record())
            if (state.operator_status == "resolved" and state.status == "resolved"
                    and max(state.resolved_at or 0.0, state.ends_at or 0.0) + self.settings.retention < clock):
                del self._alerts[alert_id]
                self._forgotten[alert_id] = clock
            else:
                next_due = min(next_due, self._next_event(state))
        self._next_due = next_due
        horizon = clock - 4 * self.settings.retention
        self._forgotten = {k: v for k, v in self._forgotten.items() if v >= horizon}
        return out

    # ---- state --------------------------------------------------------------------------
    def state(self, alert_id: str) -> dict[str, Any] | None:
        """The current `alert_state` record of an alert, or None."""
        state = self._alerts.get(alert_id)
        return state.record() if state is not None else None

    def __len__(self) -> int:
        return len(self._alerts)

    def snapshot(self) -> dict[str, Any]:
        """All state as plain JSON-able data (see `restore`)."""
        return {
            "version": SNAPSHOT_VERSION,
            "clock": self._clock,
            "alerts": [dataclasses.asdict(self._alerts[k]) for k in sorted(self._alerts)],
            "forgotten": dict(sorted(self._forgotten.items())),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace the state with a `snapshot()` (after a JSON round trip too)."""
        if not isinstance(data, Mapping) or data.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(f"not an alert tracker snapshot of version {SNAPSHOT_VERSION}")
        try:
            alerts = {a["alert_id"]: AlertState(**a) for a in data["alerts"]}
            forgotten = {str(k): float(v) for k, v in data.get("forgotten", {}).items()}
            clock = data.get("clock")
        except (KeyError, TypeError) as exc:
            raise SnapshotError(f"bad alert tracker snapshot: {exc}") from None
        self._alerts, self._forgotten = alerts, forgotten
        self._next_due = -math.inf
        self._clock = None if clock is None else float(clock)

    # ---- internals ----------------------------------------------------------------------
    def _new_state(self, record: Mapping[str, Any]) -> AlertState:
        alert_id = str(record["alert_id"])
        fp = str(record["fingerprint"])
        if fingerprint_of(alert_id) != fp:
            raise ValueError(f"alert_id {alert_id!r} is not an episode of fingerprint {fp!r}")
        status = record["status"]
        if status not in ("firing", "resolved"):
            raise ValueError(f"status {status!r} (firing or resolved)")
        labels = {str(k): str(v) for k, v in (record.get("labels") or {}).items()}
        starts_at = parse_ts(record["starts_at"])
        ends_at = parse_ts(record["ends_at"]) if record.get("ends_at") is not None else None
        severity = str(record["severity"])
        rule_id = str(record["rule_id"])
        sla = record.get("sla")
        if sla is not None and not isinstance(sla, Mapping):
            raise ValueError("sla: an object {ack_by, resolve_by}")
        deadlines = compute_deadlines(starts_at, severity, rule_id, sla, self.settings, self.calendar)
        plan = [[e.kind, e.level, e.agency, e.due_at]
                for e in escalation_plan(starts_at, deadlines, self.settings, self.calendar)]
        stream = str(record.get("stream") or "")
        detected = record.get("detected_at")
        updated = parse_ts(detected) if detected is not None else (ends_at if ends_at is not None else starts_at)
        return AlertState(
            fingerprint=fp, alert_id=alert_id, rule_id=rule_id, stream=stream,
            kind=str(record.get("kind") or ""), severity=severity,
            domain=labels.get("domain") or stream, agency=labels.get("agency"),
            key=dict(record.get("key") or {}), labels=labels, summary=str(record.get("summary") or ""),
            status=status, starts_at=starts_at, ends_at=ends_at,
            ack_by=deadlines.ack_by, resolve_by=deadlines.resolve_by,
            working_time=deadlines.ack.working_time or deadlines.resolve.working_time,
            plan=plan, updated_at=updated,
            rule_version=_text_or_none(record.get("rule_version")),
            rule_source=_text_or_none(record.get("rule_source")),
            annotations=_annotations(record.get("annotations")),
            value=record.get("value"),
        )

    def _apply(self, state: AlertState, action: Action, at: float, out: Output) -> str | None:
        """Apply an action; the reason it is refused, or None when applied."""
        if at < state.starts_at:
            return f"{action.action} at {format_ts(at)} is before the alert started ({format_ts(state.starts_at)})"
        resolved = state.operator_status == "resolved"
        closed = f"resolved at {format_ts(state.resolved_at or 0.0)} by {state.resolved_by}"
        verb = action.action
        if verb == "ack":
            if resolved:
                return f"ack after resolve ({closed})"
            if state.acked_at is not None:
                return f"already acknowledged at {format_ts(state.acked_at)} by {state.acked_by}"
            self._ack(state, action.by, at, out)
            state.operator_status = "acked"
        elif verb == "assign":
            if resolved:
                return f"assign after resolve ({closed})"
            if state.assignee == action.assignee:
                return f"already assigned to {action.assignee}"
            if state.acked_at is None:
                self._ack(state, action.by, at, out)
            state.assignee, state.operator_status = action.assignee, "assigned"
        elif verb == "comment":
            if not action.note:
                return "comment without a note"
        elif verb == "resolve":
            if resolved:
                return f"resolve of an already resolved alert ({closed})"
            if state.acked_at is None:
                self._ack(state, action.by, at, out)
            state.resolved_at, state.resolved_by, state.operator_status = at, action.by, "resolved"
            self._close_escalations(state, None, at, out)
            out.outcomes.append(_outcome(state, at))
        elif verb == "reopen":
            if not resolved:
                return f"reopen of an open alert (operator status: {state.operator_status})"
            state.resolved_at = state.resolved_by = None
            state.operator_status = "assigned" if state.assignee else "acked"
            state.revision += 1
        state.notes = [*state.notes, {"by": action.by, "at": at, "action": verb, "note": action.note}][-NOTES_KEPT:]
        state.overdue = self._overdue(state)
        # Never backwards: an action may carry a time before the alert's detection (the
        # compacted state topic and its readers keep the record with the latest updated_at).
        state.updated_at = max(state.updated_at, at)
        self._next_due = min(self._next_due, self._next_event(state))
        out.states.append(state.record())
        return None

    def _next_event(self, state: AlertState) -> float:
        """The earliest time after which `advance` may change this alert (it acts when clock > it)."""
        times = [due for kind, level, _, due in state.plan
                 if f"{kind}:{level}" not in state.fired and self._pending(state, kind)]
        if state.operator_status != "resolved":
            if state.overdue != "resolve":
                times.append(state.resolve_by)
            if state.acked_at is None and state.overdue is None:
                times.append(state.ack_by)
        elif state.status == "resolved":
            times.append(max(state.resolved_at or 0.0, state.ends_at or 0.0) + self.settings.retention)
        return min(times, default=math.inf)

    def _ack(self, state: AlertState, by: str, at: float, out: Output) -> None:
        state.acked_at, state.acked_by = at, by
        self._close_escalations(state, "ack", at, out)

    def _close_escalations(self, state: AlertState, kind: str | None, at: float, out: Output) -> None:
        """Resolved transitions of the escalations a met deadline ends (all of them for None)."""
        plan = {f"{k}:{lvl}": (k, lvl, agency, due) for k, lvl, agency, due in state.plan}
        keep = []
        for tag in state.open_escalations:
            if kind is not None and not tag.startswith(f"{kind}:"):
                keep.append(tag)
                continue
            k, lvl, agency, due = plan[tag]
            record = self._escalation(state, k, lvl, agency, due, at)
            record.update(status="resolved", ends_at=format_ts(at))
            out.escalations.append(record)
        state.open_escalations = keep

    @staticmethod
    def _pending(state: AlertState, kind: str) -> bool:
        """Whether a deadline of this kind is still unmet."""
        if kind == "ack":
            return state.acked_at is None
        return state.operator_status != "resolved"

    def _overdue(self, state: AlertState) -> str | None:
        clock = self._clock
        if clock is None or state.operator_status == "resolved":
            return None
        if clock > state.resolve_by:
            return "resolve"
        if state.acked_at is None and clock > state.ack_by:
            return "ack"
        return None

    def _escalation(self, state: AlertState, kind: str, level: int, agency: str, due_at: float,
                    now: float) -> dict[str, Any]:
        fp, esc_id = escalation_id(state.alert_id, kind, level, due_at)
        what = "tiếp nhận" if kind == "ack" else "xử lý"
        deadline = state.ack_by if kind == "ack" else state.resolve_by
        alert = Alert(
            fingerprint=fp, alert_id=esc_id, rule_id=state.rule_id, stream=state.stream, kind=state.kind,
            severity=state.severity, status="firing", key=dict(state.key),
            labels={**state.labels, "escalation": str(level), "escalated_to": agency, "overdue": kind},
            summary=f"Quá hạn {what} (cấp {level}, chuyển {agency}): {state.summary}".rstrip(": "),
            description=f"Alert {state.alert_id}: {kind} deadline {format_ts(deadline)} passed; "
                        f"escalation level {level} to {agency}.",
            starts_at=due_at, ends_at=None, detected_at=now,
            # The escalated alert's measured value, as its kind gives it; what escalated is a detail.
            value=state.value,
            details={"escalation": {"of_alert_id": state.alert_id, "of_fingerprint": state.fingerprint,
                                    "deadline": kind, "deadline_at": format_ts(deadline), "level": level,
                                    "escalated_to": agency}},
            evidence=[state.alert_id], rule_version=state.rule_version, rule_source=state.rule_source,
            annotations=dict(state.annotations),
        )
        return alert.to_record()


def _annotations(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(name): str(text) for name, text in value.items()}


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _outcome(state: AlertState, resolved_at: float) -> dict[str, Any]:
    acked_at = state.acked_at if state.acked_at is not None else resolved_at
    return {
        "type": "outcome", "alert_id": state.alert_id, "fingerprint": state.fingerprint, "rule_id": state.rule_id,
        "domain": state.domain, "severity": state.severity, "agency": state.agency,
        "starts_at": state.starts_at, "ack_by": state.ack_by, "resolve_by": state.resolve_by,
        "acked_at": acked_at, "resolved_at": resolved_at,
        "ack_s": acked_at - state.starts_at, "resolve_s": resolved_at - state.starts_at,
        "ack_late_s": max(0.0, acked_at - state.ack_by), "resolve_late_s": max(0.0, resolved_at - state.resolve_by),
        "ack_on_time": acked_at <= state.ack_by, "resolve_on_time": resolved_at <= state.resolve_by,
        "revision": state.revision, "working_time": state.working_time,
    }


def _rejection(source: str, record: Any, reason: str, at: float | None = None) -> dict[str, Any]:
    if isinstance(record, bytes):
        record = record.decode("utf-8", "replace")
    mapping = record if isinstance(record, Mapping) else {}
    return {
        "type": "rejection", "source": source, "reason": reason,
        "alert_id": mapping.get("alert_id") if isinstance(mapping.get("alert_id"), str) else None,
        "action": mapping.get("action") if isinstance(mapping.get("action"), str) else None,
        "at": at, "record": dict(mapping) if mapping else record,
    }
