"""Errors of the SLA package: all derive from `SlaError` (an `IocError`)."""

from __future__ import annotations

from ioc.exceptions import IocError

__all__ = ["SlaError", "CalendarError", "SnapshotError"]


class SlaError(IocError):
    """Base class of the SLA package's errors."""


class CalendarError(SlaError):
    """A working-hours calendar file or setting is invalid, or a deadline cannot be placed in it."""


class SnapshotError(SlaError):
    """A tracker snapshot cannot be restored (wrong version or shape)."""
