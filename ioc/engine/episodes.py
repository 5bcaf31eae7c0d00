"""Episodes: what happens when a rule kind says "fire" or "resolve" for a key.

The runtime owns what every kind shares: alert ids, realert suppression, evidence,
template rendering and SLA deadlines. Kinds only decide when conditions hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from ioc.alerts import Alert
from ioc.rules.kinds.base import Key, State
from ioc.rules.loader import CompiledRule
from ioc.rules.render import RenderError, names_of, with_threshold

__all__ = ["EpisodeRuntime", "EpisodeHost", "Lane", "rendered_condition"]

# A time line: its own watermark and timers. A raw topic partition is ("camera", 2); a
# re-keyed shard merges several streams into one lane.
Lane = tuple[str, int]


class EpisodeHost(Protocol):
    """What the episode runtime needs of the engine (kept narrow: no import of the engine)."""

    states: dict[str, dict[Key, State]]
    clock: Callable[[], float]

    def schedule(self, lane: Lane, deadline: float, rule_id: str, key: Key) -> None: ...

    def fingerprint_of(self, rule: CompiledRule, key: Key, state: State) -> str: ...

    def make_alert_id(self, fp: str, starts_at: float) -> str: ...

    def owns(self, key: Key) -> bool: ...


class EpisodeRuntime:
    """The `Runtime` a kind sees; the engine points it at the current rule and event."""

    def __init__(self, engine: EpisodeHost, evidence_limit: int) -> None:
        self.engine = engine
        self.evidence_limit = evidence_limit
        self.out: list[Alert] = []
        self.rule: CompiledRule | None = None
        self.partition: Lane = ("", 0)
        self.stream: str = ""
        self.event: Mapping[str, Any] | None = None
        # Event time of what is being evaluated: the event's ts, or a timer's deadline.
        self.now: float = float("-inf")

    # -- Runtime protocol ---------------------------------------------------------------------

    def fire(
        self, key: Key, state: State, *, starts_at: float, value: Any,
        event: Mapping[str, Any] | None, ref: Mapping[str, Any], retry: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        rule = self.rule
        if rule is None or state.get("firing"):
            return
        now = self.now
        resolved_at = state.get("_resolved_at")
        realert = rule.spec.realert
        if resolved_at is not None and realert and now < resolved_at + realert:
            # Too soon after the last episode: a continuous condition is tried again when the
            # realert interval is over; an instant match is dropped (with its evidence).
            if retry:
                self.schedule(resolved_at + realert, key)
            else:
                state.pop("_evidence", None)
            return
        previous_start = state.get("_last_starts_at")
        if previous_start is not None and resolved_at is not None and starts_at <= previous_start:
            # A leftover partial match (a sequence's, say) can claim a start at or before the
            # previous episode's: the new episode starts when that one ended, so that its
            # alert id differs and consumers deduplicating on it keep both.
            starts_at = resolved_at
        values = self.project(event or {}, ref)
        if details:
            values.update(details)
        alias = rule.kind.VALUE_ALIAS
        shown = value if value is not None or alias is None or not details else details.get(alias)
        values.update({"value": shown, "rule_id": rule.id, "severity": rule.spec.severity,
                       "stream": rule.spec.stream})
        if event is not None:
            self.note(state, event)
        state.update(
            firing=True,
            _starts_at=starts_at,
            _value=value,
            _summary=rule.summary.render(values),
            _description=rule.description.render(values),
            # Kept while firing, so that a reload that changes only the texts can render them again.
            _values=values,
            _condition=rendered_condition(rule, key, ref),
        )
        if details:
            state["_details"] = dict(details)
        if rule.annotations:
            state["_annotations"] = _render_annotations(rule, values)
        self.out.append(self.alert_of(rule, key, state, "firing", None))

    def render_again(self, rule: CompiledRule, state: State) -> None:
        """A firing alert's texts with `rule`'s templates (after a reload that changed only them):
        from the values kept when it fired; a name the old templates did not use shows as '?'."""
        values = state.get("_values")
        if values is None:
            return  # fired before values were kept: its texts stay as they were
        values = dict(values)
        values.update({"rule_id": rule.id, "severity": rule.spec.severity, "stream": rule.spec.stream})
        state["_summary"] = rule.summary.render(values)
        state["_description"] = rule.description.render(values)
        if rule.annotations:
            state["_annotations"] = _render_annotations(rule, values)
        else:
            state.pop("_annotations", None)

    def resolve(self, key: Key, state: State, *, ends_at: float) -> None:
        rule = self.rule
        if rule is None or not state.get("firing"):
            return
        # An episode never ends before it starts, whatever the order of late events.
        alert = self.alert_of(rule, key, state, "resolved", max(ends_at, state["_starts_at"]))
        state["firing"] = False
        state["_resolved_at"] = ends_at
        state["_last_starts_at"] = state["_starts_at"]
        for name in ("_starts_at", "_value", "_summary", "_description", "_values", "_evidence", "_last_match",
                     "false_since", "_condition", "_annotations", "_details"):
            state.pop(name, None)
        self.out.append(alert)

    def match(
        self, key: Key, state: State, *, ts: float, value: Any,
        event: Mapping[str, Any] | None, ref: Mapping[str, Any], resolve_after: float,
        starts_at: float | None = None, details: Mapping[str, Any] | None = None,
    ) -> None:
        if state.get("firing"):
            if event is not None:
                self.note(state, event)
            last = max(state.get("_last_match", ts), ts)
            state["_last_match"] = last
            state["_value"] = value
            if details:
                state["_details"] = dict(details)
            self.schedule(last + resolve_after, key)
            return
        # A match inside `realert` after the last episode is dropped (fire() says no).
        self.fire(key, state, starts_at=ts if starts_at is None else starts_at, value=value, event=event, ref=ref,
                  retry=False, details=details)
        if state.get("firing"):
            state["_last_match"] = ts
            self.schedule(ts + resolve_after, key)

    def instant_timer(self, key: Key, state: State, deadline: float, resolve_after: float) -> bool:
        last = state.get("_last_match")
        if state.get("firing") and last is not None and last + resolve_after <= deadline:
            self.resolve(key, state, ends_at=last + resolve_after)
            return True
        return False

    def state(self, key: Key) -> State:
        if self.rule is None:
            raise RuntimeError("state() is only available while a rule is evaluated")
        return self.engine.states.setdefault(self.rule.id, {}).setdefault(key, {})

    def schedule(self, deadline: float, key: Key) -> None:
        if self.rule is not None:
            self.engine.schedule(self.partition, deadline, self.rule.id, key)

    def owns(self, key: Key) -> bool:
        return self.engine.owns(key)

    def note(self, state: State, event: Mapping[str, Any]) -> None:
        evidence = state.get("_evidence")
        if evidence is None:
            evidence = state["_evidence"] = []
        if len(evidence) < self.evidence_limit:
            ref = event.get("id") or event.get("_pos")
            if ref is not None and ref not in evidence:
                evidence.append(str(ref))

    def project(self, event: Mapping[str, Any], ref: Mapping[str, Any]) -> dict[str, Any]:
        rule = self.rule
        names = rule.template_fields if rule is not None else ()
        values: dict[str, Any] = {}
        for name in names:
            value = event.get(name)
            values[name] = value if value is not None else ref.get(name)
        return values

    # -- records ------------------------------------------------------------------------------

    def alert_of(
        self, rule: CompiledRule, key: Key, state: State, status: str, ends_at: float | None
    ) -> Alert:
        spec = rule.spec
        starts_at = state["_starts_at"]
        fp = self.engine.fingerprint_of(rule, key, state)
        sla = None
        if spec.sla is not None:
            sla = {}
            if spec.sla.ack is not None:
                sla["ack_by"] = starts_at + spec.sla.ack
            if spec.sla.resolve is not None:
                sla["resolve_by"] = starts_at + spec.sla.resolve
        event = self.event
        return Alert(
            fingerprint=fp,
            alert_id=self.engine.make_alert_id(fp, starts_at),
            rule_id=spec.id,
            stream=spec.stream,
            kind=spec.kind,
            severity=spec.severity,
            status=status,
            key=dict(zip(rule.key_names, key, strict=True)),
            labels=dict(spec.labels),
            summary=state.get("_summary", ""),
            description=state.get("_description", ""),
            starts_at=starts_at,
            ends_at=ends_at,
            detected_at=self.engine.clock(),
            value=state.get("_value"),
            evidence=list(state.get("_evidence") or ()),
            sla=sla,
            rule_version=rule.version,
            rule_source=rule.place,
            condition=state.get("_condition"),
            received_at=event.get("_received") if event is not None else None,
            annotations=_annotations_of(rule, state),
            details=dict(state.get("_details") or ()),
        )


def rendered_condition(rule: CompiledRule, key: Key, ref: Mapping[str, Any]) -> str | None:
    """The rule's `condition` with the reference fields it reads put in (`level_m >= 44.5` for
    `level_m >= nwl_m - 0.5`), event fields and a window's `value` kept by name; None for a kind
    without a `condition`. `ref` is the row the firing event joined ({} when a timer fired: then
    the row of the key's `source_id`)."""
    text = getattr(rule.spec, "condition", None)
    if not isinstance(text, str) or not text.strip():
        return None
    ctx = rule.kind.ctx
    try:
        wanted = names_of(text) & ctx.ref_fields - ctx.fields
        if not wanted:
            return text.strip()
        row = ref if any(name in ref for name in wanted) else _row_of(rule, key)
        return with_threshold(text, row, keep=ctx.fields)
    except (RenderError, SyntaxError, ValueError, RecursionError):
        return text.strip()


def _row_of(rule: CompiledRule, key: Key) -> Mapping[str, Any]:
    table = rule.kind.ctx.reference.table(rule.kind.ctx.stream)
    if table is None:
        return {}
    join = dict(zip(rule.key_names, key, strict=False)).get(table.key)
    return table.rows.get(join, {}) if isinstance(join, str) else {}


def _render_annotations(rule: CompiledRule, values: Mapping[str, Any]) -> dict[str, str]:
    return {name: template.render(values) for name, template in rule.annotations}


def _annotations_of(rule: CompiledRule, state: State) -> dict[str, str]:
    """The record's annotations: the rule's, rendered when the episode fired, and its runbook link."""
    rendered = state.get("_annotations")
    annotations = dict(rendered) if rendered else {}
    if rule.spec.runbook_url is not None:
        annotations["runbook_url"] = rule.spec.runbook_url
    return annotations
