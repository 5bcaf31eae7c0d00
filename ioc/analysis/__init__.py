"""Offline analysis: backtests over recorded events, scoring against labelled truth, reports, rule tests."""

__all__: list[str] = []
