"""Errors of `ioc explain`: what was searched and not found, in the analyst's terms."""

from __future__ import annotations

from ioc.exceptions import IocError

__all__ = ["ExplainError"]


class ExplainError(IocError):
    """An alert that cannot be explained: an unknown id, missing events, a rule not loaded."""
