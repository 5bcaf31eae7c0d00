"""Panel helpers shared by the IOC dashboards: the Prometheus query (checked when it is built),
the datasource variable every panel reads through, and timeseries, stat, bar gauge and table
panels with the house defaults (datasource, description, unit, size).

>>> panel = timeseries("Events per second", "Valid events taken, by stream.",
...                    [Query("sum by (stream) (stream:ioc_events:rate5m)", "{{stream}}")], unit="short")
>>> built = panel.build()
>>> built.targets[0].expr, built.targets[0].ref_id, built.datasource.uid
('sum by (stream) (stream:ioc_events:rate5m)', 'A', '${datasource}')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge as bargauge_builder
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import table as table_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from ioc.dashboards.exceptions import QueryError

__all__ = [
    "DATASOURCE", "VARIABLES", "Query", "bargauge", "color", "dashed", "datasource_variable", "line_width",
    "no_fill", "query_variable", "stat", "table", "thresholds", "timeseries", "value_text",
]

# Every panel and target reads the datasource the `datasource` variable picks, so the JSON
# imports into any Grafana whatever its Prometheus is called.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")

# The only Grafana variables a query may use: a test runs every query against a real
# Prometheus and substitutes these.
VARIABLES = frozenset({"datasource", "reservoir", "__rate_interval", "__range", "__interval"})
_VARIABLE = re.compile(r"\$\{?(\w+)")
# A constant series (`or vector(0)`) would hide a metric that disappeared.
_CONSTANT = re.compile(r"\bvector\s*\(")



@dataclass(frozen=True, slots=True)
class Query:
    """One PromQL target: `legend` is Grafana's legend format (`{{stream}}`); `instant` for a
    value now (totals over `[$__range]`), `table` for a table panel's rows.

    >>> Query("sum(up) or vector(0)")
    Traceback (most recent call last):
    ...
    ioc.dashboards.exceptions.QueryError: query 'sum(up) or vector(0)': a vector() constant hides a missing metric
    """

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False

    def __post_init__(self) -> None:
        if not self.expr.strip():
            raise QueryError("empty query")
        if _CONSTANT.search(self.expr):
            raise QueryError(f"query {self.expr!r}: a vector() constant hides a missing metric")
        unknown = sorted(set(_VARIABLE.findall(self.expr)) - VARIABLES)
        if unknown:
            raise QueryError(f"query {self.expr!r}: unknown variable(s) {', '.join(unknown)}; "
                             f"allowed: {', '.join(sorted(VARIABLES))}")

    def target(self, ref_id: str) -> prometheus.Dataquery:
        query = (prometheus.Dataquery().expr(self.expr).ref_id(ref_id).datasource(DATASOURCE)
                 .legend_format(self.legend or "__auto"))
        if self.table:
            query = query.format(PromQueryFormat.TABLE)
        return query.instant() if self.instant or self.table else query.range()


def _targets(queries: Sequence[Query]) -> list[prometheus.Dataquery]:
    if not queries:
        raise QueryError("a panel needs at least one query")
    return [query.target(chr(ord("A") + index)) for index, query in enumerate(queries)]


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds: `base` colour below the first step, then each (value, colour)."""
    return (dashboard_builder.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE)
            .steps([Threshold(value=None, color=base), *(Threshold(value=v, color=c) for v, c in steps)]))


def color(name: str) -> DynamicConfigValue:
    """A fixed series colour, for an override."""
    return DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": name})


def dashed() -> DynamicConfigValue:
    """A dashed line (reference levels, a second quantile), for an override."""
    return DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})


def line_width(width: int) -> DynamicConfigValue:
    """A series' line width (1 is thin), for an override."""
    return DynamicConfigValue(id_val="custom.lineWidth", value=width)


def no_fill() -> DynamicConfigValue:
    """No area under the series (reference lines), for an override."""
    return DynamicConfigValue(id_val="custom.fillOpacity", value=0)


def value_text(texts: dict[str, tuple[str, str]]) -> ValueMap:
    """Shows values as words: {"1": ("owner", "green")}."""
    return ValueMap(options={value: ValueMappingResult(text=text, color=colour, index=index)
                             for index, (value, (text, colour)) in enumerate(texts.items())})


