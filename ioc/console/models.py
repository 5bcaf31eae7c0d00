"""The console's inputs, validated: list filters (query string) and operator actions (JSON body).

>>> AlertFilter.model_validate({"severity": "critical", "limit": "50"}).limit
50
>>> ActionIn.model_validate({"action": "assign", "by": "truc-ban-1"})
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ActionIn
...
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["ActionIn", "AlertFilter", "MAX_BODY_BYTES", "MAX_PAGE"]

MAX_PAGE = 500          # most alerts in one page
MAX_BODY_BYTES = 8192   # the largest action body read
Severity = Literal["info", "warning", "critical", "emergency"]


class AlertFilter(BaseModel):
    """`GET /api/alerts` query: filters (exact values), then a page: `limit` from `cursor` or `offset`."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    domain: str | None = Field(default=None, min_length=1, max_length=100)
    severity: Severity | None = None
    status: Literal["firing", "resolved"] | None = None                      # the engine's status
    operator: Literal["open", "acked", "assigned", "resolved"] | None = None  # the operators' status
    agency: str | None = Field(default=None, min_length=1, max_length=200)
    limit: int = Field(default=100, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    cursor: str | None = Field(default=None, pattern=r"^-?\d{1,16}_[0-9a-f]{16}-\d{1,16}$", max_length=80)


class ActionIn(BaseModel):
    """`POST /api/alerts/{id}/actions` body: what the operator does; the server adds the id and time."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
    action: Literal["ack", "assign", "comment", "resolve"]
    by: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=2000)
    assignee: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> ActionIn:
        if self.action == "assign" and self.assignee is None:
            raise ValueError("assignee: required for assign (who the alert goes to)")
        if self.action != "assign" and self.assignee is not None:
            raise ValueError(f"assignee: only for assign, not {self.action}")
        if self.action == "comment" and not self.note:
            raise ValueError("note: required for comment")
        return self
