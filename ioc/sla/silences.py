"""Silences and maintenance windows added at run time: the records of `ioc.silences`.

`ioc silences add|expire` publishes them (compacted topic, keyed by silence id); the worker that
runs the notification policy (streams/cluster_runner.py) applies them in offset order. Two kinds:

* `{"type": "silence", "id", "kind", "matchers", "starts_at", "ends_at", "for_s",
  "until_resolved", "created_by", "comment"}`: the fields of `notify.silences`
  (ioc.sla.policy.SilenceSettings), times as RFC 3339. `starts_at: null` is "now" on the
  policy's clock (`sla.clock`: the wall clock, or event time), `for_s` a length from the start;
* `{"type": "expire", "id", "by", "at"}`: ends the silence at `at` (`null`: now on that clock).

Applying is idempotent: a silence id the policy holds already is left as it is, so a record read
again after a restart changes nothing.

>>> from ioc.sla.notify import NotificationPolicy
>>> policy = NotificationPolicy()
>>> record = silence_record({"matchers": 'rule_id="r"', "starts_at": 0, "ends_at": 600}, "s-ops-1", "ops")
>>> apply(policy, record), apply(policy, record), [s["id"] for s in policy.silences()]
('added', 'known', ['s-ops-1'])
>>> apply(policy, expire_record("s-ops-1", "ops", 60.0))
'expired'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ioc.sla.notify import NotificationPolicy
from ioc.sla.policy import SilenceSettings
from ioc.timeutil import format_ts, parse_ts

__all__ = ["SilenceRecordError", "apply", "expire_record", "relative", "silence_record"]


class SilenceRecordError(ValueError):
    """A record of `ioc.silences` that cannot be applied (the message says why)."""


def _validated(fields: Mapping[str, Any]) -> SilenceSettings:
    try:
        return SilenceSettings.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'silence'}: "
                             f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors())
        raise SilenceRecordError(problems) from None


def silence_record(fields: Mapping[str, Any], silence_id: str, created_by: str, *,
                   for_s: float | None = None) -> dict[str, Any]:
    """A silence record from `notify.silences`-style fields (`starts_at` None: now, at the
    worker), validated: SilenceRecordError with the field and the problem."""
    starts = fields.get("starts_at")
    ends = fields.get("ends_at")
    if for_s is not None and for_s <= 0:
        raise SilenceRecordError("for_s: must be more than 0")
    # Checked here with a start of 0 when it is "now": the worker checks the times again.
    trial = {**fields, "id": silence_id, "created_by": created_by, "starts_at": starts if starts is not None else 0.0,
             "ends_at": ends if ends is not None else (for_s if for_s is not None and starts is None else
                                                      None if for_s is None else parse_ts(starts) + for_s)}
    settings = _validated(trial)
    data = settings.model_dump()
    data["starts_at"] = None if starts is None else format_ts(settings.starts_at)
    data["ends_at"] = None if ends is None else format_ts(parse_ts(ends))
    return {"type": "silence", **data, "for_s": for_s}


def expire_record(silence_id: str, by: str, at: float | None) -> dict[str, Any]:
    return {"type": "expire", "id": silence_id, "by": by, "at": None if at is None else format_ts(at)}


def _time(record: Mapping[str, Any], name: str) -> float | None:
    value = record.get(name)
    if value is None:
        return None
    try:
        return parse_ts(value)
    except (TypeError, ValueError):
        raise SilenceRecordError(f"{name}: not a time: {value!r:.40}") from None


def relative(record: Mapping[str, Any]) -> bool:
    """Whether a record's times are "now" on the policy's clock (a silence without `starts_at`,
    an expire without `at`): the worker applies it once the policy has a clock."""
    if record.get("type") == "silence":
        return record.get("starts_at") is None
    return record.get("type") == "expire" and record.get("at") is None


def apply(policy: NotificationPolicy, record: Mapping[str, Any]) -> str:
    """Apply one record: 'added', 'known' (held already), 'expired' or 'unknown' (no such
    silence to expire). Raises SilenceRecordError for a record that is not one of the two kinds."""
    kind = record.get("type")
    now = policy.clock if math.isfinite(policy.clock) else 0.0  # the worker waits for a clock (`relative`)
    if kind == "silence":
        silence_id = record.get("id")
        if not isinstance(silence_id, str) or not silence_id:
            raise SilenceRecordError("a silence record needs an id")
        if any(s["id"] == silence_id for s in policy.silences()):
            return "known"
        starts = _time(record, "starts_at")
        start = now if starts is None else starts
        ends = _time(record, "ends_at")
        for_s = record.get("for_s")
        if isinstance(for_s, (int, float)) and not isinstance(for_s, bool):
            ends = start + float(for_s) if ends is None else min(ends, start + float(for_s))
        fields = {k: v for k, v in record.items() if k not in ("type", "for_s")}
        settings = _validated({**fields, "starts_at": start, "ends_at": ends})
        try:
            policy.silence(settings.matchers, starts_at=settings.starts_at, ends_at=settings.ends_at,
                           until_resolved=settings.until_resolved, kind=settings.kind,
                           created_by=settings.created_by, comment=settings.comment, silence_id=silence_id)
        except ValueError as exc:
            raise SilenceRecordError(str(exc)) from None
        return "added"
    if kind == "expire":
        return "expired" if policy.expire(str(record.get("id")), _time(record, "at")) else "unknown"
    raise SilenceRecordError(f"type must be silence or expire, not {kind!r:.40}")