def timeseries(title: str, description: str, queries: Sequence[Query], *, unit: str, width: int = 12,
               height: int = 8, minimum: float | None = None, maximum: float | None = None,
               limits: dashboard_builder.ThresholdsConfig | None = None, stacked: bool = False,
               axis_label: str = "") -> timeseries_builder.Panel:
    """A time series; `limits` are drawn as dashed threshold lines."""
    panel = (timeseries_builder.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(list(_targets(queries))).unit(unit).span(width).height(height)
             .line_width(1).fill_opacity(10).show_points(common.VisibilityMode.NEVER)
             .legend(common_builder.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).show_legend(True))
             .tooltip(common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                      .sort(common.SortOrder.DESCENDING)))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    if limits is not None:
        panel = panel.thresholds(limits).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED))
    if stacked:
        panel = panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL)).fill_opacity(40)
    if axis_label:
        panel = panel.axis_label(axis_label)
    return panel


def stat(title: str, description: str, queries: Sequence[Query], *, unit: str, width: int = 6, height: int = 5,
         limits: dashboard_builder.ThresholdsConfig | None = None, mappings: Sequence[ValueMap] = (),
         sparkline: bool = True) -> stat_builder.Panel:
    """The last value of each series, coloured by `limits`."""
    panel = (stat_builder.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(list(_targets(queries))).unit(unit).span(width).height(height)
             .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .color_mode(common.BigValueColorMode.VALUE).text_mode(common.BigValueTextMode.AUTO)
             .graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
             .thresholds(limits or thresholds("green")))
    if mappings:
        panel = panel.mappings(list(mappings))
    return panel


def bargauge(title: str, description: str, queries: Sequence[Query], *, unit: str, width: int = 12,
             height: int = 8, minimum: float | None = None, maximum: float | None = None,
             limits: dashboard_builder.ThresholdsConfig | None = None) -> bargauge_builder.Panel:
    """One horizontal bar per series (its last value), coloured by `limits`."""
    panel = (bargauge_builder.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(list(_targets(queries))).unit(unit).span(width).height(height)
             .orientation(common.VizOrientation.HORIZONTAL).display_mode(common.BarGaugeDisplayMode.BASIC)
             .value_mode(common.BarGaugeValueMode.COLOR).show_unfilled(True)
             .reduce_options(common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .thresholds(limits or thresholds("green")))
    if minimum is not None:
        panel = panel.min(minimum)
    if maximum is not None:
        panel = panel.max(maximum)
    return panel


def table(title: str, description: str, queries: Sequence[Query], *, unit: str, columns: dict[str, str],
          width: int = 12, height: int = 8, sort_desc: str = "") -> table_builder.Panel:
    """A table of instant rows: `columns` maps the labels to show (and `Value`, or `Value #A`...
    with several queries) to their headers, in order; the other columns (time, job...) are hidden.
    `sort_desc` names the header to sort by, highest first."""
    organize = DataTransformerConfig(id_val="organize", options={
        "includeByName": dict.fromkeys(columns, True),
        "indexByName": {name: index for index, name in enumerate(columns)},
        "renameByName": columns,
    })
    panel = (table_builder.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(list(_targets(queries))).unit(unit).span(width).height(height)
             .with_transformation(DataTransformerConfig(id_val="merge", options={}))
             .with_transformation(organize))
    if sort_desc:
        panel = panel.sort_by([common_builder.TableSortByFieldState().display_name(sort_desc).desc(True)])
    return panel


def datasource_variable() -> dashboard_builder.DatasourceVariable:
    """`$datasource`: any Prometheus datasource; Grafana's default one first."""
    return dashboard_builder.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def query_variable(name: str, label: str, query: str) -> dashboard_builder.QueryVariable:
    """A multi-value variable from a `label_values(...)` query, with All, refreshed with the time range."""
    return (dashboard_builder.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
            .multi(True).include_all(True).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(VariableSort.ALPHABETICAL_ASC))
