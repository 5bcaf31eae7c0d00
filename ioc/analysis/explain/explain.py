"""Explain one alert by replaying its rule over the events and tracing its key.

>>> explanation = explain_alert(records, ruleset, prepared, source="alerts.jsonl")   # doctest: +SKIP
>>> explanation.reproduced, [c.holds for c in explanation.checks]
(True, [True])

The rule is the one loaded now. When its version differs from the record's `rule_version`
the explanation says so in its first warning and still replays the current rule: an analyst
asking "why did this fire" after editing a rule wants to see what the edit makes of the same
events, and `reproduced` then says whether the current rule still gives this alert.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ioc.analysis.backtest import PreparedEvents
from ioc.analysis.explain.base import Case
from ioc.analysis.explain.exceptions import ExplainError
from ioc.analysis.explain.model import Explanation, Resolution, threshold_text
from ioc.analysis.explain.registry import explainer_for
from ioc.analysis.explain.trace import trace_rule
from ioc.engine import KeyLimits
from ioc.rules.exceptions import closest
from ioc.rules.loader import RuleSet
from ioc.runtime.shards import SHARD_LIMITS
from ioc.timeutil import format_local, parse_ts

__all__ = ["explain_alert", "latest_record"]


def latest_record(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The record that says most about an alert: its resolved one, else its last firing one."""
    resolved = [r for r in records if r.get("status") == "resolved"]
    return dict((resolved or list(records))[-1])


def explain_alert(
    records: Sequence[Mapping[str, Any]], ruleset: RuleSet, prepared: PreparedEvents, *, source: str,
    partitions: int = 1, lateness_s: float = 0.0, until: float | None = None, limits: KeyLimits = SHARD_LIMITS,
) -> Explanation:
    """The explanation of the alert whose records (one per transition) are `records`."""
    if not records:
        raise ExplainError("no record of the alert to explain")
    record = latest_record(records)
    rule_id = str(record.get("rule_id"))
    rule = ruleset.by_id.get(rule_id)
    if rule is None:
        guess = closest(rule_id, ruleset.by_id)
        hint = f" (did you mean {guess!r}?)" if guess else ""
        raise ExplainError(f"rule {rule_id!r} of alert {record.get('alert_id')} is not in the rules loaded "
                           f"({len(ruleset.by_id)} rules){hint}: pass --rules with the file that defines it")
    if not prepared.events:
        raise ExplainError(f"no valid events to replay in {source}")
    alert_id = str(record["alert_id"])
    record["_starts_at"] = parse_ts(record["starts_at"])
    record["_ends_at"] = parse_ts(record["ends_at"]) if record.get("ends_at") else None
    trace = trace_rule(ruleset, rule_id, str(record["fingerprint"]), prepared, partitions=partitions,
                       lateness_s=lateness_s, until=until, limits=limits)
    fire = next((i for i, step in enumerate(trace.steps) if step.fired(alert_id)), None)
    resolve = next((i for i, step in enumerate(trace.steps) if step.resolved(alert_id)), None)
    out = Explanation(
        record={k: v for k, v in record.items() if not k.startswith("_")}, rule_id=rule_id, kind=rule.spec.kind,
        rule_source=record.get("rule_source"), rule_version=record.get("rule_version"),
        current_version=rule.version, source=source, reproduced=fire is not None,
        replayed_ids=trace.ids(str(record["fingerprint"])),
    )
    if out.rule_changed:
        out.warnings.append(f"the rule has changed since this alert: its version was {out.rule_version}, the rule "
                            f"loaded now ({rule.place}) is {out.current_version}; explained with the rule as it is now")
    if fire is None:
        ids = out.replayed_ids
        out.warnings.append(
            f"the replay does not reproduce {alert_id}: the rule gave "
            + (f"{len(ids)} other episode(s) of this key ({', '.join(ids[:5])})" if ids else "no alert for this key")
            + " (replayed with the events given, partitions, lateness and key limits as passed: they must be those "
              "of the run that made the alert)")
        return out
    case = Case(record, trace, fire, resolve)
    step = trace.steps[fire]
    out.fired_at = step.at
    out.fired_by = step.what
    fired_alert = next(a for a in step.alerts if a.alert_id == alert_id and a.status == "firing")
    out.condition = fired_alert.condition
    explainer = explainer_for(rule.spec.kind)
    explainer.fired(case, out)
    if resolve is not None:
        at = trace.steps[resolve]
        out.resolution = Resolution(at.what, record.get("_ends_at") or at.at, "")
        explainer.resolved(case, out)
    else:
        out.resolution = Resolution("firing", None, "still firing at the end of the replayed events "
                                    f"({format_local(trace.steps[-1].at)} ICT, the last the rule saw for this key)")
    text = getattr(rule.spec, "condition", None)
    if out.condition is None and isinstance(text, str):
        out.condition = threshold_text(text, {}, rule.kind.ctx.fields)
    return out
