"""Operator actions on alerts, as read from `ioc.alert-actions`.

The record is `{alert_id, action, by, at, note?, assignee?}`: `action` is one of `ack`,
`assign`, `comment`, `resolve`, `reopen`; `at` is RFC 3339 text or epoch seconds (event time);
`assignee` only with `assign` (where it is required). The operator simulator and
`ioc alerts <verb>` publish exactly this shape. Any other field is refused.

Parsing never raises: a bad record gives an `InvalidAction` with a reason.

>>> parse_action({"alert_id": "eece90541220b5d3-1761526800000", "action": "ack",
...               "by": "truc-ban-1", "at": "2025-10-27T01:03:20Z", "note": None}).at
1761527000.0
>>> parse_action({"alert_id": "x", "action": "ack", "by": "a", "at": 1}).reason
"alert_id: 'x' is not an alert id (16 hex digits, '-', the start in epoch milliseconds, ...)"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ioc.alerts import fingerprint_of
from ioc.timeutil import parse_ts

__all__ = ["ACTIONS", "Action", "ActionKind", "InvalidAction", "parse_action"]

ActionKind = Literal["ack", "assign", "comment", "resolve", "reopen"]
ACTIONS: tuple[str, ...] = ("ack", "assign", "comment", "resolve", "reopen")


def _alert_id(value: Any) -> Any:
    if isinstance(value, str):
        try:
            fingerprint_of(value)
        except ValueError:
            raise ValueError(f"{value[:80]!r} is not an alert id (16 hex digits, '-', the start in epoch "
                             "milliseconds, ...)") from None
    return value


def _time(value: Any) -> Any:
    return None if value is None else parse_ts(value)


class Action(BaseModel):
    """One validated operator action; `at` in epoch seconds (None: the record had no time)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    alert_id: Annotated[str, BeforeValidator(_alert_id)]
    action: ActionKind
    by: str = Field(min_length=1, max_length=200)
    at: Annotated[float | None, BeforeValidator(_time)] = None
    note: str | None = Field(default=None, max_length=2000)
    assignee: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _assignee_with_assign(self) -> Action:
        if self.action == "assign" and self.assignee is None:
            raise ValueError("assignee: required for assign (who the alert goes to)")
        if self.action != "assign" and self.assignee is not None:
            raise ValueError(f"assignee: only for assign, not {self.action}")
        return self

    @property
    def fingerprint(self) -> str:
        """The alert's fingerprint (the key of the action on `ioc.alert-actions`)."""
        return fingerprint_of(self.alert_id)


class InvalidAction(NamedTuple):
    """A record that is not an action, and why."""

    reason: str


def parse_action(record: Mapping[str, Any] | bytes | str) -> Action | InvalidAction:
    """An `Action` from a record (a mapping, or its JSON text), or an `InvalidAction` saying why not."""
    if isinstance(record, (bytes, str)):
        try:
            record = orjson.loads(record)
        except orjson.JSONDecodeError:
            return InvalidAction("not JSON")
    if not isinstance(record, Mapping):
        return InvalidAction(f"an action is a JSON object, not {type(record).__name__}")
    try:
        return Action.model_validate(dict(record))
    except ValidationError as exc:
        return InvalidAction("; ".join(_describe(error) for error in exc.errors()[:5]))


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()))
    message = str(error.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if error.get("type") == "extra_forbidden":
        message = "unknown field (allowed: alert_id, action, by, at, note, assignee)"
    elif error.get("type") == "literal_error":
        message = f"{error.get('input')!r} is not an action (ack, assign, comment, resolve, reopen)"
    return f"{where}: {message}" if where else message
