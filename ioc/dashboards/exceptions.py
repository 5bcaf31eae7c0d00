"""Errors of the dashboards package: all derive from `DashboardError` (an `IocError`)."""

from __future__ import annotations

from ioc.exceptions import IocError

__all__ = ["DashboardError", "QueryError"]


class DashboardError(IocError):
    """Base class of the dashboards package's errors."""


class QueryError(DashboardError):
    """A panel query breaks the dashboards' rules (a padding constant, an unknown variable)."""
