"""Silences and maintenance windows added at run time: the records of `ioc.silences`.

`ioc silences add|expire` publishes them (compacted topic, keyed by silence id); the worker that
runs the notification policy (streams/cluster_runner.py) applies them in offset order. Two kinds:

* `{"type": "silence", "id", "kind", "matchers", "starts_at", "ends_at", "until_resolved",
  "created_by", "comment"}`: the fields of `notify.silences` (ioc.sla.policy.SilenceSettings),
  times as RFC 3339;
* `{"type": "expire", "id", "by", "at"}`: ends the silence at `at`.

Applying is idempotent: a silence id the policy holds already is left as it is, so a record read
again after a restart changes nothing.

>>> from ioc.sla.notify import NotificationPolicy
>>> policy = NotificationPolicy()
>>> record = silence_record({"matchers": 'rule_id="r"', "starts_at": 0, "ends_at": 600}, "s-ops-1", "ops")
>>> apply(policy, record), apply(policy, record), [s["id"] for s in policy.silences()]
('added', 'known', ['s-ops-1'])
>>> apply(policy, {"type": "expire", "id": "s-ops-1", "by": "ops", "at": "1970-01-01T00:01:00Z"})
'expired'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ioc.sla.notify import NotificationPolicy
from ioc.sla.policy import SilenceSettings
from ioc.timeutil import format_ts, parse_ts

__all__ = ["SilenceRecordError", "apply", "expire_record", "silence_record"]


class SilenceRecordError(ValueError):
    """A record of `ioc.silences` that cannot be applied (the message says why)."""


def silence_record(fields: Mapping[str, Any], silence_id: str, created_by: str) -> dict[str, Any]:
    """A silence record from `notify.silences`-style fields, validated (ValueError with the
    field and the problem when they do not make a silence)."""
    try:
        settings = SilenceSettings.model_validate({**fields, "id": silence_id, "created_by": created_by})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'silence'}: "
                             f"{str(e['msg']).removeprefix('Value error, ')}" for e in exc.errors())
        raise SilenceRecordError(problems) from None
    data = settings.model_dump()
    for name in ("starts_at", "ends_at"):
        if data[name] is not None:
            data[name] = format_ts(data[name])
    return {"type": "silence", **data}


def expire_record(silence_id: str, by: str, at: float) -> dict[str, Any]:
    return {"type": "expire", "id": silence_id, "by": by, "at": format_ts(at)}


def apply(policy: NotificationPolicy, record: Mapping[str, Any]) -> str:
    """Apply one record: 'added', 'known' (held already), 'expired' or 'unknown' (no such
    silence to expire). Raises SilenceRecordError for a record that is not one of the two kinds."""
    kind = record.get("type")
    if kind == "silence":
        fields = {k: v for k, v in record.items() if k != "type"}
        try:
            settings = SilenceSettings.model_validate(fields)
        except ValidationError as exc:
            raise SilenceRecordError(f"not a silence: {exc.errors()[0]['msg']}") from None
        if settings.id is None:
            raise SilenceRecordError("a silence record needs an id")
        if any(s["id"] == settings.id for s in policy.silences()):
            return "known"
        try:
            policy.silence(settings.matchers, starts_at=settings.starts_at, ends_at=settings.ends_at,
                           until_resolved=settings.until_resolved, kind=settings.kind,
                           created_by=settings.created_by, comment=settings.comment, silence_id=settings.id)
        except ValueError as exc:
            raise SilenceRecordError(str(exc)) from None
        return "added"
    if kind == "expire":
        try:
            at = parse_ts(record["at"])
        except (KeyError, TypeError, ValueError):
            raise SilenceRecordError("an expire record needs `at` (RFC 3339)") from None
        return "expired" if policy.expire(str(record.get("id")), at) else "unknown"
    raise SilenceRecordError(f"type must be silence or expire, not {kind!r:.40}")
