"""The IOC overview dashboard (`ioc-overview`): what fires now and how much fired, by domain,
severity and rule, and each reservoir's water level against its reference levels.

>>> board = dashboard()
>>> board.uid, board.templating.list_val[1].name
('ioc-overview', 'reservoir')
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard as DashboardBuilder
from grafana_foundation_sdk.builders.dashboard import Row
from grafana_foundation_sdk.models.dashboard import Dashboard

from ioc.dashboards.board import OVERVIEW, finish, new
from ioc.dashboards.panels import (
    Query,
    bargauge,
    color,
    dashed,
    line_width,
    no_fill,
    query_variable,
    stat,
    table,
    thresholds,
    timeseries,
)

__all__ = ["dashboard"]

SEVERITY_COLORS = {"info": "blue", "warning": "orange", "critical": "red", "emergency": "purple"}
# The reference levels of config/reference/reservoir.yaml, as ioc_reservoir_threshold_meters labels them.
THRESHOLD_COLORS = {"dead": "purple", "nwl": "green", "flood_wait": "light-blue",
                    "bd1": "yellow", "bd2": "orange", "bd3": "red"}
FIRED = 'ioc_alerts_total{status="firing"}'
RESERVOIR = 'reservoir=~"$reservoir"'


def dashboard() -> Dashboard:
    """The overview, built."""
    board = (new(OVERVIEW, "The city's alerts at a glance, and the reservoirs' water levels.")
             .with_variable(query_variable("reservoir", "Reservoir",
                                           "label_values(ioc_reservoir_level_meters, reservoir)")))
    board = _firing(board.with_row(Row("Firing now")))
    board = _fired(board.with_row(Row("Alerts fired")))
    board = _reservoirs(board.with_row(Row("Reservoirs")))
    return finish(board)


def _firing(board: DashboardBuilder) -> DashboardBuilder:
    total = stat(
        "Firing now",
        "Alerts firing now over all workers (fired and not resolved yet). Zero on a quiet day; "
        "each one should be on an operator's list.",
        [Query("sum(rule:ioc_alerts_firing:sum)", "firing")],
        unit="short", width=4, height=7, limits=thresholds("green", (1, "orange")),
    )
    last_hour = stat(
        "Fired in the last hour",
        "New alerts fired over the last hour, all rules. Compare with a usual hour: far more is an "
        "incident, or a rule that fires too easily.",
        [Query("sum(rule:ioc_alerts_fired:increase1h)", "fired")],
        unit="short", width=4, height=7,
    ).decimals(0)
    by_severity = stat(
        "Firing now, by severity",
        "Alerts firing now, one number per severity. Critical or emergency alerts need someone on them now.",
        [Query("sum by (severity) (rule:ioc_alerts_firing:sum)", "{{severity}}")],
        unit="short", width=6, height=7, sparkline=False,
    )
    for severity, name in SEVERITY_COLORS.items():
        by_severity = by_severity.override_by_name(severity, [color(name)])
    by_domain = timeseries(
        "Firing now, by domain and severity",
        "Alerts firing at each moment, stacked by domain (water, traffic, cyber...) and severity. "
        "Steps up when alerts fire, down when they resolve.",
        [Query("sum by (domain, severity) (rule:ioc_alerts_firing:sum)", "{{domain}} {{severity}}")],
        unit="short", width=10, height=7, stacked=True, minimum=0,
    )
    return board.with_panel(total).with_panel(last_hour).with_panel(by_severity).with_panel(by_domain)


def _fired(board: DashboardBuilder) -> DashboardBuilder:
    rate = timeseries(
        "Alerts fired per minute, by severity",
        "How many alerts fired per minute (new alerts, not repeats of one still firing). "
        "Spikes show a storm: look at the top rules next to it.",
        [Query(f"60 * sum by (severity) (rate({FIRED}[$__rate_interval]))", "{{severity}}")],
        unit="short", width=12, height=8, stacked=True, minimum=0, axis_label="per minute",
    )
    for severity, name in SEVERITY_COLORS.items():
        rate = rate.override_by_name(severity, [color(name)])
    total = bargauge(
        "Alerts fired over the time range, by domain and severity",
        "Alerts fired over the whole time range picked at the top right, by domain (water, traffic, "
        "cyber...) and severity.",
        [Query(f"sum by (domain, severity) (increase({FIRED}[$__range]))", "{{domain}} {{severity}}",
               instant=True)],
        unit="short", width=12, height=8, minimum=0,
    ).decimals(0)
    top = table(
        "Top 10 rules, alerts fired over the time range",
        "The ten rules that fired most over the time range. A rule far above the others may be noisy: "
        "check its threshold or its window.",
        [Query(f"topk(10, sum by (rule_id) (increase({FIRED}[$__range])))", "{{rule_id}}", table=True)],
        unit="short", width=12, height=10, columns={"rule_id": "Rule", "Value": "Fired"}, sort_desc="Fired",
    ).decimals(0)
    by_rule = table(
        "Firing now, by rule",
        "Each rule that fired since the workers started, with how many of its alerts fire now "
        "(0: all resolved). Highest first.",
        [Query("rule:ioc_alerts_firing:sum", table=True)],
        unit="short", width=12, height=10,
        columns={"rule_id": "Rule", "domain": "Domain", "severity": "Severity", "Value": "Firing"},
        sort_desc="Firing",
    )
    return board.with_panel(rate).with_panel(total).with_panel(top).with_panel(by_rule)


def _reservoirs(board: DashboardBuilder) -> DashboardBuilder:
    margin = bargauge(
        "Level vs normal water level (m)",
        "Each reservoir's water level minus its normal water level (NWL), in metres. Below -2 m is "
        "normal; orange within 2 m of the NWL; red at or above it (spillway operations, flood risk "
        "downstream).",
        [Query(f"max by (reservoir, name) (ioc_reservoir_level_meters{{{RESERVOIR}}})"
               f' - max by (reservoir, name) (ioc_reservoir_threshold_meters{{{RESERVOIR}, threshold="nwl"}})',
               "{{name}}")],
        unit="lengthm", width=24, height=6, limits=thresholds("green", (-2, "orange"), (0, "red")),
    ).decimals(2)
    level = timeseries(
        "Water level: $reservoir",
        "The reservoir's newest water level (solid) against its reference levels (dashed): dead "
        "water level, flood-season waiting level (flood_wait), normal water level (nwl), and for "
        "river gauges the alarm levels bd1-bd3. Good: between the dead level and the NWL, and "
        "under flood_wait in the flood season.",
        [Query(f"max by (reservoir, name) (ioc_reservoir_level_meters{{{RESERVOIR}}})", "level ({{name}})"),
         Query(f"max by (reservoir, threshold) (ioc_reservoir_threshold_meters{{{RESERVOIR}}})", "{{threshold}}")],
        unit="lengthm", width=12, height=9,
    ).repeat("reservoir").repeat_direction("h").max_per_row(2)
    level = (level.override_by_query("A", [color("blue"), line_width(2)])
             .override_by_query("B", [dashed(), line_width(1), no_fill()]))
    for threshold, name in THRESHOLD_COLORS.items():
        level = level.override_by_name(threshold, [color(name)])
    return board.with_panel(margin).with_panel(level)

