"""What the three IOC dashboards share: uid and title, tags, time zone, refresh, the
datasource variable, links to one another, and panel ids.

>>> from ioc.dashboards.panels import Query, stat
>>> board = finish(new(SLA, "SLA figures.").with_panel(
...     stat("Overdue now", "Alerts past a deadline.", [Query("sum(ioc_sla_overdue)")], unit="short")))
>>> board.uid, [link.title for link in board.links], [panel.id_val for panel in board.panels]
('ioc-sla', ['IOC overview', 'IOC pipeline health'], [1])
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models.dashboard import (
    Dashboard,
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    RowPanel,
)

from ioc.dashboards.panels import datasource_variable

__all__ = ["OVERVIEW", "PIPELINE", "SLA", "TITLES", "finish", "new"]

OVERVIEW = "ioc-overview"
SLA = "ioc-sla"
PIPELINE = "ioc-pipeline"
TITLES = {OVERVIEW: "IOC overview", SLA: "IOC SLA", PIPELINE: "IOC pipeline health"}


def new(uid: str, description: str) -> dashboard_builder.Dashboard:
    """A dashboard with the house settings and links to the other IOC dashboards (keeping the
    time range and the datasource)."""
    board = (dashboard_builder.Dashboard(TITLES[uid]).uid(uid).description(description).tags(["ioc"])
             .timezone("browser").refresh("30s").time("now-6h", "now").tooltip(DashboardCursorSync.CROSSHAIR)
             .annotation(_builtin_annotations()).with_variable(datasource_variable()))
    for other, title in TITLES.items():
        if other != uid:
            board = board.link(dashboard_builder.DashboardLink(title).type(DashboardLinkType.LINK)
                               .url(f"/d/{other}").icon("dashboard").tooltip(f"Open {title}")
                               .keep_time(True).include_vars(True))
    return board


def _builtin_annotations() -> dashboard_builder.AnnotationQuery:
    """Grafana's own "Annotations & Alerts", as Grafana saves it: without it the JSON would carry
    an `annotations` object with no `list`."""
    return (dashboard_builder.AnnotationQuery().name("Annotations & Alerts").built_in(1).type("dashboard")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)"))


def finish(board: dashboard_builder.Dashboard) -> Dashboard:
    """The built dashboard, its panels numbered 1, 2... in order (rows and what they hold)."""
    built = board.build()
    number = 0
    for panel in built.panels or []:
        number += 1
        panel.id_val = number
        if isinstance(panel, RowPanel):
            for inner in panel.panels:
                number += 1
                inner.id_val = number
    return built
