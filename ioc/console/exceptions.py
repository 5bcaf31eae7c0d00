"""Errors of the operator console."""

from __future__ import annotations

from ioc.exceptions import IocError

__all__ = ["ConsoleError"]


class ConsoleError(IocError):
    """The console cannot be served (bad map data, say)."""
