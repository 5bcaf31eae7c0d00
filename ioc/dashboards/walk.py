"""Reading a dashboard's JSON: its panels (those rows hold too) and its PromQL queries.

>>> board = {"panels": [{"type": "row", "title": "Lag", "panels": [
...              {"title": "Lag", "targets": [{"expr": "stream:ioc_consumer_lag:sum"}]}]}],
...          "templating": {"list": [{"type": "query", "name": "reservoir",
...                                   "query": "label_values(ioc_reservoir_level_meters, reservoir)"}]}}
>>> queries(board)
[('Lag', 'stream:ioc_consumer_lag:sum'), ('$reservoir', 'label_values(ioc_reservoir_level_meters, reservoir)')]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["each_panel", "queries"]


def each_panel(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, rows included, and the panels a collapsed row holds (after their row)."""
    for panel in dashboard.get("panels") or ():
        yield panel
        yield from panel.get("panels") or ()


def queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, then ("$name", query) for every query
    variable: Grafana's own syntax (`$__rate_interval`, `label_values(...)`) left as it is."""
    found = [(str(panel.get("title", "")), str(target.get("expr", "")))
             for panel in each_panel(dashboard) for target in panel.get("targets") or ()]
    for variable in (dashboard.get("templating") or {}).get("list") or ():
        if variable.get("type") == "query":
            query = variable.get("query")
            # Grafana 10+ may save a variable's query as {"query": ..., "refId": ...}.
            text = query.get("query", "") if isinstance(query, Mapping) else query
            found.append((f"${variable.get('name', '')}", str(text or "")))
    return found
